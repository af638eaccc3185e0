"""The hypervisor driver interface and the hypervisor-neutral specs it speaks.

Every driver (simulator, libvirt, Hyper-V) implements :class:`Driver`. Its methods are
**blocking**: the agent calls them from worker threads and holds a per-VM lock around every call
that names a VM, so a driver never sees two concurrent calls for the same VM (it may see calls for
different VMs concurrently, and must be thread-safe for those).

Drivers never see wire objects; handlers translate CloudStack TOs into the specs below. VMs are
named by their CloudStack instance name (``i-2-17-VM``), which is unique per host.

The hypervisor is the source of truth: a driver keeps no VM state it cannot rebuild from the
hypervisor itself (domain XML and metadata, Hyper-V notes/KVP, the simulator's state file), so a
fresh driver object sees every VM a previous one created.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from hvcloud.host_errors import HostError
from hvcloud.hosttypes import HostNic, PoolStats
from hvcloud.network.security_groups import NicPolicy

# --------------------------------------------------------------------------- errors


class DriverError(HostError):
    """Base of every error a driver raises on purpose. The message is shown to operators."""


class HypervisorUnavailable(DriverError):
    """The hypervisor cannot be reached (libvirtd down, WMI namespace missing)."""


class VmNotFound(DriverError):
    def __init__(self, name: str) -> None:
        super().__init__(f"VM {name} not found")
        self.name = name


class VmAlreadyExists(DriverError):
    def __init__(self, name: str) -> None:
        super().__init__(f"VM {name} already exists")
        self.name = name


class InvalidVmState(DriverError):
    """The operation is not allowed in the VM's current state."""


class InsufficientCapacity(DriverError):
    """The host lacks memory or CPU for the request."""


class NotSupported(DriverError):
    """This driver (or this host) cannot do the operation."""


class DriverTimeout(DriverError):
    """The hypervisor did not finish the operation in time."""


class DeviceNotFound(DriverError):
    """A disk, ISO or NIC named in the request is not attached to the VM."""


class SnapshotNotFound(DriverError):
    pass


# --------------------------------------------------------------------------- states


class VmState(enum.StrEnum):
    """What the hypervisor says the VM is doing, in neutral terms."""

    RUNNING = "Running"
    STOPPED = "Stopped"
    PAUSED = "Paused"
    SAVED = "Saved"
    STARTING = "Starting"
    STOPPING = "Stopping"
    SAVING = "Saving"
    PAUSING = "Pausing"
    RESUMING = "Resuming"
    SNAPSHOTTING = "Snapshotting"
    UNKNOWN = "Unknown"


class PowerState(enum.StrEnum):
    """CloudStack's ``VirtualMachine.PowerState``; the names are exactly the Java enum's."""

    POWER_ON = "PowerOn"
    POWER_OFF = "PowerOff"
    POWER_UNKNOWN = "PowerUnknown"
    POWER_REPORT_MISSING = "PowerReportMissing"


_POWER_OF_STATE: Mapping[VmState, PowerState] = {
    VmState.RUNNING: PowerState.POWER_ON,
    VmState.STARTING: PowerState.POWER_ON,
    VmState.SAVING: PowerState.POWER_ON,
    VmState.RESUMING: PowerState.POWER_ON,
    VmState.STOPPED: PowerState.POWER_OFF,
    VmState.STOPPING: PowerState.POWER_OFF,
    VmState.PAUSED: PowerState.POWER_UNKNOWN,
    VmState.SAVED: PowerState.POWER_UNKNOWN,
    VmState.PAUSING: PowerState.POWER_UNKNOWN,
    VmState.SNAPSHOTTING: PowerState.POWER_UNKNOWN,
    VmState.UNKNOWN: PowerState.POWER_UNKNOWN,
}


def power_state_of(state: VmState) -> PowerState:
    """CloudStack's view of a VM state, as the Hyper-V agent maps it (reference §6)."""
    return _POWER_OF_STATE[state]


# --------------------------------------------------------------------------- specs

DiskFormat = Literal["qcow2", "raw", "vhd", "vhdx", "iso"]
DiskDevice = Literal["disk", "cdrom", "floppy"]
NicModel = Literal["synthetic", "emulated"]


@dataclass(frozen=True)
class DiskSpec:
    """One disk or optical drive of a VM.

    ``slot`` is CloudStack's ``diskSeq``: the root disk is 0, an ISO drive is usually 3 and data
    disks take the remaining slots. An empty cdrom drive has ``path=None``.
    """

    slot: int
    device: DiskDevice = "disk"
    path: str | None = None
    format: DiskFormat = "qcow2"
    read_only: bool = False
    serial: str | None = None
    boot: bool = False


@dataclass(frozen=True)
class NicSpec:
    """One network interface.

    ``network`` is the switch the NIC plugs into (a Linux bridge, a Hyper-V vSwitch, or the
    simulator's name for one); ``None`` means the host's default. ``vlan`` ``None`` is untagged.
    ``vxlan`` is a VXLAN VNI carried over ``network`` (the trunk), set instead of ``vlan``; drivers
    without VXLAN refuse it with :class:`NotSupported`.
    ``rate_mbps`` ``None`` or 0 means unlimited. A disabled NIC exists but is disconnected.
    ``security_groups``: the NIC is on a security-group network; the driver puts anti-spoofing
    (its MAC and ``ips``) and default deny of new inbound connections on its port before the guest
    can send, and :meth:`Driver.apply_security_groups` replaces them with a policy later.
    ``ips``: the NIC's IPv4 addresses (the first is its primary, then secondary ones).
    """

    device_id: int
    mac: str
    network: str | None = None
    vlan: int | None = None
    rate_mbps: int | None = None
    model: NicModel = "synthetic"
    enabled: bool = True
    vxlan: int | None = None
    security_groups: bool = False
    ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class VmSpec:
    """Everything needed to define a VM. ``memory_mib`` is the fixed memory size."""

    name: str
    vcpus: int
    memory_mib: int
    uuid: str | None = None
    cpu_mhz: int | None = None
    disks: tuple[DiskSpec, ...] = ()
    nics: tuple[NicSpec, ...] = ()
    boot_args: str = ""
    vnc_password: str | None = None
    os_type: str | None = None
    user_data: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NicInfo:
    mac: str
    device_id: int
    network: str | None
    vlan: int | None
    enabled: bool
    vxlan: int | None = None

    @classmethod
    def of(cls, nic: NicSpec) -> NicInfo:
        return cls(mac=nic.mac, device_id=nic.device_id, network=nic.network, vlan=nic.vlan,
                   enabled=nic.enabled, vxlan=nic.vxlan)


@dataclass(frozen=True)
class VmInfo:
    """A VM as the hypervisor reports it now. ``spec`` is what the VM was defined with."""

    name: str
    state: VmState
    spec: VmSpec
    uuid: str | None = None

    @property
    def power_state(self) -> PowerState:
        return power_state_of(self.state)


@dataclass(frozen=True)
class VmStats:
    cpu_utilization: float
    num_cpus: int
    memory_kb: int
    network_read_kb: float = 0.0
    network_write_kb: float = 0.0
    disk_read_kb: float = 0.0
    disk_write_kb: float = 0.0
    disk_read_iops: float = 0.0
    disk_write_iops: float = 0.0


@dataclass(frozen=True)
class HostInfo:
    """Static facts about the host, reported in CloudStack's StartupRoutingCommand."""

    hostname: str
    hypervisor_type: str
    hypervisor_version: str
    cpu_sockets: int
    cpus: int
    cpu_mhz: int
    memory_bytes: int
    arch: str = "x86_64"
    nics: tuple[HostNic, ...] = ()
    dom0_min_memory_bytes: int = 0
    #: where the host's own console listener takes VM consoles (Hyper-V: VMConnect's RDP port from
    #: the terminal-service settings); None where each VM has its own (VNC)
    console_port: int | None = None


@dataclass(frozen=True)
class HostStats:
    cpu_utilization: float
    total_memory_kb: int
    free_memory_kb: int
    network_read_kb: float = 0.0
    network_write_kb: float = 0.0


@dataclass(frozen=True)
class ConsoleEndpoint:
    """How to reach a VM's console. ``protocol`` is ``vnc`` (libvirt, simulator) or ``rdp``
    (Hyper-V's VMConnect on 2179, where ``instance_id`` is the VM GUID)."""

    protocol: Literal["vnc", "rdp"]
    host: str
    port: int
    password: str | None = None
    instance_id: str | None = None


@dataclass(frozen=True)
class Thumbnail:
    """A VM's screen: ``png`` bytes of ``width`` x ``height`` pixels."""

    png: bytes
    width: int
    height: int




@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    created_at: float
    description: str = ""
    parent: str | None = None
    current: bool = False
    with_memory: bool = False


# --------------------------------------------------------------------------- the interface


class Driver(abc.ABC):
    """One hypervisor host. Blocking, thread-safe across VMs; see the module docstring."""

    #: short name used on the command line and in logs: ``simulator``, ``libvirt``, ``hyperv``
    name: str
    #: what the driver can do, nova-style: capability -> None when supported, else the reason it
    #: is not. The agent reports it at startup and the contract suite (hypervisor/contract.py) skips
    #: a check whose capability is missing, both through :meth:`host_capabilities`.
    capabilities: ClassVar[Mapping[str, str | None]] = {}
    #: how its VM consoles are reached (``ConsoleEndpoint.protocol``)
    console_protocol: ClassVar[Literal["vnc", "rdp"]]

    def host_capabilities(self) -> Mapping[str, str | None]:
        """The capability table as this host has it: a driver whose capability needs something of
        the host (a kernel module) says so here. Default: the class table."""
        return self.capabilities

    # ---------------------------------------------------------------- host

    @abc.abstractmethod
    def host_info(self) -> HostInfo:
        """Static host facts. Raises HypervisorUnavailable if the hypervisor cannot be reached."""

    @abc.abstractmethod
    def host_stats(self) -> HostStats:
        """Current host CPU, memory and network use."""

    @abc.abstractmethod
    def local_pool(self) -> PoolStats | None:
        """The host's local primary storage (a directory), or None if it has none."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. The driver is unusable afterwards."""

    # ---------------------------------------------------------------- VM lifecycle

    @abc.abstractmethod
    def list_vms(self) -> list[VmInfo]:
        """Every VM defined on the host, running or not."""

    @abc.abstractmethod
    def get_vm(self, name: str) -> VmInfo:
        """Raises VmNotFound."""

    @abc.abstractmethod
    def define_vm(self, spec: VmSpec) -> VmInfo:
        """Create the VM, powered off. Raises VmAlreadyExists if a VM with that name exists and
        InsufficientCapacity if the host can never run it."""

    @abc.abstractmethod
    def start_vm(self, name: str) -> None:
        """Power on a stopped or saved VM. Starting a running VM is a no-op. Raises
        InsufficientCapacity if the host lacks free memory now."""

    @abc.abstractmethod
    def stop_vm(self, name: str, timeout: float, force: bool = False) -> None:
        """Power off: ask the guest to shut down and wait up to ``timeout`` seconds, then turn it
        off. ``force`` turns it off at once. Stopping a stopped VM is a no-op; VmNotFound if
        there is no such VM."""

    @abc.abstractmethod
    def reboot_vm(self, name: str, hard: bool = False) -> None:
        """Restart a running VM: a guest reboot, or a reset with ``hard``. InvalidVmState if off."""

    @abc.abstractmethod
    def undefine_vm(self, name: str) -> None:
        """Turn the VM off if needed and remove its definition, keeping every disk file.
        A missing VM is not an error."""

    @abc.abstractmethod
    def pause_vm(self, name: str) -> None:
        """Freeze a running VM in memory. InvalidVmState unless running or paused."""

    @abc.abstractmethod
    def resume_vm(self, name: str) -> None:
        """Continue a paused VM. InvalidVmState unless paused or running."""

    @abc.abstractmethod
    def save_vm(self, name: str) -> None:
        """Save a running or paused VM's memory to disk and stop it (state Saved)."""

    @abc.abstractmethod
    def restore_vm(self, name: str) -> None:
        """Resume a saved VM from its saved memory. InvalidVmState unless Saved."""

    # ---------------------------------------------------------------- devices

    @abc.abstractmethod
    def attach_disk(self, name: str, disk: DiskSpec) -> None:
        """Attach a disk or insert an ISO, on a running or stopped VM. For a cdrom the drive at
        ``disk.slot`` is created if missing. Attaching the same path at the same slot again is a
        no-op."""

    @abc.abstractmethod
    def detach_disk(self, name: str, path: str) -> None:
        """Detach the disk, or eject the ISO, whose file is ``path``. DeviceNotFound if none."""

    @abc.abstractmethod
    def resize_disk(self, name: str, path: str, size: int) -> int | None:
        """Grow the disk whose file is ``path`` while VM ``name`` runs, through the hypervisor (a
        running VM holds its disk files, so they cannot be resized behind its back). Returns the
        disk's new virtual size in bytes, or None when the VM does not exist, is not running or has
        no disk with that file: the caller then resizes the file offline. Raises NotSupported for a
        smaller ``size`` (a running guest's disk is never shrunk). Drivers whose hypervisor resizes
        attached files in place through the storage layer return None."""

    @abc.abstractmethod
    def list_nics(self, name: str) -> list[NicInfo]:
        """The VM's NICs in device order."""

    @abc.abstractmethod
    def update_nic(
        self,
        name: str,
        mac: str,
        *,
        vlan: int | Literal["keep"] | None = "keep",
        network: str | Literal["keep"] | None = "keep",
        enabled: bool | None = None,
    ) -> NicInfo:
        """Change a NIC's VLAN (None = untagged), switch or link state. DeviceNotFound if no NIC
        has that MAC."""

    def plug_nic(self, name: str, nic: NicSpec) -> NicInfo:
        """Add a NIC to the VM, live when it runs and to its definition. Plugging the same MAC
        again with the same spec is a no-op; another NIC with that MAC or device id is
        InvalidVmState. Default: NotSupported."""
        raise NotSupported(f"the {self.name} driver cannot hot-plug NICs")

    def unplug_nic(self, name: str, mac: str) -> None:
        """Remove the NIC with that MAC, live when the VM runs and from its definition.
        DeviceNotFound if it has none. Default: NotSupported."""
        raise NotSupported(f"the {self.name} driver cannot unplug NICs")

    def apply_security_groups(self, name: str, policy: NicPolicy) -> None:
        """Enforce ``policy`` (the whole rule set, see :mod:`hvcloud.network.security_groups`) on
        the port of VM ``name``'s NIC with MAC ``policy.mac``; a policy older (``seq``) than the one in
        force is ignored. Invalid policies raise :class:`~hvcloud.host_errors.InvalidRequest` and
        change nothing; DeviceNotFound when the VM has no such NIC; drivers whose ports exist only
        while the VM runs (libvirt's taps, the simulator) raise InvalidVmState for a stopped VM, while
        Hyper-V keeps port ACLs with the VM's configuration. Capability ``security_groups``.
        Default: NotSupported."""
        raise NotSupported(f"the {self.name} driver cannot enforce security groups")

    @abc.abstractmethod
    def console(self, name: str) -> ConsoleEndpoint:
        """Where the VM's console listens."""

    def screenshot(self, name: str, width: int, height: int) -> Thumbnail:
        """The running VM's screen as a PNG scaled to fit ``width`` x ``height`` (aspect kept).
        Raises ``InvalidVmState`` when the VM does not run. Drivers without it raise
        ``NotSupported`` (capability ``thumbnail``)."""
        raise NotSupported(f"the {self.name} driver cannot take screenshots")

    # ---------------------------------------------------------------- stats

    @abc.abstractmethod
    def vm_stats(self, names: Sequence[str]) -> dict[str, VmStats]:
        """Stats for the named VMs that exist and run; others are left out."""

    # ---------------------------------------------------------------- snapshots

    @abc.abstractmethod
    def create_snapshot(
        self, name: str, snapshot: str, description: str = "", with_memory: bool = False
    ) -> SnapshotInfo:
        """Take a checkpoint of the VM's disks (and memory if asked and running)."""

    @abc.abstractmethod
    def list_snapshots(self, name: str) -> list[SnapshotInfo]:
        ...

    @abc.abstractmethod
    def revert_snapshot(self, name: str, snapshot: str) -> None:
        """Return the VM to the snapshot. SnapshotNotFound if missing."""

    @abc.abstractmethod
    def delete_snapshot(self, name: str, snapshot: str) -> None:
        """Remove the snapshot, merging its data into the VM. A missing snapshot is not an error."""

    # ---------------------------------------------------------------- migration

    @abc.abstractmethod
    def migrate_vm(self, name: str, destination: str, *, with_storage: bool = False,
                   live: bool = True) -> None:
        """Move the VM to the host at ``destination`` (an address the hypervisor understands).
        On success the VM no longer exists here."""


# --------------------------------------------------------------------------- spec (de)serialisation


def vm_spec_to_dict(spec: VmSpec) -> dict[str, object]:
    """A JSON-ready form of a VmSpec, for drivers that store it with the VM (domain metadata,
    Hyper-V notes, the simulator's state file)."""
    return {
        "name": spec.name, "vcpus": spec.vcpus, "memory_mib": spec.memory_mib, "uuid": spec.uuid,
        "cpu_mhz": spec.cpu_mhz, "boot_args": spec.boot_args, "vnc_password": spec.vnc_password,
        "os_type": spec.os_type, "user_data": spec.user_data, "metadata": dict(spec.metadata),
        "disks": [vars(d).copy() for d in spec.disks],
        "nics": [vars(n).copy() for n in spec.nics],
    }


def vm_spec_from_dict(data: Mapping[str, object]) -> VmSpec:
    """Inverse of :func:`vm_spec_to_dict`; raises DriverError on a malformed record."""
    try:
        disks = tuple(DiskSpec(**d) for d in data.get("disks", ()))  # type: ignore[attr-defined]
        nics = tuple(NicSpec(**{**n, "ips": tuple(n.get("ips") or ())})  # type: ignore[attr-defined]
                     for n in data.get("nics", ()))  # type: ignore[attr-defined]
        meta = data.get("metadata") or {}
        return VmSpec(
            name=str(data["name"]), vcpus=int(data["vcpus"]),  # type: ignore[call-overload]
            memory_mib=int(data["memory_mib"]),  # type: ignore[call-overload]
            uuid=data.get("uuid"),  # type: ignore[arg-type]
            cpu_mhz=data.get("cpu_mhz"),  # type: ignore[arg-type]
            disks=disks, nics=nics, boot_args=str(data.get("boot_args") or ""),
            vnc_password=data.get("vnc_password"),  # type: ignore[arg-type]
            os_type=data.get("os_type"),  # type: ignore[arg-type]
            user_data=data.get("user_data"),  # type: ignore[arg-type]
            metadata={str(k): str(v) for k, v in meta.items()},  # type: ignore[attr-defined]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DriverError(f"malformed stored VM definition: {exc}") from None
