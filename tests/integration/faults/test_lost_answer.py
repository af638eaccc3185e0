"""A volume whose answer never reached the server is still deleted (issue 7, the orphaned disk).

The simulator's ``exit`` fault runs the command and then SIGKILLs the agent before the answer
leaves: the disk exists, the server has no path for it, and no host answers when the deploy rolls
back. The volume must stay recorded (``Expunging``) rather than be forgotten, and once the agent is
back the storage cleanup deletes the disk by the volume's uuid. Deterministic: one fault, one deploy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from hvcloud.server.db.models import TemplatePoolRef
from tests.integration.server.fault_scenarios import cloud_stack, invariants, offering, pending_cleanup
from tests.support.postgres import fresh_pg_database
from tests.support.vm_stack import Cloud, job_result
from tests.support.wait import wait_for


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    """On PostgreSQL: row locks there are stricter than SQLite's (none)."""
    with fresh_pg_database() as url, cloud_stack(tmp_path, url, hosts=2) as c:
        yield c


def _all_up(cloud: Cloud) -> bool:
    return all(h["state"] == "Up" for h in cloud.cs.listHosts(type="Routing", fetch_list=True))


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["CopyCommand", "CreateObjectCommand"])
def test_disk_created_before_the_agent_died_is_deleted_when_it_returns(cloud: Cloud, command: str) -> None:
    cs = cloud.cs
    params = {"serviceofferingid": offering(cs), "templateid": cloud.template["id"], "zoneid": cloud.zone["id"]}
    warm = cs.deployVirtualMachine(**params)["virtualmachine"]  # the template is on the pool from now on
    assert warm["state"] == "Running"
    if command == "CreateObjectCommand":
        params["diskofferingid"] = cs.createDiskOffering(name="d1", displaytext="d1", disksize=1)["diskoffering"]["id"]
    for i in range(len(cloud.agent.addresses)):
        cloud.agent.faults(i, {command: {"mode": "exit", "count": 1}})

    job = cs.deployVirtualMachine(fetch_result=False, **params)
    result = job_result(cs, job["jobid"])
    assert result["jobstatus"] == 2 and result["jobresult"]["errortext"], result
    assert cloud.agent.proc is not None and cloud.agent.proc.poll() is not None, "the fault killed the agent"
    vm = next(v for v in cloud.vm_rows() if v.id == job["id"])
    assert vm.state == "Error" and vm.state_reason

    lost = pending_cleanup(cloud)
    assert lost, "the disk whose answer was lost is still recorded for deletion"
    rows = {v.id: v for v in cloud.live_volumes()}
    unanswered = [v for v in lost if rows[v].path is None]
    assert len(unanswered) == 1, "exactly the volume whose answer was lost has no path"
    assert unanswered[0] in cloud.agent_files()[cloud.pool["id"]], "the agent did create it"
    cloud.capacity_matches_recount()  # the disk still holds its pool space
    with cloud.sessions()() as db:  # an unanswered command says nothing about the pool's template copy
        assert db.scalars(select(TemplatePoolRef.install_path)
                          .where(TemplatePoolRef.template_id == cloud.template["id"])).all(), \
            "the pool's template copy is still recorded"

    cloud.agent.start()
    wait_for("the hosts to come back Up", lambda: _all_up(cloud), 60)
    wait_for("the storage cleanup", lambda: not pending_cleanup(cloud), 60)
    assert not set(lost) & cloud.agent_files()[cloud.pool["id"]]
    assert invariants(cloud, {job["jobid"]: result}) == []
    assert next(v for v in cloud.vm_rows() if v.id == job["id"]).host_id is None
