"""CPU per deploy of each server-side step, in process: no HTTP, no agent, one SQLite file.

Runs what a deploy costs the management server in its own code — the deployVirtualMachine call, the
job claim, the placement transaction, the transaction before StartCommand, the one recording the VM
Running with the job's result, one queryAsyncJobResult — N times against a zone of ``--hosts``
hosts, and prints the process CPU time of each step per deploy, the SQL statements each issued the
last time, and how many of them ran under the database's write lock (from the step's first write to
its commit: on SQLite, the time other writers, of this server and of others sharing the file, wait).
What is left of the server's CPU per VM in ``server_scale.py`` beyond this sum is HTTP on both
sides, threads and the ping loop.

Usage: ``python -m bench.deploy_steps [--deploys 300] [--hosts 200] [--json]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.support.server_api import keys_of
from tests.unit.server.test_query_counts import Cloud, counted

from hvcloud.server.api import commands
from hvcloud.server.api.endpoint import process
from hvcloud.server.api.params import RequestParams
from hvcloud.server.api.registry import REGISTRY
from hvcloud.server.api.signature import compute_signature
from hvcloud.server.config import ServerConfig
from hvcloud.server.db.engine import is_write
from hvcloud.server.db.models import TemplatePoolRef
from hvcloud.server.jobs import store
from hvcloud.server.jobs.handlers import JobContext
from hvcloud.server.orchestration.vm import manager as vms
from hvcloud.server.orchestration.vm import steps as vm_steps
from hvcloud.server.state import ServerState

STEPS = ("submit", "claim", "place", "before_start", "started", "query")


def run(deploys: int, hosts: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        state = ServerState.open(replace(ServerConfig.build(Path(tmp) / "data"), manage_agents=False))
        try:
            return _measure(state, deploys, hosts)
        finally:
            state.close()


def _measure(state: ServerState, deploys: int, hosts: int) -> dict[str, Any]:
    commands.load()
    cloud = Cloud(state)
    cloud.add_hosts(hosts - 1)
    with state.sessions.begin() as db:  # the template is on the pool already, as after the first deploy
        db.add(TemplatePoolRef(template_id=cloud.template, pool_id=cloud.ids["pool"],
                               install_path=f"{cloud.template}.qcow2", size=1 << 30))
    apikey, secret = keys_of(state, "admin")

    def api(command: str, **params: str) -> dict[str, Any]:
        pairs = {"apiKey": apikey, "command": command, "response": "json", **params}
        pairs["signature"] = compute_signature(list(pairs.items()), secret)
        out = process(state, REGISTRY, "GET", RequestParams.from_pairs(list(pairs.items())), {})
        if out.status != 200:
            raise RuntimeError(f"{command}: {out.body}")
        return dict(out.body)

    def tx(fn: Callable[..., Any], *args: Any) -> Any:
        with state.sessions.begin() as db:
            return fn(db, *args)

    cpu = dict.fromkeys(STEPS, 0.0)
    statements: dict[str, int] = {}
    locked: dict[str, int] = {}

    def step(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with counted(state) as seen:
            started = time.process_time()
            out = fn(*args, **kwargs)
            cpu[name] += time.process_time() - started
        statements[name] = len(seen)
        first_write = next((i for i, sql in enumerate(seen) if is_write(sql)), len(seen))
        locked[name] = len(seen) - first_write
        return out

    for _ in range(deploys):
        job = step("submit", api, "deployVirtualMachine", serviceofferingid=cloud.ids["offering"],
                   templateid=cloud.template, zoneid=cloud.ids["zone"])
        step("claim", tx, store.claim, "bench", 1)
        jctx = JobContext(job_id=job["jobid"], command="deployVirtualMachine", params={}, account_id="",
                          user_id="", instance_id=job["id"], sessions=state.sessions, state=state, agents=None,
                          recovering=False, attempt=1, _write_progress=lambda *_: None, server_id="bench")
        placed = step("place", tx, vms._place_and_prepare, state.box, job["id"], [], True, jctx)
        created = vm_steps.Created(placed.todo[0], f"{placed.todo[0]}.qcow2", None)
        step("before_start", tx, vm_steps.start_vm_to, state.box, job["id"], created)
        step("started", tx, vms._started, jctx, job["id"], placed.host_id, created)
        step("query", api, "queryAsyncJobResult", jobid=job["jobid"])
    per = {name: round(1000 * seconds / deploys, 2) for name, seconds in cpu.items()}
    return {"deploys": deploys, "hosts": hosts, "cpu_ms_per_deploy": round(sum(per.values()), 2),
            "cpu_ms": per, "statements": statements, "statements_under_write_lock": locked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--deploys", type=int, default=300)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.deploys, args.hosts)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['deploys']} deploys onto {result['hosts']} hosts: {result['cpu_ms_per_deploy']} ms CPU each")
    for name in STEPS:
        print(f"  {name:13s} {result['cpu_ms'][name]:6.2f} ms  {result['statements'][name]:3d} SQL statements, "
              f"{result['statements_under_write_lock'][name]} under the write lock")


if __name__ == "__main__":
    main()
