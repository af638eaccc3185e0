"""Every command through the agent's HTTP app with the simulator, answers checked field by field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from hvcloud.wire import signing
from tests.support.agent_harness import PASSWORD, USER, AgentHarness
from tests.support.wire_samples import sample

START = "com.cloud.agent.api.StartCommand"
STOP = "com.cloud.agent.api.StopCommand"
COPY = "org.apache.cloudstack.storage.command.CopyCommand"
POOL = "5fe2bad3-d785-394e-9949-89786b8a63d2"


def start_body(name: str = "i-2-17-VM", ram: int = 536870912, mac: str = "02:00:51:2c:00:0e") -> dict[str, Any]:
    body = sample("StartCommand")
    body["vm"]["name"] = name
    body["vm"]["maxRam"] = ram
    body["vm"]["nics"][0]["mac"] = mac
    return body


def test_status_line(agent: AgentHarness) -> None:
    r = agent.client.get("/api/HypervResource")
    assert r.status_code == 200
    assert r.text == "HypervResource controller running, use POST to send JSON encoded RPCs"


def test_ready_probe_as_the_discoverer_sends_it(agent: AgentHarness) -> None:
    cls, fields = agent.answer("com.cloud.agent.api.ReadyCommand",
                               {"contextMap": {}, "wait": 0, "bypassHostMaintenance": False})
    assert cls == "com.cloud.agent.api.ReadyAnswer"
    assert fields == {"result": True, "contextMap": {}}


def test_startup_echoes_identity_and_adds_hardware_and_local_pool(agent: AgentHarness) -> None:
    req = sample("StartupCommand")
    r = agent.post("com.cloud.agent.api.StartupCommand", req)
    assert r.status_code == 200
    out = r.json()
    assert [next(iter(o)) for o in out] == ["com.cloud.agent.api.StartupRoutingCommand",
                                            "com.cloud.agent.api.StartupStorageCommand"]
    routing = out[0]["com.cloud.agent.api.StartupRoutingCommand"]
    sent = req[0]["com.cloud.agent.api.StartupRoutingCommand"]
    for key in ("dataCenter", "pod", "cluster", "guid", "name", "privateIpAddress", "version", "pool",
                "futureField", "type", "storageIpAddress"):
        assert routing[key] == sent[key], key
    assert routing["cpus"] == 32 and routing["cpuSockets"] == 2 and routing["speed"] == 2600
    assert routing["memory"] == 128 * 1024**3
    assert routing["caps"] == "hvm"
    assert routing["hypervisorType"] == "Hyperv"
    assert len(routing["privateMacAddress"]) == 12 and routing["privateMacAddress"].isupper()
    assert routing["gatewayIpAddress"] == routing["privateMacAddress"]
    assert routing["hostDetails"]["com.cloud.network.Networks.RouterPrivateIpStrategy"] == "HostLocal"
    # VNC consoles are per VM: only a host with a VMConnect listener (Hyper-V) reports rdp.server.port
    assert "rdp.server.port" not in routing["hostDetails"]
    storage = out[1]["com.cloud.agent.api.StartupStorageCommand"]
    assert storage["guid"] == sent["guid"] and storage["dataCenter"] == "1"
    assert storage["poolInfo"]["uuid"] == sent["guid"]
    assert storage["poolInfo"]["poolType"] == "Filesystem"
    assert storage["poolInfo"]["capacityBytes"] > 0
    assert storage["resourceType"] == "STORAGE_POOL"
    assert agent.host.identity.guid == sent["guid"]


@pytest.mark.parametrize("body", [b"{}", b"[]", b'[{"com.cloud.agent.api.ReadyCommand":{}}]', b"nope"])
def test_broken_startup_is_a_400(agent: AgentHarness, body: bytes) -> None:
    assert agent.post("com.cloud.agent.api.StartupCommand", body).status_code == 400


def test_setup_answer_has_reconnect(agent: AgentHarness) -> None:
    cls, fields = agent.answer("com.cloud.agent.api.SetupCommand",
                               {"env": {}, "multipath": False, "needSetup": True, "contextMap": {}, "wait": 0})
    assert cls == "com.cloud.agent.api.SetupAnswer"
    assert fields == {"result": True, "details": "success - NOP", "contextMap": {}, "_reconnect": False}


@pytest.mark.parametrize("fqcn,answer,result", [
    ("com.cloud.agent.api.CheckHealthCommand", "com.cloud.agent.api.CheckHealthAnswer", True),
    ("com.cloud.agent.api.MaintainCommand", "com.cloud.agent.api.MaintainAnswer", True),
    ("com.cloud.agent.api.PingCommand", "com.cloud.agent.api.Answer", True),
    ("com.cloud.agent.api.CheckNetworkCommand", "com.cloud.agent.api.CheckNetworkAnswer", True),
    ("com.cloud.agent.api.check.CheckSshCommand", "com.cloud.agent.api.check.CheckSshAnswer", True),
    ("com.cloud.agent.api.CleanupNetworkRulesCmd", "com.cloud.agent.api.Answer", False),
    ("com.cloud.agent.api.PrepareForMigrationCommand", "com.cloud.agent.api.PrepareForMigrationAnswer", True),
    ("com.cloud.agent.api.CreateStoragePoolCommand", "com.cloud.agent.api.Answer", True),
    ("com.cloud.agent.api.PlugNicCommand", "com.cloud.agent.api.PlugNicAnswer", False),  # names no VM
])
def test_simple_commands(agent: AgentHarness, fqcn: str, answer: str, result: bool) -> None:
    body: dict[str, Any] = {"contextMap": {}, "wait": 0}
    if "StoragePool" in fqcn:
        body["pool"] = {"uuid": "p", "path": "/x", "type": "Filesystem"}
    cls, fields = agent.answer(fqcn, body)
    assert cls == answer and fields["result"] is result and fields["contextMap"] == {}


def test_maintain_answer_fields(agent: AgentHarness) -> None:
    _, fields = agent.answer("com.cloud.agent.api.MaintainCommand", {})
    assert fields["willMigrate"] is True and fields["_reconnect"] is False


def test_ping_routing(agent: AgentHarness) -> None:
    cls, fields = agent.answer("com.cloud.agent.api.PingRoutingCommand", sample("PingRoutingCommand"))
    assert cls == "com.cloud.agent.api.Answer" and fields["result"] is True


def test_start_echoes_vm_and_the_vm_runs(agent: AgentHarness) -> None:
    body = start_body()
    cls, fields = agent.answer(START, body)
    assert cls == "com.cloud.agent.api.StartAnswer"
    assert fields["result"] is True and "details" not in fields
    assert fields["vm"] == body["vm"]
    vm = agent.host.driver.get_vm("i-2-17-VM")
    assert vm.state.value == "Running"
    assert vm.spec.vcpus == 1 and vm.spec.memory_mib == 512
    assert vm.spec.nics[0].vlan == 261 and vm.spec.nics[0].mac == "02:00:51:2c:00:0e"
    assert vm.spec.nics[0].rate_mbps == 100
    root = vm.spec.disks[0]
    assert root.slot == 0 and root.format == "vhdx" and root.boot
    assert root.path == "E:/Disks/19ae8e67-cd7d-4ab5-a3f6-7b1b3e4e7a10"
    assert vm.spec.disks[1].device == "cdrom" and vm.spec.disks[1].path is None


def test_start_is_idempotent_for_the_same_vm(agent: AgentHarness) -> None:
    agent.answer(START, start_body())
    _, fields = agent.answer(START, start_body())
    assert fields["result"] is True
    assert len(agent.host.driver.list_vms()) == 1


def test_start_of_a_running_vm_with_another_definition_fails(agent: AgentHarness) -> None:
    agent.answer(START, start_body())
    _, fields = agent.answer(START, start_body(ram=1024 * 1024 * 1024))
    assert fields["result"] is False and "another definition" in fields["details"]


def test_start_beyond_host_memory_fails_and_leaves_nothing(agent: AgentHarness) -> None:
    _, fields = agent.answer(START, start_body(ram=200 * 1024**3))
    assert fields["result"] is False and "StartCommand failed" in fields["details"]
    assert agent.host.driver.list_vms() == []


def test_capacity_counts_running_vms(agent: AgentHarness) -> None:
    big = 60 * 1024**3
    assert agent.answer(START, start_body("i-1-1-VM", big, "02:00:00:00:00:01"))[1]["result"] is True
    assert agent.answer(START, start_body("i-1-2-VM", big, "02:00:00:00:00:02"))[1]["result"] is True
    _, third = agent.answer(START, start_body("i-1-3-VM", big, "02:00:00:00:00:03"))
    assert third["result"] is False and "MiB free" in third["details"]
    assert {v.name for v in agent.host.driver.list_vms()} == {"i-1-1-VM", "i-1-2-VM"}


def test_stop_undefines_the_vm_and_is_idempotent(agent: AgentHarness) -> None:
    agent.answer(START, start_body())
    cls, fields = agent.answer(STOP, sample("StopCommand"))
    assert cls == "com.cloud.agent.api.StopAnswer" and fields["result"] is True
    assert agent.host.driver.list_vms() == []
    _, again = agent.answer(STOP, sample("StopCommand"))
    assert again["result"] is True


def test_stop_with_check_before_cleanup_refuses_a_running_vm(agent: AgentHarness) -> None:
    agent.answer(START, start_body())
    body = sample("StopCommand") | {"checkBeforeCleanup": True}
    _, fields = agent.answer(STOP, body)
    assert fields["result"] is False and "still running" in fields["details"]
    assert len(agent.host.driver.list_vms()) == 1


def test_reboot(agent: AgentHarness) -> None:
    _, missing = agent.answer("com.cloud.agent.api.RebootCommand", {"vmName": "i-9-9-VM"})
    assert missing["result"] is False and "not found" in missing["details"]
    agent.answer(START, start_body())
    cls, fields = agent.answer("com.cloud.agent.api.RebootCommand", {"vmName": "i-2-17-VM"})
    assert cls == "com.cloud.agent.api.RebootAnswer" and fields["result"] is True


def test_check_virtual_machine_sends_state(agent: AgentHarness) -> None:
    fqcn = "com.cloud.agent.api.CheckVirtualMachineCommand"
    _, off = agent.answer(fqcn, {"vmName": "i-2-17-VM", "wait": 20})
    assert off["state"] == "PowerOff" and off["result"] is True
    agent.answer(START, start_body())
    cls, on = agent.answer(fqcn, {"vmName": "i-2-17-VM", "wait": 20})
    assert cls == "com.cloud.agent.api.CheckVirtualMachineAnswer"
    assert on["state"] == "PowerOn" and on["vncPort"] >= 5900


def test_vm_state_report_lists_every_vm_with_exact_names(agent: AgentHarness) -> None:
    agent.answer(START, start_body())
    agent.answer(START, start_body("r-4-VM", mac="02:00:00:00:00:04"))
    agent.host.driver.pause_vm("r-4-VM")
    r = agent.post("org.apache.cloudstack.HostVmStateReportCommand", b"{}")
    assert r.status_code == 200
    assert sorted(r.json(), key=lambda d: next(iter(d))) == [{"i-2-17-VM": "PowerOn"}, {"r-4-VM": "PowerUnknown"}]


def test_vm_stats_only_for_known_running_vms(agent: AgentHarness) -> None:
    agent.answer(START, start_body())
    cls, fields = agent.answer("com.cloud.agent.api.GetVmStatsCommand", sample("GetVmStatsCommand"))
    assert cls == "com.cloud.agent.api.GetVmStatsAnswer"
    assert list(fields["vmStatsMap"]) == ["i-2-17-VM"]
    entry = fields["vmStatsMap"]["i-2-17-VM"]
    assert entry["numCPUs"] == 1 and entry["entityType"] == "vm"
    assert 0 <= entry["cpuUtilization"] <= 100 and entry["memoryKBs"] == 512 * 1024


def test_host_stats(agent: AgentHarness) -> None:
    cls, fields = agent.answer("com.cloud.agent.api.GetHostStatsCommand", sample("GetHostStatsCommand"))
    assert cls == "com.cloud.agent.api.GetHostStatsAnswer"
    stats = fields["hostStats"]
    assert stats["hostId"] == 5 and stats["entityType"] == "host"
    assert stats["totalMemoryKBs"] == 128 * 1024 * 1024 and stats["freeMemoryKBs"] <= stats["totalMemoryKBs"]


def test_vnc_port(agent: AgentHarness) -> None:
    agent.answer(START, start_body())
    cls, fields = agent.answer("com.cloud.agent.api.GetVncPortCommand", {"id": 17, "name": "i-2-17-VM"})
    assert cls == "com.cloud.agent.api.GetVncPortAnswer"
    assert fields["port"] >= 5900 and fields["address"] == "127.0.0.1"
    assert "contextMap" not in fields


def test_vm_config_and_nic_vlan_change(agent: AgentHarness) -> None:
    agent.answer(START, start_body())
    _, cfg = agent.answer("com.cloud.agent.api.GetVmConfigCommand", {"vmName": "i-2-17-VM"})
    assert cfg["vmName"] == "i-2-17-VM"
    assert cfg["nics"] == [{"macAddress": "0200512C000E", "vlanid": "261", "state": True}]
    cls, mod = agent.answer("com.cloud.agent.api.ModifyVmNicConfigCommand",
                            {"vmName": "i-2-17-VM", "vlan": "300", "macAddress": "02:00:51:2c:00:0e"})
    assert cls == "com.cloud.agent.api.ModifyVmNicConfigAnswer" and mod["result"] is True
    _, cfg = agent.answer("com.cloud.agent.api.GetVmConfigCommand", {"vmName": "i-2-17-VM"})
    assert cfg["nics"][0]["vlanid"] == "300"
    _, by_index = agent.answer("com.cloud.agent.api.ModifyVmNicConfigCommand",
                               {"vmName": "i-2-17-VM", "vlan": "2", "index": 1, "enable": False})
    assert by_index["result"] is True
    _, cfg = agent.answer("com.cloud.agent.api.GetVmConfigCommand", {"vmName": "i-2-17-VM"})
    assert cfg["nics"][0] == {"macAddress": "0200512C000E", "vlanid": "2", "state": False}
    _, bad = agent.answer("com.cloud.agent.api.ModifyVmNicConfigCommand", {"vmName": "i-2-17-VM", "vlan": "5"})
    assert bad["result"] is False


def test_migrate_between_simulated_hosts(tmp_path: Any) -> None:
    agent = AgentHarness(tmp_path / "multi", sim_hosts=2)
    src, dst = agent.hosts
    body = start_body()
    from hvcloud.agent import translate

    src.driver.define_vm(translate.vm_spec(agent_vm(body), src.storage))
    src.driver.start_vm("i-2-17-VM")
    assert src.address == "127.0.0.1" and dst.address == "127.0.0.2"
    cls, fields = agent.answer("com.cloud.agent.api.MigrateCommand", {"vmName": "i-2-17-VM", "destIp": dst.address})
    assert cls == "com.cloud.agent.api.MigrateAnswer" and fields["result"] is True
    assert src.driver.list_vms() == []
    assert dst.driver.get_vm("i-2-17-VM").state.value == "Running"
    _, again = agent.answer("com.cloud.agent.api.MigrateCommand", {"vmName": "i-2-17-VM", "destIp": "10.9.9.9"})
    assert again["result"] is False and "not found" in again["details"]


def agent_vm(body: dict[str, Any]) -> Any:
    from hvcloud.wire.to import VirtualMachineTO

    return VirtualMachineTO.model_validate(body["vm"])


# --------------------------------------------------------------------------- storage


def test_template_copy_volume_clone_and_delete(agent: AgentHarness) -> None:
    cls, fields = agent.answer(COPY, sample("CopyCommand-template-to-primary"))
    assert cls == "org.apache.cloudstack.storage.command.CopyCmdAnswer" and fields["result"] is True
    ((to_cls, tmpl),) = fields["newData"].items()
    assert to_cls == "org.apache.cloudstack.storage.to.TemplateObjectTO"
    assert tmpl["path"] and tmpl["size"] > 0 and tmpl["physicalSize"] > 0
    assert tmpl["imageDataStore"]["org.apache.cloudstack.storage.to.PrimaryDataStoreTO"]["uuid"] == POOL
    body = sample("CopyCommand-template-to-volume")
    body["srcTO"]["org.apache.cloudstack.storage.to.TemplateObjectTO"]["path"] = tmpl["path"]
    _, vol_answer = agent.answer(COPY, body)
    ((vol_cls, vol),) = vol_answer["newData"].items()
    assert vol_cls == "org.apache.cloudstack.storage.to.VolumeObjectTO"
    assert vol["path"] == "19ae8e67-cd7d-4ab5-a3f6-7b1b3e4e7a10" and vol["format"] == "QCOW2"
    assert vol["size"] >= 52428800 and vol["vmName"] == "i-2-17-VM"
    delete = {"data": body["destTO"]}
    cls, deleted = agent.answer("org.apache.cloudstack.storage.command.DeleteCommand", delete)
    assert cls == "com.cloud.agent.api.Answer" and deleted["result"] is True
    _, again = agent.answer("org.apache.cloudstack.storage.command.DeleteCommand", delete)
    assert again["result"] is True


def test_copy_from_missing_template_fails_in_band(agent: AgentHarness) -> None:
    _, fields = agent.answer(COPY, sample("CopyCommand-template-to-volume"))
    assert fields["result"] is False and fields["details"].startswith("CopyCommand failed: ")


def test_create_object_makes_a_blank_volume(agent: AgentHarness) -> None:
    cls, fields = agent.answer("org.apache.cloudstack.storage.command.CreateObjectCommand",
                               sample("CreateObjectCommand"))
    assert cls == "org.apache.cloudstack.storage.command.CreateObjectAnswer" and fields["result"] is True
    vol = fields["data"]["org.apache.cloudstack.storage.to.VolumeObjectTO"]
    assert vol["path"] == "d4ta0000-0000-4000-8000-000000000012" and vol["size"] == 5368709120


@pytest.mark.parametrize("evil", ["../../etc/passwd", "/etc/passwd", "C:\\Windows\\system32", "a/../../b"])
def test_paths_outside_the_pool_are_refused(agent: AgentHarness, evil: str) -> None:
    body = sample("CreateObjectCommand")
    vol = body["data"]["org.apache.cloudstack.storage.to.VolumeObjectTO"]
    vol["uuid"] = evil
    _, fields = agent.answer("org.apache.cloudstack.storage.command.CreateObjectCommand", body)
    assert fields["result"] is False
    assert "escapes" in fields["details"] or "absolute" in fields["details"]


def test_attach_and_detach_iso_and_data_disk(agent: AgentHarness) -> None:
    agent.answer(START, start_body())
    cls, fields = agent.answer("org.apache.cloudstack.storage.command.AttachCommand", sample("AttachCommand-iso"))
    assert cls == "org.apache.cloudstack.storage.command.AttachAnswer" and fields["result"] is True
    assert fields["disk"] == sample("AttachCommand-iso")["disk"]
    cdrom = next(d for d in agent.host.driver.get_vm("i-2-17-VM").spec.disks if d.slot == 3)
    assert cdrom.device == "cdrom" and cdrom.path and cdrom.path.endswith("iso/2/207/tools.iso")
    data = sample("CreateObjectCommand")
    agent.answer("org.apache.cloudstack.storage.command.CreateObjectCommand", data)
    vol = data["data"]["org.apache.cloudstack.storage.to.VolumeObjectTO"]
    vol["path"] = vol["uuid"]
    attach = {"disk": {"data": data["data"], "diskSeq": 2, "type": "DATADISK"}, "vmName": "i-2-17-VM"}
    assert agent.answer("org.apache.cloudstack.storage.command.AttachCommand", attach)[1]["result"] is True
    assert {d.slot for d in agent.host.driver.get_vm("i-2-17-VM").spec.disks} == {0, 1, 2, 3}
    cls, det = agent.answer("org.apache.cloudstack.storage.command.DettachCommand", attach)
    assert cls == "org.apache.cloudstack.storage.command.DettachAnswer" and det["result"] is True
    assert 2 not in {d.slot for d in agent.host.driver.get_vm("i-2-17-VM").spec.disks}
    iso = sample("AttachCommand-iso")
    assert agent.answer("org.apache.cloudstack.storage.command.DettachCommand", iso)[1]["result"] is True


def test_modify_storage_pool_and_stats(agent: AgentHarness) -> None:
    cls, fields = agent.answer("com.cloud.agent.api.ModifyStoragePoolCommand", sample("ModifyStoragePoolCommand"))
    assert cls == "com.cloud.agent.api.ModifyStoragePoolAnswer" and fields["result"] is True
    info = fields["poolInfo"]
    assert info["uuid"] == "a1b2c3d4-0000-4000-8000-000000000003" and info["hostPath"] == "/primary"
    assert info["capacityBytes"] >= info["availableBytes"] > 0
    assert fields["datastoreClusterChildren"] == [] and fields["templateInfo"] == {}
    cls, stats = agent.answer("com.cloud.agent.api.GetStorageStatsCommand",
                              {"id": "a1b2c3d4-0000-4000-8000-000000000003", "pooltype": "Filesystem"})
    assert cls == "com.cloud.agent.api.GetStorageStatsAnswer"
    assert stats["capacity"] == info["capacityBytes"] and stats["used"] == 0
    assert "a1b2c3d4-0000-4000-8000-000000000003" in agent.host.pools
    remove = sample("ModifyStoragePoolCommand") | {"add": False}
    assert agent.answer("com.cloud.agent.api.ModifyStoragePoolCommand", remove)[1]["result"] is True
    assert agent.host.pools == {}


def test_check_on_host_uses_heartbeats_with_inverted_result(agent: AgentHarness) -> None:
    agent.answer("com.cloud.agent.api.ModifyStoragePoolCommand", sample("ModifyStoragePoolCommand"))
    cls, dead = agent.answer("com.cloud.agent.api.CheckOnHostCommand", sample("CheckOnHostCommand"))
    assert cls == "com.cloud.agent.api.CheckOnHostAnswer"
    assert dead["result"] is True and dead["details"] == "host is not alive"
    pool = agent.host.pools["a1b2c3d4-0000-4000-8000-000000000003"]
    agent.host.storage.write_heartbeat(pool, "10.0.0.6")
    _, alive = agent.answer("com.cloud.agent.api.CheckOnHostCommand", sample("CheckOnHostCommand"))
    assert alive["result"] is False and alive["details"] == "host is alive"


def test_legacy_create_and_destroy(agent: AgentHarness) -> None:
    cls, fields = agent.answer("com.cloud.agent.api.storage.CreateCommand", sample("CreateCommand"))
    assert cls == "com.cloud.agent.api.storage.CreateAnswer" and fields["result"] is True
    vol = fields["volume"]
    assert vol["size"] == 1073741824 and vol["storagePoolUuid"] == POOL and vol["type"] == "DATADISK"
    destroy = copy.deepcopy(sample("DestroyCommand"))
    destroy["volume"]["path"] = vol["path"]
    destroy["volume"]["mountPoint"] = vol["mountPoint"]
    cls, fields = agent.answer("com.cloud.agent.api.storage.DestroyCommand", destroy)
    assert cls == "com.cloud.agent.api.Answer" and fields["result"] is True


# --------------------------------------------------------------------------- protocol errors


def test_unknown_command_is_404(agent: AgentHarness) -> None:
    assert agent.post("com.cloud.agent.api.CreateVMSnapshotCommand", {}).status_code == 404
    assert agent.post("not a class", {}).status_code == 404
    assert agent.post("a" * 300 + ".B", {}).status_code == 404


def test_malformed_body_gets_an_in_band_answer(agent: AgentHarness) -> None:
    cls, fields = agent.answer(START, b'{"vm": {"name": "x", "cpus": "two"')
    assert cls == "com.cloud.agent.api.StartAnswer" and fields["result"] is False
    assert "invalid request" in fields["details"] and "malformed JSON" in fields["details"]
    _, typed = agent.answer(START, {"vm": {"name": "x", "cpus": "two"}})
    assert typed["result"] is False and "vm.cpus" in typed["details"]
    assert agent.host.driver.list_vms() == []


def test_hostile_vm_definitions_are_refused(agent: AgentHarness) -> None:
    for mutate in (
        lambda b: b["vm"].update(name="../../evil"),
        lambda b: b["vm"].update(maxRam=1),
        lambda b: b["vm"].update(cpus=100000),
        lambda b: b["vm"]["nics"][0].update(mac="zz:zz"),
        lambda b: b["vm"]["nics"][0].update(broadcastUri="vlan://99999"),
        lambda b: b["vm"]["disks"][0].update(diskSeq=9999),
        lambda b: b["vm"]["disks"][0].update(type="FLOPPYISH"),
    ):
        body = start_body()
        mutate(body)
        _, fields = agent.answer(START, body)
        assert fields["result"] is False, body
    assert agent.host.driver.list_vms() == []


def test_oversized_body_is_refused(tmp_path: Any) -> None:
    small = AgentHarness(tmp_path / "small", max_body=2048)
    r = small.post(START, b"{" + b" " * 4096 + b"}")
    assert r.status_code == 413
    assert small.host.driver.list_vms() == []


def test_giant_string_within_limit_is_handled(agent: AgentHarness) -> None:
    body = start_body()
    body["vm"]["bootArgs"] = "x" * 500_000
    _, fields = agent.answer(START, body)
    assert fields["result"] is True


def test_fault_injection(agent: AgentHarness) -> None:
    plan = json.dumps({"StartCommand": {"mode": "fail", "message": "boom", "count": 1}}).encode()
    unsigned = agent.client.post("/simulator/faults", content=plan)
    assert unsigned.status_code == 401
    headers = signing.sign_headers(USER, PASSWORD, "POST", "/simulator/faults", plan)
    assert agent.client.post("/simulator/faults", content=plan, headers=headers).status_code == 200
    bad = b'{"StartCommand": {"mode": "explode"}}'
    headers = signing.sign_headers(USER, PASSWORD, "POST", "/simulator/faults", bad)
    assert agent.client.post("/simulator/faults", content=bad, headers=headers).status_code == 400
    _, first = agent.answer(START, start_body())
    assert first == {"result": False, "details": "StartCommand failed: boom", "contextMap": {}}
    _, second = agent.answer(START, start_body())
    assert second["result"] is True


def test_primary_storage_download_legacy(agent: AgentHarness) -> None:
    body = {"localPath": "E:\\Disks", "poolUuid": POOL, "poolId": 201,
            "secondaryStorageUrl": "nfs://10.70.176.36/mnt/secondary",
            "url": "nfs://10.70.176.36/mnt/secondary/template/tmpl/2/204/af39aa7f.qcow2", "format": "QCOW2",
            "accountId": 2, "name": "204-2-af39", "contextMap": {}, "wait": 10800}
    cls, fields = agent.answer("com.cloud.agent.api.storage.PrimaryStorageDownloadCommand", body)
    assert cls == "com.cloud.agent.api.storage.PrimaryStorageDownloadAnswer" and fields["result"] is True
    assert fields["installPath"] == "204-2-af39" and fields["templateSize"] > 0
    body["url"] = "ftp://elsewhere/x.qcow2"
    _, bad = agent.answer("com.cloud.agent.api.storage.PrimaryStorageDownloadCommand", body)
    assert bad["result"] is False and "ftp" in bad["details"]


def test_delete_storage_pool_forgets_but_deletes_nothing(agent: AgentHarness) -> None:
    agent.answer("com.cloud.agent.api.ModifyStoragePoolCommand", sample("ModifyStoragePoolCommand"))
    pool = sample("ModifyStoragePoolCommand")["pool"]
    cls, fields = agent.answer("com.cloud.agent.api.DeleteStoragePoolCommand", {"pool": pool, "localPath": "/mnt/x"})
    assert cls == "com.cloud.agent.api.Answer" and fields["result"] is True
    assert agent.host.pools == {}


def test_migrate_volume_is_refused_clearly(agent: AgentHarness) -> None:
    cls, fields = agent.answer("com.cloud.agent.api.storage.MigrateVolumeCommand",
                               {"volumePath": "abc", "attachedVmName": "i-2-17-VM",
                                "pool": {"uuid": "p2", "path": "/p2", "type": "Filesystem"}})
    assert cls == "com.cloud.agent.api.storage.MigrateVolumeAnswer"
    assert fields["result"] is False and fields["volumePath"] == "abc" and "not supported" in fields["details"]


def test_migrate_with_storage_needs_a_running_vm(agent: AgentHarness) -> None:
    body = {"vm": start_body()["vm"], "tgtHost": "127.0.0.9",
            "volumeToFilerAsList": [{"t": {"id": 10, "path": "root"}, "u": {"uuid": "p2", "path": "/p2"}}]}
    cls, fields = agent.answer("com.cloud.agent.api.MigrateWithStorageCommand", body)
    assert cls == "com.cloud.agent.api.MigrateWithStorageAnswer"
    assert fields["result"] is False and "not found" in fields["details"]


RESIZE = "com.cloud.agent.api.storage.ResizeVolumeCommand"
GIB = 1024**3


def _resize(agent: AgentHarness, **fields: Any) -> dict[str, Any]:
    body = sample("ResizeVolumeCommand")
    body.update(fields)
    cls, answer = agent.answer(RESIZE, body)
    assert cls == "com.cloud.agent.api.storage.ResizeVolumeAnswer"
    return answer


def test_resize_volume_grows_and_shrinks_only_when_allowed(agent: AgentHarness) -> None:
    agent.answer("org.apache.cloudstack.storage.command.CreateObjectCommand", sample("CreateObjectCommand"))
    agent.answer(START, start_body())
    grown = _resize(agent)
    assert grown["result"] is True and grown["newSize"] == 10 * GIB
    refused = _resize(agent, newSize=2 * GIB)
    assert refused["result"] is False and "shrink" in refused["details"] and refused["newSize"] == 0
    shrunk = _resize(agent, newSize=2 * GIB, shrinkOk=True)
    assert shrunk["result"] is True and shrunk["newSize"] == 2 * GIB
    too_small = _resize(agent, newSize=4096, shrinkOk=True)
    assert too_small["result"] is False and "holds" in too_small["details"]
    assert _resize(agent, newSize=2 * GIB)["newSize"] == 2 * GIB, "the same size again is a no-op"


@pytest.mark.parametrize("fields,needle", [
    ({"newSize": -1}, "positive newSize"),
    ({"newSize": None}, "positive newSize"),
    ({"path": "../../etc/passwd"}, "escapes"),
    ({"path": "/etc/passwd"}, "absolute"),
    ({"path": None}, "path is missing"),
    ({"pool": None}, "pool is missing"),
    ({"path": "no-such-volume"}, "not found"),
    ({"managed": True, "iScsiName": "iqn.2024-01.x:1"}, "managed"),
    ({"passphrase": [1, 2, 3], "encryptFormat": "LUKS"}, "encrypted"),
])
def test_resize_volume_refuses_bad_requests_in_band(agent: AgentHarness, fields: dict[str, Any],
                                                    needle: str) -> None:
    agent.answer("org.apache.cloudstack.storage.command.CreateObjectCommand", sample("CreateObjectCommand"))
    answer = _resize(agent, **fields)
    assert answer["result"] is False and needle in answer["details"], answer


def test_resize_volume_refuses_numbers_beyond_java_long(agent: AgentHarness) -> None:
    body = sample("ResizeVolumeCommand")
    body["newSize"] = 2**63
    answer = _resize(agent, **body)
    assert answer["result"] is False and "invalid request" in answer["details"] and "newSize" in answer["details"]
