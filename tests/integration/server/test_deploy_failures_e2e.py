"""Deploys that cannot succeed end in a clear error and leave nothing booked: the agent killed while
a deploy waits on StartCommand, hosts without room (CPU/memory, then primary storage), and a template
whose download failed. Real processes (``hvcloud server run`` on SQLite and PostgreSQL, one simulator
agent serving two hosts), the real ``cs`` client; after each, capacity equals a recount. (The
checksum-mismatch and bad-image paths need an agent that reads image files: see
``tests/integration/libvirt/test_server_deploy.py``.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cs import CloudStackApiException

from hvcloud.server.db.models import Host, StoragePool
from tests.integration.server.fault_scenarios import cloud_stack, host_states, offering
from tests.support.vm_stack import Cloud, job_result
from tests.support.wait import wait_for


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    db_url = request.getfixturevalue("module_pg_database") if request.param == "postgresql" else None
    with cloud_stack(tmp_path_factory.mktemp(f"failures-{request.param}"), db_url, hosts=2) as stack:
        yield stack


def booked(cloud: Cloud) -> tuple[dict[str, tuple[int, int]], dict[str, int]]:
    """What the hosts and pools hold now (and it must equal a recount)."""
    cloud.capacity_matches_recount()
    with cloud.sessions()() as db:
        return ({h.id: (h.cpu_allocated, h.memory_allocated) for h in db.query(Host)},
                {p.id: p.allocated_bytes for p in db.query(StoragePool)})


def failed_vm(cloud: Cloud, known: set[str]) -> dict[str, Any]:
    (vm,) = [v for v in cloud.cs.listVirtualMachines(listall=True, fetch_list=True) if v["id"] not in known]
    return dict(vm)


def vm_ids(cloud: Cloud) -> set[str]:
    return {v["id"] for v in cloud.cs.listVirtualMachines(listall=True, fetch_list=True)}


def expunge(cloud: Cloud, vm: dict[str, Any]) -> None:
    cloud.cs.expungeVirtualMachine(id=vm["id"])
    assert not cloud.cs.listVolumes(virtualmachineid=vm["id"]).get("volume")


def test_hosts_without_room_refuse_the_deploy(cloud: Cloud) -> None:
    cs = cloud.cs
    before, known = booked(cloud), vm_ids(cloud)
    memory_mb = max(h["memorytotal"] for h in cs.listHosts(type="Routing")["host"]) // (1 << 20) + 1024
    huge = cs.createServiceOffering(name="bigger-than-a-host", displaytext="x", cpunumber=1, cpuspeed=100,
                                    memory=memory_mb)["serviceoffering"]["id"]
    with pytest.raises(CloudStackApiException) as exc:
        cs.deployVirtualMachine(serviceofferingid=huge, templateid=cloud.template["id"], zoneid=cloud.zone["id"])
    assert exc.value.error["errorcode"] == 533
    assert f"{memory_mb} MiB of memory free" in exc.value.error["errortext"]
    vm = failed_vm(cloud, known)
    assert vm["state"] == "Error" and "no host" in vm["details"]["statereason"]
    assert booked(cloud) == before
    expunge(cloud, vm)

    known = vm_ids(cloud)
    with pytest.raises(CloudStackApiException) as exc:
        cs.deployVirtualMachine(serviceofferingid=offering(cs), templateid=cloud.template["id"],
                                zoneid=cloud.zone["id"], rootdisksize=65536)
    assert exc.value.error["errorcode"] == 533 and "usable primary storage pool" in exc.value.error["errortext"]
    vm = failed_vm(cloud, known)
    assert vm["state"] == "Error" and not cs.listVolumes(virtualmachineid=vm["id"], type="DATADISK").get("volume")
    assert booked(cloud) == before, "nothing stays booked on the hosts or the pool"
    expunge(cloud, vm)
    assert booked(cloud) == before


def test_a_template_that_failed_to_download_is_refused(cloud: Cloud) -> None:
    cs = cloud.cs
    before, known = booked(cloud), vm_ids(cloud)
    broken = cs.registerTemplate(name="missing", displaytext="missing", format="QCOW2", hypervisor="Simulator",
                                 url=cloud.template["url"].rsplit("/", 1)[0] + "/no-such-image.qcow2",
                                 zoneid=cloud.zone["id"], ostypeid=cs.listOsTypes()["ostype"][0]["id"])["template"][0]
    row = wait_for("the download to fail", lambda: next(
        (t for t in cs.listTemplates(templatefilter="all", id=broken["id"])["template"] if "404" in t["status"]),
        None))
    assert row["isready"] is False
    with pytest.raises(CloudStackApiException) as exc:
        cs.deployVirtualMachine(serviceofferingid=offering(cs), templateid=broken["id"], zoneid=cloud.zone["id"])
    assert exc.value.error["errorcode"] == 431 and "is not ready" in exc.value.error["errortext"]
    assert vm_ids(cloud) == known and booked(cloud) == before


def test_agent_killed_while_a_deploy_waits_on_it(cloud: Cloud, tmp_path: Path) -> None:
    """Every host's agent dies under a deploy: the job fails naming the lost agent, the VM is Error
    with the reason, and its CPU and memory are free again; with the agent back, the VM expunges."""
    cs = cloud.cs
    before, known = booked(cloud), vm_ids(cloud)
    for i in range(len(cloud.agent.addresses)):
        cloud.agent.faults(i, {"StartCommand": {"mode": "delay", "seconds": 30}})
    job = cs.deployVirtualMachine(serviceofferingid=offering(cs), templateid=cloud.template["id"],
                                  zoneid=cloud.zone["id"], fetch_result=False)
    wait_for("the deploy to reach StartCommand", lambda: any(
        v.state == "Starting" and v.id not in known for v in cloud.vm_rows()), 60)
    cloud.agent.kill()
    try:
        result = job_result(cs, job["jobid"], 120)
        assert result["jobstatus"] == 2, result
        error = result["jobresult"]
        assert error["errorcode"] in (530, 533), error
        text = error["errortext"]
        assert "the last start failed with" in text and " on host " in text and "connect" in text.lower(), error
        vm = failed_vm(cloud, known)
        assert vm["state"] == "Error" and vm["details"]["statereason"] and "hostid" not in vm
        hosts, _pools = booked(cloud)
        assert hosts == before[0], "the VM's CPU and memory are released"
    finally:
        cloud.agent.start()
        for i in range(len(cloud.agent.addresses)):
            cloud.agent.faults(i, {})
    wait_for("the hosts to be Up again", lambda: all(s == "Up" for s in host_states(cloud).values()), 120)
    expunge(cloud, vm)
    # a root disk the rollback could not delete (no agent) is retired to the storage cleanup, which
    # deletes it and frees its pool space once a host answers again
    wait_for("the storage cleanup to free the pool", lambda: booked(cloud) == before, 60)
    assert vm["instancename"] not in cloud.running_on_agent()
