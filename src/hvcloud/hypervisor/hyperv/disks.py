"""The Hyper-V driver's disks: drives on the IDE and SCSI controllers, attach, detach, online
resize, reading a VM's disks back, and the image management service for the storage backend.
"""

from __future__ import annotations

import threading
from typing import Literal

from hvcloud import logs
from hvcloud.hypervisor.driver import (
    DeviceNotFound,
    DiskSpec,
    DriverError,
    InvalidVmState,
    NotSupported,
    VmState,
)
from hvcloud.hypervisor.hyperv import jobs
from hvcloud.hypervisor.hyperv.connection import WmiObject
from hvcloud.hypervisor.hyperv.images import ImageManagement
from hvcloud.hypervisor.hyperv.session import (
    Part,
)

log = logs.get(__name__)

IDE_CONTROLLER = "Microsoft:Hyper-V:Emulated IDE Controller"
SCSI_CONTROLLER = "Microsoft:Hyper-V:Synthetic SCSI Controller"
DISK_DRIVE = "Microsoft:Hyper-V:Synthetic Disk Drive"
DVD_DRIVE = "Microsoft:Hyper-V:Synthetic DVD Drive"
VHD = "Microsoft:Hyper-V:Virtual Hard Disk"
ISO = "Microsoft:Hyper-V:Virtual CD/DVD Disk"

_CDROM_IDE = {1: (0, 1), 2: (1, 1), 3: (1, 0)}


def _disk_location(disk: DiskSpec) -> tuple[str, int, int]:
    """(controller kind, controller index, location) for a CloudStack disk slot."""
    if disk.device == "cdrom":
        if disk.slot not in _CDROM_IDE:
            raise NotSupported(f"a DVD drive can use slot 1, 2 or 3, not {disk.slot}")
        return ("ide", *_CDROM_IDE[disk.slot])
    if disk.slot == 0:
        return ("ide", 0, 0)
    if not 1 <= disk.slot <= 63:
        raise NotSupported(f"disk slot {disk.slot} is beyond the SCSI controller's 64 locations")
    return ("scsi", 0, disk.slot)


def _slot_of(kind: str, index: int, location: int) -> int:
    if kind == "scsi":
        return location
    return {(0, 0): 0, (0, 1): 1, (1, 1): 2, (1, 0): 3}.get((index, location), 100 + location)


class DiskOps(Part):
    """Disk drives and their media (os-win: vmutils' disk parts and vhdutils)."""

    def image_management(self, cancel: threading.Event | None = None) -> ImageManagement:
        """Disk creation through Hyper-V's image management service, for the storage backend
        (``cancel``, when given, replaces the driver's own cancellation event for its jobs)."""
        if cancel is None:
            return ImageManagement(self._conn, self._policy)
        return ImageManagement(self._conn, lambda: jobs.JobPolicy(
            timeout=self._job_timeout, cancel=cancel, clock=self._clock))

    def read_disks(self, resources: list[WmiObject]) -> list[DiskSpec]:
        by_path = {r.path.lower(): r for r in resources}
        out: list[DiskSpec] = []
        for drive in resources:
            subtype = drive["ResourceSubType"] if drive.class_name.endswith(
                "ResourceAllocationSettingData") else None
            if subtype not in (DISK_DRIVE, DVD_DRIVE):
                continue
            controller = by_path.get(str(drive["Parent"] or "").lower())
            if controller is None:
                continue
            kind = "ide" if controller["ResourceSubType"] == IDE_CONTROLLER else "scsi"
            index = int(controller["Address"] or 0) if kind == "ide" else 0
            slot = _slot_of(kind, index, int(drive["AddressOnParent"] or 0))
            media = next((r for r in resources if r.class_name == "Msvm_StorageAllocationSettingData"
                          and str(r["Parent"] or "").lower() == drive.path.lower()), None)
            path = str((media["HostResource"] or [None])[0]) if media is not None else None
            if subtype == DVD_DRIVE:
                out.append(DiskSpec(slot=slot, device="cdrom", path=path, format="iso",
                                    read_only=True))
            else:
                fmt: Literal["vhd", "vhdx"] = "vhdx" if (path or "").lower().endswith(
                    ".vhdx") else "vhd"
                out.append(DiskSpec(slot=slot, device="disk", path=path, format=fmt,
                                    boot=slot == 0))
        return sorted(out, key=lambda d: d.slot)

    def attach_disk(self, name: str, disk: DiskSpec) -> None:
        self.attach(self._vm(name), disk)

    def _controller(self, vm: WmiObject, resources: list[WmiObject], kind: str, index: int
                    ) -> WmiObject:
        if kind == "ide":
            for r in resources:
                if r["ResourceSubType"] == IDE_CONTROLLER and str(r["Address"]) == str(index):
                    return r
            raise DriverError(f"VM {vm['ElementName']} has no IDE controller {index}")
        scsi = sorted((r for r in resources if r["ResourceSubType"] == SCSI_CONTROLLER),
                      key=lambda r: str(r["InstanceID"]))
        if scsi:
            return scsi[0]
        if self._state(vm) != VmState.STOPPED:
            raise InvalidVmState("a SCSI controller can only be added to a stopped VM")
        path = self._add_resource(self._vssd(vm), self._default(
            "Msvm_ResourceAllocationSettingData", SCSI_CONTROLLER), "add SCSI controller")
        return self._conn.get(path)

    def attach(self, vm: WmiObject, disk: DiskSpec) -> None:
        name = str(vm["ElementName"])
        if disk.device == "floppy":
            raise NotSupported("floppy drives are not supported on Hyper-V")
        if disk.device == "disk" and disk.format not in ("vhd", "vhdx"):
            raise NotSupported(f"Hyper-V attaches VHD or VHDX disks, not {disk.format}")
        if disk.device == "disk" and not disk.path:
            raise DriverError("a disk needs a path")
        kind, index, location = _disk_location(disk)
        vssd = self._vssd(vm)
        resources = self._resources(vssd)
        controller = self._controller(vm, resources, kind, index)
        drive_type = DVD_DRIVE if disk.device == "cdrom" else DISK_DRIVE
        drive = next((r for r in resources if r["ResourceSubType"] in (DISK_DRIVE, DVD_DRIVE)
                      and str(r["Parent"] or "").lower() == controller.path.lower()
                      and str(r["AddressOnParent"]) == str(location)), None)
        if drive is not None and drive["ResourceSubType"] != drive_type:
            raise DriverError(f"slot {disk.slot} of {name} already holds a different drive")
        media = None
        if drive is not None:
            media = next((r for r in resources if r.class_name ==
                          "Msvm_StorageAllocationSettingData"
                          and str(r["Parent"] or "").lower() == drive.path.lower()), None)
        current = str((media["HostResource"] or [""])[0]) if media is not None else None
        if current is not None and disk.path is not None and current.lower() == disk.path.lower():
            return
        if media is not None:
            if disk.device == "disk":
                raise DriverError(f"slot {disk.slot} of {name} already holds {current}")
            if disk.path is None:
                self._call(self._vsms(), "RemoveResourceSettings", f"eject {current} from {name}",
                           ResourceSettings=[media.path])
                return
            media["HostResource"] = [disk.path]
            self._call(self._vsms(), "ModifyResourceSettings", f"insert {disk.path} into {name}",
                       ResourceSettings=[self._conn.embed(media)])
            return
        created = False
        if drive is None:
            new_drive = self._default("Msvm_ResourceAllocationSettingData", drive_type)
            new_drive["Parent"] = controller.path
            new_drive["AddressOnParent"] = str(location)
            drive_path = self._add_resource(vssd, new_drive, f"add a drive to {name}")
            created = True
        else:
            drive_path = drive.path
        if disk.path is None:
            return
        sasd = self._default("Msvm_StorageAllocationSettingData",
                             ISO if disk.device == "cdrom" else VHD)
        sasd["Parent"] = drive_path
        sasd["HostResource"] = [disk.path]
        try:
            self._add_resource(vssd, sasd, f"attach {disk.path} to {name}")
        except DriverError:
            if created:
                self._call(self._vsms(), "RemoveResourceSettings", f"remove the new drive of {name}",
                           ResourceSettings=[drive_path])
            raise

    def detach_disk(self, name: str, path: str) -> None:
        vm = self._vm(name)
        resources = self._resources(self._vssd(vm))
        media = next((r for r in resources if r.class_name == "Msvm_StorageAllocationSettingData"
                      and any(str(h).lower() == path.lower() for h in r["HostResource"] or [])),
                     None)
        if media is None:
            raise DeviceNotFound(f"{path} is not attached to {name}")
        self._call(self._vsms(), "RemoveResourceSettings", f"detach {path} from {name}",
                   ResourceSettings=[media.path])
        if media["ResourceSubType"] == VHD:
            drive = next((r for r in resources
                          if r.path.lower() == str(media["Parent"] or "").lower()), None)
            if drive is not None:
                self._call(self._vsms(), "RemoveResourceSettings",
                           f"remove the drive of {path} from {name}", ResourceSettings=[drive.path])

    def resize_disk(self, name: str, path: str, size: int) -> int | None:
        """Grow a disk of ``name`` while the VM holds it; None lets the storage backend resize the
        file offline (the VM is off or not here, or the disk is not attached to it).

        ResizeVirtualHardDisk works on a disk a VM holds only for a VHDX on a SCSI controller of a
        running VM (2012 R2 and later), and never on a differencing disk; the root disk sits on
        IDE, so it is resized only while the VM is off.
        """
        vm = self._find_vm(name)
        if vm is None:
            return None
        state = self._state(vm)
        if state == VmState.STOPPED:
            return None
        resources = self._resources(self._vssd(vm))
        media = next((r for r in resources if r.class_name == "Msvm_StorageAllocationSettingData"
                      and any(str(h).lower() == path.lower() for h in r["HostResource"] or [])),
                     None)
        if media is None:
            return None
        if state != VmState.RUNNING:
            raise InvalidVmState(f"cannot resize {path} of {name} while it is {state}: "
                                 "stop the VM or start it")
        if not self._on_scsi(resources, media) or not path.lower().endswith(".vhdx"):
            raise InvalidVmState(f"{path} of {name} can be resized only while the VM is off: "
                                 "Hyper-V resizes a disk online only as a VHDX on SCSI")
        log.info("disk.resize_online", vm=name, path=path, size=size)
        self.image_management().resize(path, size)
        return size

    def _on_scsi(self, resources: list[WmiObject], media: WmiObject) -> bool:
        by_path = {r.path.lower(): r for r in resources}
        drive = by_path.get(str(media["Parent"] or "").lower())
        controller = by_path.get(str(drive["Parent"] or "").lower()) if drive is not None else None
        return controller is not None and controller["ResourceSubType"] == SCSI_CONTROLLER

