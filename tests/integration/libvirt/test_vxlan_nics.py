"""VXLAN NICs and NIC hot-plug against the real libvirtd, QEMU (TCG) and kernel: a guest on a
``vxlan://N`` segment over a test trunk bridge has its tap in ``brvx-N`` (whose VXLAN device floods to
the VNI's multicast group over the trunk), and a second NIC is hot-plugged into the running guest and
unplugged again. The trunk is a bridge the test makes with no uplink: no packet leaves the host."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvcloud.hypervisor.driver import DeviceNotFound, DiskSpec, InvalidVmState, NicSpec, VmSpec, VmState
from hvcloud.hypervisor.libvirt.config import LibvirtConfig
from hvcloud.hypervisor.libvirt.domain_xml import VXLAN_NIC_MTU, parse_domain
from hvcloud.hypervisor.libvirt.driver import LibvirtDriver
from hvcloud.network.bridges import Bridges, vxlan_bridge_name, vxlan_device_name, vxlan_group
from hvcloud.storage import guest_image
from tests.integration.libvirt.test_libvirt_driver import BOOT_TIMEOUT, console, libvirt_xml, root_clone
from tests.support.wait import wait_for

pytestmark = [pytest.mark.libvirt, pytest.mark.usefixtures("libvirt_ok")]


@pytest.fixture
def vnis() -> Iterator[tuple[int, int]]:
    """Two VNIs no other run uses (their devices are host-wide); removed afterwards."""
    first = random.randrange(1_000_000, 16_000_000)
    yield first, first + 1
    bridges = Bridges()
    for vni in (first, first + 1):
        bridges.remove_vxlan_bridge(vni)


def nic_targets(name: str) -> dict[str, str]:
    return parse_domain(libvirt_xml(name)).nic_targets


def test_vxlan_guest_and_nic_hot_plug(tmp_path: Path, guest: guest_image.GuestImage, bridge: str,
                                      vm_prefix: str, vnis: tuple[int, int]) -> None:
    vni, vni2 = vnis
    name = vm_prefix + "vx"
    _backend, _pool, root = root_clone(tmp_path, guest, name)
    drv = LibvirtDriver(LibvirtConfig(domain_type="qemu", console_log_dir=str(tmp_path / "console"),
                                      default_bridge=bridge, vnc_listen="127.0.0.1",
                                      local_pool_dir=str(tmp_path / "primary"), detach_timeout=120.0))
    bridges = Bridges()
    first = NicSpec(device_id=0, mac="02:00:5e:10:00:01", network=bridge, vxlan=vni)
    drv.define_vm(VmSpec(name=name, vcpus=1, memory_mib=128, disks=(DiskSpec(slot=0, path=root, boot=True),),
                         nics=(first,)))
    drv.start_vm(name)
    log_dir = tmp_path / "console"
    wait_for("the guest's boot marker", lambda: guest_image.BOOT_MARKER in console(log_dir, name), BOOT_TIMEOUT,
             interval=0.25)

    # the segment: vxlan<vni> over the trunk, flooding to the VNI's group, in brvx-<vni> with the tap
    seg = vxlan_bridge_name(vni)
    assert bridges.is_bridge(seg)
    info = bridges.link(vxlan_device_name(vni))
    assert info is not None
    data = info["linkinfo"]["info_data"]
    assert data["id"] == vni and data["group"] == vxlan_group(vni) and data["link"] == bridge
    tap = nic_targets(name)[first.mac]
    assert set(bridges.ports(seg)) == {tap, vxlan_device_name(vni)}
    assert tap not in bridges.ports(bridge)
    tap_info = bridges.link(tap)
    assert tap_info is not None and tap_info["mtu"] == VXLAN_NIC_MTU, "the tap fits the VXLAN device's MTU"
    assert [(n.mac, n.vxlan, n.vlan) for n in drv.list_nics(name)] == [(first.mac, vni, None)]

    # a second NIC, on another VXLAN segment, hot-plugged into the running guest
    second = NicSpec(device_id=1, mac="02:00:5e:10:00:02", network=bridge, vxlan=vni2)
    assert drv.plug_nic(name, second).vxlan == vni2
    assert drv.plug_nic(name, second).vxlan == vni2  # again: no-op
    with pytest.raises(InvalidVmState):
        drv.plug_nic(name, NicSpec(device_id=2, mac=second.mac))
    targets = nic_targets(name)
    assert set(targets) == {first.mac, second.mac}
    assert set(bridges.ports(vxlan_bridge_name(vni2))) == {targets[second.mac], vxlan_device_name(vni2)}
    assert f"<source bridge='{vxlan_bridge_name(vni2)}'/>" in libvirt_xml(name)
    # in the persistent definition too: a fresh driver reads it back
    fresh = LibvirtDriver(LibvirtConfig(domain_type="qemu", default_bridge=bridge))
    assert fresh.get_vm(name).spec.nics == (first, second)
    fresh.close()

    # unplugged while running: the guest releases it, the tap leaves the bridge
    drv.unplug_nic(name, second.mac)
    assert set(nic_targets(name)) == {first.mac}
    assert bridges.ports(vxlan_bridge_name(vni2)) == [vxlan_device_name(vni2)]
    assert drv.get_vm(name).spec.nics == (first,)
    with pytest.raises(DeviceNotFound):
        drv.unplug_nic(name, second.mac)
    assert drv.get_vm(name).state == VmState.RUNNING

    drv.stop_vm(name, timeout=60)
    assert drv.get_vm(name).spec.nics == (first,)
    drv.undefine_vm(name)
    drv.close()
