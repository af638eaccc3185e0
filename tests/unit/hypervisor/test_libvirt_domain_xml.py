import json
import xml.etree.ElementTree as ET

import pytest

from hvcloud.hypervisor.driver import DiskSpec, NicSpec, VmSpec
from hvcloud.hypervisor.libvirt.domain_xml import (
    METADATA_NS,
    InvalidSpec,
    XmlSettings,
    disk_target,
    domain_xml,
    metadata_xml,
    parse_domain,
)
from hvcloud.hypervisor.libvirt.spec_codec import CorruptMetadata, spec_from_json, spec_to_json

SETTINGS = XmlSettings(domain_type="qemu", vnc_listen="10.0.0.5", console_log_dir="/var/log/hv",
                       default_bridge="cloudbr0")


def spec(**kw: object) -> VmSpec:
    base: dict[str, object] = dict(
        name="i-2-17-VM", vcpus=2, memory_mib=512, uuid="5b1a7ad4-33ae-4a1a-9b0e-2b5b1f4f0c11",
        disks=(DiskSpec(slot=0, path="/pool/root.qcow2", boot=True, serial="abc"),
               DiskSpec(slot=1, path="/pool/data.raw", format="raw"),
               DiskSpec(slot=3, device="cdrom", path="/iso/x.iso", format="iso", read_only=True)),
        nics=(NicSpec(device_id=1, mac="02:00:51:2C:00:0F", network="br1", vlan=261, rate_mbps=100),
              NicSpec(device_id=0, mac="02:00:51:2c:00:0e", enabled=False, model="emulated")),
        vnc_password="s3cret", metadata={"cloudstack.id": "17"},
    )
    base.update(kw)
    return VmSpec(**base)  # type: ignore[arg-type]


def test_domain_xml_has_cpu_memory_disks_nics_console_agent_and_vnc() -> None:
    root = ET.fromstring(domain_xml(spec(), SETTINGS))
    assert root.get("type") == "qemu"
    assert root.findtext("name") == "i-2-17-VM"
    assert root.findtext("vcpu") == "2"
    assert root.find("memory").get("unit") == "MiB" and root.findtext("memory") == "512"  # type: ignore[union-attr]
    disks = root.findall("devices/disk")
    targets = {d.find("target").get("dev"): d for d in disks}  # type: ignore[union-attr]
    assert set(targets) == {"vda", "vdb", "hdd"}
    assert targets["vda"].find("driver").get("type") == "qcow2"  # type: ignore[union-attr]
    assert targets["vda"].find("boot").get("order") == "1"  # type: ignore[union-attr]
    assert targets["vdb"].find("driver").get("type") == "raw"  # type: ignore[union-attr]
    assert targets["hdd"].get("device") == "cdrom" and targets["hdd"].find("readonly") is not None
    nics = root.findall("devices/interface")
    assert [n.find("mac").get("address") for n in nics] == ["02:00:51:2c:00:0e", "02:00:51:2c:00:0f"]  # type: ignore[union-attr]
    assert nics[0].find("source").get("bridge") == "cloudbr0"  # type: ignore[union-attr]
    assert nics[0].find("link").get("state") == "down"  # type: ignore[union-attr]
    assert nics[0].find("model").get("type") == "e1000"  # type: ignore[union-attr]
    assert nics[1].find("source").get("bridge") == "br1-261"  # type: ignore[union-attr]
    assert nics[1].find("bandwidth/inbound").get("average") == "12500"  # type: ignore[union-attr]
    assert root.find("devices/serial/log").get("file") == "/var/log/hv/i-2-17-VM.log"  # type: ignore[union-attr]
    assert root.find("devices/channel/target").get("name") == "org.qemu.guest_agent.0"  # type: ignore[union-attr]
    gfx = root.find("devices/graphics")
    assert gfx is not None and gfx.get("listen") == "10.0.0.5" and gfx.get("passwd") == "s3cret"


def test_metadata_round_trips_the_spec_without_the_vnc_password() -> None:
    xml = domain_xml(spec(), SETTINGS)
    facts = parse_domain(xml)
    assert facts.spec_json is not None and "s3cret" not in facts.spec_json
    back = spec_from_json(facts.spec_json, vnc_password=facts.vnc_password)
    assert back == spec()
    meta = ET.fromstring(metadata_xml(spec()))
    assert meta.tag == "vm" and spec_from_json(meta.findtext("spec") or "") == spec(vnc_password=None)
    assert METADATA_NS in domain_xml(spec(), SETTINGS)


def test_vm_without_optical_drive_gets_an_empty_one_for_later_isos() -> None:
    root = ET.fromstring(domain_xml(spec(disks=(DiskSpec(slot=0, path="/p/r.qcow2"),)), SETTINGS))
    cd = [d for d in root.findall("devices/disk") if d.get("device") == "cdrom"]
    assert len(cd) == 1 and cd[0].find("source") is None
    assert cd[0].find("target").get("dev") == "hdd"  # type: ignore[union-attr]


def test_the_optical_drive_boots_when_the_root_disk_cannot() -> None:
    """A VM from an ISO has a blank ROOT disk: the firmware falls through to the drive (order 2),
    which keeps that order empty or not, since a media change cannot alter it."""
    for disks in (spec().disks, (DiskSpec(slot=0, path="/p/r.qcow2", boot=True),)):
        facts = parse_domain(domain_xml(spec(disks=disks), SETTINGS))
        orders = {d.target: d.boot_order for d in facts.disks}
        assert orders["vda"] == 1 and orders["hdd"] == 2 and orders.get("vdb") is None
    iso_only = parse_domain(domain_xml(spec(disks=(DiskSpec(slot=3, device="cdrom", path="/iso/x.iso"),)),
                                       SETTINGS))
    assert [(d.target, d.boot_order) for d in iso_only.disks] == [("hdd", 1)]


@pytest.mark.parametrize("bad", [
    dict(name="../etc"), dict(name=""), dict(name="a" * 200), dict(vcpus=0), dict(memory_mib=1),
    dict(disks=(DiskSpec(slot=0, path="relative.qcow2"),)),
    dict(disks=(DiskSpec(slot=0, path="/x", format="vhdx"),)),
    dict(disks=(DiskSpec(slot=5, device="cdrom"),)),
    dict(disks=(DiskSpec(slot=99, path="/x"),)),
    dict(disks=(DiskSpec(slot=1, path="/a"), DiskSpec(slot=1, path="/b"))),
    dict(disks=(DiskSpec(slot=0, device="floppy", path="/a"),)),
    dict(nics=(NicSpec(device_id=0, mac="zz:00:00:00:00:00", network="br0"),)),
    dict(nics=(NicSpec(device_id=0, mac="02:00:00:00:00:01", network="br0"),
               NicSpec(device_id=1, mac="02:00:00:00:00:01", network="br0"))),
    dict(nics=(NicSpec(device_id=0, mac="02:00:00:00:00:01", network="br0", vlan=5000),)),
    dict(nics=(NicSpec(device_id=0, mac="02:00:00:00:00:01", network="br0;rm -rf"),)),
])
def test_invalid_specs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidSpec):
        domain_xml(spec(**bad), SETTINGS)


def test_nic_without_bridge_and_no_default_is_refused() -> None:
    with pytest.raises(InvalidSpec, match="no default bridge"):
        domain_xml(spec(nics=(NicSpec(device_id=0, mac="02:00:00:00:00:01"),)), XmlSettings())


def test_xml_special_characters_in_values_are_escaped() -> None:
    s = spec(metadata={"k": "</spec><evil/>&"}, vnc_password='"><x')
    root = ET.fromstring(domain_xml(s, SETTINGS))
    facts = parse_domain(ET.tostring(root, encoding="unicode"))
    assert facts.spec_json is not None
    assert spec_from_json(facts.spec_json).metadata["k"] == "</spec><evil/>&"


def test_disk_targets_follow_slots() -> None:
    assert disk_target(DiskSpec(slot=0)) == ("vda", "virtio")
    assert disk_target(DiskSpec(slot=25)) == ("vdz", "virtio")
    assert disk_target(DiskSpec(slot=2, device="cdrom")) == ("hdc", "ide")


@pytest.mark.parametrize("text", [
    "", "null", "[]", '{"v": 2, "spec": {}}', '{"v": 1, "spec": {"name": 1}}',
    '{"v": 1, "spec": {"name": "a", "vcpus": true, "memory_mib": 1}}',
    '{"v": 1, "spec": {"name": "a", "vcpus": 1, "memory_mib": 1, "disks": [3]}}',
    '{"v": 1, "spec": {"name": "a", "vcpus": 1, "memory_mib": 1, "disks": [{"slot": 0, "format": "exe"}]}}',
    '{"v": 1, "spec": {"name": "a", "vcpus": 1, "memory_mib": 1, "metadata": {"a": 1}}}',
    "[" * 100000,
    json.dumps({"v": 1, "spec": {"name": "a" * (2 << 20)}}),
])
def test_corrupt_metadata_is_reported_not_crashing(text: str) -> None:
    with pytest.raises(CorruptMetadata):
        spec_from_json(text)


def test_spec_json_is_stable() -> None:
    assert spec_to_json(spec()) == spec_to_json(spec())


def test_vxlan_nic_joins_the_segment_bridge() -> None:
    s = spec(nics=(NicSpec(device_id=0, mac="02:00:51:2c:00:0e", network="cloudbr1", vxlan=5001),
                   NicSpec(device_id=1, mac="02:00:51:2c:00:0f", vxlan=16777215)))
    root = ET.fromstring(domain_xml(s, SETTINGS))
    bridges = [n.find("source").get("bridge") for n in root.findall("devices/interface")]  # type: ignore[union-attr]
    assert bridges == ["brvx-5001", "brvx-16777215"]
    assert [n.find("mtu").get("size") for n in root.findall("devices/interface")] == ["1450", "1450"]  # type: ignore[union-attr]
    assert ET.fromstring(domain_xml(spec(), SETTINGS)).find("devices/interface/mtu") is None
    assert spec_from_json(spec_to_json(s)).nics == s.nics


@pytest.mark.parametrize("nic,needle", [
    (NicSpec(device_id=0, mac="02:00:51:2c:00:0e", vxlan=0), "VNI 0"),
    (NicSpec(device_id=0, mac="02:00:51:2c:00:0e", vxlan=1 << 24), "outside"),
    (NicSpec(device_id=0, mac="02:00:51:2c:00:0e", vlan=5, vxlan=5001), "not both"),
    (NicSpec(device_id=0, mac="02:00:51:2c:00:0e", network="br;rm -rf", vxlan=5001), "invalid interface name"),
])
def test_bad_vxlan_nics_are_refused(nic: NicSpec, needle: str) -> None:
    with pytest.raises(InvalidSpec, match=needle):
        domain_xml(spec(nics=(nic,)), SETTINGS)


def test_metadata_written_before_vxlan_still_loads() -> None:
    doc = json.loads(spec_to_json(spec()))
    for n in doc["spec"]["nics"]:
        del n["vxlan"]
    loaded = spec_from_json(json.dumps(doc))
    assert all(n.vxlan is None for n in loaded.nics) and loaded.nics == spec().nics
    for n in doc["spec"]["nics"]:
        n["vxlan"] = "5001"
    with pytest.raises(CorruptMetadata, match="vxlan"):
        spec_from_json(json.dumps(doc))
