"""VMs deployed through the management server onto a real libvirt agent.

Processes: ``hvcloud server run`` (SQLite), ``hvcloud agent run --driver libvirt`` (QEMU, no KVM),
a loopback HTTP server for the template and an ISO; driven with the real ``cs`` client. The guest's
boot marker on its serial console proves the whole chain: template download, template copy to
primary, linked clone, StartCommand with the server's VirtualMachineTO (disk, NIC on the zone's guest
bridge). The same cloud then grows a running VM's data disk (ResizeVolumeCommand → the domain's
block device, read back with libvirt's block info), swaps ISOs in a running VM's optical drive, and
deploys a VM from an ISO.
"""

from __future__ import annotations

import hashlib
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cs import CloudStackApiException

from hvcloud.storage import guest_image, qemu_img
from tests.integration.libvirt.conftest import URI
from tests.integration.libvirt.test_libvirt_driver import BOOT_TIMEOUT, console
from tests.support.libvirt_cloud import LibvirtCloud, libvirt_cloud
from tests.support.wait import wait_for

GiB = 1 << 30


def domain(name: str) -> tuple[Any, Any]:
    """(connection, domain) of a VM on the real libvirtd; the caller closes the connection."""
    import libvirt

    conn = libvirt.open(URI)
    return conn, conn.lookupByName(name)


def cdrom_sources(name: str) -> list[str | None]:
    """The file in each optical drive of the running domain (None for an empty drive)."""
    conn, dom = domain(name)
    try:
        root = ET.fromstring(dom.XMLDesc(0))
    finally:
        conn.close()
    out: list[str | None] = []
    for disk in root.findall("devices/disk[@device='cdrom']"):
        source = disk.find("source")
        out.append(source.get("file") if source is not None else None)
    return out


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, libvirt_ok: None, guest: guest_image.GuestImage,
          bridge: str) -> Iterator[LibvirtCloud]:
    with libvirt_cloud(tmp_path_factory.mktemp("lvcloud"), guest, bridge) as made:
        yield made


@pytest.fixture(scope="module")
def booted(cloud: LibvirtCloud) -> dict[str, Any]:
    """A VM from the tiny template, running on the libvirt host with its guest booted."""
    vm = cloud.cs.deployVirtualMachine(serviceofferingid=cloud.offering["id"], templateid=cloud.template["id"],
                                       zoneid=cloud.zone["id"])["virtualmachine"]
    assert vm["state"] == "Running" and vm["hostid"] == cloud.host["id"]
    wait_for("the boot marker", lambda: guest_image.BOOT_MARKER in console(cloud.console_dir, vm["instancename"]),
             BOOT_TIMEOUT, interval=0.25)
    return dict(vm)


def test_deploy_boots_the_guest(cloud: LibvirtCloud, booted: dict[str, Any]) -> None:
    cs = cloud.cs
    root = cs.listVolumes(virtualmachineid=booted["id"], type="ROOT")["volume"][0]
    assert (cloud.base / "primary" / root["path"]).exists()
    assert guest_image.BOOT_MARKER in console(cloud.console_dir, booted["instancename"])


def test_data_disk_grows_while_the_vm_runs(cloud: LibvirtCloud, booted: dict[str, Any]) -> None:
    cs = cloud.cs
    name = booted["instancename"]
    custom = cs.listDiskOfferings(name="Custom")["diskoffering"][0]
    volume = cs.createVolume(name="grow", diskofferingid=custom["id"], size=1, zoneid=cloud.zone["id"])["volume"]
    attached = cs.attachVolume(id=volume["id"], virtualmachineid=booted["id"])["volume"]
    assert attached["state"] == "Ready"
    target = "vd" + "abcdefghijklmnopqrstuvwxyz"[attached["deviceid"]]
    conn, dom = domain(name)
    try:
        assert dom.blockInfo(target)[0] == GiB
        grown = cs.resizeVolume(id=volume["id"], size=3)["volume"]
        assert grown["size"] == 3 * GiB and grown["state"] == "Ready"
        assert dom.blockInfo(target)[0] == 3 * GiB, "the running domain's disk grew"
        with pytest.raises(CloudStackApiException) as exc:
            cs.resizeVolume(id=volume["id"], size=2, shrinkok=True)
        assert exc.value.error["errorcode"] == 431 and "stop it first" in exc.value.error["errortext"]
        assert dom.blockInfo(target)[0] == 3 * GiB
    finally:
        conn.close()
    assert cs.listVolumes(id=volume["id"])["volume"][0]["size"] == 3 * GiB
    cs.detachVolume(id=volume["id"])
    shrunk = cs.resizeVolume(id=volume["id"], size=2, shrinkok=True)["volume"]
    assert shrunk["size"] == 2 * GiB
    assert qemu_img.info(str(cloud.base / "primary" / shrunk["path"]), "qcow2").virtual_size == 2 * GiB
    cloud.capacity_matches_recount()
    assert cs.deleteVolume(id=volume["id"])["success"]


def test_iso_in_a_running_vm_and_a_vm_from_an_iso(cloud: LibvirtCloud, booted: dict[str, Any]) -> None:
    cs = cloud.cs
    name = booted["instancename"]
    assert cdrom_sources(name) == [None]
    cs.attachIso(id=cloud.iso["id"], virtualmachineid=booted["id"])
    (inserted,) = cdrom_sources(name)
    assert inserted is not None and inserted.endswith(f"{cloud.iso['id']}.iso") and Path(inserted).is_file()
    cs.detachIso(virtualmachineid=booted["id"])
    assert cdrom_sources(name) == [None], "the drive stays (IDE cannot hot-plug) but is empty"

    disk = cs.listDiskOfferings(name="Small")["diskoffering"][0]
    from_iso = cs.deployVirtualMachine(serviceofferingid=cloud.offering["id"], templateid=cloud.iso["id"],
                                       diskofferingid=disk["id"], zoneid=cloud.zone["id"])["virtualmachine"]
    assert from_iso["state"] == "Running" and from_iso["isoid"] == cloud.iso["id"]
    conn, dom = domain(from_iso["instancename"])
    try:
        root = ET.fromstring(dom.XMLDesc(0))
        assert dom.blockInfo("vda")[0] == disk["disksize"] * GiB
    finally:
        conn.close()
    orders = {d.find("target").get("dev"): d.find("boot").get("order")  # type: ignore[union-attr]
              for d in root.findall("devices/disk") if d.find("boot") is not None}
    assert orders == {"vda": "1", "hdd": "2"}, "the blank ROOT disk first, then the ISO"
    (source,) = cdrom_sources(from_iso["instancename"])
    assert source is not None and source.endswith(f"{cloud.iso['id']}.iso")
    cs.destroyVirtualMachine(id=from_iso["id"], expunge=True)


def _failed_deploy(cloud: LibvirtCloud, template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Deploy from ``template``, which must fail; (the job's error text, the VM left behind)."""
    before = {v["id"] for v in cloud.cs.listVirtualMachines(listall=True).get("virtualmachine", [])}
    with pytest.raises(CloudStackApiException) as exc:
        cloud.cs.deployVirtualMachine(serviceofferingid=cloud.offering["id"], templateid=template["id"],
                                      zoneid=cloud.zone["id"])
    (vm,) = [v for v in cloud.cs.listVirtualMachines(listall=True)["virtualmachine"] if v["id"] not in before]
    return str(exc.value.error["errortext"]), dict(vm)


def _assert_cleanly_failed(cloud: LibvirtCloud, vm: dict[str, Any]) -> None:
    assert vm["state"] == "Error" and vm["details"]["statereason"] and "hostid" not in vm
    assert not cloud.cs.listVolumes(virtualmachineid=vm["id"]).get("volume"), "a failed deploy keeps no volume"
    cloud.capacity_matches_recount()
    cloud.cs.expungeVirtualMachine(id=vm["id"])
    cloud.capacity_matches_recount()


def test_checksum_mismatch_fails_the_deploy_and_releases_capacity(cloud: LibvirtCloud) -> None:
    """The image on the store changed after it was registered with a checksum: the agent refuses the
    copy, the job says so, and nothing stays booked or on the pool."""
    image = cloud.base / "images" / "summed.qcow2"
    shutil.copyfile(cloud.base / "images" / "guest.qcow2", image)
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    template = cloud.register("summed", image, checksum="{SHA-256}" + digest)
    with open(cloud.store_file(template["id"]), "r+b") as f:
        f.seek(1 << 20)
        f.write(b"bit rot")
    text, vm = _failed_deploy(cloud, template)
    assert "checksum mismatch" in text and "copying the template to primary storage" in text, text
    assert not list((cloud.base / "primary").glob(f"{template['id']}*")), "no partial template copy"
    _assert_cleanly_failed(cloud, vm)


def test_bad_template_fails_the_deploy_and_releases_capacity(cloud: LibvirtCloud) -> None:
    """The image on the store became a qcow2 with a backing file (a way to read the host's files):
    the agent refuses it, the job says so, and nothing stays booked or on the pool."""
    image = cloud.base / "images" / "plain.qcow2"
    shutil.copyfile(cloud.base / "images" / "guest.qcow2", image)
    template = cloud.register("plain", image)
    stored = cloud.store_file(template["id"])
    stored.unlink()
    qemu_img.create(str(stored), "qcow2", backing=str(cloud.base / "images" / "guest.qcow2"), backing_fmt="qcow2")
    text, vm = _failed_deploy(cloud, template)
    assert "backing" in text and "copying the template to primary storage" in text, text
    _assert_cleanly_failed(cloud, vm)


def test_stop_and_expunge_remove_the_domain_and_disk(cloud: LibvirtCloud, booted: dict[str, Any]) -> None:
    cs = cloud.cs
    root = cs.listVolumes(virtualmachineid=booted["id"], type="ROOT")["volume"][0]
    assert cs.stopVirtualMachine(id=booted["id"], forced=True)["virtualmachine"]["state"] == "Stopped"
    cs.destroyVirtualMachine(id=booted["id"], expunge=True)
    assert not (cloud.base / "primary" / root["path"]).exists()
