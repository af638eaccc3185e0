"""Affinity groups through the signed API (create, list, types, delete, updateVMAffinityGroup, the
deploy parameters and the VM's ``affinitygroup[]``) with CloudStack's shapes and codes, hostile and
out-of-order input, who may use which group; and the planner honouring the groups on simulator hosts
(rows, no agents): anti-affinity spreads two VMs over two hosts and refuses a third with 533,
affinity keeps every member on one host."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from hvcloud.server.db.models import AffinityGroupVmMap, Host, StoragePool, VMInstance
from hvcloud.server.errors import INSUFFICIENT_CAPACITY
from hvcloud.server.jobs.handlers import JobFailure
from hvcloud.server.orchestration import affinity_groups as AG
from hvcloud.server.orchestration.vm import manager as vms
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.state import ServerState
from tests.support.server_api import Caller

GiB = 1024**3
ANTI, AFFINITY = "host anti-affinity", "host affinity"


def _create(caller: Caller, name: str, kind: str = ANTI, **kw: Any) -> dict[str, Any]:
    answer = caller.ok("createAffinityGroup", name=name, type=kind, **kw)
    assert set(answer) == {"id", "jobid"}
    job = caller.wait(answer["jobid"])
    assert job["jobstatus"] == 1, job
    group: dict[str, Any] = job["jobresult"]["affinitygroup"]
    assert group["id"] == answer["id"]
    return group


def _deploy(caller: Caller, cloud: dict[str, Any], name: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    return caller.call("deployVirtualMachine", serviceofferingid=cloud["offering"], templateid=cloud["template"],
                       zoneid=cloud["zoneid"], name=name, **{"startvm": "false", **kw})


def _vm(caller: Caller, cloud: dict[str, Any], name: str, **kw: Any) -> dict[str, Any]:
    status, body = _deploy(caller, cloud, name, **kw)
    assert status == 200, body
    job = caller.wait(body["jobid"])
    assert job["jobstatus"] == 1, job
    return job["jobresult"]["virtualmachine"]  # type: ignore[no-any-return]


def _maps(state: ServerState) -> int:
    with state.sessions() as db:
        return db.scalar(select(func.count()).select_from(AffinityGroupVmMap)) or 0


def test_types_and_the_group_lifecycle(admin: Caller, state: ServerState, cloud: dict[str, Any]) -> None:
    types = admin.ok("listAffinityGroupTypes")
    assert types["count"] == 2 and {t["type"] for t in types["affinityGroupType"]} == {ANTI, AFFINITY}
    group = _create(admin, "web", description="the web tier")
    assert group["name"] == "web" and group["type"] == ANTI and group["description"] == "the web tier"
    assert group["account"] == "admin" and group["domain"] == "ROOT" and group["domainid"]
    assert "virtualmachineIds" not in group
    other = _create(admin, "db", AFFINITY)
    listed = admin.ok("listAffinityGroups")
    assert listed["count"] == 2 and {g["name"] for g in listed["affinitygroup"]} == {"web", "db"}
    assert admin.ok("listAffinityGroups", type=AFFINITY)["affinitygroup"][0]["id"] == other["id"]
    assert admin.ok("listAffinityGroups", name="web")["count"] == 1
    assert admin.ok("listAffinityGroups", keyword="tier")["affinitygroup"][0]["id"] == group["id"]
    assert admin.ok("listAffinityGroups", keyword="%") == {}

    vm = _vm(admin, cloud, "web-1", affinitygroupids=group["id"])
    assert [(g["id"], g["name"], g["type"]) for g in vm["affinitygroup"]] == [(group["id"], "web", ANTI)]
    assert admin.ok("listAffinityGroups", id=group["id"])["affinitygroup"][0]["virtualmachineIds"] == [vm["id"]]
    assert admin.ok("listAffinityGroups", virtualmachineid=vm["id"])["affinitygroup"][0]["id"] == group["id"]
    assert [v["id"] for v in admin.ok("listVirtualMachines", affinitygroupid=group["id"])["virtualmachine"]] \
        == [vm["id"]]
    assert admin.ok("listVirtualMachines", affinitygroupid=other["id"]) == {}

    # a Stopped VM changes groups (by names), an empty list clears them
    job = admin.job("updateVMAffinityGroup", id=vm["id"], affinitygroupnames="db,web")
    assert job["jobstatus"] == 1 and {g["name"] for g in job["jobresult"]["virtualmachine"]["affinitygroup"]} \
        == {"db", "web"}
    assert _maps(state) == 2
    assert admin.job("updateVMAffinityGroup", id=vm["id"])["jobresult"]["virtualmachine"]["affinitygroup"] == []
    assert _maps(state) == 0
    admin.job("updateVMAffinityGroup", id=vm["id"], affinitygroupids=f"{group['id']},{other['id']}")

    # deleting a group removes its VM mappings; twice: not found
    answer = admin.ok("deleteAffinityGroup", id=group["id"])
    assert set(answer) == {"jobid"} and admin.wait(answer["jobid"])["jobresult"]["success"] is True
    left = admin.ok("listVirtualMachines", id=vm["id"])["virtualmachine"][0]["affinitygroup"]
    assert [g["id"] for g in left] == [other["id"]]
    with state.sessions() as db:
        row = db.get(VMInstance, vm["id"])
        assert row is not None and row.affinity_group_count == 1
    status, body = admin.call("deleteAffinityGroup", id=group["id"])
    assert status == 431 and "Unable to find affinity group" in body["errortext"]
    admin.job("deleteAffinityGroup", name="db")
    assert admin.ok("listAffinityGroups") == {} and _maps(state) == 0
    assert admin.ok("listVirtualMachines", id=vm["id"])["virtualmachine"][0]["affinitygroup"] == []


@pytest.mark.parametrize("bad", [
    {"type": "rack affinity"}, {"type": ""}, {"type": "HOST AFFINITY"}, {"name": "   "},
    {"name": "x" * 256}, {"description": "d" * 4097}, {"projectid": "0b7e3c3e-0000-4000-8000-000000000000"},
    {"type": "host affinity'; DROP TABLE affinity_group; --"},
])
def test_create_refuses_hostile_input(admin: Caller, bad: dict[str, str]) -> None:
    status, body = admin.call("createAffinityGroup", **{"name": "g", "type": ANTI, **bad})
    assert status == 431, body
    assert admin.ok("listAffinityGroups", listall="true") == {}


def test_names_unicode_duplicates_and_injection_like_strings(admin: Caller) -> None:
    odd = "grüppe-\u65e5\u672c' OR 1=1 --"
    group = _create(admin, odd)
    assert admin.ok("listAffinityGroups", name=odd)["affinitygroup"][0]["id"] == group["id"]
    status, body = admin.call("createAffinityGroup", name=odd.upper(), type=AFFINITY)
    assert status == 431 and "already exists" in body["errortext"]
    assert admin.ok("listAffinityGroups")["count"] == 1
    assert admin.call("listAffinityGroups", id="not-a-uuid")[0] == 431
    assert admin.call("deleteAffinityGroup")[0] == 431
    assert admin.call("deleteAffinityGroup", id=group["id"], name=odd)[0] == 431
    assert admin.call("deleteAffinityGroup", name="missing")[0] == 431
    admin.job("deleteAffinityGroup", name=odd)
    assert admin.ok("listAffinityGroups") == {}


def test_deploy_and_update_parameters(admin: Caller, user_caller: Caller, cloud: dict[str, Any]) -> None:
    mine = _create(user_caller, "mine")
    theirs = _create(admin, "theirs")
    # both lists at once, another account's group (by id or name), unknown ids, too many
    status, body = _deploy(user_caller, cloud, "a1", affinitygroupids=mine["id"], affinitygroupnames="mine")
    assert status == 431 and "can't be specified together" in body["errortext"]
    for kw in ({"affinitygroupids": theirs["id"]}, {"affinitygroupnames": "theirs"},
               {"affinitygroupids": "0b7e3c3e-0000-4000-8000-000000000000"}, {"affinitygroupnames": "x" * 300},
               {"affinitygroupnames": ",".join(f"g{i}" for i in range(40))}):
        status, body = _deploy(user_caller, cloud, "a1", **kw)
        assert status == 431, (kw, body)
    assert user_caller.ok("listVirtualMachines") == {}
    vm = _vm(user_caller, cloud, "a1", affinitygroupnames="mine,mine")
    assert [g["id"] for g in vm["affinitygroup"]] == [mine["id"]]
    # an admin deploying for the user uses the user's groups, not its own
    status, body = _deploy(admin, cloud, "a2", affinitygroupids=theirs["id"], account="alice",
                           domainid=mine["domainid"])
    assert status == 431
    # updateVMAffinityGroup: the VM's owner's groups only, both lists refused, hostile ids
    assert user_caller.call("updateVMAffinityGroup", id=vm["id"], affinitygroupids=theirs["id"])[0] == 431
    assert admin.call("updateVMAffinityGroup", id=vm["id"], affinitygroupids=theirs["id"])[0] == 431
    assert user_caller.call("updateVMAffinityGroup", id=vm["id"], affinitygroupids=mine["id"],
                            affinitygroupnames="mine")[0] == 431
    assert user_caller.call("updateVMAffinityGroup", id="'; --")[0] == 431
    assert user_caller.call("updateVMAffinityGroup")[0] == 431


def test_permissions(admin: Caller, user_caller: Caller, cloud: dict[str, Any]) -> None:
    theirs = _create(admin, "admins")
    mine = _create(user_caller, "users")
    assert [g["id"] for g in user_caller.ok("listAffinityGroups")["affinitygroup"]] == [mine["id"]]
    assert user_caller.ok("listAffinityGroups", listall="true")["count"] == 1
    assert user_caller.ok("listAffinityGroups", id=theirs["id"]) == {}
    assert user_caller.call("listAffinityGroups", account="admin", domainid=mine["domainid"])[0] == 531
    assert admin.ok("listAffinityGroups", listall="true")["count"] == 2
    assert admin.ok("listAffinityGroups", account="alice", domainid=mine["domainid"])["affinitygroup"][0]["id"] \
        == mine["id"]
    # a user cannot delete (by id or name) nor use another account's group, nor create for it
    status, _ = user_caller.call("deleteAffinityGroup", id=theirs["id"])
    assert status == 431
    assert user_caller.call("deleteAffinityGroup", name="admins")[0] == 431
    assert user_caller.call("createAffinityGroup", name="x", type=ANTI, account="admin",
                            domainid=mine["domainid"])[0] == 531
    admin_vm = _vm(admin, cloud, "adm")
    assert user_caller.call("updateVMAffinityGroup", id=admin_vm["id"], affinitygroupids=mine["id"])[0] == 431
    assert user_caller.call("listAffinityGroups", virtualmachineid=admin_vm["id"])[0] == 431
    # an admin creates for an account, and may delete any group
    made = _create(admin, "for-alice", account="alice", domainid=mine["domainid"])
    assert made["account"] == "alice"
    assert {g["name"] for g in user_caller.ok("listAffinityGroups")["affinitygroup"]} == {"users", "for-alice"}
    admin.job("deleteAffinityGroup", id=mine["id"])
    assert user_caller.ok("listAffinityGroups")["count"] == 1


def test_update_only_when_stopped_and_expunge_forgets(admin: Caller, state: ServerState,
                                                      cloud: dict[str, Any]) -> None:
    group = _create(admin, "g")
    vm = _vm(admin, cloud, "v1", affinitygroupids=group["id"])
    with state.sessions.begin() as db:
        row = db.get(VMInstance, vm["id"])
        assert row is not None
        row.state = S.RUNNING
    status, body = admin.call("updateVMAffinityGroup", id=vm["id"], affinitygroupids=group["id"])
    assert status == 431 and "make sure the virtual machine is stopped" in body["errortext"]
    with state.sessions.begin() as db:
        row = db.get(VMInstance, vm["id"])
        assert row is not None
        row.state = S.STOPPED
    admin.job("destroyVirtualMachine", id=vm["id"], expunge="true")
    assert _maps(state) == 0
    assert admin.call("updateVMAffinityGroup", id=vm["id"], affinitygroupids=group["id"])[0] == 431
    assert "virtualmachineIds" not in admin.ok("listAffinityGroups", id=group["id"])["affinitygroup"][0]


# ---------------------------------------------------------------------- placement


def _hosts(state: ServerState, cloud: dict[str, Any], count: int) -> list[str]:
    with state.sessions.begin() as db:
        hosts = [Host(name=f"h{i}", guid=f"g{i}", zone_id=cloud["zoneid"], pod_id=cloud["podid"],
                      cluster_id=cloud["clusterid"], status="Up", hypervisor="Simulator",
                      url=f"http://10.0.0.{i + 1}", cpu_number=8, cpu_speed=2000, memory_total=64 * GiB)
                 for i in range(count)]
        db.add_all(hosts)
        db.add(StoragePool(name="pool", zone_id=cloud["zoneid"], pod_id=cloud["podid"],
                           cluster_id=cloud["clusterid"], scope="CLUSTER", pool_type="Filesystem",
                           host_address="localhost", path="/primary", url="file:///primary",
                           capacity_bytes=1000 * GiB, overprovision_factor="1.0"))
        db.flush()
        return [h.id for h in hosts]


def _place(state: ServerState, vm_id: str) -> str:
    """The deploy job's placement step (no agents here): the host booked for the VM."""
    with state.sessions.begin() as db:
        placed = vms._place_and_prepare(db, state.box, vm_id, [], True)
        assert placed is not None
        return placed.host_id


def test_anti_affinity_spreads_over_two_hosts_and_refuses_a_third(admin: Caller, state: ServerState,
                                                                  cloud: dict[str, Any]) -> None:
    hosts = _hosts(state, cloud, 2)
    group = _create(admin, "spread")
    first = _vm(admin, cloud, "s1", affinitygroupids=group["id"])
    second = _vm(admin, cloud, "s2", affinitygroupnames="spread")
    on = {_place(state, first["id"]), _place(state, second["id"])}
    assert on == set(hosts)
    # the third VM's deploy job fails with CloudStack's insufficient capacity and says why
    status, body = _deploy(admin, cloud, "s3", affinitygroupids=group["id"], startvm="true")
    assert status == 200, body
    job = admin.wait(body["jobid"])
    assert job["jobstatus"] == 2 and job["jobresult"]["errorcode"] == INSUFFICIENT_CAPACITY
    text = job["jobresult"]["errortext"]
    assert "affinity groups" in text and "host anti-affinity group spread excludes 2 host(s)" in text, text
    # a VM outside the group still fits, and a third host takes the third member
    outsider = _vm(admin, cloud, "free")
    assert _place(state, outsider["id"]) in hosts
    third = _hosts_more(state, cloud)
    again = _vm(admin, cloud, "s4", affinitygroupids=group["id"])
    assert _place(state, again["id"]) == third


def _hosts_more(state: ServerState, cloud: dict[str, Any]) -> str:
    with state.sessions.begin() as db:
        host = Host(name="h-extra", guid="g-extra", zone_id=cloud["zoneid"], pod_id=cloud["podid"],
                    cluster_id=cloud["clusterid"], status="Up", hypervisor="Simulator", url="http://10.0.0.99",
                    cpu_number=8, cpu_speed=2000, memory_total=64 * GiB)
        db.add(host)
        db.flush()
        return host.id


def test_affinity_keeps_every_member_on_one_host(admin: Caller, state: ServerState, cloud: dict[str, Any]) -> None:
    _hosts(state, cloud, 3)
    group = _create(admin, "together", AFFINITY)
    members = [_vm(admin, cloud, f"t{i}", affinitygroupids=group["id"]) for i in range(4)]
    placed = {_place(state, vm["id"]) for vm in members}
    assert len(placed) == 1  # the planner would otherwise take the host with the most free memory
    # the host gone (not Up): the next member finds no host that satisfies the group
    (host_id,) = placed
    with state.sessions.begin() as db:
        host = db.get(Host, host_id)
        assert host is not None
        host.status = "Down"
    late = _vm(admin, cloud, "t-late", affinitygroupids=group["id"])
    with state.sessions.begin() as db, pytest.raises(JobFailure) as failed:
        vms._place_and_prepare(db, state.box, late["id"], [], True)
    assert failed.value.code == INSUFFICIENT_CAPACITY and "host affinity group together" in failed.value.text


def test_a_vm_in_no_group_is_placed_as_before(admin: Caller, state: ServerState, cloud: dict[str, Any]) -> None:
    hosts = _hosts(state, cloud, 2)
    _create(admin, "unused")
    vm = _vm(admin, cloud, "plain")
    assert _place(state, vm["id"]) in hosts
    with state.sessions() as db:
        assert db.scalar(select(VMInstance.affinity_group_count).where(VMInstance.id == vm["id"])) == 0


def test_placement_checks_the_groups_again_once_it_has_booked_a_host(admin: Caller, state: ServerState,
                                                                     cloud: dict[str, Any],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A concurrent placement of another member committed between this placement's reads and its
    booking (simulated: the first read of the groups sees nothing): the booked host is given back."""
    hosts = _hosts(state, cloud, 2)
    group = _create(admin, "spread")
    first = _vm(admin, cloud, "r1", affinitygroupids=group["id"])
    taken = _place(state, first["id"])
    with state.sessions.begin() as db:
        other = db.get(Host, next(h for h in hosts if h != taken))
        assert other is not None
        other.status = "Down"
        before = db.get(Host, taken)
        assert before is not None
        allocated = before.memory_allocated
    second = _vm(admin, cloud, "r2", affinitygroupids=group["id"])
    real = AG.placement
    calls: list[str] = []

    def stale(db: Any, vm: VMInstance) -> AG.Placement | None:
        calls.append(vm.id)
        return AG.Placement(frozenset(), None, "stale") if len(calls) == 1 else real(db, vm)

    monkeypatch.setattr(AG, "placement", stale)
    with state.sessions.begin() as db, pytest.raises(JobFailure) as failed:
        vms._place_and_prepare(db, state.box, second["id"], [], True)
    assert failed.value.code == INSUFFICIENT_CAPACITY and len(calls) == 2
    with state.sessions() as db:
        vm = db.get(VMInstance, second["id"])
        host = db.get(Host, taken)
        assert vm is not None and vm.capacity_host_id is None
        assert host is not None and host.memory_allocated == allocated
        assert not AG.allows(db, vm, taken)
