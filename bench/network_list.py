"""``listNetworks`` with many isolated networks (one per account), in-process on SQLite.

    .venv/bin/python -m bench.network_list [--networks 1000] [--rounds 40]

Prints p50/p95 of a user's ``listNetworks`` (its own network and the shared ones) and of an admin's
``listall`` page of 500, timed to the raw HTTP answer (the client's JSON parsing left out).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select
from tests.support.network_setup import add_physical_network
from tests.support.server_api import Caller, build_zone, keys_of

from hvcloud.server.app import create_app
from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import Account, Domain, Network, NetworkOffering
from hvcloud.server.state import ServerState

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

OFFERING = "DefaultIsolatedNetworkOfferingWithSourceNatService"


def _fill(state: ServerState, zone_id: str, pn_id: str, count: int) -> None:
    with state.sessions.begin() as db:
        root = db.scalars(select(Domain).where(Domain.path == "ROOT")).one()
        offering = db.scalars(select(NetworkOffering).where(NetworkOffering.name == OFFERING)).one()
        for i in range(count):
            account = Account(name=f"acc{i}", domain_id=root.id, account_type=0)
            db.add(account)
            db.flush()
            db.add(Network(name=f"net{i}", display_text=f"net{i}", zone_id=zone_id, physical_network_id=pn_id,
                           network_offering_id=offering.id, account_id=account.id, domain_id=root.id,
                           guest_type="Isolated", cidr="10.1.1.0/24", gateway="10.1.1.1",
                           broadcast_domain_type="Vxlan", network_domain=f"cs{i}.cloud.internal"))


def _percentiles(caller: Caller, params: dict[str, str], rounds: int) -> tuple[float, float]:
    times: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = caller.raw({"command": "listNetworks", "response": "json", **params})
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
    times.sort()
    return statistics.median(times) * 1000, times[max(0, int(len(times) * 0.95) - 1)] * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--networks", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="network-list-") as tmp:
        config = ServerConfig.build(Path(tmp) / "data", settings={"api.throttling.enabled": "false"})
        state = ServerState.open(replace(config, manage_agents=False))
        try:
            with TestClient(create_app(state)) as http:
                admin = Caller(http, *keys_of(state, "admin"))
                ids = build_zone(admin)
                pn = add_physical_network(admin, ids["zoneid"])
                _fill(state, ids["zoneid"], pn["id"], args.networks)
                account = admin.ok("listAccounts", name="acc7")["account"][0]
                user = admin.ok("createUser", account="acc7", domainid=account["domainid"], username="bench-u7",
                                password="bench-pw-123", firstname="B", lastname="U")["user"]
                keys = admin.ok("registerUserKeys", id=user["id"])["userkeys"]
                caller = Caller(http, keys["apikey"], keys["secretkey"])
                for label, who, params in (
                        ("user listNetworks", caller, {}),
                        ("admin listNetworks listall, page of 500", admin,
                         {"listall": "true", "page": "1", "pagesize": "500"})):
                    p50, p95 = _percentiles(who, params, args.rounds)
                    print(f"{label} ({args.networks} networks): p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        finally:
            state.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
