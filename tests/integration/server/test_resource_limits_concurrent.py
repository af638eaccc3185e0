"""Resource limits hold under concurrent deploys sent to two server processes sharing one database
(``server run --processes 2``), on SQLite and on PostgreSQL: the check and the count change happen in
the allocating transaction, under the count row's lock."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy.orm import Session

from hvcloud.server.api.signature import compute_signature
from hvcloud.server.db.engine import make_engine
from hvcloud.server.db.models import Account, TemplateStoreRef, VMTemplate
from tests.support.server_process import ServerProcess

LIMIT = 5
ATTEMPTS = 24
Keys = tuple[str, str]


def call(client: httpx.Client, server: ServerProcess, keys: Keys, command: str,
         **params: Any) -> tuple[int, dict[str, Any]]:
    pairs = [("apiKey", keys[0]), ("command", command), ("response", "json"),
             *((k, str(v)) for k, v in params.items())]
    pairs.append(("signature", compute_signature(pairs, keys[1])))
    r = client.get(f"{server.endpoint}?{urlencode(pairs)}")
    return r.status_code, next(iter(r.json().values()))


def ok(client: httpx.Client, server: ServerProcess, keys: Keys, command: str, **params: Any) -> dict[str, Any]:
    status, body = call(client, server, keys, command, **params)
    assert status == 200, body
    return body


def _template(db_url: str, zone_id: str) -> str:
    """A ready public template in the zone, written straight to the database (no image store needed)."""
    engine = make_engine(db_url)
    try:
        with Session(engine) as db, db.begin():
            admin = db.query(Account).filter_by(name="admin").one()
            template = VMTemplate(name="ready", display_text="ready", format="QCOW2", hypervisor="Simulator",
                                  account_id=admin.id, is_public=True)
            db.add(template)
            db.flush()
            db.add(TemplateStoreRef(template_id=template.id, zone_id=zone_id, download_state="DOWNLOADED",
                                    install_path="template/t.qcow2", size=1 << 30))
            return template.id
    finally:
        engine.dispose()


def test_concurrent_deploys_stop_exactly_at_the_instance_limit(two_servers: tuple[ServerProcess, str]) -> None:
    proc, db_url = two_servers
    admin = proc.keys["apikey"], proc.keys["secretkey"]
    with httpx.Client(timeout=60) as client:
        zone = ok(client, proc, admin, "createZone", name="z", networktype="Advanced", dns1="8.8.8.8",
                  internaldns1="10.0.0.1")["zone"]["id"]
        pod = ok(client, proc, admin, "createPod", name="p", zoneid=zone, gateway="10.1.0.1",
                 netmask="255.255.255.0", startip="10.1.0.10", endip="10.1.0.50")["pod"]["id"]
        ok(client, proc, admin, "addCluster", clustername="c", clustertype="CloudManaged", hypervisor="Simulator",
           podid=pod, zoneid=zone)
        offering = ok(client, proc, admin, "listServiceOfferings", name="Small Instance")["serviceoffering"][0]["id"]
        account = ok(client, proc, admin, "createAccount", username="racer", password="racer-pw-1", firstname="R",
                     lastname="R", accounttype=0)["account"]
        keys = ok(client, proc, admin, "registerUserKeys", id=account["user"][0]["id"])["userkeys"]
        ok(client, proc, admin, "updateResourceLimit", resourcetype=0, max=LIMIT, account="racer",
           domainid=account["domainid"])
    user = keys["apikey"], keys["secretkey"]
    template = _template(db_url, zone)

    def deploy(_: int) -> int:
        with httpx.Client(timeout=60) as c:
            status, body = call(c, proc, user, "deployVirtualMachine", serviceofferingid=offering,
                                templateid=template, zoneid=zone, startvm="false")
            assert status in (200, 535), body
            return status

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(deploy, range(ATTEMPTS)))
    assert statuses.count(200) == LIMIT and statuses.count(535) == ATTEMPTS - LIMIT
    with httpx.Client(timeout=60) as client:
        assert ok(client, proc, user, "listVirtualMachines")["count"] == LIMIT
        counts = ok(client, proc, admin, "updateResourceCount", domainid=account["domainid"], account="racer",
                    resourcetype=0)["resourcecount"]
        assert counts[0]["resourcecount"] == LIMIT
        domain = ok(client, proc, admin, "updateResourceCount", domainid=account["domainid"],
                    resourcetype=0)["resourcecount"]
        assert domain[0]["resourcecount"] == LIMIT
