"""changeServiceForVirtualMachine and scaleVirtualMachine: one implementation, CloudStack's answers for
every state, hostile input, other accounts' VMs, and exact resource counts and host capacity."""

from __future__ import annotations

from typing import Any

import pytest

from hvcloud.server import resource_types as R
from hvcloud.server.db.models import Account, Host, VMInstance
from hvcloud.server.orchestration import planner
from hvcloud.server.orchestration import resource_limits as limits
from hvcloud.server.state import ServerState
from tests.support.server_api import Caller
from tests.unit.server.test_vm_api import _deploy, cloud  # noqa: F401  (the fixture is used by name)

GiB = 1 << 30
MiB = 1 << 20


def _offering(admin: Caller, name: str) -> str:
    return str(admin.ok("listServiceOfferings", name=name)["serviceoffering"][0]["id"])


def _vm(caller: Caller, cloud: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    status, body = _deploy(caller, cloud)
    assert status == 200, body
    return caller.wait(body["jobid"])["jobresult"]["virtualmachine"]  # type: ignore[no-any-return]


def _host(state: ServerState, cloud: dict[str, Any]) -> str:  # noqa: F811
    with state.sessions.begin() as db:
        host = Host(name="h0", guid="g0", zone_id=cloud["zoneid"], pod_id=cloud["podid"],
                    cluster_id=cloud["clusterid"], status="Up", hypervisor="Simulator", url="http://10.0.0.1",
                    cpu_number=4, cpu_speed=1000, memory_total=8 * GiB)
        db.add(host)
        db.flush()
        return host.id


def _place(state: ServerState, vm_id: str, host_id: str, vm_state: str) -> None:
    """The VM booked on the host as a start books it, left in ``vm_state``."""
    with state.sessions.begin() as db:
        vm, host = db.get(VMInstance, vm_id), db.get(Host, host_id)
        assert vm is not None and host is not None
        need = planner.Need(cpu_mhz=vm.cpu_number * vm.cpu_speed, memory_bytes=vm.memory * MiB)
        assert planner.reserve_host(db, vm, host, need)
        vm.state = vm_state
        vm.host_id = host_id if vm_state != "Stopped" else None


def _exact(state: ServerState, account: str) -> tuple[dict[str, tuple[int, int]], dict[int, int]]:
    """Host allocations and the account's CPU/memory counts, each checked against a recount."""
    with state.sessions() as db:
        owner = db.query(Account).filter_by(name=account).one()
        hosts, _ = planner.recount(db)
        held = {h.id: (h.cpu_allocated, h.memory_allocated) for h in db.query(Host)}
        assert {k: v for k, v in held.items() if v != (0, 0)} == hosts
        counts = limits.current(db, account=owner)
        real = limits.recount(db, account=owner, types=(R.CPU, R.MEMORY))
        assert {t: counts.get(t, 0) for t in (R.CPU, R.MEMORY)} == real
        return hosts, real


def test_change_service_of_a_stopped_vm_is_synchronous_and_counts_exactly(
        state: ServerState, admin: Caller, user_caller: Caller, cloud: dict[str, Any]) -> None:  # noqa: F811
    vm = _vm(user_caller, cloud)
    medium = _offering(admin, "Medium Instance")
    status, body = user_caller.call("changeServiceForVirtualMachine", id=vm["id"], serviceofferingid=medium)
    assert status == 200 and set(body) == {"virtualmachine"}, body
    changed = body["virtualmachine"]
    assert (changed["serviceofferingid"], changed["serviceofferingname"]) == (medium, "Medium Instance")
    assert (changed["cpunumber"], changed["cpuspeed"], changed["memory"]) == (1, 1000, 1024)
    assert user_caller.ok("listVirtualMachines", id=vm["id"])["virtualmachine"][0]["memory"] == 1024
    _, counts = _exact(state, "alice")
    assert counts == {R.CPU: 1, R.MEMORY: 1024}
    assert admin.ok("listEvents", type="VM.UPGRADE", listall="true")["count"] == 1

    # the same offering again: CloudStack's refusal; back to the small one through scaleVirtualMachine
    status, body = user_caller.call("changeServiceForVirtualMachine", id=vm["id"], serviceofferingid=medium)
    instance = admin.ok("listVirtualMachines", id=vm["id"], listall="true")["virtualmachine"][0]["instancename"]
    assert status == 431 and body["errortext"].startswith(f"Not upgrading vm {instance}")
    small = _offering(admin, "Small Instance")
    job = user_caller.job("scaleVirtualMachine", id=vm["id"], serviceofferingid=small)
    assert job["jobstatus"] == 1 and job["jobresult"]["virtualmachine"]["memory"] == 512
    assert _exact(state, "alice")[1] == {R.CPU: 1, R.MEMORY: 512}


def test_custom_offering_takes_its_size_from_details(admin: Caller, user_caller: Caller,
                                                     cloud: dict[str, Any]) -> None:  # noqa: F811
    vm = _vm(user_caller, cloud)
    custom = admin.ok("createServiceOffering", name="custom", displaytext="custom")["serviceoffering"]["id"]
    assert user_caller.call("changeServiceForVirtualMachine", id=vm["id"], serviceofferingid=custom)[0] == 431
    changed = user_caller.ok("changeServiceForVirtualMachine", id=vm["id"], serviceofferingid=custom, **{
        "details[0].cpuNumber": "2", "details[0].cpuSpeed": "750", "details[0].memory": "768"})["virtualmachine"]
    assert (changed["cpunumber"], changed["cpuspeed"], changed["memory"]) == (2, 750, 768)
    for bad in ({"details[0].cpuNumber": "0", "details[0].memory": "768"},
                {"details[0].cpuNumber": "x", "details[0].memory": "768"},
                {"details[0].cpuNumber": "2", "details[0].memory": str(1 << 40)}):
        assert user_caller.call("changeServiceForVirtualMachine", id=vm["id"], serviceofferingid=custom,
                                **bad)[0] == 431


@pytest.mark.parametrize("params", [
    {}, {"id": "nope"}, {"id": "0b7e3c3e-0000-4000-8000-000000000000"}, {"id": "1' OR '1'='1"},
    {"id": "\u00e9\u00e8\u4e2d"}, {"id": "x" * 5000}, {"serviceofferingid": "nope"},
    {"serviceofferingid": "0b7e3c3e-0000-4000-8000-000000000000"}, {"serviceofferingid": "'; DROP TABLE vm_instance"},
])
def test_hostile_parameters_are_refused(admin: Caller, cloud: dict[str, Any],  # noqa: F811
                                        params: dict[str, str]) -> None:
    vm = _vm(admin, cloud)
    full = {"id": vm["id"], "serviceofferingid": _offering(admin, "Medium Instance"), **params}
    if not params:
        full.pop("serviceofferingid")
    status, body = admin.call("changeServiceForVirtualMachine", **full)
    assert status == 431, body
    assert admin.ok("listVirtualMachines", id=vm["id"])["virtualmachine"][0]["memory"] == 512


def test_other_accounts_vms_and_removed_offerings(state: ServerState, admin: Caller, user_caller: Caller,
                                                  cloud: dict[str, Any]) -> None:  # noqa: F811
    theirs = _vm(admin, cloud)
    medium = _offering(admin, "Medium Instance")
    status, body = user_caller.call("changeServiceForVirtualMachine", id=theirs["id"], serviceofferingid=medium)
    assert status == 431 and "memory" not in body
    mine = _vm(user_caller, cloud)
    assert admin.ok("changeServiceForVirtualMachine", id=mine["id"],
                    serviceofferingid=medium)["virtualmachine"]["memory"] == 1024
    extra = admin.ok("createServiceOffering", name="gone", displaytext="gone", cpunumber=1, cpuspeed=100,
                     memory=256)["serviceoffering"]["id"]
    admin.ok("deleteServiceOffering", id=extra)
    assert user_caller.call("changeServiceForVirtualMachine", id=mine["id"], serviceofferingid=extra)[0] == 431
    assert _exact(state, "alice")[1] == {R.CPU: 1, R.MEMORY: 1024}


def test_limits_refuse_and_leave_the_counts_alone(state: ServerState, admin: Caller, user_caller: Caller,
                                                  cloud: dict[str, Any]) -> None:  # noqa: F811
    vm = _vm(user_caller, cloud)
    root = admin.ok("listDomains", name="ROOT")["domain"][0]["id"]
    admin.ok("updateResourceLimit", resourcetype=9, max=600, account="alice", domainid=root)
    status, body = user_caller.call("changeServiceForVirtualMachine", id=vm["id"],
                                    serviceofferingid=_offering(admin, "Medium Instance"))
    assert status == 535 and "'memory'" in body["errortext"]
    assert _exact(state, "alice")[1] == {R.CPU: 1, R.MEMORY: 512}
    assert user_caller.ok("listVirtualMachines", id=vm["id"])["virtualmachine"][0]["memory"] == 512


def test_states_other_than_stopped(state: ServerState, admin: Caller, cloud: dict[str, Any]) -> None:  # noqa: F811
    host = _host(state, cloud)
    vm = _vm(admin, cloud)
    medium, small = _offering(admin, "Medium Instance"), _offering(admin, "Small Instance")
    _place(state, vm["id"], host, "Running")
    status, body = admin.call("changeServiceForVirtualMachine", id=vm["id"], serviceofferingid=medium)
    assert (status, body["errortext"]) == (431, f"Unable to upgrade virtual machine {vm['instancename']} in state "
                                                 "Running; make sure the virtual machine is stopped")
    # live scaling: CloudStack checks the direction first, then refuses (no driver scales a running VM)
    custom = admin.ok("createServiceOffering", name="tiny", displaytext="tiny", cpunumber=1, cpuspeed=100,
                      memory=256)["serviceoffering"]["id"]
    status, body = admin.call("scaleVirtualMachine", id=vm["id"], serviceofferingid=custom)
    assert status == 431 and body["errortext"].startswith("Only scaling up the vm is supported")
    status, body = admin.call("scaleVirtualMachine", id=vm["id"], serviceofferingid=_offering(admin, "Small Instance"))
    assert status == 431 and body["errortext"].startswith("Only scaling up the vm is supported")  # the same size
    status, body = admin.call("scaleVirtualMachine", id=vm["id"], serviceofferingid=medium)
    assert (status, body["errortext"]) == (531, "Dynamically scaling virtual machines is disabled for this zone, "
                                                "please contact your admin")
    held, _ = _exact(state, "admin")
    assert held == {host: (500, 512 * MiB)}
    assert admin.ok("listVirtualMachines", id=vm["id"])["virtualmachine"][0]["memory"] == 512

    _place(state, vm["id"], host, "Starting")
    assert admin.call("scaleVirtualMachine", id=vm["id"], serviceofferingid=medium)[0] == 431
    assert admin.job("destroyVirtualMachine", id=vm["id"])["jobstatus"] in (1, 2)
    with state.sessions.begin() as db:
        row = db.get(VMInstance, vm["id"])
        assert row is not None
        planner.release_host(db, row)
        row.state, row.host_id = "Destroyed", None
    status, body = admin.call("changeServiceForVirtualMachine", id=vm["id"], serviceofferingid=small)
    assert status == 431 and "in state Destroyed" in body["errortext"]
    admin.job("expungeVirtualMachine", id=vm["id"])
    assert admin.call("changeServiceForVirtualMachine", id=vm["id"], serviceofferingid=small)[0] == 431


def test_a_stale_booking_is_given_back_at_the_size_it_was_booked_with(
        state: ServerState, admin: Caller, cloud: dict[str, Any]) -> None:  # noqa: F811
    """A Stopped VM still holding capacity (a start interrupted after its booking): the change releases
    what it holds before the size changes, so the host's allocation stays equal to the recount."""
    host = _host(state, cloud)
    vm = _vm(admin, cloud)
    _place(state, vm["id"], host, "Stopped")
    assert _exact(state, "admin")[0] == {host: (500, 512 * MiB)}
    admin.ok("changeServiceForVirtualMachine", id=vm["id"], serviceofferingid=_offering(admin, "Medium Instance"))
    assert _exact(state, "admin") == ({}, {R.CPU: 1, R.MEMORY: 1024})
    with state.sessions() as db:
        h = db.get(Host, host)
        assert h is not None and (h.cpu_allocated, h.memory_allocated) == (0, 0)
