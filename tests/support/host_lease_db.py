"""A migrated database with a zone, hosts and management servers, for the host-lease rules."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from hvcloud.server.db import migrate
from hvcloud.server.db.engine import make_engine, make_session_factory
from hvcloud.server.db.models import Host, ManagementServer, Zone
from hvcloud.server.jobs import leases, store


def open_db(url: str) -> tuple[Engine, sessionmaker[Session]]:
    engine = make_engine(url)
    migrate.upgrade(engine)
    return engine, make_session_factory(engine)


def add_hosts(sessions: sessionmaker[Session], count: int) -> list[str]:
    """``count`` hosts in a fresh zone, no owner; their ids in ascending order."""
    with sessions.begin() as db:
        zone = Zone(name=f"z-{uuid.uuid4().hex[:8]}", network_type="Advanced", dns1="8.8.8.8",
                    internal_dns1="10.0.0.1")
        db.add(zone)
        db.flush()
        ids = []
        for i in range(count):
            host = Host(name=f"h{i}", guid=f"{uuid.uuid4()}-HypervResource", zone_id=zone.id, hypervisor="Simulator",
                        url=f"http://127.0.0.{i + 1}", private_ip=f"127.0.0.{i + 1}", status="Up")
            db.add(host)
            db.flush()
            ids.append(host.id)
    return sorted(ids)


def start_server(sessions: sessionmaker[Session], server_id: str | None = None, *, age: float = 0.0) -> str:
    """Register a server; ``age`` seconds back-dates its heartbeat (a dead server: older than the lease)."""
    server_id = server_id or str(uuid.uuid4())
    with sessions.begin() as db:
        leases.register(db, server_id)
        if age:
            db.execute(update(ManagementServer).where(ManagementServer.id == server_id)
                       .values(heartbeat=store.precise_now() - timedelta(seconds=age)))
    return server_id


def owners(sessions: sessionmaker[Session]) -> dict[str, str | None]:
    with sessions() as db:
        return {h: o for h, o in db.execute(select(Host.id, Host.owner_server_id))}


def owned_by(sessions: sessionmaker[Session], server_id: str) -> list[str]:
    return sorted(h for h, o in owners(sessions).items() if o == server_id)
