"""The network garbage collector: isolated networks with no active VM for ``network.gc.wait``
seconds are shut down (router destroyed, segment id given back, network Allocated), as CloudStack's
``NetworkGarbageCollector`` does every ``network.gc.interval`` seconds.

``Network.idle_since`` is the clock: set by the round that first finds the network without an active
VM, cleared by any round (or shutdown) that finds one. Crash-safe: a shutdown cut short leaves the
network ``Shutdown`` (or its router ``Stopping``); the next round picks it up and finishes it, and
a deploy meanwhile takes the network back (see ``routers._claim``).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from hvcloud import logs
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import Network, Nic, VMInstance, utcnow
from hvcloud.server.orchestration.agents.protocol import AgentSender
from hvcloud.server.orchestration.networks import implement as N
from hvcloud.server.orchestration.networks import routers as RT
from hvcloud.server.orchestration.vm.steps import StepFailed, Steps

log = logs.get(__name__)

#: networks shut down per round at most (the rest wait for the next round)
MAX_PER_ROUND = 100
_GC_STATES = (N.IMPLEMENTING, N.IMPLEMENTED, N.SHUTDOWN)


def due(db: Session, now: datetime, wait_seconds: float) -> list[str]:
    """Update the idle clocks of implemented isolated networks and return those idle for at least
    ``wait_seconds`` (a network left ``Shutdown`` by a crash is due at once)."""
    active = set(db.scalars(select(Nic.network_id).join(VMInstance, VMInstance.id == Nic.vm_id)
                            .where(Nic.removed.is_(None), Nic.network_id.is_not(None),
                                   VMInstance.removed.is_(None), VMInstance.state.in_(RT.ACTIVE_VM_STATES))
                            .group_by(Nic.network_id)))
    out: list[str] = []
    for network in db.scalars(select(Network).where(Network.removed.is_(None), Network.guest_type == N.ISOLATED,
                                                    Network.state.in_(_GC_STATES))
                              .order_by(Network.idle_since, Network.id)):
        if network.id in active:
            if network.idle_since is not None:
                network.idle_since = None
            continue
        if network.state == N.SHUTDOWN:
            out.append(network.id)
        elif network.idle_since is None:
            network.idle_since = now
        elif now - network.idle_since >= timedelta(seconds=wait_seconds):
            out.append(network.id)
    return out[:MAX_PER_ROUND]


def active_count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Network).where(Network.state == N.IMPLEMENTED)) or 0


async def collect(steps: Steps, wait_seconds: float, now: datetime | None = None) -> list[str]:
    """One round: the networks it shut down."""
    done: list[str] = []
    for network_id in await steps.tx(due, now or utcnow(), wait_seconds):
        try:
            if await RT.shutdown(steps, network_id, destroy=True, only_if_idle=True):
                done.append(network_id)
        except StepFailed as exc:
            log.warning("network_gc_shutdown_failed", network=network_id, reason=exc.text[:300])
        except Exception:  # one network's failure must not stop the round
            log.exception("network_gc_shutdown_error", network=network_id)
    if done:
        log.info("network_gc_round", shut_down=len(done))
    return done


async def gc_loop(sessions: sessionmaker[Session], agents: AgentSender, box: SecretBox, interval: float,
                  wait_seconds: float) -> None:
    steps = Steps(sessions, agents, box)
    while True:
        await asyncio.sleep(interval)
        try:
            await collect(steps, wait_seconds)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("network_gc_failed")
