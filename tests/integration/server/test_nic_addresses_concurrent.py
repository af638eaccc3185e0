"""Addresses hold under concurrent deploys sent to two server processes sharing one database
(``server run --processes 2``), on SQLite and on PostgreSQL: two deploys never get one address (the
unique ``nic.ip_key``), a deploy asking for an address another takes at the same moment is refused,
and a full range refuses the rest with 533. Also: migration 0012 runs down and up on PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hvcloud.server.db import migrate
from hvcloud.server.db.engine import make_engine
from hvcloud.server.db.models import Account, Base, Nic
from tests.integration.server.test_resource_limits_concurrent import _template, call, ok
from tests.support import guest_networks as G
from tests.support.postgres import fresh_pg_database
from tests.support.server_process import ServerProcess

RANGE = 10
ATTEMPTS = 24
SAME_IP_ATTEMPTS = 8


def _networks(db_url: str, zone_id: str) -> dict[str, str]:
    engine = make_engine(db_url)
    try:
        with Session(engine) as db, db.begin():
            admin = db.query(Account).filter_by(name="admin").one()
            phys = G.guest_physical_network(db, zone_id)
            return {
                "isolated": G.network(db, zone_id, phys, admin, "iso", cidr="10.50.0.0/16", gateway="10.50.0.1"),
                "shared": G.network(db, zone_id, phys, admin, "shared", guest_type="Shared", cidr="10.60.0.0/24",
                                    gateway="10.60.0.1", broadcast_uri="vlan://600",
                                    ranges=(("10.60.0.100", f"10.60.0.{99 + RANGE}"),)),
            }
    finally:
        engine.dispose()


def _held(db_url: str, network_id: str) -> list[str]:
    engine = make_engine(db_url)
    try:
        with Session(engine) as db:
            return list(db.scalars(select(Nic.ip4_address).where(Nic.network_id == network_id,
                                                                  Nic.ip_key.is_not(None))))
    finally:
        engine.dispose()


def test_concurrent_deploys_never_share_an_address(two_servers: tuple[ServerProcess, str]) -> None:
    proc, db_url = two_servers
    admin = proc.keys["apikey"], proc.keys["secretkey"]
    with httpx.Client(timeout=60) as client:
        zone = ok(client, proc, admin, "createZone", name="z", networktype="Advanced", dns1="8.8.8.8",
                  internaldns1="10.0.0.1")["zone"]["id"]
        offering = ok(client, proc, admin, "listServiceOfferings", name="Small Instance")["serviceoffering"][0]["id"]
    template = _template(db_url, zone)
    nets = _networks(db_url, zone)

    def deploy(params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with httpx.Client(timeout=60) as c:
            return call(c, proc, admin, "deployVirtualMachine", serviceofferingid=offering, templateid=template,
                        zoneid=zone, startvm="false", **params)

    with ThreadPoolExecutor(max_workers=8) as pool:
        same = list(pool.map(deploy, [{"networkids": nets["isolated"], "ipaddress": "10.50.3.3"}]
                             * SAME_IP_ATTEMPTS))
    assert [s for s, _ in same].count(200) == 1, same
    assert all(s == 431 and "in use" in b["errortext"] for s, b in same if s != 200), same
    assert _held(db_url, nets["isolated"]) == ["10.50.3.3"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(deploy, [{"networkids": nets["shared"]}] * ATTEMPTS))
    statuses = [s for s, _ in results]
    assert statuses.count(200) == RANGE and statuses.count(533) == ATTEMPTS - RANGE, results
    held = _held(db_url, nets["shared"])
    assert sorted(held) == sorted(f"10.60.0.{100 + i}" for i in range(RANGE)), "each address exactly once"
    with httpx.Client(timeout=60) as client:
        vms = ok(client, proc, admin, "listVirtualMachines", listall="true")["virtualmachine"]
    shown = [n["ipaddress"] for vm in vms for n in vm["nic"] if n.get("networkid") == nets["shared"]]
    assert sorted(shown) == sorted(held)


@pytest.mark.postgres
def test_migrations_since_0012_run_down_and_up_on_postgresql() -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with fresh_pg_database() as url:
        engine = make_engine(url)
        try:
            migrate.upgrade(engine)
            cfg = migrate._config()
            for step, target in ((command.downgrade, "0011_keys_userdata"), (command.upgrade, "head")):
                with engine.begin() as conn:
                    cfg.attributes["connection"] = conn
                    step(cfg, target)
            with engine.connect() as conn:
                assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
                assert conn.scalar(select(func.count()).select_from(Nic)) == 0
        finally:
            engine.dispose()
