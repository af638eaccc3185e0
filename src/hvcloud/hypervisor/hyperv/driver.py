"""The Hyper-V driver: :class:`~hvcloud.hypervisor.driver.Driver` over WMI v2.

Everything goes through a :class:`~.connection.WmiConnection` for ``root\\virtualization\\v2`` and
one for ``root\\cimv2``; on Windows those are PyMI connections (:meth:`HyperVDriver.connect`), in
tests the strict model. VMs are found by ``ElementName`` among *realized* settings (snapshots and
planned VMs excluded) and then handled by their GUID.

VMs are generation 1, like CloudStack's agent makes them: the root disk on IDE 0:0, DVD drives on
IDE 1 (slot 3 → 1:0, slot 2 → 1:1, slot 1 → 0:1) and data disks on the SCSI controller at their
slot number. What cannot be read back from the hardware (the CloudStack UUID, boot args, metadata)
is kept as JSON in the VM's Notes.
"""

from __future__ import annotations

import calendar
import datetime
import ipaddress
import json
import ntpath
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hvcloud import logs
from hvcloud.hosttypes import HostNic, PoolStats
from hvcloud.hypervisor.driver import (
    ConsoleEndpoint,
    DeviceNotFound,
    DiskSpec,
    Driver,
    DriverError,
    HostInfo,
    HostStats,
    InsufficientCapacity,
    InvalidVmState,
    NicInfo,
    NicSpec,
    NotSupported,
    SnapshotInfo,
    SnapshotNotFound,
    VmAlreadyExists,
    VmInfo,
    VmNotFound,
    VmSpec,
    VmState,
    VmStats,
)
from hvcloud.hypervisor.hyperv import cimxml, jobs, png, schema
from hvcloud.hypervisor.hyperv.connection import WmiConnection, WmiObject
from hvcloud.hypervisor.hyperv.errors import (
    HyperVError,
    HyperVJobCancelled,
    HyperVJobTimeout,
    WmiNotFound,
)
from hvcloud.hypervisor.hyperv.images import ImageManagement
from hvcloud.hypervisor.hyperv.states import vm_state_of

log = logs.get(__name__)

MIB = 1024 * 1024
RDP_PORT = 2179
REALIZED = "Microsoft:Hyper-V:System:Realized"
NOTES_MARK = "hvcloud:"
USERDATA_KVP = "cloudstack-vm-userdata"
USER_DATA_KVP = "hvcloud-user-data"
KVP_NAME_MAX, KVP_DATA_MAX, KVP_ITEMS_MAX = 256, 1024, 1024

IDE_CONTROLLER = "Microsoft:Hyper-V:Emulated IDE Controller"
SCSI_CONTROLLER = "Microsoft:Hyper-V:Synthetic SCSI Controller"
DISK_DRIVE = "Microsoft:Hyper-V:Synthetic Disk Drive"
DVD_DRIVE = "Microsoft:Hyper-V:Synthetic DVD Drive"
VHD = "Microsoft:Hyper-V:Virtual Hard Disk"
ISO = "Microsoft:Hyper-V:Virtual CD/DVD Disk"
SYNTHETIC_NIC = "Microsoft:Hyper-V:Synthetic Ethernet Port"
EMULATED_NIC = "Microsoft:Hyper-V:Emulated Ethernet Port"
ETHERNET_CONNECTION = "Microsoft:Hyper-V:Ethernet Connection"

_NIC_CLASS = {"synthetic": ("Msvm_SyntheticEthernetPortSettingData", SYNTHETIC_NIC),
              "emulated": ("Msvm_EmulatedEthernetPortSettingData", EMULATED_NIC)}
_CDROM_IDE = {1: (0, 1), 2: (1, 1), 3: (1, 0)}
_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-]?[0-9A-Fa-f]{2}){5}$")
_IC_STATUS = {2: "OK", 3: "Degraded", 6: "Error", 7: "Non-Recoverable Error", 12: "No Contact",
              13: "Lost Communication"}

# RequestStateChange values (V2)
RSC_START, RSC_OFF, RSC_SAVE, RSC_PAUSE, RSC_RESET = 2, 3, 6, 9, 11
MIGRATE_VM, MIGRATE_VM_AND_STORAGE = 32768, 32771
TRANSPORT_TCP = 5
SNAPSHOT_FULL = 2
#: Msvm_VirtualSystemSettingData.UserSnapshotType: standard checkpoints keep the memory (saved
#: state); production ones (the default since Server 2016) do not, and revert to a VM that is off
USER_SNAPSHOT_PRODUCTION, USER_SNAPSHOT_STANDARD = 3, 5
#: ReturnValue "invalid state" of a power change: the VM is (already) in the requested state
ALREADY_IN_STATE = 32775
#: os-win retries resource and feature setting changes (the host sometimes refuses one briefly)
RETRIED_METHODS = frozenset({"AddResourceSettings", "ModifyResourceSettings",
                             "RemoveResourceSettings", "AddFeatureSettings",
                             "ModifyFeatureSettings", "RemoveFeatureSettings"})
RETRY_ATTEMPTS = 3
RETRY_DELAY = 1.0


@dataclass(frozen=True)
class SwitchInfo:
    name: str
    kind: Literal["external", "internal", "private"]
    id: str
    adapter: str | None = None


@dataclass(frozen=True)
class IntegrationService:
    name: str
    enabled: bool
    status: str


def _mac_hex(mac: str) -> str:
    if not _MAC.match(mac):
        raise DriverError(f"not a MAC address: {mac!r}")
    return re.sub(r"[:-]", "", mac).upper()


def _mac_colons(hex12: str) -> str:
    h = hex12.lower()
    return ":".join(h[i:i + 2] for i in range(0, 12, 2))


def _cim_time(value: object) -> float:
    """Seconds since the epoch of a CIM datetime property.

    PyMI hands CIM datetimes back as ``datetime.datetime`` (a naive one is taken as UTC); the DMTF
    text form (``yyyymmddHHMMSS.mmmmmm+UUU``) is what embedded instances and the ``wmi`` module
    carry, so it is still read. Anything else counts as unknown (0).
    """
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.timestamp()
    if not isinstance(value, str) or len(value) < 14:
        return 0.0
    try:
        seconds = float(calendar.timegm(time.strptime(value[:14], "%Y%m%d%H%M%S")))
    except ValueError:
        return 0.0
    offset = value[21:25]
    if len(offset) == 4 and offset[0] in "+-" and offset[1:].isdigit():
        seconds -= int(offset) * 60
    return seconds


def _export_snapshots(config_file: str) -> str:
    """``<export>\\Snapshots`` for ``<export>\\Virtual Machines\\<id>.vmcx``."""
    return ntpath.join(ntpath.dirname(ntpath.dirname(config_file)), "Snapshots")


def _path_of(obj: WmiObject | None) -> str | None:
    return obj.path if obj is not None else None


def _memory_units(memory_mib: int) -> int:
    """Hyper-V allocates memory in 2 MB units and refuses an odd number of megabytes."""
    return memory_mib + memory_mib % 2


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


class HyperVDriver(Driver):
    name = "hyperv"
    capabilities = {"vlan": None}
    console_protocol = "rdp"

    def __init__(self, conn: WmiConnection, cimv2: WmiConnection, *,
                 console_host: str | None = None, dom0_min_memory_bytes: int = 2048 * MIB,
                 job_timeout: float = 600.0, migration_timeout: float = 3600.0,
                 clock: jobs.Clock | None = None, cancel: threading.Event | None = None) -> None:
        self._conn = conn
        self._cimv2 = cimv2
        self._console_host = console_host
        self._dom0_min = dom0_min_memory_bytes
        self._job_timeout = job_timeout
        self._migration_timeout = migration_timeout
        self._clock = clock or jobs.Clock()
        self._cancel = cancel or threading.Event()
        self._services: dict[str, WmiObject] = {}
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, host: str = ".", **kwargs: Any) -> HyperVDriver:
        """A driver over PyMI (Windows only)."""
        from hvcloud.hypervisor.hyperv.connection import PyMIConnection

        return cls(PyMIConnection(schema.V2, host), PyMIConnection(schema.CIMV2, host), **kwargs)

    def close(self) -> None:
        self._cancel.set()

    # ------------------------------------------------------------------ plumbing

    def _policy(self, timeout: float | None = None) -> jobs.JobPolicy:
        return jobs.JobPolicy(timeout=timeout or self._job_timeout, cancel=self._cancel,
                              clock=self._clock)

    def _call(self, obj: WmiObject, method: str, operation: str, *,
              timeout: float | None = None, success: Sequence[int] = (0,),
              **params: Any) -> tuple[dict[str, Any], WmiObject | None]:
        attempts = RETRY_ATTEMPTS if method in RETRIED_METHODS else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._call_once(obj, method, operation, timeout, success, params)
            except (HyperVJobTimeout, HyperVJobCancelled):
                raise
            except HyperVError as exc:
                if attempt == attempts:
                    raise
                log.warning("hyperv_call_retried", operation=operation, attempt=attempt,
                            code=exc.code, error=exc.text)
                self._clock.sleep(RETRY_DELAY * attempt)
        raise AssertionError("unreachable")

    def _call_once(self, obj: WmiObject, method: str, operation: str, timeout: float | None,
                   success: Sequence[int], params: dict[str, Any]
                   ) -> tuple[dict[str, Any], WmiObject | None]:
        out = self._conn.invoke(obj, method, **params)
        job = jobs.check(self._conn, out, operation, self._policy(timeout), success=success)
        return out, job

    def image_management(self, cancel: threading.Event | None = None) -> ImageManagement:
        """Disk creation through Hyper-V's image management service, for the storage backend
        (``cancel``, when given, replaces the driver's own cancellation event for its jobs)."""
        if cancel is None:
            return ImageManagement(self._conn, self._policy)
        return ImageManagement(self._conn, lambda: jobs.JobPolicy(
            timeout=self._job_timeout, cancel=cancel, clock=self._clock))

    def _service(self, class_name: str) -> WmiObject:
        with self._lock:
            if class_name not in self._services:
                found = self._conn.query(class_name)
                if not found:
                    raise DriverError(f"{class_name} not found: is the Hyper-V role installed?")
                self._services[class_name] = found[0]
            return self._services[class_name]

    def _vsms(self) -> WmiObject:
        return self._service("Msvm_VirtualSystemManagementService")

    def _default(self, class_name: str, subtype: str) -> WmiObject:
        for obj in self._conn.query(class_name, {"ResourceSubType": subtype}):
            if str(obj["InstanceID"]).endswith("\\Default"):
                return obj
        raise DriverError(f"no default {class_name} for {subtype}")

    def _resulting(self, out: dict[str, Any], key: str, job: WmiObject | None,
                   result_class: str, lookup: Callable[[], str | None] | None = None) -> str:
        """The path of what a method made: its reference out-parameter, else the finished job's
        affected element, else ``lookup`` (how os-win finds it: by name, after the job).

        After a 4096 answer a host need not fill the out-parameter, nor link the result to the
        job, so neither alone is enough.
        """
        value = out.get(key)
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, str) and value:
            return value
        if job is not None:
            found = self._conn.associators(job, assoc_class="Msvm_AffectedJobElement",
                                           result_class=result_class)
            if found:
                return found[0].path
        path = lookup() if lookup is not None else None
        if path:
            log.info("result_looked_up", key=key, path=path)
            return path
        raise DriverError(f"Hyper-V did not return the {key}")

    # ------------------------------------------------------------------ lookups

    def _find_vssd(self, name: str) -> WmiObject | None:
        found = self._conn.query("Msvm_VirtualSystemSettingData",
                                 {"ElementName": name, "VirtualSystemType": REALIZED})
        if len(found) > 1:
            raise DriverError(f"{len(found)} Hyper-V VMs are named {name}; rename the extras")
        return found[0] if found else None

    def _find_vm(self, name: str) -> WmiObject | None:
        vssd = self._find_vssd(name)
        if vssd is None:
            return None
        found = self._conn.query("Msvm_ComputerSystem", {"Name": vssd["VirtualSystemIdentifier"]})
        return found[0] if found else None

    def _vm(self, name: str) -> WmiObject:
        vm = self._find_vm(name)
        if vm is None:
            raise VmNotFound(name)
        return vm

    def _vssd(self, vm: WmiObject) -> WmiObject:
        for sd in self._conn.associators(vm, assoc_class="Msvm_SettingsDefineState",
                                         result_class="Msvm_VirtualSystemSettingData"):
            if sd["VirtualSystemType"] == REALIZED:
                return sd
        raise DriverError(f"VM {vm['ElementName']} has no realized settings")

    def _resources(self, vssd: WmiObject, result_class: str = "CIM_ResourceAllocationSettingData"
                   ) -> list[WmiObject]:
        return self._conn.associators(vssd, assoc_class="Msvm_VirtualSystemSettingDataComponent",
                                      result_class=result_class)

    def _state(self, vm: WmiObject) -> VmState:
        return vm_state_of(vm["EnabledState"])

    def _refresh(self, vm: WmiObject) -> WmiObject:
        try:
            return self._conn.get(vm.path)
        except WmiNotFound as exc:
            raise VmNotFound(str(vm["ElementName"])) from exc

    # ------------------------------------------------------------------ host

    def host_info(self) -> HostInfo:
        cs = self._cimv2.query("Win32_ComputerSystem")
        os_ = self._cimv2.query("Win32_OperatingSystem")
        cpus = self._cimv2.query("Win32_Processor")
        if not cs or not os_ or not cpus:
            raise DriverError("Win32 host information is missing")
        version = ".".join(str(os_[0]["Version"]).split(".")[:2])
        nics = tuple(
            HostNic(name=str(n["Description"]), ip=str((n["IPAddress"] or [""])[0]),
                    netmask=str((n["IPSubnet"] or [""])[0]), mac=str(n["MACAddress"]).lower())
            for n in self._cimv2.query("Win32_NetworkAdapterConfiguration", {"IPEnabled": True}))
        return HostInfo(
            hostname=str(cs[0]["DNSHostName"] or cs[0]["Name"]), hypervisor_type="Hyperv",
            hypervisor_version=version, cpu_sockets=len(cpus),
            cpus=sum(int(c["NumberOfCores"]) for c in cpus),
            cpu_mhz=int(cpus[0]["MaxClockSpeed"]),
            memory_bytes=int(os_[0]["TotalVisibleMemorySize"]) * 1024, nics=nics,
            dom0_min_memory_bytes=self._dom0_min)

    def host_stats(self) -> HostStats:
        os_ = self._cimv2.query("Win32_OperatingSystem")[0]
        total = self._cimv2.query("Win32_PerfFormattedData_Counters_ProcessorInformation",
                                  {"Name": "_Total"})
        idle = float(total[0]["PercentIdleTime"]) if total else 100.0
        return HostStats(cpu_utilization=max(0.0, 100.0 - idle),
                         total_memory_kb=int(os_["TotalVisibleMemorySize"]),
                         free_memory_kb=int(os_["FreePhysicalMemory"]))

    def local_pool(self) -> PoolStats | None:
        settings = self._conn.query("Msvm_VirtualSystemManagementServiceSettingData")
        if not settings:
            return None
        path = str(settings[0]["DefaultVirtualHardDiskPath"] or "")
        if len(path) < 2 or path[1] != ":":
            return None
        disks = self._cimv2.query("Win32_LogicalDisk", {"DeviceID": path[:2].upper()})
        if not disks:
            return None
        return PoolStats(path=path, capacity_bytes=int(disks[0]["Size"]),
                         available_bytes=int(disks[0]["FreeSpace"]))

    # ------------------------------------------------------------------ reading VMs

    def _notes_meta(self, vssd: WmiObject) -> dict[str, Any]:
        for line in vssd["Notes"] or []:
            if isinstance(line, str) and line.startswith(NOTES_MARK):
                try:
                    meta = json.loads(line[len(NOTES_MARK):])
                except ValueError:
                    return {}
                return meta if isinstance(meta, dict) else {}
        return {}

    def _info(self, vm: WmiObject, vssd: WmiObject) -> VmInfo:
        resources = self._resources(vssd)
        vcpus, memory = 0, 0
        for r in resources:
            if r.class_name == "Msvm_ProcessorSettingData":
                vcpus = int(r["VirtualQuantity"] or 0)
            elif r.class_name == "Msvm_MemorySettingData":
                memory = int(r["VirtualQuantity"] or 0)
        meta = self._notes_meta(vssd)
        asked = meta.get("memory_mib")
        if isinstance(asked, int) and _memory_units(asked) == memory:
            memory = asked  # read back what was asked for, not the 2 MB rounding of it
        spec = VmSpec(
            name=str(vm["ElementName"]), vcpus=vcpus, memory_mib=memory,
            uuid=meta.get("uuid"), cpu_mhz=meta.get("cpu_mhz"),
            disks=tuple(self._disks(resources)),
            nics=tuple(NicSpec(device_id=n.device_id, mac=n.mac, network=n.network, vlan=n.vlan,
                               enabled=n.enabled, model=m)
                       for n, m in self._nics(resources)),
            boot_args=str(meta.get("boot_args", "")), os_type=meta.get("os_type"),
            metadata=dict(meta.get("metadata", {})))
        return VmInfo(name=spec.name, state=self._state(vm), spec=spec, uuid=str(vm["Name"]))

    def _disks(self, resources: list[WmiObject]) -> list[DiskSpec]:
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

    def _nics(self, resources: list[WmiObject]) -> list[tuple[NicInfo, Literal["synthetic",
                                                                               "emulated"]]]:
        ports = [r for r in resources if r.class_name in (
            "Msvm_SyntheticEthernetPortSettingData", "Msvm_EmulatedEthernetPortSettingData")]
        allocs = {str(a["Parent"] or "").lower(): a for a in resources
                  if a.class_name == "Msvm_EthernetPortAllocationSettingData"}
        out: list[tuple[NicInfo, Literal["synthetic", "emulated"]]] = []
        for index, port in enumerate(ports):
            name = str(port["ElementName"] or "")
            device_id = int(name[3:]) if re.fullmatch(r"nic\d{1,4}", name) else index
            alloc = allocs.get(port.path.lower())
            network, vlan, enabled = None, None, False
            if alloc is not None:
                enabled = alloc["EnabledState"] in (None, 2)
                network = self._switch_name(alloc)
                vlan = self._vlan_of(alloc)
            model: Literal["synthetic", "emulated"] = (
                "synthetic" if port.class_name == "Msvm_SyntheticEthernetPortSettingData"
                else "emulated")
            out.append((NicInfo(mac=_mac_colons(str(port["Address"] or "0" * 12)),
                                device_id=device_id, network=network, vlan=vlan,
                                enabled=enabled), model))
        return sorted(out, key=lambda pair: pair[0].device_id)

    def _switch_name(self, alloc: WmiObject) -> str | None:
        for path in alloc["HostResource"] or []:
            try:
                return str(self._conn.get(path)["ElementName"])
            except WmiNotFound:
                return None
        return None

    def _vlan_setting(self, alloc: WmiObject) -> WmiObject | None:
        found = self._conn.associators(alloc, assoc_class="Msvm_EthernetPortSettingDataComponent",
                                       result_class="Msvm_EthernetSwitchPortVlanSettingData")
        return found[0] if found else None

    def _vlan_of(self, alloc: WmiObject) -> int | None:
        sd = self._vlan_setting(alloc)
        if sd is None or sd["OperationMode"] != 1:
            return None
        return int(sd["AccessVlanId"]) or None

    def list_vms(self) -> list[VmInfo]:
        systems = {str(vm["Name"]).lower(): vm for vm in self._conn.query("Msvm_ComputerSystem")}
        out = []
        for vssd in self._conn.query("Msvm_VirtualSystemSettingData",
                                     {"VirtualSystemType": REALIZED}):
            vm = systems.get(str(vssd["VirtualSystemIdentifier"]).lower())
            if vm is not None:
                out.append(self._info(vm, vssd))
        return out

    def get_vm(self, name: str) -> VmInfo:
        vm = self._vm(name)
        return self._info(vm, self._vssd(vm))

    # ------------------------------------------------------------------ define / undefine

    def define_vm(self, spec: VmSpec) -> VmInfo:
        if self._find_vssd(spec.name) is not None:
            raise VmAlreadyExists(spec.name)
        total = int(self._cimv2.query("Win32_OperatingSystem")[0]["TotalVisibleMemorySize"]) * 1024
        if spec.memory_mib * MIB > total - self._dom0_min:
            raise InsufficientCapacity(f"{spec.memory_mib} MiB is more than this host can give")
        if spec.vcpus < 1 or spec.memory_mib < 32:
            raise DriverError("a VM needs at least 1 vCPU and 32 MiB")
        if spec.user_data is not None and len(spec.user_data) > KVP_DATA_MAX:
            raise NotSupported(f"user data over {KVP_DATA_MAX} characters does not fit in KVP")
        vssd = self._conn.new_instance("Msvm_VirtualSystemSettingData")
        vssd["ElementName"] = spec.name
        vssd["VirtualSystemSubType"] = "Microsoft:Hyper-V:SubType:1"
        vssd["AutomaticStartupAction"] = 2
        vssd["AutomaticShutdownAction"] = 4
        meta = {"uuid": spec.uuid, "cpu_mhz": spec.cpu_mhz, "boot_args": spec.boot_args,
                "memory_mib": spec.memory_mib,
                "os_type": spec.os_type, "metadata": dict(spec.metadata)}
        vssd["Notes"] = ["Created by hvcloud, do not edit.",
                         NOTES_MARK + json.dumps(meta, separators=(",", ":"))]
        out, job = self._call(self._vsms(), "DefineSystem", f"define VM {spec.name}",
                              SystemSettings=self._conn.embed(vssd))
        vm = self._conn.get(self._resulting(out, "ResultingSystem", job, "Msvm_ComputerSystem",
                                            lambda: _path_of(self._find_vm(spec.name))))
        try:
            self._configure(vm, spec)
        except BaseException:
            log.warning("defining a VM failed, removing the half-made VM", vm=spec.name)
            try:
                self._call(self._vsms(), "DestroySystem", f"remove VM {spec.name}",
                           AffectedSystem=vm.path)
            except DriverError:
                log.exception("could not remove the half-made VM", vm=spec.name)
            raise
        return self.get_vm(spec.name)

    def _configure(self, vm: WmiObject, spec: VmSpec) -> None:
        vssd = self._vssd(vm)
        changes = []
        memory_mib = _memory_units(spec.memory_mib)
        if memory_mib != spec.memory_mib:
            log.info("memory_rounded_up", vm=spec.name, requested_mib=spec.memory_mib,
                     given_mib=memory_mib)
        for r in self._resources(vssd):
            if r.class_name == "Msvm_MemorySettingData":
                r["DynamicMemoryEnabled"] = False
                for prop in ("VirtualQuantity", "Reservation", "Limit"):
                    r[prop] = memory_mib
                changes.append(self._conn.embed(r))
            elif r.class_name == "Msvm_ProcessorSettingData":
                r["VirtualQuantity"] = spec.vcpus
                r["Limit"] = 100000
                r["Reservation"] = 0
                changes.append(self._conn.embed(r))
        self._call(self._vsms(), "ModifyResourceSettings", f"set CPU and memory of {spec.name}",
                   ResourceSettings=changes)
        self._add_resource(vssd, self._default("Msvm_ResourceAllocationSettingData",
                                               SCSI_CONTROLLER), f"add SCSI controller to {spec.name}")
        for disk in spec.disks:
            self._attach(vm, disk)
        for nic in sorted(spec.nics, key=lambda n: n.device_id):
            self._add_nic(vm, vssd, nic)
        if spec.boot_args:
            self.write_kvp(spec.name, USERDATA_KVP, spec.boot_args[:KVP_DATA_MAX])
        if spec.user_data:
            self.write_kvp(spec.name, USER_DATA_KVP, spec.user_data)

    def _add_resource(self, vssd: WmiObject, rasd: WmiObject, operation: str) -> str:
        out, job = self._call(self._vsms(), "AddResourceSettings", operation,
                              AffectedConfiguration=vssd.path,
                              ResourceSettings=[self._conn.embed(rasd)])
        return self._resulting(out, "ResultingResourceSettings", job,
                               "CIM_ResourceAllocationSettingData")

    def undefine_vm(self, name: str) -> None:
        vm = self._find_vm(name)
        if vm is None:
            return
        if self._state(vm) not in (VmState.STOPPED, VmState.SAVED):
            self._request(vm, RSC_OFF, f"turn off {name}")
        self._call(self._vsms(), "DestroySystem", f"remove VM {name}", AffectedSystem=vm.path)

    # ------------------------------------------------------------------ power

    def _request(self, vm: WmiObject, state: int, operation: str) -> None:
        # like os-win, take 32775 (invalid state) as done: the VM already is where it was sent
        self._call(vm, "RequestStateChange", operation, RequestedState=state,
                   success=(0, ALREADY_IN_STATE))

    def start_vm(self, name: str) -> None:
        vm = self._vm(name)
        state = self._state(vm)
        if state in (VmState.RUNNING, VmState.STARTING, VmState.RESUMING):
            return
        if state not in (VmState.STOPPED, VmState.SAVED):
            raise InvalidVmState(f"cannot start {name} while it is {state}")
        try:
            self._request(vm, RSC_START, f"start {name}")
        except HyperVError as exc:
            if exc.code == 32778 or "not enough memory" in exc.text.lower():
                raise InsufficientCapacity(str(exc)) from exc
            raise

    def _shutdown_component(self, vm: WmiObject) -> WmiObject | None:
        found = self._conn.associators(vm, assoc_class="Msvm_SystemDevice",
                                       result_class="Msvm_ShutdownComponent")
        if found and found[0]["EnabledState"] == 2:
            return found[0]
        return None

    def stop_vm(self, name: str, timeout: float, force: bool = False) -> None:
        vm = self._vm(name)
        if self._state(vm) == VmState.STOPPED:
            return
        if not force and self._state(vm) == VmState.RUNNING:
            self._graceful_shutdown(vm, timeout)
            vm = self._refresh(vm)
            if self._state(vm) == VmState.STOPPED:
                return
        if self._state(vm) in (VmState.STOPPING, VmState.STARTING, VmState.SAVING,
                               VmState.PAUSING, VmState.RESUMING, VmState.SNAPSHOTTING):
            vm = self._wait_settled(vm, self._job_timeout)
            if self._state(vm) == VmState.STOPPED:
                return
        self._request(vm, RSC_OFF, f"turn off {name}")

    def _graceful_shutdown(self, vm: WmiObject, timeout: float) -> None:
        component = self._shutdown_component(vm)
        if component is None:
            log.info("no running shutdown integration service", vm=vm["ElementName"])
            return
        out = self._conn.invoke(component, "InitiateShutdown", Force=False,
                                Reason="hvcloud: stop requested")
        if out.get("ReturnValue") != 0:
            log.info("guest shutdown refused", vm=vm["ElementName"], code=out.get("ReturnValue"))
            return
        deadline = self._clock.now() + timeout
        interval = 0.2
        while self._clock.now() < deadline:
            if self._state(self._refresh(vm)) == VmState.STOPPED:
                return
            self._clock.sleep(min(interval, max(deadline - self._clock.now(), 0.0)))
            interval = min(interval * 2, 2.0)

    def _wait_settled(self, vm: WmiObject, timeout: float) -> WmiObject:
        deadline = self._clock.now() + timeout
        while self._clock.now() < deadline:
            vm = self._refresh(vm)
            if self._state(vm) in (VmState.RUNNING, VmState.STOPPED, VmState.SAVED,
                                   VmState.PAUSED):
                return vm
            self._clock.sleep(0.5)
        return vm

    def reboot_vm(self, name: str, hard: bool = False) -> None:
        vm = self._vm(name)
        if self._state(vm) != VmState.RUNNING:
            raise InvalidVmState(f"cannot reboot {name} while it is {self._state(vm)}")
        if not hard:
            component = self._shutdown_component(vm)
            if component is not None:
                out = self._conn.invoke(component, "InitiateReboot", Force=False,
                                        Reason="hvcloud: reboot requested")
                if out.get("ReturnValue") == 0:
                    return
        self._request(vm, RSC_RESET, f"reset {name}")

    def pause_vm(self, name: str) -> None:
        vm = self._vm(name)
        state = self._state(vm)
        if state == VmState.PAUSED:
            return
        if state != VmState.RUNNING:
            raise InvalidVmState(f"cannot pause {name} while it is {state}")
        self._request(vm, RSC_PAUSE, f"pause {name}")

    def resume_vm(self, name: str) -> None:
        vm = self._vm(name)
        state = self._state(vm)
        if state == VmState.RUNNING:
            return
        if state != VmState.PAUSED:
            raise InvalidVmState(f"cannot resume {name} while it is {state}")
        self._request(vm, RSC_START, f"resume {name}")

    def save_vm(self, name: str) -> None:
        vm = self._vm(name)
        state = self._state(vm)
        if state == VmState.SAVED:
            return
        if state not in (VmState.RUNNING, VmState.PAUSED):
            raise InvalidVmState(f"cannot save {name} while it is {state}")
        self._request(vm, RSC_SAVE, f"save {name}")

    def restore_vm(self, name: str) -> None:
        vm = self._vm(name)
        state = self._state(vm)
        if state != VmState.SAVED:
            raise InvalidVmState(f"cannot restore {name} while it is {state}")
        self._request(vm, RSC_START, f"restore {name}")

    # ------------------------------------------------------------------ disks

    def attach_disk(self, name: str, disk: DiskSpec) -> None:
        self._attach(self._vm(name), disk)

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

    def _attach(self, vm: WmiObject, disk: DiskSpec) -> None:
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

    # ------------------------------------------------------------------ NICs

    def _switch(self, network: str | None) -> WmiObject | None:
        if network is not None:
            found = self._conn.query("Msvm_VirtualEthernetSwitch", {"ElementName": network})
            if not found:
                raise DriverError(f"virtual switch {network!r} not found")
            return found[0]
        for info in self.list_switches():
            if info.kind == "external":
                return self._conn.query("Msvm_VirtualEthernetSwitch", {"Name": info.id})[0]
        return None

    def _add_nic(self, vm: WmiObject, vssd: WmiObject, nic: NicSpec) -> None:
        class_name, subtype = _NIC_CLASS[nic.model]
        port = self._default(class_name, subtype)
        port["ElementName"] = f"nic{nic.device_id}"
        port["Address"] = _mac_hex(nic.mac)
        port["StaticMacAddress"] = True
        if nic.model == "synthetic":
            port["VirtualSystemIdentifiers"] = ["{" + str(uuid.uuid4()).upper() + "}"]
        port_path = self._add_resource(vssd, port, f"add NIC {nic.mac} to {vm['ElementName']}")
        switch = self._switch(nic.network)
        if switch is None:
            return
        alloc_path = self._connect(vssd, port_path, switch, nic.enabled)
        alloc = self._conn.get(alloc_path)
        if nic.vlan is not None:
            self._set_vlan(alloc, nic.vlan)
        if nic.rate_mbps:
            bw = self._conn.new_instance("Msvm_EthernetSwitchPortBandwidthSettingData")
            bw["Limit"] = nic.rate_mbps * 1_000_000
            self._call(self._vsms(), "AddFeatureSettings", f"limit NIC {nic.mac}",
                       AffectedConfiguration=alloc.path, FeatureSettings=[self._conn.embed(bw)])

    def _connect(self, vssd: WmiObject, port_path: str, switch: WmiObject, enabled: bool) -> str:
        alloc = self._default("Msvm_EthernetPortAllocationSettingData", ETHERNET_CONNECTION)
        alloc["Parent"] = port_path
        alloc["HostResource"] = [switch.path]
        alloc["EnabledState"] = 2 if enabled else 3
        return self._add_resource(vssd, alloc, f"connect a NIC to {switch['ElementName']}")

    def _set_vlan(self, alloc: WmiObject, vlan: int | None) -> None:
        """Set or clear the port's access VLAN.

        A host refuses ``ModifyFeatureSettings`` on a port's VLAN setting (os-win therefore removes
        the old setting and adds a new one), so a change is a remove followed by an add.
        """
        if vlan is not None and not 1 <= vlan <= 4094:
            raise DriverError(f"VLAN {vlan} is outside 1-4094")
        current = self._vlan_setting(alloc)
        if current is not None:
            if vlan is not None and current["OperationMode"] == 1 and \
                    current["AccessVlanId"] == vlan:
                return
            self._call(self._vsms(), "RemoveFeatureSettings", "remove VLAN",
                       FeatureSettings=[current.path])
            log.info("vlan_removed", port=alloc["InstanceID"], vlan=current["AccessVlanId"])
        if vlan is None:
            return
        sd = self._conn.new_instance("Msvm_EthernetSwitchPortVlanSettingData")
        sd["OperationMode"] = 1
        sd["AccessVlanId"] = vlan
        self._call(self._vsms(), "AddFeatureSettings", f"set VLAN {vlan}",
                   AffectedConfiguration=alloc.path, FeatureSettings=[self._conn.embed(sd)])
        log.info("vlan_set", port=alloc["InstanceID"], vlan=vlan)

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

    def list_nics(self, name: str) -> list[NicInfo]:
        vm = self._vm(name)
        return [n for n, _ in self._nics(self._resources(self._vssd(vm)))]

    def _port_by_mac(self, resources: list[WmiObject], mac: str) -> WmiObject:
        wanted = _mac_hex(mac)
        for r in resources:
            if r.class_name in ("Msvm_SyntheticEthernetPortSettingData",
                                "Msvm_EmulatedEthernetPortSettingData") and \
                    str(r["Address"] or "").upper() == wanted:
                return r
        raise DeviceNotFound(f"no NIC with MAC {mac}")

    def update_nic(self, name: str, mac: str, *, vlan: int | Literal["keep"] | None = "keep",
                   network: str | Literal["keep"] | None = "keep", enabled: bool | None = None
                   ) -> NicInfo:
        vm = self._vm(name)
        vssd = self._vssd(vm)
        resources = self._resources(vssd)
        port = self._port_by_mac(resources, mac)
        alloc = next((r for r in resources if r.class_name == "Msvm_EthernetPortAllocationSettingData"
                      and str(r["Parent"] or "").lower() == port.path.lower()), None)
        if alloc is None and (network != "keep" or enabled or vlan not in ("keep", None)):
            switch = self._switch(None if network == "keep" else network)
            if switch is None:
                raise DriverError("no virtual switch to connect the NIC to")
            alloc = self._conn.get(self._connect(vssd, port.path, switch,
                                                 True if enabled is None else enabled))
        elif alloc is not None and (network != "keep" or enabled is not None):
            if network != "keep":
                switch = self._switch(network)
                if switch is None:
                    raise DriverError("no virtual switch to connect the NIC to")
                alloc["HostResource"] = [switch.path]
            if enabled is not None:
                alloc["EnabledState"] = 2 if enabled else 3
            self._call(self._vsms(), "ModifyResourceSettings", f"update NIC {mac}",
                       ResourceSettings=[self._conn.embed(alloc)])
        if vlan != "keep" and alloc is not None:
            self._set_vlan(alloc, vlan)
        for info in self.list_nics(name):
            if info.mac == _mac_colons(_mac_hex(mac)):
                return info
        raise DeviceNotFound(f"no NIC with MAC {mac}")

    def add_nic(self, name: str, nic: NicSpec) -> NicInfo:
        """Hyper-V extra: add a NIC (generation 1 VMs must be off)."""
        vm = self._vm(name)
        if self._state(vm) != VmState.STOPPED:
            raise InvalidVmState("NICs can be added to a generation 1 VM only while it is off")
        self._add_nic(vm, self._vssd(vm), nic)
        return next(i for i in self.list_nics(name) if i.mac == _mac_colons(_mac_hex(nic.mac)))

    def remove_nic(self, name: str, mac: str) -> None:
        """Hyper-V extra: remove a NIC and its switch connection."""
        vm = self._vm(name)
        port = self._port_by_mac(self._resources(self._vssd(vm)), mac)
        self._call(self._vsms(), "RemoveResourceSettings", f"remove NIC {mac}",
                   ResourceSettings=[port.path])

    # ------------------------------------------------------------------ console and stats

    def console(self, name: str) -> ConsoleEndpoint:
        vm = self._vm(name)
        host = self._console_host or self.host_info().hostname
        return ConsoleEndpoint(protocol="rdp", host=host, port=self._console_port(),
                               instance_id=str(vm["Name"]))

    def _console_port(self) -> int:
        """The VMConnect (RDP) listener port: ``Msvm_TerminalServiceSettingData.ListenerPort``,
        which an administrator can change from the default 2179."""
        found = self._conn.query("Msvm_TerminalServiceSettingData")
        port = int(found[0]["ListenerPort"] or 0) if found else 0
        return port if 0 < port < 65536 else RDP_PORT

    def vm_stats(self, names: Sequence[str]) -> dict[str, VmStats]:
        settings = [sd for sd in (self._find_vssd(n) for n in names) if sd is not None]
        if not settings:
            return {}
        out = self._conn.invoke(self._vsms(), "GetSummaryInformation",
                                SettingData=[sd.path for sd in settings],
                                RequestedInformation=[0, 1, 4, 100, 101, 103])
        jobs.check(self._conn, out, "read VM statistics", self._policy())
        stats: dict[str, VmStats] = {}
        for info in out.get("SummaryInformation") or []:
            if vm_state_of(info["EnabledState"]) != VmState.RUNNING:
                continue
            stats[str(info["ElementName"])] = VmStats(
                cpu_utilization=float(info["ProcessorLoad"] or 0),
                num_cpus=int(info["NumberOfProcessors"] or 0),
                memory_kb=int(info["MemoryUsage"] or 0) * 1024)
        return stats

    # ------------------------------------------------------------------ snapshots

    def _snapshots(self, vm: WmiObject) -> list[WmiObject]:
        return self._conn.associators(vm, assoc_class="Msvm_SnapshotOfVirtualSystem",
                                      result_class="Msvm_VirtualSystemSettingData")

    def _snapshot(self, vm: WmiObject, snapshot: str) -> WmiObject | None:
        return next((s for s in self._snapshots(vm) if s["ElementName"] == snapshot), None)

    def create_snapshot(self, name: str, snapshot: str, description: str = "",
                        with_memory: bool = False) -> SnapshotInfo:
        vm = self._vm(name)
        if self._snapshot(vm, snapshot) is not None:
            raise DriverError(f"VM {name} already has a snapshot named {snapshot}")
        memory = with_memory and self._state(vm) in (VmState.RUNNING, VmState.PAUSED)
        wanted = USER_SNAPSHOT_STANDARD if memory else USER_SNAPSHOT_PRODUCTION
        previous = self._set_snapshot_type(vm, wanted)
        try:
            out, job = self._call(self._service("Msvm_VirtualSystemSnapshotService"),
                                  "CreateSnapshot", f"snapshot {name}", AffectedSystem=vm.path,
                                  SnapshotSettings="", SnapshotType=SNAPSHOT_FULL)
        finally:
            if previous is not None:
                self._set_snapshot_type(vm, previous)
        snap = self._conn.get(self._resulting(out, "ResultingSnapshot", job,
                                              "Msvm_VirtualSystemSettingData",
                                              lambda: self._current_snapshot_path(vm)))
        snap["ElementName"] = snapshot
        snap["Notes"] = [description, NOTES_MARK + json.dumps({"with_memory": memory})]
        self._call(self._vsms(), "ModifySystemSettings", f"name snapshot {snapshot}",
                   SystemSettings=self._conn.embed(snap))
        return next(s for s in self.list_snapshots(name) if s.name == snapshot)

    def _set_snapshot_type(self, vm: WmiObject, wanted: int) -> int | None:
        """Make the VM take ``wanted`` checkpoints (``UserSnapshotType``); the type it had before,
        or None when it already had that one.

        A memory snapshot needs a standard checkpoint; without memory a production one is asked
        for, so a VM whose owner chose standard checkpoints does not save its memory unasked.
        """
        vssd = self._vssd(vm)
        current = vssd["UserSnapshotType"]
        if current == wanted:
            return None
        vssd["UserSnapshotType"] = wanted
        self._call(self._vsms(), "ModifySystemSettings",
                   f"set checkpoint type {wanted} of {vm['ElementName']}",
                   SystemSettings=self._conn.embed(vssd))
        log.info("snapshot_type_set", vm=vm["ElementName"], type=wanted, previous=current)
        return int(current) if current is not None else USER_SNAPSHOT_PRODUCTION

    def _current_snapshot_path(self, vm: WmiObject) -> str | None:
        """The VM's newest snapshot in its branch: where a just-made snapshot is found."""
        found = self._conn.associators(vm, assoc_class="Msvm_MostCurrentSnapshotInBranch",
                                       result_class="Msvm_VirtualSystemSettingData")
        return found[0].path if found else None

    def list_snapshots(self, name: str) -> list[SnapshotInfo]:
        vm = self._vm(name)
        snaps = self._snapshots(vm)
        names = {s.path.lower(): str(s["ElementName"]) for s in snaps}
        current = self._conn.associators(vm, assoc_class="Msvm_MostCurrentSnapshotInBranch",
                                         result_class="Msvm_VirtualSystemSettingData")
        current_path = current[0].path.lower() if current else None
        out = []
        for s in snaps:
            notes = list(s["Notes"] or [])
            meta = self._notes_meta(s)
            description = next((n for n in notes if not str(n).startswith(NOTES_MARK)), "")
            out.append(SnapshotInfo(
                name=str(s["ElementName"]), created_at=_cim_time(s["CreationTime"]),
                description=str(description), parent=names.get(str(s["Parent"] or "").lower()),
                current=s.path.lower() == current_path,
                with_memory=bool(meta.get("with_memory", False))))
        return sorted(out, key=lambda s: (s.created_at, s.name))

    def revert_snapshot(self, name: str, snapshot: str) -> None:
        vm = self._vm(name)
        snap = self._snapshot(vm, snapshot)
        if snap is None:
            raise SnapshotNotFound(f"VM {name} has no snapshot {snapshot}")
        if self._state(vm) not in (VmState.STOPPED, VmState.SAVED):
            self._request(vm, RSC_OFF, f"turn off {name} to revert it")
        self._call(self._service("Msvm_VirtualSystemSnapshotService"), "ApplySnapshot",
                   f"revert {name} to {snapshot}", Snapshot=snap.path)
        if self._state(self._refresh(vm)) == VmState.SAVED:
            self._request(vm, RSC_START, f"resume {name} from {snapshot}")

    def delete_snapshot(self, name: str, snapshot: str) -> None:
        vm = self._vm(name)
        snap = self._snapshot(vm, snapshot)
        if snap is None:
            return
        self._call(self._service("Msvm_VirtualSystemSnapshotService"), "DestroySnapshot",
                   f"delete snapshot {snapshot} of {name}", AffectedSnapshot=snap.path)

    # ------------------------------------------------------------------ migration, export, import

    def migrate_vm(self, name: str, destination: str, *, with_storage: bool = False,
                   live: bool = True) -> None:
        vm = self._vm(name)
        if not live and self._state(vm) in (VmState.RUNNING, VmState.PAUSED):
            self._request(vm, RSC_SAVE, f"save {name} before moving it")
        msd = self._conn.new_instance("Msvm_VirtualSystemMigrationSettingData")
        msd["MigrationType"] = MIGRATE_VM_AND_STORAGE if with_storage else MIGRATE_VM
        msd["TransportType"] = TRANSPORT_TCP
        self._call(self._service("Msvm_VirtualSystemMigrationService"),
                   "MigrateVirtualSystemToHost", f"migrate {name} to {destination}",
                   timeout=self._migration_timeout, ComputerSystem=vm.path,
                   DestinationHost=destination, MigrationSettingData=self._conn.embed(msd))

    def export_vm(self, name: str, directory: str, *, copy_storage: bool = True) -> str:
        """Hyper-V extra: export the VM (with snapshots) under ``directory\\name``."""
        vm = self._vm(name)
        opts = self._conn.new_instance("Msvm_VirtualSystemExportSettingData")
        opts["CopySnapshotConfiguration"] = 0
        opts["CopyVmRuntimeInformation"] = True
        opts["CopyVmStorage"] = copy_storage
        opts["CreateVmExportSubdirectory"] = True
        self._call(self._vsms(), "ExportSystemDefinition", f"export {name}",
                   timeout=self._migration_timeout, ComputerSystem=vm.path,
                   ExportDirectory=directory, ExportSettingData=self._conn.embed(opts))
        return f"{directory.rstrip(chr(92))}\\{name}\\Virtual Machines\\{vm['Name']}.vmcx"

    def import_vm(self, config_file: str, *, new_identity: bool = True,
                  snapshot_folder: str | None = None) -> VmInfo:
        """Hyper-V extra: import an exported VM (planned VM, validated, then realized).

        The snapshots' configurations are read from ``SnapshotFolder``, so an export that has
        snapshots imports only with its folder: by default the ``Snapshots`` folder beside the
        export's ``Virtual Machines`` folder (os-win passes it the same way).
        """
        folder = snapshot_folder if snapshot_folder is not None else _export_snapshots(config_file)
        before = self._planned_names()
        out, job = self._call(self._vsms(), "ImportSystemDefinition", f"import {config_file}",
                              SystemDefinitionFile=config_file, SnapshotFolder=folder,
                              GenerateNewSystemIdentifier=new_identity)
        planned = self._conn.get(self._resulting(out, "ImportedSystem", job,
                                                 "Msvm_PlannedComputerSystem",
                                                 lambda: self._new_planned(before)))
        if self._find_vssd(str(planned["ElementName"])) is not None:
            raise VmAlreadyExists(str(planned["ElementName"]))
        self._call(self._vsms(), "ValidatePlannedSystem", f"validate {config_file}",
                   PlannedSystem=planned.path)
        out, job = self._call(self._vsms(), "RealizePlannedSystem", f"realize {config_file}",
                              PlannedSystem=planned.path)
        guid = str(planned["Name"])
        vm = self._conn.get(self._resulting(
            out, "ResultingSystem", job, "Msvm_ComputerSystem",
            lambda: _path_of(next(iter(self._conn.query("Msvm_ComputerSystem",
                                                        {"Name": guid})), None))))
        return self._info(vm, self._vssd(vm))

    def _planned_names(self) -> set[str]:
        return {str(p["Name"]).lower() for p in self._conn.query("Msvm_PlannedComputerSystem")}

    def _new_planned(self, before: set[str]) -> str | None:
        """The one planned VM that appeared since ``before`` (the import's result)."""
        new = [p for p in self._conn.query("Msvm_PlannedComputerSystem")
               if str(p["Name"]).lower() not in before]
        return new[0].path if len(new) == 1 else None

    # ------------------------------------------------------------------ switches

    def list_switches(self) -> list[SwitchInfo]:
        out = []
        for switch in self._conn.query("Msvm_VirtualEthernetSwitch"):
            kind: Literal["external", "internal", "private"] = "private"
            adapter = None
            for sd in self._conn.associators(switch, assoc_class="Msvm_SettingsDefineState",
                                             result_class="Msvm_VirtualEthernetSwitchSettingData"):
                for alloc in self._resources(sd, "Msvm_EthernetPortAllocationSettingData"):
                    for path in alloc["HostResource"] or []:
                        try:
                            target = self._conn.get(path)
                        except WmiNotFound:
                            continue
                        if target.class_name == "Msvm_ExternalEthernetPort":
                            kind, adapter = "external", str(target["ElementName"])
                        elif target.class_name == "Msvm_ComputerSystem" and kind == "private":
                            kind = "internal"
            out.append(SwitchInfo(name=str(switch["ElementName"]), kind=kind,
                                  id=str(switch["Name"]), adapter=adapter))
        return out

    def create_switch(self, name: str, kind: Literal["external", "internal", "private"],
                      adapter: str | None = None) -> SwitchInfo:
        if self._conn.query("Msvm_VirtualEthernetSwitch", {"ElementName": name}):
            raise DriverError(f"virtual switch {name!r} already exists")
        ports: list[str] = []
        if kind != "private":
            if kind == "external":
                where = {"ElementName": adapter} if adapter else {"IsBound": False}
                found = self._conn.query("Msvm_ExternalEthernetPort", where)
                if not found:
                    raise DriverError(f"no free physical adapter {adapter or ''}".strip())
                target = found[0]
            else:
                host = str(self._cimv2.query("Win32_ComputerSystem")[0]["Name"])
                target = self._conn.query("Msvm_ComputerSystem", {"Name": host})[0]
            alloc = self._default("Msvm_EthernetPortAllocationSettingData", ETHERNET_CONNECTION)
            alloc["HostResource"] = [target.path]
            alloc["ElementName"] = f"{name} port"
            ports.append(self._conn.embed(alloc))
        settings = self._conn.new_instance("Msvm_VirtualEthernetSwitchSettingData")
        settings["ElementName"] = name
        self._call(self._service("Msvm_VirtualEthernetSwitchManagementService"), "DefineSystem",
                   f"create switch {name}", SystemSettings=self._conn.embed(settings),
                   ResourceSettings=ports)
        return next(s for s in self.list_switches() if s.name == name)

    def delete_switch(self, name: str) -> None:
        for switch in self._conn.query("Msvm_VirtualEthernetSwitch", {"ElementName": name}):
            self._call(self._service("Msvm_VirtualEthernetSwitchManagementService"),
                       "DestroySystem", f"delete switch {name}", AffectedSystem=switch.path)

    # ------------------------------------------------------------------ KVP, IPs, ICs, thumbnail

    def _kvp_component(self, vm: WmiObject) -> WmiObject | None:
        """The VM's Msvm_KvpExchangeComponent, or None: like every Msvm_*Component device it
        exists only while the VM's worker process runs (not while the VM is off or saved)."""
        found = self._conn.associators(vm, assoc_class="Msvm_SystemDevice",
                                       result_class="Msvm_KvpExchangeComponent")
        return found[0] if found else None

    def _host_kvp_settings(self, vm: WmiObject) -> WmiObject:
        """The VM's Msvm_KvpExchangeComponentSettingData, a part of its realized settings.

        Reached from the Msvm_VirtualSystemSettingData through
        Msvm_VirtualSystemSettingDataComponent, so it is there while the VM is off too (a deploy
        writes user data before the first start); the component's Msvm_ElementSettingData hop
        needs a running VM.
        """
        found = self._conn.associators(
            self._vssd(vm), assoc_class="Msvm_VirtualSystemSettingDataComponent",
            result_class="Msvm_KvpExchangeComponentSettingData")
        if not found:
            raise NotSupported("the VM has no KVP exchange settings")
        return found[0]

    def host_kvp(self, name: str) -> dict[str, str]:
        """Hyper-V extra: the items the host has given the guest."""
        return parse_kvp_items(self._host_kvp_settings(self._vm(name))["HostExchangeItems"])

    def guest_kvp(self, name: str, *, intrinsic: bool = False) -> dict[str, str]:
        """Hyper-V extra: items the guest published (or the intrinsic ones Hyper-V collects);
        none while the VM is not running."""
        comp = self._kvp_component(self._vm(name))
        if comp is None:
            return {}
        prop = "GuestIntrinsicExchangeItems" if intrinsic else "GuestExchangeItems"
        return parse_kvp_items(comp[prop])

    def write_kvp(self, name: str, key: str, value: str) -> None:
        """Hyper-V extra: add or replace a host-to-guest KVP item."""
        if not key or len(key) > KVP_NAME_MAX or len(value) > KVP_DATA_MAX or \
                "\x00" in key + value:
            raise DriverError(f"KVP names are 1-{KVP_NAME_MAX} and values up to {KVP_DATA_MAX} "
                              "characters, without NUL")
        vm = self._vm(name)
        item = self._conn.new_instance("Msvm_KvpExchangeDataItem")
        item["Name"] = key
        item["Data"] = value
        item["Source"] = 0
        method = "ModifyKvpItems" if key in self.host_kvp(name) else "AddKvpItems"
        self._call(self._vsms(), method, f"write KVP {key} of {name}", TargetSystem=vm.path,
                   DataItems=[self._conn.embed(item)])

    def delete_kvp(self, name: str, key: str) -> None:
        if key not in self.host_kvp(name):
            return
        vm = self._vm(name)
        item = self._conn.new_instance("Msvm_KvpExchangeDataItem")
        item["Name"] = key
        item["Data"] = ""
        item["Source"] = 0
        self._call(self._vsms(), "RemoveKvpItems", f"remove KVP {key} of {name}",
                   TargetSystem=vm.path, DataItems=[self._conn.embed(item)])

    def guest_ips(self, name: str) -> dict[str, list[str]]:
        """Hyper-V extra: guest IP addresses per NIC MAC (needs the guest's KVP daemon)."""
        vm = self._vm(name)
        out: dict[str, list[str]] = {}
        for r in self._resources(self._vssd(vm)):
            if r.class_name not in ("Msvm_SyntheticEthernetPortSettingData",
                                    "Msvm_EmulatedEthernetPortSettingData"):
                continue
            ips: list[str] = []
            for cfg in self._conn.associators(r, assoc_class="Msvm_SettingDataComponent",
                                              result_class="Msvm_GuestNetworkAdapterConfiguration"):
                for addr in cfg["IPAddresses"] or []:
                    try:
                        ips.append(str(ipaddress.ip_address(str(addr))))
                    except ValueError:
                        log.warning("ignoring a bad guest address", address=repr(addr))
            out[_mac_colons(str(r["Address"] or "0" * 12))] = ips
        return out

    def integration_services(self, name: str) -> list[IntegrationService]:
        """Hyper-V extra: heartbeat, shutdown and KVP integration service status."""
        vm = self._vm(name)
        out = []
        for class_name, label in (("Msvm_HeartbeatComponent", "Heartbeat"),
                                  ("Msvm_ShutdownComponent", "Shutdown"),
                                  ("Msvm_KvpExchangeComponent", "Key-Value Pair Exchange")):
            for comp in self._conn.associators(vm, assoc_class="Msvm_SystemDevice",
                                               result_class=class_name):
                status = list(comp["OperationalStatus"] or [0])
                out.append(IntegrationService(name=label, enabled=comp["EnabledState"] == 2,
                                              status=_IC_STATUS.get(int(status[0]), "Unknown")))
        return out

    def thumbnail_png(self, name: str, width: int = 160, height: int = 120) -> bytes:
        """Hyper-V extra: a PNG of the VM's screen (running VMs only)."""
        if not (1 <= width <= 1024 and 1 <= height <= 768):
            raise DriverError("thumbnail size must be within 1024x768")
        vm = self._vm(name)
        if self._state(vm) != VmState.RUNNING:
            raise InvalidVmState(f"{name} is not running")
        out = self._conn.invoke(self._vsms(), "GetVirtualSystemThumbnailImage",
                                TargetSystem=self._vssd(vm).path, WidthPixels=width,
                                HeightPixels=height)
        jobs.check(self._conn, out, f"thumbnail of {name}", self._policy())
        data = bytes(out.get("ImageData") or [])
        try:
            return png.rgb565_to_png(data, width, height)
        except ValueError as exc:
            raise DriverError(f"bad thumbnail from Hyper-V: {exc}") from exc


def parse_kvp_items(items: Sequence[Any] | None) -> dict[str, str]:
    """KVP items (embedded ``Msvm_KvpExchangeDataItem`` text, guest-controlled) → dict.

    Malformed or oversized items are skipped, not fatal: a guest must not be able to break the
    agent by publishing junk.
    """
    out: dict[str, str] = {}
    for text in list(items or [])[:KVP_ITEMS_MAX]:
        try:
            class_name, props = cimxml.load(str(text))
        except cimxml.CimXmlError as exc:
            log.warning("skipping a malformed KVP item", reason=str(exc))
            continue
        name, data = props.get("Name"), props.get("Data")
        if class_name != "Msvm_KvpExchangeDataItem" or not isinstance(name, str) or \
                not isinstance(data, str) or len(name) > KVP_NAME_MAX or len(data) > 4 * KVP_DATA_MAX:
            continue
        out[name] = data
    return out
