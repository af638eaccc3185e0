"""The Hyper-V driver: :class:`~hvcloud.hypervisor.driver.Driver` over WMI v2.

Everything goes through a :class:`~.connection.WmiConnection` for ``root\\virtualization\\v2`` and
one for ``root\\cimv2``; on Windows those are PyMI connections (:meth:`HyperVDriver.connect`), in
tests the strict model. VMs are found by ``ElementName`` among *realized* settings (snapshots and
planned VMs excluded) and then handled by their GUID.

VMs are generation 1, like CloudStack's agent makes them: the root disk on IDE 0:0, DVD drives on
IDE 1 (slot 3 → 1:0, slot 2 → 1:1, slot 1 → 0:1) and data disks on the SCSI controller at their
slot number. What cannot be read back from the hardware (the CloudStack UUID, boot args, metadata)
is kept as JSON in the VM's Notes.

Like os-win's utils classes and nova's Hyper-V driver, the work is split into parts the driver
composes, all over one :class:`~.session.WmiSession` (calls, job waiting, result lookup):
:class:`~.vmops.VmOps`, :class:`~.disks.DiskOps`, :class:`~.networking.NetworkOps`,
:class:`~.snapshots.SnapshotOps`, :class:`~.migration.MigrationOps`, :class:`~.host.HostOps` and
:class:`~.kvp.KvpOps`. This class only wires them and keeps the :class:`Driver` interface.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Literal

from hvcloud.hosttypes import PoolStats
from hvcloud.hypervisor.driver import (
    ConsoleEndpoint,
    DiskSpec,
    Driver,
    HostInfo,
    HostStats,
    NicInfo,
    NicSpec,
    SnapshotInfo,
    Thumbnail,
    VmInfo,
    VmSpec,
    VmStats,
)
from hvcloud.hypervisor.hyperv import jobs, schema
from hvcloud.hypervisor.hyperv.connection import WmiConnection
from hvcloud.hypervisor.hyperv.disks import DiskOps
from hvcloud.hypervisor.hyperv.host import HostOps
from hvcloud.hypervisor.hyperv.images import ImageManagement
from hvcloud.hypervisor.hyperv.kvp import IntegrationService, KvpOps, parse_kvp_items
from hvcloud.hypervisor.hyperv.migration import MigrationOps
from hvcloud.hypervisor.hyperv.networking import VXLAN_REFUSED, NetworkOps, SwitchInfo
from hvcloud.hypervisor.hyperv.session import MIB, WmiSession
from hvcloud.hypervisor.hyperv.snapshots import SnapshotOps
from hvcloud.hypervisor.hyperv.vmops import VmOps
from hvcloud.network.security_groups import NicPolicy

__all__ = ["HyperVDriver", "IntegrationService", "SwitchInfo", "parse_kvp_items"]


class HyperVDriver(Driver):
    name = "hyperv"
    capabilities = {"vlan": None, "vxlan": VXLAN_REFUSED,
                    "nic_hotplug": "generation 1 VMs take NICs only while off (plug_nic into a stopped VM works)",
                    "security_groups": None, "thumbnail": None}
    console_protocol = "rdp"

    def __init__(self, conn: WmiConnection, cimv2: WmiConnection, *,
                 console_host: str | None = None, dom0_min_memory_bytes: int = 2048 * MIB,
                 job_timeout: float = 600.0, migration_timeout: float = 3600.0,
                 clock: jobs.Clock | None = None, cancel: threading.Event | None = None) -> None:
        session = WmiSession(conn, cimv2, job_timeout=job_timeout, clock=clock, cancel=cancel)
        self._session = session
        self._host = HostOps(session, console_host=console_host,
                             dom0_min_memory_bytes=dom0_min_memory_bytes)
        self._disks = DiskOps(session)
        self._network = NetworkOps(session)
        self._kvp = KvpOps(session)
        self._vms = VmOps(session, disks=self._disks, network=self._network, kvp=self._kvp,
                          dom0_min_memory_bytes=dom0_min_memory_bytes)
        self._snapshots = SnapshotOps(session)
        self._migration = MigrationOps(session, vms=self._vms, migration_timeout=migration_timeout)

    @classmethod
    def connect(cls, host: str = ".", **kwargs: Any) -> HyperVDriver:
        """A driver over PyMI (Windows only)."""
        from hvcloud.hypervisor.hyperv.connection import PyMIConnection

        return cls(PyMIConnection(schema.V2, host), PyMIConnection(schema.CIMV2, host), **kwargs)

    def close(self) -> None:
        self._session.cancel.set()

    def image_management(self, cancel: threading.Event | None = None) -> ImageManagement:
        return self._disks.image_management(cancel)

    def host_info(self) -> HostInfo:
        return self._host.host_info()

    def host_stats(self) -> HostStats:
        return self._host.host_stats()

    def local_pool(self) -> PoolStats | None:
        return self._host.local_pool()

    def list_vms(self) -> list[VmInfo]:
        return self._vms.list_vms()

    def get_vm(self, name: str) -> VmInfo:
        return self._vms.get_vm(name)

    def define_vm(self, spec: VmSpec) -> VmInfo:
        return self._vms.define_vm(spec)

    def undefine_vm(self, name: str) -> None:
        self._vms.undefine_vm(name)

    def start_vm(self, name: str) -> None:
        self._vms.start_vm(name)

    def stop_vm(self, name: str, timeout: float, force: bool = False) -> None:
        self._vms.stop_vm(name, timeout, force)

    def reboot_vm(self, name: str, hard: bool = False) -> None:
        self._vms.reboot_vm(name, hard)

    def pause_vm(self, name: str) -> None:
        self._vms.pause_vm(name)

    def resume_vm(self, name: str) -> None:
        self._vms.resume_vm(name)

    def save_vm(self, name: str) -> None:
        self._vms.save_vm(name)

    def restore_vm(self, name: str) -> None:
        self._vms.restore_vm(name)

    def attach_disk(self, name: str, disk: DiskSpec) -> None:
        self._disks.attach_disk(name, disk)

    def detach_disk(self, name: str, path: str) -> None:
        self._disks.detach_disk(name, path)

    def resize_disk(self, name: str, path: str, size: int) -> int | None:
        return self._disks.resize_disk(name, path, size)

    def list_nics(self, name: str) -> list[NicInfo]:
        return self._network.list_nics(name)

    def update_nic(self, name: str, mac: str, *, vlan: int | Literal["keep"] | None = "keep",
                   network: str | Literal["keep"] | None = "keep", enabled: bool | None = None
                   ) -> NicInfo:
        return self._network.update_nic(name, mac, vlan=vlan, network=network, enabled=enabled)

    def add_nic(self, name: str, nic: NicSpec) -> NicInfo:
        return self._network.add_nic(name, nic)

    def remove_nic(self, name: str, mac: str) -> None:
        self._network.remove_nic(name, mac)

    def plug_nic(self, name: str, nic: NicSpec) -> NicInfo:
        """A NIC for a stopped VM (generation 1 VMs take NICs only while off); a running VM is
        InvalidVmState."""
        same = next((n for n in self.list_nics(name) if n.mac.lower() == nic.mac.lower()), None)
        if same is not None:
            return same
        return self._network.add_nic(name, nic)

    def unplug_nic(self, name: str, mac: str) -> None:
        self._network.remove_nic(name, mac)

    def apply_security_groups(self, name: str, policy: NicPolicy) -> None:
        """Extended port ACLs on the NIC's switch port (see hyperv/port_acls.py); they live with the
        VM's configuration, so a stopped VM takes them too and keeps them across restarts."""
        self._network.apply_security_groups(name, policy)

    def security_acls(self, name: str, mac: str) -> list[dict[str, object]]:
        """Hyper-V extra: the NIC's security-group port ACLs."""
        return self._network.security_acls(name, mac)

    def console(self, name: str) -> ConsoleEndpoint:
        return self._host.console(name)

    def vm_stats(self, names: Sequence[str]) -> dict[str, VmStats]:
        return self._vms.vm_stats(names)

    def create_snapshot(self, name: str, snapshot: str, description: str = "",
                        with_memory: bool = False) -> SnapshotInfo:
        return self._snapshots.create_snapshot(name, snapshot, description, with_memory)

    def list_snapshots(self, name: str) -> list[SnapshotInfo]:
        return self._snapshots.list_snapshots(name)

    def revert_snapshot(self, name: str, snapshot: str) -> None:
        self._snapshots.revert_snapshot(name, snapshot)

    def delete_snapshot(self, name: str, snapshot: str) -> None:
        self._snapshots.delete_snapshot(name, snapshot)

    def migrate_vm(self, name: str, destination: str, *, with_storage: bool = False,
                   live: bool = True) -> None:
        self._migration.migrate_vm(name, destination, with_storage=with_storage, live=live)

    def export_vm(self, name: str, directory: str, *, copy_storage: bool = True) -> str:
        return self._migration.export_vm(name, directory, copy_storage=copy_storage)

    def import_vm(self, config_file: str, *, new_identity: bool = True,
                  snapshot_folder: str | None = None) -> VmInfo:
        return self._migration.import_vm(config_file, new_identity=new_identity, snapshot_folder=snapshot_folder)

    def list_switches(self) -> list[SwitchInfo]:
        return self._network.list_switches()

    def create_switch(self, name: str, kind: Literal["external", "internal", "private"],
                      adapter: str | None = None) -> SwitchInfo:
        return self._network.create_switch(name, kind, adapter)

    def delete_switch(self, name: str) -> None:
        self._network.delete_switch(name)

    def host_kvp(self, name: str) -> dict[str, str]:
        return self._kvp.host_kvp(name)

    def guest_kvp(self, name: str, *, intrinsic: bool = False) -> dict[str, str]:
        return self._kvp.guest_kvp(name, intrinsic=intrinsic)

    def write_kvp(self, name: str, key: str, value: str) -> None:
        self._kvp.write_kvp(name, key, value)

    def delete_kvp(self, name: str, key: str) -> None:
        self._kvp.delete_kvp(name, key)

    def guest_ips(self, name: str) -> dict[str, list[str]]:
        return self._kvp.guest_ips(name)

    def integration_services(self, name: str) -> list[IntegrationService]:
        return self._kvp.integration_services(name)

    def screenshot(self, name: str, width: int, height: int) -> Thumbnail:
        return self._kvp.screenshot(name, width, height)
