"""Host ownership for the AgentManager of one server among several (the rules: ``host_leases``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from hvcloud import logs
from hvcloud.server.orchestration import host_leases
from hvcloud.server.orchestration.agents.scope import Part, Scope

log = logs.get(__name__)


class Ownership(Part):
    """The hosts this server owns, as of its last ownership pass (or an explicit take)."""

    def __init__(self, scope: Scope, server_id: str, on_change: Callable[[], Awaitable[None]]) -> None:
        super().__init__(scope)
        #: the scope's server id, known here not to be None
        self.owner = server_id
        #: awaited after a pass that claimed, released or lost hosts
        self.on_change = on_change
        self.owned: frozenset[str] = frozenset()

    async def run(self) -> None:
        """Balance host ownership every ``host_claim_interval``; hosts just claimed (a dead server's,
        or a rebalance's) are connected at once by ``on_change``, so a takeover costs one connect
        sequence, not a ping interval."""
        while True:
            try:
                outcome = await asyncio.to_thread(self._claim)
                lost = self.owned - outcome.owned - set(outcome.released)
                self.owned = outcome.owned
                if lost:
                    log.warning("hosts lost to other servers", server=self.owner, hosts=len(lost))
                if outcome.claimed or outcome.released or lost:
                    self.stats.claimed += len(outcome.claimed)
                    self.stats.released += len(outcome.released)
                    log.info("host ownership changed", server=self.owner, claimed=len(outcome.claimed),
                             released=len(outcome.released), owned=len(outcome.owned), share=outcome.share,
                             live_servers=outcome.live_servers)
                    await self.on_change()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("host ownership pass failed")
            await asyncio.sleep(self.config.host_claim_interval_seconds)

    def _claim(self) -> host_leases.ClaimOutcome:
        with self.sessions.begin() as db:
            return host_leases.claim_pass(db, self.owner, self.config.lease_seconds)

    def take(self, host_id: str) -> None:
        """Own this host whoever owned it (reconnectHost here)."""
        with self.sessions.begin() as db:
            if host_leases.take(db, host_id, self.owner):
                self.owned = self.owned | {host_id}

    def release_all(self) -> None:
        with self.sessions.begin() as db:
            host_leases.release(db, self.owner)
        self.owned = frozenset()
