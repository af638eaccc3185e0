"""Issue 15 on one host, end to end through a real libvirt agent process over signed HTTPS: the
DomainRouter's StartCommand starts a router (network namespace, dnsmasq, metadata and password
service) on a ``vxlan://N`` segment over a test trunk bridge; DhcpEntry, VmData and SavePassword
give it a VM's entries; the VM's StartCommand puts a TCG guest on the same segment, and the guest
leases its address from the router, reads its metadata, user data and password from it and runs
its script. The trunk has no uplink: no packet leaves the machine.

Needs the router runtime (``hvcloud.router.namespace``), dnsmasq and root; skipped without them.
"""

from __future__ import annotations

import asyncio
import base64
import random
import secrets
import shutil
from pathlib import Path
from typing import Any

import pytest

from hvcloud.agent_client import AgentClient
from hvcloud.network.bridges import Bridges, vxlan_bridge_name, vxlan_device_name
from hvcloud.storage import guest_image
from hvcloud.storage.backend import ImageInPool, ImageOnStore, PoolRef, StoreRef
from hvcloud.storage.local import LocalStorageBackend
from hvcloud.wire import commands as C
from hvcloud.wire import routing as R
from tests.integration.libvirt.test_agent_over_http import rate_limit_args
from tests.support import guest_console
from tests.support.agent_process import PASSWORD, USER, AgentProcess
from tests.support.wire_samples import sample

pytestmark = [pytest.mark.libvirt, pytest.mark.usefixtures("libvirt_ok")]
pytest.importorskip("hvcloud.router.namespace", reason="the namespace router runtime (H-routerrt) is not merged")

BOOT_TIMEOUT = 180.0
PRIMARY = "org.apache.cloudstack.storage.to.PrimaryDataStoreTO"
VOLUME = "org.apache.cloudstack.storage.to.VolumeObjectTO"
POOL_UUID = "7e0c1f2a-5b6d-4e8f-9a0b-1c2d3e4f5a6b"
USER_DATA = "#!/bin/sh\necho \"hello from $(hostname)\"\nexit 3\n"


def primary(pool_dir: Path) -> dict[str, Any]:
    return {PRIMARY: {"uuid": POOL_UUID, "id": 1, "poolType": "Filesystem", "host": "127.0.0.1",
                      "path": str(pool_dir), "port": 0}}


def access(router: str) -> dict[str, str]:
    return {"router.name": router, "router.guest.ip": "10.1.1.1", "zone.network.type": "Advanced"}


def test_guest_leases_from_a_router_on_a_vxlan_segment(tmp_path: Path, guest: guest_image.GuestImage, bridge: str,
                                                       vm_prefix: str) -> None:
    if not shutil.which("dnsmasq"):
        pytest.skip("dnsmasq is not installed (scripts/setup installs dnsmasq-base)")
    vni = random.randrange(1_000_000, 16_000_000)
    router = f"r-{random.randrange(10**6, 10**7)}-VM"
    name = f"{vm_prefix}web"
    mac = "02:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(4))

    # the VM's root disk: a linked clone of the test template in a pool the agent is told about
    pool_dir = tmp_path / "primary"
    backend = LocalStorageBackend(tmp_path / "data")
    pool = PoolRef(uuid=POOL_UUID, pool_type="Filesystem", path=str(pool_dir))
    tmpl = backend.template_to_pool(ImageOnStore(StoreRef(kind="local", url=str(guest.qcow2.parent)),
                                                 guest.qcow2.name, "qcow2"), pool, "guest-tmpl")
    root = backend.volume_from_template(ImageInPool(pool, tmpl.path, tmpl.format), pool, f"ROOT-{name}")

    agent = AgentProcess(tmp_path / "agent", address="127.0.0.1", driver="libvirt",
                         args=["--libvirt-domain-type", "qemu", "--bridge", bridge,
                               "--local-pool", str(tmp_path / "local"), *rate_limit_args()])
    agent.start()
    try:
        asyncio.run(_drive(agent, router, name, mac, vni, bridge, pool_dir, root.path))
    finally:
        try:
            for body in ({"vmName": name, "forceStop": True}, {"vmName": router, "expungeVM": True}):
                agent.send_body(0, C.StopCommand.FQCN, body)
        finally:
            agent.kill()
            Bridges().remove_vxlan_bridge(vni)


async def _drive(agent: AgentProcess, router: str, name: str, mac: str, vni: int, trunk: str, pool_dir: Path,
                 root_path: str) -> None:
    log = agent.data_dir / "console" / f"{name}.log"
    async with AgentClient(agent.endpoint(), username=USER, password=PASSWORD) as c:
        async def ok(fqcn: str, body: dict[str, Any]) -> None:
            answer = await c.send_body(fqcn, body)
            assert answer.result, f"{fqcn}: {answer.details}"

        start = sample("StartCommand-router")
        start["vm"]["name"] = router
        start["vm"]["bootArgs"] = (f"name={router} type=router eth0ip=10.1.1.1 eth0mask=255.255.255.0 "
                                   "domain=net1.internal dns1=192.0.2.53")
        start["vm"]["nics"][0].update(broadcastUri=f"vxlan://{vni}", isolationUri=f"vxlan://{vni}", name=trunk)
        await ok(C.StartCommand.FQCN, start)
        await ok(R.DnsMasqConfigCommand.FQCN, sample("DnsMasqConfigCommand") | {"accessDetails": access(router)})
        await ok(R.DhcpEntryCommand.FQCN, sample("DhcpEntryCommand") | {
            "vmMac": mac, "vmIpAddress": "10.1.1.23", "vmName": "web-1", "accessDetails": access(router)})
        await ok(R.VmDataCommand.FQCN, {"vmIpAddress": "10.1.1.23", "vmName": "web-1", "accessDetails": access(router),
                                        "vmData": [
                                            ["userdata", "user-data", base64.b64encode(USER_DATA.encode()).decode()],
                                            ["metadata", "instance-id", name],
                                            ["metadata", "local-hostname", "web-1"],
                                            ["metadata", "local-ipv4", "10.1.1.23"],
                                            ["metadata", "public-keys", "ssh-ed25519 AAAAC3Nza test@example"]]})
        await ok(R.SavePasswordCommand.FQCN, {"password": "fN8ecqwx", "vmIpAddress": "10.1.1.23", "vmName": "web-1",
                                              "accessDetails": access(router)})
        assert (await c.vm_state_report()).get(router) == "PowerOn"

        await ok(C.ModifyStoragePoolCommand.FQCN, {"add": True, "pool": {
            "uuid": POOL_UUID, "host": "127.0.0.1", "path": str(pool_dir), "port": 0, "type": "Filesystem"}})
        await ok(C.StartCommand.FQCN, {"vm": {
            "id": 23, "name": name, "type": "User", "cpus": 1, "maxRam": 128 << 20, "minRam": 128 << 20,
            "disks": [{"data": {VOLUME: {"uuid": "root-23", "path": root_path, "volumeType": "ROOT",
                                         "format": "QCOW2", "dataStore": primary(pool_dir)}},
                       "diskSeq": 0, "type": "ROOT"}],
            "nics": [{"deviceId": 0, "mac": mac, "ip": "10.1.1.23", "netmask": "255.255.255.0",
                      "gateway": "10.1.1.1", "broadcastUri": f"vxlan://{vni}", "isolationUri": f"vxlan://{vni}",
                      "name": trunk, "type": "Guest", "defaultNic": True}]}})

        guest_console.wait_for_marker(log, guest_image.BOOT_MARKER, BOOT_TIMEOUT)
        guest_console.wait_for_marker(log, guest_image.LEASE_MARKER, 120)
        done = guest_console.wait_for_marker(log, guest_image.SCRIPT_DONE_MARKER, 120)
        text = guest_console.last_boot(log)

        lease = guest_console.lease(text)
        assert lease is not None, text
        assert (lease["ip"], lease["mask"], lease["router"], lease["host"]) == (
            "10.1.1.23", "255.255.255.0", "10.1.1.1", "web-1"), lease
        assert lease["domain"] == "net1.internal"
        meta = guest_console.meta(text)
        assert meta["local-ipv4"] == "10.1.1.23" and meta["instance-id"] == name, meta
        assert meta["user-data"] == USER_DATA and meta["password"] == "fN8ecqwx", meta
        assert guest_console.script_lines(text) == ["hello from web-1"]
        assert done == f"{guest_image.SCRIPT_DONE_MARKER} rc=3"

        # one segment bridge holds the VXLAN device, the router's port and the guest's tap
        ports = set(Bridges().ports(vxlan_bridge_name(vni)))
        assert vxlan_device_name(vni) in ports and len(ports) == 3, ports
