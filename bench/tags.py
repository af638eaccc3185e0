"""Resource tags at scale, in process on SQLite: N VMs with T tags each, written straight to the
database, then ``listTags`` and a tag-filtered ``listVirtualMachines`` through the real API endpoint.

    .venv/bin/python -m bench.tags [--vms 10000] [--tags 5] [--rounds 30] [--json]

Prints p50/p95 (timed to the raw HTTP answer, the client's JSON parsing left out) of an admin's
``listTags`` (listall, page of 500: first page and a deep one), of ``listVirtualMachines`` (listall,
page of 500) filtered by two tags that 1 VM in 20 carries (a full page of 500), and, as the baseline
of the same run, the same ``listVirtualMachines`` page without the filter. The issue's target: p95 <
250 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from tests.support.server_api import Caller, build_zone, ready_template
from tests.support.server_in_process import in_process_server

from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import Account, ResourceTag, ServiceOffering, User, VMInstance, new_id
from hvcloud.server.state import ServerState

BATCH = 2000
#: the tag keys, and how many distinct values each cycles through (``env`` and ``team``: 1 VM in 20
#: carries env=e0 and team=t0)
KEYS = (("env", 4), ("team", 20), ("app", 50), ("owner", 100), ("cost", 10), ("zone", 3), ("tier", 7), ("os", 5))


def _fill(state: ServerState, zone_id: str, vms: int, tags: int) -> None:
    """``vms`` stopped VMs of the admin, each with ``tags`` tags, in a few large INSERTs."""
    with state.sessions.begin() as db:
        template = ready_template(db, zone_id, "bench")
        user = db.scalars(select(User).where(User.username == "admin")).one()
        account = db.get(Account, user.account_id)
        assert account is not None
        offering = db.scalars(select(ServiceOffering).where(ServiceOffering.name == "Small Instance")).one()
        ids = dict(template=template.id, user=user.id, account=account.id, domain=account.domain_id,
                   offering=offering.id)
    for start in range(0, vms, BATCH):
        rows: list[dict[str, Any]] = []
        tag_rows: list[dict[str, Any]] = []
        for n in range(start, min(vms, start + BATCH)):
            vm_id = new_id()
            rows.append(dict(id=vm_id, name=f"vm{n}", display_name=f"vm{n}", instance_name=f"i-2-{100000 + n}-VM",
                             vm_number=100000 + n, account_id=ids["account"], user_id=ids["user"], zone_id=zone_id,
                             template_id=ids["template"], service_offering_id=ids["offering"], cpu_number=1,
                             cpu_speed=500, memory=512, state="Stopped"))
            tag_rows.extend(dict(id=new_id(), key=key, value=f"{key[0]}{n % cycle}", resource_type="UserVm",
                                 resource_id=vm_id, account_id=ids["account"], domain_id=ids["domain"])
                            for key, cycle in KEYS[:tags])
        with state.sessions.begin() as db:
            db.execute(insert(VMInstance), rows)
            db.execute(insert(ResourceTag), tag_rows)


def _percentiles(caller: Caller, params: dict[str, str], rounds: int) -> tuple[float, float, int]:
    times: list[float] = []
    count = 0
    for _ in range(rounds):
        started = time.perf_counter()
        answer = caller.raw({"response": "json", **params})
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
        count = _rows(answer.json())
    times.sort()
    return statistics.median(times) * 1000, times[max(0, int(len(times) * 0.95) - 1)] * 1000, count


def _rows(body: dict[str, Any]) -> int:
    inner = next(iter(body.values()))
    return sum(len(v) for v in inner.values() if isinstance(v, list))


def run(vms: int, tags: int, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"vms": vms, "tags_per_vm": tags}
    with tempfile.TemporaryDirectory(prefix="tags-bench-") as tmp:
        config = ServerConfig.build(Path(tmp) / "data", settings={"api.throttling.enabled": "false"})
        with in_process_server(replace(config, manage_agents=False)) as (state, admin):
            zone = build_zone(admin)["zoneid"]
            started = time.perf_counter()
            _fill(state, zone, vms, tags)
            out["fill_s"] = round(time.perf_counter() - started, 2)
            last_page = max(1, (vms * tags + 499) // 500 // 2)
            filter_tags = {"tags[0].key": "env", "tags[0].value": "e0", "tags[1].key": "team",
                           "tags[1].value": "t0"}
            for label, params in (
                    ("listTags", {"command": "listTags", "listall": "true", "page": "1", "pagesize": "500"}),
                    ("listTags_deep_page", {"command": "listTags", "listall": "true", "page": str(last_page),
                                            "pagesize": "500"}),
                    ("listVirtualMachines_tag_filter", {"command": "listVirtualMachines", "listall": "true",
                                                        "page": "1", "pagesize": "500", **filter_tags}),
                    ("listVirtualMachines_baseline", {"command": "listVirtualMachines", "listall": "true",
                                                      "page": "1", "pagesize": "500"})):
                p50, p95, rows = _percentiles(admin, params, rounds)
                out[label] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "rows": rows}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--vms", type=int, default=10000)
    ap.add_argument("--tags", type=int, default=5, choices=range(1, len(KEYS) + 1))
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = run(args.vms, args.tags, args.rounds)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.vms} VMs x {args.tags} tags written in {result['fill_s']} s")
    for label, figures in result.items():
        if isinstance(figures, dict):
            print(f"{label}: p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms ({figures['rows']} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
