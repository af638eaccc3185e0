"""Which management server's AgentManager drives which host.

Every host row names its owner (``host.owner_server_id``). A host's lease is its owner's
``management_server`` heartbeat — the same liveness rule the job engine uses
(:func:`hvcloud.server.jobs.leases.is_alive`), so "alive" means one thing: a server that may run
jobs also owns hosts, and a dead server loses both at the same moment.

Each live server runs :func:`claim_pass` every few seconds:

1. its fair share is ``ceil(hosts / live servers)`` (itself counted as live);
2. above the share it releases its extra hosts, the highest ids first (so a server joining a busy
   cloud receives hosts without anybody being declared dead);
3. below it, it claims hosts that have no owner or whose owner is not alive, lowest ids first.

Claims take ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two servers racing for the same
hosts each get different ones; every claim is also a conditional ``UPDATE … WHERE owner = <owner
seen>``, which alone is enough on SQLite (one writer at a time). Rules are deterministic: the same
rows and the same set of live servers always give the same outcome.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from hvcloud.server.db.models import Host, utcnow
from hvcloud.server.jobs import leases


@dataclass(frozen=True)
class ClaimOutcome:
    """What one pass changed and what this server owns afterwards."""

    owned: frozenset[str]
    claimed: tuple[str, ...]
    released: tuple[str, ...]
    live_servers: int
    share: int


def fair_share(hosts: int, servers: int) -> int:
    """Most hosts one server keeps when ``servers`` live servers share ``hosts`` hosts."""
    return math.ceil(hosts / max(servers, 1))


def claim_pass(db: Session, server_id: str, lease_seconds: float, now: datetime | None = None) -> ClaimOutcome:
    """Balance this server's hosts toward its fair share (the caller commits)."""
    now = now or utcnow()
    live = leases.live_server_ids(db, lease_seconds) | {server_id}
    total = int(db.scalar(select(func.count()).select_from(Host)) or 0)
    share = fair_share(total, len(live))
    mine = list(db.scalars(select(Host.id).where(Host.owner_server_id == server_id).order_by(Host.id)))
    released: tuple[str, ...] = ()
    if len(mine) > share:
        released = tuple(mine[share:])
        release(db, server_id, released)
        mine = mine[:share]
    claimed = _claim(db, server_id, live, share - len(mine), now)
    return ClaimOutcome(owned=frozenset(mine) | frozenset(claimed), claimed=claimed, released=released,
                        live_servers=len(live), share=share)


def _claim(db: Session, server_id: str, live: set[str], room: int, now: datetime) -> tuple[str, ...]:
    if room <= 0:
        return ()
    orphaned = or_(Host.owner_server_id.is_(None), Host.owner_server_id.not_in(sorted(live)))
    stmt = select(Host.id, Host.owner_server_id).where(orphaned).order_by(Host.id).limit(room)
    if db.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    claimed: list[str] = []
    for host_id, seen_owner in db.execute(stmt).all():
        same_owner = Host.owner_server_id.is_(None) if seen_owner is None else Host.owner_server_id == seen_owner
        result = db.execute(update(Host).where(Host.id == host_id, same_owner)
                            .values(owner_server_id=server_id, owner_since=now)
                            .execution_options(synchronize_session=False))
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(host_id)
    return tuple(claimed)


def release(db: Session, server_id: str, host_ids: tuple[str, ...] | None = None) -> int:
    """Give up some (or, with ``None``, all) of this server's hosts; only rows it still owns change."""
    stmt = update(Host).where(Host.owner_server_id == server_id)
    if host_ids is not None:
        if not host_ids:
            return 0
        stmt = stmt.where(Host.id.in_(host_ids))
    result = db.execute(stmt.values(owner_server_id=None, owner_since=None)
                        .execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def take(db: Session, host_id: str, server_id: str, now: datetime | None = None) -> bool:
    """Make this server the host's owner whoever owned it (an explicit ``reconnectHost`` here); the
    former owner's late writes are fenced off by :func:`owns`, and it drops the host on its next pass."""
    result = db.execute(update(Host).where(Host.id == host_id)
                        .values(owner_server_id=server_id, owner_since=now or utcnow())
                        .execution_options(synchronize_session=False))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def assign(host: Host, server_id: str, now: datetime | None = None) -> None:
    """A host this server has just discovered starts out as its own (rebalancing may move it later)."""
    host.owner_server_id, host.owner_since = server_id, now or utcnow()


def owns(host: Host, server_id: str) -> bool:
    """The fence on every state write of the ping loop: only the owner writes a host's state."""
    return host.owner_server_id == server_id


def owner_if_alive(db: Session, host_id: str, lease_seconds: float) -> str | None:
    """The host's owner when that server is alive, else None."""
    owner = db.scalar(select(Host.owner_server_id).where(Host.id == host_id))
    if owner is None or not is_live(db, owner, lease_seconds):
        return None
    return str(owner)


def is_live(db: Session, server_id: str, lease_seconds: float) -> bool:
    """Is that server alive (:func:`leases.live_server_ids`)?"""
    return server_id in leases.live_server_ids(db, lease_seconds)
