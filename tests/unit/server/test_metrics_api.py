"""The metrics plugin's lists (listVirtualMachinesMetrics, listVolumesMetrics, listHostsMetrics,
listZonesMetrics) over HTTP: the base list's objects and filters, the metrics fields against known
rows (VM stats written by the writer's own ``record_vm_stats``), permissions and hostile input."""

from __future__ import annotations

from typing import Any

import pytest

from hvcloud.server.db.models import Account, Host, VMInstance, VmStats, utcnow
from hvcloud.server.orchestration import host_updates, planner
from hvcloud.server.state import ServerState
from hvcloud.wire.answers import VmStatsEntry
from tests.support.guest_networks import guest_physical_network, network
from tests.support.server_api import Caller
from tests.unit.server.test_vm_api import _deploy, cloud  # noqa: F401  (the fixture is used by name)

GiB = 1 << 30
MiB = 1 << 20
HOSTILE = ["1' OR '1'='1", "%", "_", "\u00e9\u4e2d\U0001f600", "x" * 5000, "<script>", "\x00"]
#: what the API's parameter checks refuse before any list runs (too long, control characters)
REFUSED = {"x" * 5000, "\x00"}


def _nothing(caller: Caller, command: str, **params: Any) -> None:
    """The list finds nothing, or (for what no parameter accepts) the call is refused with 431."""
    status, body = caller.call(command, **params)
    if any(v in REFUSED for v in params.values()):
        assert status == 431, body
    else:
        assert (status, body) == (200, {}), body


@pytest.fixture
def host(state: ServerState, cloud: dict[str, Any]) -> str:  # noqa: F811
    """An Up host that reported 80% CPU and 7 of its 8 GiB used."""
    with state.sessions.begin() as db:
        row = Host(name="h0", guid="g0", zone_id=cloud["zoneid"], pod_id=cloud["podid"],
                   cluster_id=cloud["clusterid"], status="Up", hypervisor="Simulator", url="http://10.0.0.1",
                   private_ip="10.0.0.1", cpu_number=4, cpu_speed=1000, memory_total=8 * GiB,
                   cpu_used_percent=80.0, memory_used=7 * GiB, network_read_kbs=2 * 1024 * 1024.0,
                   network_write_kbs=1024 * 1024.0, stats_updated=utcnow())
        db.add(row)
        db.flush()
        return row.id


def _vm(caller: Caller, cloud: dict[str, Any], **kw: Any) -> dict[str, Any]:  # noqa: F811
    status, body = _deploy(caller, cloud, **kw)
    assert status == 200, body
    return caller.wait(body["jobid"])["jobresult"]["virtualmachine"]  # type: ignore[no-any-return]


def _run(state: ServerState, vm_id: str, host_id: str, vm_state: str = "Running") -> str:
    """The VM placed on the host as a start places it; its instance name."""
    with state.sessions.begin() as db:
        vm, row = db.get(VMInstance, vm_id), db.get(Host, host_id)
        assert vm is not None and row is not None
        assert planner.reserve_host(db, vm, row, planner.Need(vm.cpu_number * vm.cpu_speed, vm.memory * MiB))
        vm.state, vm.host_id = vm_state, host_id
        return vm.instance_name


def _report(state: ServerState, host_id: str, stats: dict[str, VmStatsEntry]) -> None:
    with state.sessions.begin() as db:
        host_updates.record_vm_stats(db, [(host_id, stats)], utcnow())


ENTRY = VmStatsEntry(cpuUtilization=12.5, networkReadKBs=2048.0, networkWriteKBs=1024.9, diskReadKBs=4096.0,
                     diskWriteKBs=512.0, diskReadIOs=10.0, diskWriteIOs=5.0, memoryKBs=524288.0, numCPUs=1)


# ------------------------------------------------------------------------------------------------ VMs


def test_vm_metrics_from_collected_stats(state: ServerState, admin: Caller, user_caller: Caller,
                                         cloud: dict[str, Any], host: str) -> None:  # noqa: F811
    with state.sessions.begin() as session:
        alice = session.query(Account).filter_by(name="alice").one()
        net = network(session, cloud["zoneid"], guest_physical_network(session, cloud["zoneid"]), alice, "front")
    running = _vm(user_caller, cloud, name="web", networkids=net)
    stopped = _vm(user_caller, cloud, name="db")
    _report(state, host, {_run(state, running["id"], host): ENTRY})

    body = user_caller.ok("listVirtualMachinesMetrics")
    assert body["count"] == 2
    by_name = {v["name"]: v for v in body["virtualmachine"]}
    base = {v["name"]: v for v in user_caller.ok("listVirtualMachines")["virtualmachine"]}
    web, db = by_name["web"], by_name["db"]
    for name, item in by_name.items():  # the base object, unchanged, under the metrics fields
        assert {k: item[k] for k in base[name]} == base[name]
    assert (web["cputotal"], web["memorytotal"], web["cpuused"]) == ("0.5 Ghz", "0.50 GiB", "12.50%")
    assert (web["networkkbsread"], web["networkkbswrite"]) == (2048, 1024)
    assert (web["networkread"], web["networkwrite"]) == ("2.00 MiB", "1.00 MiB")
    assert (web["diskread"], web["diskwrite"], web["diskiopstotal"]) == ("4.00 MiB", "0.50 MiB", 15)
    assert (web["diskioread"], web["diskiowrite"], web["memorykbs"]) == (10, 5, 524288)
    assert web["ipaddress"] == web["nic"][0]["ipaddress"] and web["ipaddress"].startswith("10.1.1.")
    assert db["ipaddress"] == db["nic"][0]["ipaddress"]
    assert "lastupdated" in web
    assert (db["cputotal"], db["memorytotal"]) == ("0.5 Ghz", "0.50 GiB")
    assert not {"cpuused", "networkread", "diskiopstotal"} & set(db)

    # filters and paging are the base list's
    assert [v["name"] for v in user_caller.ok("listVirtualMachinesMetrics", state="Running")["virtualmachine"]] \
        == ["web"]
    assert user_caller.ok("listVirtualMachinesMetrics", id=stopped["id"])["virtualmachine"][0]["name"] == "db"
    assert user_caller.ok("listVirtualMachinesMetrics", keyword="we")["count"] == 1
    page = user_caller.ok("listVirtualMachinesMetrics", page=2, pagesize=1)
    assert page["count"] == 2 and len(page["virtualmachine"]) == 1
    assert user_caller.ok("listVirtualMachinesMetrics", hostid=host)["count"] == 1
    user_caller.ok("createTags", resourceids=running["id"], resourcetype="UserVm", **{
        "tags[0].key": "tier", "tags[0].value": "front"})
    tagged = user_caller.ok("listVirtualMachinesMetrics", **{"tags[0].key": "tier", "tags[0].value": "front"})
    assert [v["name"] for v in tagged["virtualmachine"]] == ["web"] and tagged["virtualmachine"][0]["cpuused"]


def test_vm_stats_follow_the_vm(state: ServerState, admin: Caller, cloud: dict[str, Any],  # noqa: F811
                                host: str) -> None:
    """Stats are shown only for a Running VM on the host that reported them; a new report replaces the
    row; names the host does not run for us, and garbage numbers, are not stored as such."""
    vm = _vm(admin, cloud)
    name = _run(state, vm["id"], host)
    _report(state, host, {name: ENTRY, "r-1-VM": ENTRY, "i-9-9-VM": ENTRY})
    _report(state, host, {name: ENTRY.model_copy(update={"cpuUtilization": float("nan"),
                                                         "networkReadKBs": float("inf"), "diskReadIOs": -3.0})})
    with state.sessions() as db:
        rows = db.query(VmStats).all()
        assert [r.vm_id for r in rows] == [vm["id"]]
        assert (rows[0].cpu_used_percent, rows[0].network_read_kbs, rows[0].disk_read_ios) == (0.0, 0.0, 0.0)
    assert admin.ok("listVirtualMachinesMetrics", id=vm["id"])["virtualmachine"][0]["cpuused"] == "0.00%"
    with state.sessions.begin() as db:
        row = db.get(VMInstance, vm["id"])
        assert row is not None
        planner.release_host(db, row)
        row.state, row.host_id = "Stopped", None
    assert "cpuused" not in admin.ok("listVirtualMachinesMetrics", id=vm["id"])["virtualmachine"][0]
    # another host reporting the VM's name does not write its row
    _report(state, "0b7e3c3e-0000-4000-8000-000000000000", {name: ENTRY})
    with state.sessions() as db:
        stored = db.get(VmStats, vm["id"])
        assert stored is not None and stored.host_id == host


def test_vm_metrics_visibility(state: ServerState, admin: Caller, user_caller: Caller,
                               cloud: dict[str, Any], host: str) -> None:  # noqa: F811
    theirs = _vm(admin, cloud, name="admins")
    _report(state, host, {_run(state, theirs["id"], host): ENTRY})
    mine = _vm(user_caller, cloud, name="mine")
    assert [v["name"] for v in user_caller.ok("listVirtualMachinesMetrics")["virtualmachine"]] == ["mine"]
    assert user_caller.ok("listVirtualMachinesMetrics", id=theirs["id"]) == {}
    assert user_caller.ok("listVirtualMachinesMetrics", listall="true")["count"] == 1
    assert admin.ok("listVirtualMachinesMetrics", listall="true")["count"] == 2
    assert admin.ok("listVirtualMachinesMetrics", id=mine["id"], listall="true")["count"] == 1


@pytest.mark.parametrize("value", HOSTILE)
def test_vm_metrics_hostile_input(admin: Caller, cloud: dict[str, Any], value: str) -> None:  # noqa: F811
    _vm(admin, cloud, name="web")
    _nothing(admin, "listVirtualMachinesMetrics", keyword=value)
    _nothing(admin, "listVirtualMachinesMetrics", name=value)
    assert admin.call("listVirtualMachinesMetrics", id=value)[0] == 431
    assert admin.call("listVirtualMachinesMetrics", hostid=value)[0] == 431


def test_vm_metrics_bad_paging(admin: Caller, cloud: dict[str, Any]) -> None:  # noqa: F811
    for params in ({"page": "x"}, {"pagesize": "-5"}, {"page": "1", "pagesize": "0"}, {"page": str(1 << 70)}):
        assert admin.call("listVirtualMachinesMetrics", **params)[0] == admin.call("listVirtualMachines",
                                                                                   **params)[0]
    assert admin.call("listVirtualMachinesMetrics", page="x")[0] == 431


# ---------------------------------------------------------------------------------------------- hosts


def test_host_metrics(state: ServerState, admin: Caller, cloud: dict[str, Any], host: str) -> None:  # noqa: F811
    _run(state, _vm(admin, cloud, name="a")["id"], host)
    _run(state, _vm(admin, cloud, name="b")["id"], host, "Starting")
    [item] = admin.ok("listHostsMetrics")["host"]
    base = admin.ok("listHosts")["host"][0]
    assert {k: item[k] for k in base} == base
    assert (item["instances"], item["powerstate"]) == ("1 / 2", "Disabled")
    assert (item["cputotalghz"], item["cpuusedghz"], item["cpuallocatedghz"]) == ("4.00 Ghz", "3.20 Ghz", "1.00 Ghz")
    assert (item["memorytotalgb"], item["memoryusedgb"], item["memoryallocatedgb"]) == ("8.00 GB", "7.00 GB",
                                                                                        "1.00 GB")
    assert (item["networkread"], item["networkwrite"]) == ("2.00 GB", "1.00 GB")
    # 80% CPU used, 25% allocated; 87.5% memory used, 12.5% allocated: against 75% and 85%
    assert (item["cputhreshold"], item["cpudisablethreshold"]) == (True, False)
    assert (item["cpuallocatedthreshold"], item["cpuallocateddisablethreshold"]) == (False, False)
    assert (item["memorythreshold"], item["memorydisablethreshold"]) == (True, True)
    assert (item["memoryallocatedthreshold"], item["memoryallocateddisablethreshold"]) == (False, False)

    admin.ok("updateConfiguration", name="cluster.cpu.allocated.capacity.notificationthreshold", value="0.2")
    admin.ok("updateConfiguration", name="cluster.memory.allocated.capacity.disablethreshold", value="0.9")
    item = admin.ok("listHostsMetrics", id=host)["host"][0]
    assert (item["cputhreshold"], item["cpuallocatedthreshold"], item["memorydisablethreshold"]) == (True, True, False)
    assert admin.call("updateConfiguration", name="cluster.cpu.allocated.capacity.disablethreshold",
                      value="1.5")[0] == 431

    assert admin.ok("listHostsMetrics", name="h0")["count"] == 1
    assert admin.ok("listHostsMetrics", state="Down") == {}
    assert admin.ok("listHostsMetrics", zoneid=cloud["zoneid"], clusterid=cloud["clusterid"])["count"] == 1


def test_host_metrics_of_a_host_that_never_reported(state: ServerState, admin: Caller,
                                                    cloud: dict[str, Any]) -> None:  # noqa: F811
    with state.sessions.begin() as db:
        db.add(Host(name="new", guid="g1", zone_id=cloud["zoneid"], pod_id=cloud["podid"],
                    cluster_id=cloud["clusterid"], status="Connecting", hypervisor="Simulator", url="http://10.0.0.2"))
    [item] = admin.ok("listHostsMetrics")["host"]
    assert item["instances"] == "0 / 0" and "cpuusedghz" not in item and "memorythreshold" not in item


@pytest.mark.parametrize("command", ["listHostsMetrics", "listZonesMetrics"])
def test_infrastructure_metrics_are_for_admins(user_caller: Caller, cloud: dict[str, Any],  # noqa: F811
                                               command: str) -> None:
    status, body = user_caller.call(command)
    assert (status, body["errortext"]) == (401, "The given command does not exist or it is not available for user")


@pytest.mark.parametrize("value", HOSTILE)
def test_host_and_zone_metrics_hostile_input(admin: Caller, cloud: dict[str, Any], host: str,  # noqa: F811
                                             value: str) -> None:
    _nothing(admin, "listHostsMetrics", name=value)
    _nothing(admin, "listHostsMetrics", keyword=value)
    assert admin.call("listHostsMetrics", id=value)[0] == 431
    _nothing(admin, "listZonesMetrics", name=value)
    assert admin.call("listZonesMetrics", id=value)[0] == 431


# ---------------------------------------------------------------------------------------------- zones


def test_zone_metrics(state: ServerState, admin: Caller, user_caller: Caller, cloud: dict[str, Any],  # noqa: F811
                      host: str) -> None:
    _run(state, _vm(admin, cloud)["id"], host)
    with state.sessions.begin() as db:  # a second host, Down: no capacity, but its stats count as CloudStack's do
        db.add(Host(name="h1", guid="g1", zone_id=cloud["zoneid"], pod_id=cloud["podid"],
                    cluster_id=cloud["clusterid"], status="Down", hypervisor="Simulator", url="http://10.0.0.2",
                    cpu_number=4, cpu_speed=1000, memory_total=8 * GiB, cpu_used_percent=20.0, memory_used=GiB,
                    stats_updated=utcnow()))
    [zone] = admin.ok("listZonesMetrics")["zone"]
    base = admin.ok("listZones")["zone"][0]
    assert {k: zone[k] for k in base} == base
    assert (zone["state"], zone["clusters"]) == (base["allocationstate"], "1 / 1")
    assert (zone["cputotal"], zone["cpuallocated"], zone["cpuused"]) == ("4.00 Ghz", "12.50%", "50.00%")
    assert zone["cpumaxdeviation"] == "0.60%"  # CloudStack's formula: (80 - 50) / 50, printed with "%"
    assert (zone["memorytotal"], zone["memoryallocated"], zone["memoryused"]) == ("8.00 GB", "6.25%", "100.00%")
    assert zone["memorymaxdeviation"] == "75.00%"  # (7 GiB - 4 GiB) / 4 GiB
    assert (zone["cputhreshold"], zone["cpuallocatedthreshold"]) == (False, False)
    assert (zone["memorythreshold"], zone["memorydisablethreshold"]) == (True, True)
    assert (zone["memoryallocatedthreshold"], zone["memoryallocateddisablethreshold"]) == (False, False)
    assert admin.ok("listZonesMetrics", id=cloud["zoneid"])["count"] == 1
    assert admin.ok("listZonesMetrics", name="elsewhere") == {}


def test_zone_metrics_without_hosts(admin: Caller, cloud: dict[str, Any]) -> None:  # noqa: F811
    admin.ok("createZone", name="empty", networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.1")
    by_name = {z["name"]: z for z in admin.ok("listZonesMetrics")["zone"]}
    empty = by_name["empty"]
    assert (empty["clusters"], empty["cputotal"], empty["memorytotal"]) == ("0 / 0", "0.00 Ghz", "0.00 GB")
    assert not {"cpuused", "cpuallocated", "cputhreshold", "memorythreshold"} & set(empty)


# -------------------------------------------------------------------------------------------- volumes


def test_volume_metrics(state: ServerState, admin: Caller, user_caller: Caller,
                        cloud: dict[str, Any]) -> None:  # noqa: F811
    mine = _vm(user_caller, cloud)
    theirs = _vm(admin, cloud)
    [volume] = user_caller.ok("listVolumesMetrics")["volume"]
    base = user_caller.ok("listVolumes")["volume"][0]
    assert volume["virtualmachineid"] == mine["id"] and volume["sizegb"] == "1.00 GiB"
    assert volume["storagetype"] == base["storagetype"] == "shared"  # users see the base value, as in CloudStack
    assert {k: volume[k] for k in base if k != "storagetype"} == {k: v for k, v in base.items() if k != "storagetype"}
    assert "diskiopstotal" not in volume
    assert user_caller.ok("listVolumesMetrics", virtualmachineid=theirs["id"]) == {}
    listed = admin.ok("listVolumesMetrics", listall="true", type="ROOT")
    assert listed["count"] == 2 and {v["storagetype"] for v in listed["volume"]} == {"Shared (ROOT)"}
    assert admin.ok("listVolumesMetrics", listall="true", type="DATADISK") == {}
    assert admin.ok("listVolumesMetrics", virtualmachineid=theirs["id"])["count"] == 1
    for value in HOSTILE:
        _nothing(user_caller, "listVolumesMetrics", keyword=value)
        assert user_caller.call("listVolumesMetrics", id=value)[0] == 431
