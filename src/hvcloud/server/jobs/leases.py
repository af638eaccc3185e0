"""Management-server liveness: each server heartbeats its ``management_server`` row; a row whose
heartbeat is older than the lease timeout belongs to a dead server, and the first live server to
notice marks it ``Down`` and releases its jobs for recovery.

Heartbeats use each server's own UTC clock, so clocks must agree to well within the lease timeout.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hvcloud import __version__
from hvcloud.server.db.models import ManagementServer
from hvcloud.server.jobs import store

STATE_UP = "Up"
STATE_DOWN = "Down"


def register(db: Session, server_id: str) -> None:
    """Mark this server ``Up`` with a fresh heartbeat (insert or revive its row)."""
    now = store.precise_now()
    row = db.get(ManagementServer, server_id)
    if row is None:
        db.add(ManagementServer(id=server_id, name=socket.gethostname(), pid=os.getpid(), state=STATE_UP,
                                started=now.replace(microsecond=0), heartbeat=now, version=__version__))
    else:
        row.state, row.pid, row.heartbeat, row.version = STATE_UP, os.getpid(), now, __version__
        row.started = now.replace(microsecond=0)
    db.flush()


def is_alive(state: str, heartbeat: datetime, now: datetime, lease_seconds: float) -> bool:
    """The one rule for "this server is alive": ``Up`` with a heartbeat younger than the lease."""
    return state == STATE_UP and heartbeat >= now - timedelta(seconds=lease_seconds)


def live_server_ids(db: Session, lease_seconds: float) -> set[str]:
    """Servers alive by :func:`is_alive` (those not yet marked ``Down`` but past their lease count as dead)."""
    cutoff = store.precise_now() - timedelta(seconds=lease_seconds)
    return set(db.scalars(select(ManagementServer.id).where(ManagementServer.state == STATE_UP,
                                                            ManagementServer.heartbeat >= cutoff)))


def heartbeat(db: Session, server_id: str) -> bool:
    """Renew the lease; False when another server has already declared this one dead."""
    result = db.execute(update(ManagementServer)
                        .where(ManagementServer.id == server_id, ManagementServer.state == STATE_UP)
                        .values(heartbeat=store.precise_now()))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def take_over_dead(db: Session, server_id: str, lease_seconds: float) -> list[tuple[str, int]]:
    """Declare servers with expired leases dead and release their jobs; return (server, jobs released)."""
    cutoff = store.precise_now() - timedelta(seconds=lease_seconds)
    dead = db.scalars(select(ManagementServer.id).where(ManagementServer.state == STATE_UP,
                                                        ManagementServer.id != server_id,
                                                        ManagementServer.heartbeat < cutoff)).all()
    out: list[tuple[str, int]] = []
    for dead_id in dead:
        marked = db.execute(update(ManagementServer)
                            .where(ManagementServer.id == dead_id, ManagementServer.state == STATE_UP,
                                   ManagementServer.heartbeat < cutoff)
                            .values(state=STATE_DOWN))
        if marked.rowcount == 1:  # type: ignore[attr-defined]
            out.append((dead_id, store.release_for_recovery(db, dead_id)))
    return out


def sign_off(db: Session, server_id: str) -> None:
    db.execute(update(ManagementServer).where(ManagementServer.id == server_id)
               .values(state=STATE_DOWN, stopped=store.precise_now().replace(microsecond=0)))
