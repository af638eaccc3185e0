"""Public addresses hold under concurrent ``associateIpAddress`` calls sent to two server processes
sharing one database (``server run --processes 2``), on SQLite and on PostgreSQL: two calls never get
one address (the unique ``user_ip_address.ip_key``), a call asking for an address another takes at
the same moment is refused, and an exhausted zone refuses the rest with 533."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server.db.engine import make_engine
from hvcloud.server.db.models import UserIpAddress
from tests.support.network_setup import add_physical_network, add_public_range, offering_id
from tests.support.server_api import Caller, build_zone
from tests.support.server_process import ServerProcess

RANGE = 10
ATTEMPTS = 24
SAME_IP_ATTEMPTS = 8


def _caller(proc: ServerProcess) -> Caller:
    client = httpx.Client(base_url=proc.endpoint.rsplit("/client/api", 1)[0], timeout=60)
    return Caller(client, proc.keys["apikey"], proc.keys["secretkey"])  # type: ignore[arg-type]


def _held(db_url: str) -> list[str]:
    engine = make_engine(db_url)
    try:
        with Session(engine) as db:
            return list(db.scalars(select(UserIpAddress.public_ip_address).where(UserIpAddress.ip_key.is_not(None))))
    finally:
        engine.dispose()


def test_concurrent_associations_never_share_an_address(two_servers: tuple[ServerProcess, str]) -> None:
    proc, db_url = two_servers
    admin = _caller(proc)
    zone = build_zone(admin)
    pn = add_physical_network(admin, zone["zoneid"])
    add_public_range(admin, zone["zoneid"], pn["id"], start="198.51.100.10", end=f"198.51.100.{9 + RANGE}")
    net = admin.ok("createNetwork", name="web", displaytext="web", zoneid=zone["zoneid"],
                   networkofferingid=offering_id(admin, "DefaultIsolatedNetworkOfferingWithSourceNatService"))
    network_id = net["network"]["id"]

    def associate(params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        return _caller(proc).call("associateIpAddress", networkid=network_id, **params)

    with ThreadPoolExecutor(max_workers=8) as pool:
        same = list(pool.map(associate, [{"ipaddress": "198.51.100.13"}] * SAME_IP_ATTEMPTS))
    assert [s for s, _ in same].count(200) == 1, same
    assert all(s == 431 and "ipaddress" in b["errortext"] for s, b in same if s != 200), same
    assert _held(db_url) == ["198.51.100.13"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(associate, [{}] * ATTEMPTS))
    statuses = [s for s, _ in results]
    assert statuses.count(200) == RANGE - 1 and statuses.count(533) == ATTEMPTS - RANGE + 1, results
    held = _held(db_url)
    assert sorted(held) == sorted(f"198.51.100.{10 + i}" for i in range(RANGE)), "each address exactly once"
    for _status, body in results:
        if "jobid" in body:
            assert admin.wait(body["jobid"])["jobstatus"] == 1
    listed = admin.ok("listPublicIpAddresses", associatednetworkid=network_id, pagesize=-1)["publicipaddress"]
    assert sorted(i["ipaddress"] for i in listed) == sorted(held)
    assert {i["state"] for i in listed} == {"Allocated"}
