"""A real VM through the agent's HTTP API, exactly as the management server drives it.

A libvirt agent process receives, over signed HTTPS: the startup exchange, ModifyStoragePool, the
template copy from an image store to primary storage, the linked-clone copy to a root volume,
CreateObject for a data disk, Start, Attach/Dettach of an ISO and a data disk, stats, the VNC
port, a SIGKILL of the agent and its restart, and Stop. The guest proves it booted and saw the
hot-plugged disk on its serial console.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from hvcloud.agent_client import AgentClient
from hvcloud.storage import guest_image, qemu_img
from hvcloud.wire import answers as A
from hvcloud.wire import commands as C
from hvcloud.wire.startup import StartupRoutingCommand
from hvcloud.wire.to import TemplateObjectTO, VirtualMachineTO, VolumeObjectTO
from tests.integration.libvirt.test_libvirt_driver import BOOT_TIMEOUT, console, last_disks_line
from tests.support.agent_process import PASSWORD, USER, AgentProcess
from tests.support.wait import wait_for

PRIMARY = "org.apache.cloudstack.storage.to.PrimaryDataStoreTO"
NFS = "com.cloud.agent.api.to.NfsTO"
TEMPLATE = "org.apache.cloudstack.storage.to.TemplateObjectTO"
VOLUME = "org.apache.cloudstack.storage.to.VolumeObjectTO"
POOL_UUID = "9d6a5f0e-1111-4222-8333-944455556666"


def rate_limit_args() -> list[str]:
    """This machine's kernel may lack the sch_sfq qdisc libvirt's bandwidth limits need."""
    return [] if any(Path(p).exists() for p in _SFQ) else ["--no-nic-rate-limits"]


_SFQ = ["/sys/module/sch_sfq", *(str(p) for p in Path("/lib/modules").glob("*/kernel/net/sched/sch_sfq.ko*"))]


def primary(pool_dir: Path) -> dict[str, Any]:
    return {PRIMARY: {"uuid": POOL_UUID, "id": 1, "poolType": "Filesystem", "host": "127.0.0.1",
                      "path": str(pool_dir), "port": 0}}


def store(store_dir: Path) -> dict[str, Any]:
    return {NFS: {"_url": f"file://{store_dir}", "_role": "Image"}}


def test_vm_lifecycle_through_the_agent(tmp_path: Path, libvirt_ok: None, guest: guest_image.GuestImage,
                                        bridge: str, vm_prefix: str) -> None:
    store_dir, pool_dir = tmp_path / "secondary", tmp_path / "primary"
    tmpl_rel = "template/tmpl/2/5/guest.qcow2"
    (store_dir / tmpl_rel).parent.mkdir(parents=True)
    shutil.copyfile(guest.qcow2, store_dir / tmpl_rel)
    iso_rel = "iso/2/7/tools.iso"
    (store_dir / iso_rel).parent.mkdir(parents=True)
    (store_dir / iso_rel).write_bytes(b"\0" * (1 << 20))
    name = f"{vm_prefix}vm"
    data_dir = tmp_path / "agent"
    agent = AgentProcess(data_dir, address="127.0.0.1", driver="libvirt", args=["--libvirt-domain-type", "qemu",
                                                 "--bridge", bridge, "--local-pool", str(tmp_path / "local"),
                                                 "--store-root", str(store_dir), *rate_limit_args()])
    agent.start()
    try:
        asyncio.run(_drive(agent, name, store_dir, pool_dir, tmpl_rel, iso_rel, data_dir / "console"))
    finally:
        agent.kill()


async def _drive(agent: AgentProcess, name: str, store_dir: Path, pool_dir: Path, tmpl_rel: str, iso_rel: str,
                 log_dir: Path) -> None:
    async with AgentClient(agent.endpoint(), username=USER, password=PASSWORD) as c:
        out = await c.startup([StartupRoutingCommand(dataCenter="1", pod="1", cluster="1", guid="lv-HypervResource",
                                                     name="127.0.0.1", privateIpAddress="127.0.0.1")])
        routing = out[0]
        assert isinstance(routing, StartupRoutingCommand)
        assert routing.cpus and routing.cpus >= 1 and routing.memory and routing.memory > 2**30
        assert routing.hostDetails and routing.hostDetails["hvcloud.driver"] == "libvirt"

        pool = await c.send_body(C.ModifyStoragePoolCommand.FQCN, {
            "add": True, "pool": {"uuid": POOL_UUID, "host": "127.0.0.1", "path": str(pool_dir), "port": 0,
                                  "type": "Filesystem"}})
        assert pool.result, pool.details

        # template: image store -> primary, once
        copy_tmpl = {"srcTO": {TEMPLATE: {"path": tmpl_rel, "uuid": "tmpl-5", "id": 5, "format": "QCOW2",
                                          "imageDataStore": store(store_dir), "name": "5-2-guest"}},
                     "destTO": {TEMPLATE: {"uuid": "tmpl-5", "id": 5, "format": "QCOW2",
                                           "imageDataStore": primary(pool_dir), "name": "5-2-guest"}},
                     "wait": 10800}
        ans = await c.send_body(C.CopyCommand.FQCN, copy_tmpl)
        assert isinstance(ans, A.CopyCmdAnswer) and ans.result, ans.details
        assert isinstance(ans.newData, TemplateObjectTO) and ans.newData.path
        tmpl_path = ans.newData.path
        assert (await c.send_body(C.CopyCommand.FQCN, copy_tmpl)).result  # cached, idempotent

        # root volume: a linked clone of the template on primary
        root_uuid = "root-vol-0001"
        ans = await c.send_body(C.CopyCommand.FQCN, {
            "srcTO": {TEMPLATE: {"uuid": "tmpl-5", "path": tmpl_path, "format": "QCOW2",
                                 "imageDataStore": primary(pool_dir)}},
            "destTO": {VOLUME: {"uuid": root_uuid, "volumeType": "ROOT", "dataStore": primary(pool_dir),
                                "name": "ROOT-1", "size": 64 << 20, "vmName": name}}})
        assert isinstance(ans, A.CopyCmdAnswer) and ans.result, ans.details
        assert isinstance(ans.newData, VolumeObjectTO) and ans.newData.path
        root_file = pool_dir / ans.newData.path
        info = qemu_img.info(str(root_file), "qcow2")
        assert info.backing_file is not None, "the root volume must be a linked clone"

        data = await c.send_body(C.CreateObjectCommand.FQCN, {"data": {VOLUME: {
            "uuid": "data-vol-0001", "volumeType": "DATADISK", "dataStore": primary(pool_dir), "name": "DATA-1",
            "size": 16 << 20, "format": "QCOW2"}}})
        assert isinstance(data, A.CreateObjectAnswer) and data.result, data.details
        assert isinstance(data.data, VolumeObjectTO)

        vm = VirtualMachineTO.model_validate({
            "id": 1, "name": name, "type": "User", "cpus": 1, "maxRam": 128 << 20, "minRam": 128 << 20,
            "vncPassword": "vncpass1", "uuid": "vm-uuid-1",
            "disks": [{"data": {VOLUME: {"uuid": root_uuid, "path": ans.newData.path, "volumeType": "ROOT",
                                         "format": "QCOW2", "dataStore": primary(pool_dir)}},
                       "diskSeq": 0, "type": "ROOT"},
                      {"diskSeq": 3, "type": "ISO"}],
            "nics": [{"deviceId": 0, "mac": "02:00:aa:bb:cc:01", "name": None, "broadcastUri": "vlan://untagged",
                      "ip": "10.1.1.10", "netmask": "255.255.255.0", "networkRateMbps": 100}]})
        start = await c.send(C.StartCommand(vm=vm))
        assert isinstance(start, A.StartAnswer) and start.result, start.details
        wait_for("the boot marker", lambda: guest_image.BOOT_MARKER in console(log_dir, name), BOOT_TIMEOUT,
                 interval=0.25)

        state = await c.send(C.CheckVirtualMachineCommand(vmName=name))
        assert isinstance(state, A.CheckVirtualMachineAnswer) and state.state == "PowerOn"
        vnc = await c.send(C.GetVncPortCommand(name=name))
        assert isinstance(vnc, A.GetVncPortAnswer) and vnc.port >= 5900 and vnc.address == "127.0.0.1"
        stats = await c.send(C.GetVmStatsCommand(vmNames=[name]))
        assert isinstance(stats, A.GetVmStatsAnswer) and stats.vmStatsMap[name].numCPUs == 1

        iso = {"disk": {"data": {TEMPLATE: {"path": iso_rel, "uuid": "iso-7", "format": "ISO",
                                            "imageDataStore": store(store_dir), "name": "tools"}},
                        "diskSeq": 3, "type": "ISO"}, "vmName": name}
        assert (await c.send_body(C.AttachCommand.FQCN, iso)).result
        disk = {"disk": {"data": {VOLUME: data.data.to_json_obj() | {"dataStore": primary(pool_dir)}},
                         "diskSeq": 1, "type": "DATADISK"}, "vmName": name}
        attached = await c.send_body(C.AttachCommand.FQCN, disk)
        assert attached.result, attached.details
        wait_for("the guest to see vdb", lambda: "vdb" in last_disks_line(console(log_dir, name)), 90, interval=0.25)
        detached = await c.send_body(C.DettachCommand.FQCN, disk)
        assert detached.result, detached.details
        wait_for("vdb to leave the guest", lambda: "vdb" not in last_disks_line(console(log_dir, name)), 90,
                 interval=0.25)
        assert (await c.send_body(C.DettachCommand.FQCN, iso)).result

    agent.kill()
    agent.start()
    async with AgentClient(agent.endpoint(), username=USER, password=PASSWORD) as c:
        assert (await c.vm_state_report()).get(name) == "PowerOn"
        stop = await c.send(C.StopCommand(vmName=name, forceStop=True))
        assert stop.result, stop.details
        assert name not in await c.vm_state_report()
        assert root_file.exists(), "Stop keeps the VM's disks"
        deleted = await c.send_body(C.DeleteCommand.FQCN, {"data": {VOLUME: {
            "uuid": root_uuid, "path": root_file.name, "format": "QCOW2", "dataStore": primary(pool_dir)}}})
        assert deleted.result, deleted.details
        assert not root_file.exists()
