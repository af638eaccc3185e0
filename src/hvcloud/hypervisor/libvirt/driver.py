"""The libvirt (KVM/QEMU) driver: the whole :class:`~hvcloud.hypervisor.driver.Driver` interface on
libvirt-python.

Everything the driver knows about a VM is in libvirt: the domain XML and the hvcloud metadata
element holding the VmSpec (``spec_codec``). A fresh driver therefore sees every VM a previous one
created, and restarting the agent never touches a running VM.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import Any, Literal

import libvirt

from hvcloud import logs
from hvcloud.host_errors import HostError
from hvcloud.hosttypes import PoolStats
from hvcloud.hypervisor import thumbnails
from hvcloud.hypervisor.driver import (
    ConsoleEndpoint,
    DeviceNotFound,
    DiskSpec,
    Driver,
    DriverError,
    DriverTimeout,
    HostInfo,
    HostStats,
    HypervisorUnavailable,
    InsufficientCapacity,
    InvalidVmState,
    NicInfo,
    NicSpec,
    NotSupported,
    SnapshotInfo,
    SnapshotNotFound,
    Thumbnail,
    VmAlreadyExists,
    VmInfo,
    VmNotFound,
    VmSpec,
    VmState,
    VmStats,
)
from hvcloud.hypervisor.libvirt import host_proc
from hvcloud.hypervisor.libvirt.config import LibvirtConfig
from hvcloud.hypervisor.libvirt.disk_checks import check_disk_file
from hvcloud.hypervisor.libvirt.domain_xml import (
    METADATA_NS,
    METADATA_PREFIX,
    DomainFacts,
    disk_element,
    disk_target,
    domain_xml,
    interface_xml,
    metadata_xml,
    nic_bridge,
    nic_element,
    parse_domain,
    validate_name,
)
from hvcloud.hypervisor.libvirt.events import ensure_event_loop
from hvcloud.hypervisor.libvirt.spec_codec import CorruptMetadata, spec_from_json
from hvcloud.network.bridges import Bridges, NetworkError
from hvcloud.network.host_nics import host_nics, net_bytes
from hvcloud.network.security_groups import NicPolicy
from hvcloud.network.sg_nft import NftSecurityGroups
from hvcloud.network.sg_policy import check_policy

log = logs.get(__name__)

#: called with (VM name, new state) from libvirt's event thread
EventCallback = Callable[[str, VmState], None]

_POLL = 0.2
#: a graceful stop presses the ACPI power button again this often until the guest is off
SHUTDOWN_RETRY_SECONDS = 5.0
#: a screenshot is read in chunks of this size, and refused beyond the limit (a 4096x2160 PPM is 26 MiB)
SCREENSHOT_CHUNK = 256 * 1024
SCREENSHOT_MAX_BYTES = 64 * 1024 * 1024


def _quiet_libvirt_errors(_ctx: Any, _err: Any) -> None:
    """libvirt prints every error to stderr by default; the driver raises them instead."""


libvirt.registerErrorHandler(_quiet_libvirt_errors, None)


def _code(exc: libvirt.libvirtError) -> int:
    return int(exc.get_error_code() or 0)


def _state_of(dom: Any) -> VmState:
    state, reason = dom.state()
    if state in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED):
        return VmState.RUNNING
    if state == libvirt.VIR_DOMAIN_PAUSED:
        if reason == libvirt.VIR_DOMAIN_PAUSED_SAVE:
            return VmState.SAVING
        if reason == libvirt.VIR_DOMAIN_PAUSED_SNAPSHOT:
            return VmState.SNAPSHOTTING
        if reason in (libvirt.VIR_DOMAIN_PAUSED_MIGRATION, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY):
            return VmState.RUNNING
        return VmState.PAUSED
    if state == libvirt.VIR_DOMAIN_PMSUSPENDED:
        return VmState.PAUSED
    if state == libvirt.VIR_DOMAIN_SHUTDOWN:
        return VmState.STOPPING
    if state in (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED):
        return VmState.SAVED if dom.hasManagedSaveImage(0) else VmState.STOPPED
    return VmState.UNKNOWN


_EVENT_STATE = {
    libvirt.VIR_DOMAIN_EVENT_STARTED: VmState.RUNNING,
    libvirt.VIR_DOMAIN_EVENT_RESUMED: VmState.RUNNING,
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: VmState.PAUSED,
    libvirt.VIR_DOMAIN_EVENT_STOPPED: VmState.STOPPED,
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: VmState.STOPPING,
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: VmState.PAUSED,
    libvirt.VIR_DOMAIN_EVENT_CRASHED: VmState.STOPPED,
}


class LibvirtDriver(Driver):
    name = "libvirt"
    capabilities = {"vlan": None, "vxlan": None, "nic_hotplug": None, "security_groups": None,
                    "thumbnail": None}
    console_protocol = "vnc"

    def __init__(self, config: LibvirtConfig | None = None, *,
                 on_event: EventCallback | None = None, bridges: Bridges | None = None,
                 security_groups: NftSecurityGroups | None = None) -> None:
        self.config = config or LibvirtConfig()
        self.settings = self.config.xml_settings()
        self._bridges = bridges or Bridges()
        #: security groups at the VMs' taps (nftables; see hvcloud.network.sg_nft)
        self._sg = security_groups or NftSecurityGroups()
        self._on_event = on_event
        self._lock = threading.Lock()
        self._cpu_samples: dict[str, tuple[float, int]] = {}
        self._host_cpu: host_proc.CpuSample | None = None
        self._event_id: int | None = None
        if on_event is not None:
            ensure_event_loop()
        self._conn = self._open()
        if on_event is not None:
            self._event_id = self._conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle, None)

    # ---------------------------------------------------------------- connection

    def _open(self) -> Any:
        try:
            conn = libvirt.open(self.config.uri)
        except libvirt.libvirtError as exc:
            raise HypervisorUnavailable(
                f"cannot connect to libvirt at {self.config.uri}: {exc.get_error_message()} "
                "(is libvirtd running? scripts/libvirt-up starts it)") from None
        if conn is None:
            raise HypervisorUnavailable(f"cannot connect to libvirt at {self.config.uri}")
        return conn

    @property
    def conn(self) -> Any:
        with self._lock:
            try:
                alive = self._conn.isAlive()
            except libvirt.libvirtError:
                alive = False
            if not alive:
                self._conn = self._open()
            return self._conn

    def close(self) -> None:
        with self._lock:
            try:
                if self._event_id is not None:
                    self._conn.domainEventDeregisterAny(self._event_id)
                self._conn.close()
            except libvirt.libvirtError:
                pass

    def _lifecycle(self, _conn: Any, dom: Any, event: int, _detail: int, _opaque: Any) -> None:
        state = _EVENT_STATE.get(event)
        if state is None or self._on_event is None:
            return
        try:
            self._on_event(dom.name(), state)
        except Exception:
            log.exception("libvirt.event_callback_failed")

    # ---------------------------------------------------------------- helpers

    def _dom(self, name: str) -> Any:
        validate_name(name)
        try:
            return self.conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                raise VmNotFound(name) from None
            raise DriverError(f"libvirt lookup of {name} failed: {exc.get_error_message()}") from None

    @contextmanager
    def _libvirt_call(self, what: str) -> Iterator[None]:
        try:
            yield
        except libvirt.libvirtError as exc:
            msg = exc.get_error_message() or str(exc)
            if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                raise VmNotFound(what.split()[-1]) from None
            if "memory" in msg.lower() and "allocate" in msg.lower():
                raise InsufficientCapacity(f"{what}: {msg}") from None
            raise DriverError(f"{what} failed: {msg}") from None

    def _facts(self, dom: Any, inactive: bool = False) -> DomainFacts:
        flags = libvirt.VIR_DOMAIN_XML_SECURE | (libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0)
        return parse_domain(dom.XMLDesc(flags))

    def _spec(self, dom: Any, facts: DomainFacts | None = None) -> VmSpec:
        facts = facts or self._facts(dom)
        if facts.spec_json is not None:
            try:
                return spec_from_json(facts.spec_json, vnc_password=facts.vnc_password)
            except CorruptMetadata as exc:
                log.warning("libvirt.bad_metadata", vm=dom.name(), error=str(exc))
        info = dom.info()
        return VmSpec(name=dom.name(), vcpus=int(info[3]), memory_mib=int(info[1]) // 1024,
                      uuid=dom.UUIDString())

    def _info(self, dom: Any) -> VmInfo:
        return VmInfo(name=dom.name(), state=_state_of(dom), spec=self._spec(dom), uuid=dom.UUIDString())

    def _write_spec(self, dom: Any, spec: VmSpec) -> None:
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
        if dom.isActive():
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        with self._libvirt_call(f"metadata update of {spec.name}"):
            dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, metadata_xml(spec),
                            METADATA_PREFIX, METADATA_NS, flags)

    @staticmethod
    def _device_flags(dom: Any) -> int:
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
        if dom.isActive():
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        return int(flags)

    def _wait_inactive(self, dom: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not dom.isActive():
                return True
            time.sleep(_POLL)
        return not dom.isActive()

    def _ensure_networks(self, spec: VmSpec) -> None:
        for nic in spec.nics:
            trunk = nic.network or self.settings.default_bridge
            if not trunk:
                continue
            try:
                self._bridges.ensure_segment(trunk, nic.vlan or None, nic.vxlan)
            except NetworkError as exc:
                raise DriverError(f"network for NIC {nic.mac} of {spec.name}: {exc}") from None

    def _mem_available_kb(self) -> int:
        return host_proc.read_meminfo().get("MemAvailable", 0)

    # ---------------------------------------------------------------- host

    def host_capabilities(self) -> Mapping[str, str | None]:
        """VLAN-tagged NICs go through VLAN bridges, which need the host's 8021q kernel module; VXLAN
        NICs need its vxlan module."""
        caps = dict(self.capabilities)
        if not os.path.exists("/sys/module/8021q"):
            caps["vlan"] = "VLAN-tagged NICs need the 8021q kernel module (modprobe 8021q) for VLAN bridges"
        if not os.path.exists("/sys/module/vxlan"):
            caps["vxlan"] = "VXLAN NICs need the vxlan kernel module (modprobe vxlan) for their segment bridges"
        if shutil.which("nft") is None:
            caps["security_groups"] = "security groups need nftables (the nft command) on the host"
        elif not os.path.exists("/proc/sys/net/bridge"):
            caps["security_groups"] = ("security groups need bridge netfilter (br_netfilter) for conntrack "
                                       "on bridged traffic (modprobe br_netfilter)")
        return caps

    def host_info(self) -> HostInfo:
        conn = self.conn
        with self._libvirt_call("host info"):
            model, _mem_mb, cpus, mhz, nodes, sockets, _cores, _threads = conn.getInfo()
            version = int(conn.getVersion())
            hostname = conn.getHostname()
        meminfo = host_proc.read_meminfo()
        return HostInfo(
            hostname=hostname,
            hypervisor_type="KVM",
            hypervisor_version=f"{version // 1_000_000}.{version // 1000 % 1000}.{version % 1000}",
            cpu_sockets=max(1, int(nodes) * int(sockets)),
            cpus=int(cpus),
            cpu_mhz=int(mhz),
            memory_bytes=meminfo.get("MemTotal", 0) * 1024,
            arch=str(model),
            nics=tuple(host_nics()),
        )

    def host_stats(self) -> HostStats:
        with self._lock:
            before = self._host_cpu
        if before is None:
            before = host_proc.read_cpu()
            time.sleep(0.1)
        after = host_proc.read_cpu()
        with self._lock:
            self._host_cpu = after
        meminfo = host_proc.read_meminfo()
        rx, tx = net_bytes()
        return HostStats(
            cpu_utilization=host_proc.cpu_percent(before, after),
            total_memory_kb=meminfo.get("MemTotal", 0),
            free_memory_kb=meminfo.get("MemAvailable", meminfo.get("MemFree", 0)),
            network_read_kb=rx / 1024,
            network_write_kb=tx / 1024,
        )

    def local_pool(self) -> PoolStats | None:
        path = self.config.local_pool_dir
        if not path:
            return None
        os.makedirs(path, exist_ok=True)
        st = os.statvfs(path)
        return PoolStats(path=path, capacity_bytes=st.f_blocks * st.f_frsize,
                         available_bytes=st.f_bavail * st.f_frsize)

    # ---------------------------------------------------------------- lifecycle

    def list_vms(self) -> list[VmInfo]:
        conn = self.conn
        out: list[VmInfo] = []
        with self._libvirt_call("listing VMs"):
            doms = conn.listAllDomains(0)
        for dom in doms:
            try:
                out.append(self._info(dom))
            except libvirt.libvirtError:  # undefined between listing and reading
                continue
        return out

    def get_vm(self, name: str) -> VmInfo:
        dom = self._dom(name)
        with self._libvirt_call(f"reading {name}"):
            return self._info(dom)

    def define_vm(self, spec: VmSpec) -> VmInfo:
        validate_name(spec.name)
        try:
            self._dom(spec.name)
        except VmNotFound:
            pass
        else:
            raise VmAlreadyExists(spec.name)
        total_kb = host_proc.read_meminfo().get("MemTotal", 0)
        if spec.memory_mib * 1024 > total_kb:
            raise InsufficientCapacity(
                f"{spec.name} needs {spec.memory_mib} MiB but the host has {total_kb // 1024} MiB")
        for disk in spec.disks:
            check_disk_file(disk)
        xml = domain_xml(spec, self.settings)
        with self._libvirt_call(f"defining {spec.name}"):
            dom = self.conn.defineXML(xml)
        log.info("libvirt.vm_defined", vm=spec.name, domain_type=self.settings.domain_type)
        return self._info(dom)

    def start_vm(self, name: str) -> None:
        dom = self._dom(name)
        state = _state_of(dom)
        if state in (VmState.RUNNING, VmState.STARTING):
            return
        if state == VmState.PAUSED:
            with self._libvirt_call(f"resuming {name}"):
                dom.resume()
            return
        spec = self._spec(dom)
        self._ensure_networks(spec)
        os.makedirs(self.settings.console_log_dir, exist_ok=True)
        if spec.memory_mib * 1024 > self._mem_available_kb():
            raise InsufficientCapacity(f"not enough free memory on the host to start {name}")
        guarded = [n for n in spec.nics if n.security_groups]
        with self._libvirt_call(f"starting {name}"):
            # a VM with security-group NICs starts paused: its ports get anti-spoofing and default
            # deny before its first instruction runs
            dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED if guarded else 0)
        self._sg_ports_started(dom, name, spec, resume=bool(guarded))
        log.info("libvirt.vm_started", vm=name, restored=state == VmState.SAVED)

    # ---------------------------------------------------------------- security groups

    def _sg_ports_started(self, dom: Any, name: str, spec: VmSpec, *, resume: bool) -> None:
        """Defaults on the VM's security-group taps; any rules a previous holder of a non-SG tap's
        name left are dropped. On failure the VM is destroyed (never run unprotected)."""
        try:
            targets = self._facts(dom).nic_targets
            for nic in spec.nics:
                tap = targets.get(nic.mac.lower())
                if not tap:
                    continue
                if nic.security_groups:
                    self._sg.apply_defaults(tap, nic.mac.lower(), nic.ips)
                else:
                    self._sg_drop(name, [tap] if self._sg_holds(tap) else [])
        except (HostError, libvirt.libvirtError) as exc:
            with suppress(libvirt.libvirtError):
                dom.destroy()
            raise DriverError(f"security groups of {name}: {exc}") from None
        if resume:
            with self._libvirt_call(f"resuming {name}"):
                dom.resume()

    def _sg_taps(self, dom: Any, macs: Sequence[str] | None = None) -> list[str]:
        """The VM's taps (all, or those of ``macs``) that hold security-group rules; read before
        the VM or NIC goes, dropped with :meth:`_sg_drop` after (never leave it unprotected)."""
        try:
            targets = self._facts(dom).nic_targets if dom.isActive() else {}
        except libvirt.libvirtError:
            return []
        return [tap for mac, tap in targets.items()
                if (macs is None or mac in macs) and tap and self._sg_holds(tap)]

    def _sg_holds(self, tap: str) -> bool:
        """Whether the tap has rules; a host whose nftables cannot be read holds none (best effort:
        only used to clean up after a previous holder of the tap's name)."""
        try:
            return self._sg.holds(tap)
        except HostError as exc:
            log.warning("libvirt.sg_state_unreadable", tap=tap, error=str(exc))
            return False

    def _sg_drop(self, name: str, taps: Sequence[str]) -> None:
        for tap in taps:
            try:
                self._sg.remove(tap)
            except HostError as exc:
                log.warning("libvirt.sg_release_failed", vm=name, tap=tap, error=str(exc))

    def apply_security_groups(self, name: str, policy: NicPolicy) -> None:
        check_policy(policy)
        dom = self._dom(name)
        spec = self._spec(dom)
        if not any(n.mac.lower() == policy.mac for n in spec.nics):
            raise DeviceNotFound(f"{name} has no NIC with MAC {policy.mac}")
        if not dom.isActive():
            raise InvalidVmState(f"{name} is not running: its NIC {policy.mac} has no port")
        tap = self._facts(dom).nic_targets.get(policy.mac)
        if not tap:
            raise DeviceNotFound(f"{name}'s NIC {policy.mac} has no tap device")
        self._sg.apply_policy(tap, policy)

    def stop_vm(self, name: str, timeout: float, force: bool = False) -> None:
        dom = self._dom(name)
        taps = self._sg_taps(dom)
        with self._libvirt_call(f"stopping {name}"):
            if not dom.isActive():
                if dom.hasManagedSaveImage(0):
                    dom.managedSaveRemove(0)
                return
            graceful = not force and _state_of(dom) == VmState.RUNNING and timeout > 0
            if graceful and self._shut_down(dom, name, timeout):
                self._sg_drop(name, taps)
                log.info("libvirt.vm_stopped", vm=name, graceful=True)
                return
            try:
                dom.destroy()
            except libvirt.libvirtError as exc:
                if dom.isActive():
                    raise
                log.debug("libvirt.destroy_raced", vm=name, error=exc.get_error_message())
        self._sg_drop(name, taps)
        log.info("libvirt.vm_stopped", vm=name, graceful=False)

    def _shut_down(self, dom: Any, name: str, timeout: float) -> bool:
        """Press the ACPI power button, again every ``SHUTDOWN_RETRY_SECONDS`` (a guest that is
        still booting, or just restored, can miss one press, as OpenStack's libvirt driver also
        assumes), until the domain is off or ``timeout`` has passed; whether it went off."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                dom.shutdown()
            except libvirt.libvirtError as exc:
                log.info("libvirt.shutdown_refused", vm=name, error=exc.get_error_message())
            left = deadline - time.monotonic()
            if self._wait_inactive(dom, max(0.0, min(SHUTDOWN_RETRY_SECONDS, left))):
                return True
            if time.monotonic() >= deadline:
                return False

    def reboot_vm(self, name: str, hard: bool = False) -> None:
        dom = self._dom(name)
        if _state_of(dom) != VmState.RUNNING:
            raise InvalidVmState(f"{name} is not running")
        with self._libvirt_call(f"rebooting {name}"):
            if hard:
                dom.reset(0)
            else:
                dom.reboot(0)

    def undefine_vm(self, name: str) -> None:
        try:
            dom = self._dom(name)
        except VmNotFound:
            return
        taps = self._sg_taps(dom)
        with self._libvirt_call(f"removing {name}"):
            if dom.isActive():
                dom.destroy()
            flags = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                     | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
            try:
                dom.undefineFlags(flags)
            except libvirt.libvirtError as exc:
                if _code(exc) != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
        self._sg_drop(name, taps)
        log.info("libvirt.vm_undefined", vm=name)

    def pause_vm(self, name: str) -> None:
        dom = self._dom(name)
        state = _state_of(dom)
        if state == VmState.PAUSED:
            return
        if state != VmState.RUNNING:
            raise InvalidVmState(f"{name} is {state.value}, not running")
        with self._libvirt_call(f"pausing {name}"):
            dom.suspend()

    def resume_vm(self, name: str) -> None:
        dom = self._dom(name)
        state = _state_of(dom)
        if state == VmState.RUNNING:
            return
        if state != VmState.PAUSED:
            raise InvalidVmState(f"{name} is {state.value}, not paused")
        with self._libvirt_call(f"resuming {name}"):
            dom.resume()

    def save_vm(self, name: str) -> None:
        dom = self._dom(name)
        state = _state_of(dom)
        if state not in (VmState.RUNNING, VmState.PAUSED):
            raise InvalidVmState(f"{name} is {state.value}; only a running or paused VM can be saved")
        taps = self._sg_taps(dom)
        with self._libvirt_call(f"saving {name}"):
            dom.managedSave(0)
        self._sg_drop(name, taps)

    def restore_vm(self, name: str) -> None:
        dom = self._dom(name)
        state = _state_of(dom)
        if state != VmState.SAVED:
            raise InvalidVmState(f"{name} is {state.value}, not saved")
        spec = self._spec(dom)
        self._ensure_networks(spec)
        guarded = any(n.security_groups for n in spec.nics)
        with self._libvirt_call(f"restoring {name}"):
            dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED if guarded else 0)
        self._sg_ports_started(dom, name, spec, resume=guarded)

    # ---------------------------------------------------------------- devices

    def attach_disk(self, name: str, disk: DiskSpec) -> None:
        dom = self._dom(name)
        check_disk_file(disk)
        target, _bus = disk_target(disk)
        facts = self._facts(dom)
        spec = self._spec(dom, facts)
        current = next((d for d in facts.disks if d.target == target), None)
        flags = self._device_flags(dom)
        xml = ET.tostring(disk_element(disk, current.boot_order if current is not None else None), encoding="unicode")
        if current is not None:
            if current.path == disk.path:
                return
            if disk.device != "cdrom" or current.device != "cdrom":
                raise InvalidVmState(f"slot {disk.slot} of {name} already holds {current.path}")
            with self._libvirt_call(f"inserting an ISO into {name}"):
                dom.updateDeviceFlags(xml, flags | libvirt.VIR_DOMAIN_DEVICE_MODIFY_FORCE)
        else:
            with self._libvirt_call(f"attaching a disk to {name}"):
                dom.attachDeviceFlags(xml, flags)
        others = tuple(d for d in spec.disks if disk_target(d)[0] != target)
        self._write_spec(dom, replace(spec, disks=(*others, disk)))
        log.info("libvirt.disk_attached", vm=name, target=target, device=disk.device)

    def detach_disk(self, name: str, path: str) -> None:
        dom = self._dom(name)
        facts = self._facts(dom)
        spec = self._spec(dom, facts)
        wanted = os.path.realpath(path)
        found = next((d for d in facts.disks
                      if d.path and (d.path == path or os.path.realpath(d.path) == wanted)), None)
        if found is None:
            raise DeviceNotFound(f"{path} is not attached to {name}")
        spec_disk = next((d for d in spec.disks if disk_target(d)[0] == found.target), None)
        flags = self._device_flags(dom)
        if found.device == "cdrom":
            slot = ord(found.target[-1]) - ord("a")
            empty = spec_disk if spec_disk is not None else DiskSpec(slot=slot, device="cdrom")
            empty = replace(empty, path=None)
            xml = ET.tostring(disk_element(empty, found.boot_order), encoding="unicode")
            with self._libvirt_call(f"ejecting the ISO of {name}"):
                dom.updateDeviceFlags(xml, flags | libvirt.VIR_DOMAIN_DEVICE_MODIFY_FORCE)
            new_disks = tuple(empty if disk_target(d)[0] == found.target else d for d in spec.disks)
        else:
            xml = ET.tostring(disk_element(spec_disk or DiskSpec(slot=ord(found.target[-1]) - 97,
                                                                 path=found.path)), encoding="unicode")
            with self._libvirt_call(f"detaching {path} from {name}"):
                dom.detachDeviceFlags(xml, flags)
            new_disks = tuple(d for d in spec.disks if disk_target(d)[0] != found.target)
            if flags & libvirt.VIR_DOMAIN_AFFECT_LIVE:
                self._wait_detached(dom, found.target, name)
        self._write_spec(dom, replace(spec, disks=new_disks))
        log.info("libvirt.disk_detached", vm=name, target=found.target)

    def resize_disk(self, name: str, path: str, size: int) -> int | None:
        try:
            dom = self._dom(name)
        except VmNotFound:
            return None
        if not dom.isActive():
            return None
        wanted = os.path.realpath(path)
        found = next((d for d in self._facts(dom).disks if d.device == "disk" and d.path
                      and (d.path == path or os.path.realpath(d.path) == wanted)), None)
        if found is None:
            return None
        with self._libvirt_call(f"reading the size of disk {found.target} of {name}"):
            capacity = int(dom.blockInfo(found.target)[0])
        if size < capacity:
            raise NotSupported(f"disk {found.target} of {name} is {capacity} bytes; a running VM's disk is never "
                               f"shrunk (to {size} bytes): stop the VM first")
        if size > capacity:
            with self._libvirt_call(f"resizing disk {found.target} of {name}"):
                dom.blockResize(found.target, size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
            with self._libvirt_call(f"reading the size of disk {found.target} of {name}"):
                capacity = int(dom.blockInfo(found.target)[0])
            log.info("libvirt.disk_resized", vm=name, target=found.target, size=capacity)
        return capacity

    def _wait_detached(self, dom: Any, target: str, name: str) -> None:
        deadline = time.monotonic() + self.config.detach_timeout
        while time.monotonic() < deadline:
            if not dom.isActive() or all(d.target != target for d in self._facts(dom).disks):
                return
            time.sleep(_POLL)
        raise DriverTimeout(f"the guest of {name} did not release disk {target} within "
                            f"{self.config.detach_timeout:.0f} s; it is removed from the definition "
                            "and will be gone after the next stop")

    def list_nics(self, name: str) -> list[NicInfo]:
        spec = self._spec(self._dom(name))
        return [NicInfo.of(n) for n in sorted(spec.nics, key=lambda n: n.device_id)]

    def plug_nic(self, name: str, nic: NicSpec) -> NicInfo:
        """Attach the NIC to the definition and, when the VM runs, to the guest (a PCI hot-plug);
        its segment's bridge is made first."""
        dom = self._dom(name)
        spec = self._spec(dom)
        mac = nic.mac.lower()
        same = next((n for n in spec.nics if n.mac.lower() == mac), None)
        if same is not None:
            if same == nic:
                return NicInfo.of(same)
            raise InvalidVmState(f"{name} already has a NIC with MAC {nic.mac}")
        if any(n.device_id == nic.device_id for n in spec.nics):
            raise InvalidVmState(f"{name} already has a NIC at device {nic.device_id}")
        flags = self._device_flags(dom)
        live = bool(flags & libvirt.VIR_DOMAIN_AFFECT_LIVE)
        guarded = live and nic.security_groups
        # a security-group NIC is plugged with its link down, protected, then brought up
        first = replace(nic, enabled=False) if guarded and nic.enabled else nic
        xml = ET.tostring(nic_element(first, self.settings), encoding="unicode")
        if live:
            self._ensure_networks(replace(spec, nics=(nic,)))
        with self._libvirt_call(f"plugging NIC {nic.mac} into {name}"):
            dom.attachDeviceFlags(xml, flags)
        if live and not nic.security_groups:
            # a tap name libvirt reuses may still carry a dead VM's rules
            self._sg_drop(name, [t for m, t in self._facts(dom).nic_targets.items()
                                 if m == mac and t and self._sg_holds(t)])
        if guarded:
            tap = self._facts(dom).nic_targets.get(mac)
            if not tap:
                raise DriverError(f"NIC {nic.mac} of {name} has no tap after plugging")
            self._sg.apply_defaults(tap, mac, nic.ips)
            if first is not nic:
                with self._libvirt_call(f"bringing NIC {nic.mac} of {name} up"):
                    dom.updateDeviceFlags(ET.tostring(nic_element(nic, self.settings), encoding="unicode"), flags)
        self._write_spec(dom, replace(spec, nics=(*spec.nics, nic)))
        log.info("libvirt.nic_plugged", vm=name, mac=nic.mac, bridge=nic_bridge(nic, self.settings),
                 live=bool(flags & libvirt.VIR_DOMAIN_AFFECT_LIVE))
        return NicInfo.of(nic)

    def unplug_nic(self, name: str, mac: str) -> None:
        """Detach the NIC from the definition and, when the VM runs, from the guest; waits (up to
        the detach timeout) for the guest to release it."""
        dom = self._dom(name)
        spec = self._spec(dom)
        nic = next((n for n in spec.nics if n.mac.lower() == mac.lower()), None)
        # the device as libvirt holds it (found by its MAC), not as the spec would render it
        with self._libvirt_call(f"reading {name}"):
            found = interface_xml(dom.XMLDesc(0), mac)
        if found is None:
            raise DeviceNotFound(f"{name} has no NIC with MAC {mac}")
        taps = self._sg_taps(dom, [mac.lower()])
        flags = self._device_flags(dom)
        with self._libvirt_call(f"unplugging NIC {mac} from {name}"):
            dom.detachDeviceFlags(found, flags)
        self._write_spec(dom, replace(spec, nics=tuple(n for n in spec.nics if n is not nic)))
        if flags & libvirt.VIR_DOMAIN_AFFECT_LIVE:
            self._wait_nic_detached(dom, mac.lower(), name)
        self._sg_drop(name, taps)
        log.info("libvirt.nic_unplugged", vm=name, mac=mac)

    def _wait_nic_detached(self, dom: Any, mac: str, name: str) -> None:
        deadline = time.monotonic() + self.config.detach_timeout
        while time.monotonic() < deadline:
            if not dom.isActive() or mac not in self._facts(dom).nic_targets:
                return
            time.sleep(_POLL)
        raise DriverTimeout(f"the guest of {name} did not release NIC {mac} within "
                            f"{self.config.detach_timeout:.0f} s; it is removed from the definition "
                            "and will be gone after the next stop")

    def update_nic(
        self,
        name: str,
        mac: str,
        *,
        vlan: int | Literal["keep"] | None = "keep",
        network: str | Literal["keep"] | None = "keep",
        enabled: bool | None = None,
    ) -> NicInfo:
        dom = self._dom(name)
        spec = self._spec(dom)
        nic = next((n for n in spec.nics if n.mac.lower() == mac.lower()), None)
        if nic is None:
            raise DeviceNotFound(f"{name} has no NIC with MAC {mac}")
        # replace() keeps every other field (security groups, addresses) as they were
        new = replace(
            nic,
            network=nic.network if network == "keep" else network,
            vlan=nic.vlan if vlan == "keep" else vlan,
            enabled=nic.enabled if enabled is None else enabled,
            vxlan=nic.vxlan if vlan == "keep" else None,
        )
        new_spec = replace(spec, nics=tuple(new if n is nic else n for n in spec.nics))
        if dom.isActive():
            self._ensure_networks(replace(spec, nics=(new,)))
        xml = ET.tostring(nic_element(new, self.settings), encoding="unicode")
        with self._libvirt_call(f"updating NIC {mac} of {name}"):
            dom.updateDeviceFlags(xml, self._device_flags(dom))
        self._write_spec(dom, new_spec)
        if new.security_groups and dom.isActive():
            tap = self._facts(dom).nic_targets.get(new.mac.lower())
            if tap:
                # a NIC moved to another bridge: that bridge's IP traffic must reach the inet hooks
                self._sg.follow_bridge(tap)
        return NicInfo.of(new)

    def console(self, name: str) -> ConsoleEndpoint:
        dom = self._dom(name)
        if not dom.isActive():
            raise InvalidVmState(f"{name} is not running; its console has no port")
        facts = self._facts(dom)
        if facts.vnc_port is None:
            raise DeviceNotFound(f"{name} has no VNC console")
        return ConsoleEndpoint(protocol="vnc", host=facts.vnc_listen or self.settings.vnc_listen,
                               port=facts.vnc_port, password=facts.vnc_password)

    def screenshot(self, name: str, width: int, height: int) -> Thumbnail:
        """``virDomainScreenshot`` of the first screen into a stream (QEMU writes PPM, or PNG on newer
        versions: Pillow reads either), read whole but at most :data:`SCREENSHOT_MAX_BYTES`."""
        thumbnails.check_size(width, height)
        dom = self._dom(name)
        if not dom.isActive():
            raise InvalidVmState(f"{name} is not running; it has no screen")
        data = bytearray()
        with self._libvirt_call(f"screenshot of {name}"):
            stream = self.conn.newStream(0)
            try:
                dom.screenshot(stream, 0, 0)
                while chunk := stream.recv(SCREENSHOT_CHUNK):
                    data += chunk
                    if len(data) > SCREENSHOT_MAX_BYTES:
                        raise DriverError(f"the screenshot of {name} is larger than {SCREENSHOT_MAX_BYTES} bytes")
                stream.finish()
            except BaseException:
                with suppress(libvirt.libvirtError):
                    stream.abort()
                raise
        return thumbnails.to_thumbnail(thumbnails.decode(bytes(data)), width, height)

    # ---------------------------------------------------------------- stats

    def vm_stats(self, names: Sequence[str]) -> dict[str, VmStats]:
        first: list[tuple[str, Any]] = []
        doms: list[tuple[str, Any]] = []
        for name in names:
            try:
                dom = self._dom(name)
            except (VmNotFound, DriverError):
                continue
            if not dom.isActive():
                continue
            doms.append((name, dom))
            with self._lock:
                if name not in self._cpu_samples:
                    first.append((name, dom))
        for name, dom in first:
            self._sample_cpu(name, dom)
        if first:
            time.sleep(0.1)
        out: dict[str, VmStats] = {}
        for name, dom in doms:
            try:
                out[name] = self._stats(name, dom)
            except libvirt.libvirtError:  # stopped meanwhile
                continue
        return out

    def _sample_cpu(self, name: str, dom: Any) -> tuple[float, float, int]:
        """(previous wall time, cpu percent since then, vCPUs) and record a new sample."""
        now = time.monotonic()
        cpu_time = int(dom.getCPUStats(True)[0]["cpu_time"])
        with self._lock:
            prev = self._cpu_samples.get(name)
            self._cpu_samples[name] = (now, cpu_time)
        vcpus = int(dom.info()[3])
        if prev is None or now <= prev[0]:
            return now, 0.0, vcpus
        pct = 100.0 * (cpu_time - prev[1]) / ((now - prev[0]) * 1e9 * max(vcpus, 1))
        return prev[0], max(0.0, min(100.0, pct)), vcpus

    def _stats(self, name: str, dom: Any) -> VmStats:
        _, cpu, vcpus = self._sample_cpu(name, dom)
        mem = dom.memoryStats()
        facts = self._facts(dom)
        rx = tx = 0
        for dev in facts.nic_targets.values():
            if dev:
                s = dom.interfaceStats(dev)
                rx += int(s[0])
                tx += int(s[4])
        rd_req = rd_bytes = wr_req = wr_bytes = 0
        for disk in facts.disks:
            if disk.path:
                b = dom.blockStats(disk.target)
                rd_req, rd_bytes = rd_req + int(b[0]), rd_bytes + int(b[1])
                wr_req, wr_bytes = wr_req + int(b[2]), wr_bytes + int(b[3])
        return VmStats(
            cpu_utilization=round(cpu, 2), num_cpus=vcpus,
            memory_kb=int(mem.get("rss") or mem.get("actual") or dom.info()[2]),
            network_read_kb=rx / 1024, network_write_kb=tx / 1024,
            disk_read_kb=rd_bytes / 1024, disk_write_kb=wr_bytes / 1024,
            disk_read_iops=float(rd_req), disk_write_iops=float(wr_req),
        )

    # ---------------------------------------------------------------- snapshots (internal qcow2)

    def create_snapshot(self, name: str, snapshot: str, description: str = "",
                        with_memory: bool = False) -> SnapshotInfo:
        dom = self._dom(name)
        validate_name(snapshot)
        spec = self._spec(dom)
        bad = [d.path for d in spec.disks if d.device == "disk" and d.path and d.format != "qcow2"]
        if bad:
            raise NotSupported(f"snapshots need qcow2 disks; {', '.join(bad)} are not qcow2")
        if dom.isActive() and not with_memory:
            raise NotSupported("a disk-only snapshot of a running VM is not supported by the libvirt "
                               "driver; stop the VM or include memory")
        el = ET.Element("domainsnapshot")
        ET.SubElement(el, "name").text = snapshot
        ET.SubElement(el, "description").text = description
        with self._libvirt_call(f"snapshot of {name}"):
            snap = dom.snapshotCreateXML(ET.tostring(el, encoding="unicode"), 0)
            return self._snapshot_info(snap)

    @staticmethod
    def _snapshot_info(snap: Any) -> SnapshotInfo:
        root = ET.fromstring(snap.getXMLDesc(0))
        parent = root.find("parent/name")
        state = root.findtext("state", "")
        return SnapshotInfo(
            name=root.findtext("name", ""),
            created_at=float(root.findtext("creationTime", "0")),
            description=root.findtext("description", ""),
            parent=parent.text if parent is not None else None,
            current=bool(snap.isCurrent(0)),
            with_memory=state in ("running", "paused"),
        )

    def list_snapshots(self, name: str) -> list[SnapshotInfo]:
        dom = self._dom(name)
        with self._libvirt_call(f"listing snapshots of {name}"):
            snaps = [self._snapshot_info(s) for s in dom.listAllSnapshots(0)]
        parents = {s.name: s.parent for s in snaps}

        def depth(name: str | None) -> int:
            n = 0
            while name is not None and n <= len(parents):
                name, n = parents.get(name), n + 1
            return n

        # creation times have one-second resolution; the parent chain breaks ties
        return sorted(snaps, key=lambda s: (s.created_at, depth(s.name)))

    def _snap(self, dom: Any, snapshot: str) -> Any:
        try:
            return dom.snapshotLookupByName(snapshot, 0)
        except libvirt.libvirtError as exc:
            if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
                raise SnapshotNotFound(f"{dom.name()} has no snapshot {snapshot}") from None
            raise DriverError(f"snapshot lookup failed: {exc.get_error_message()}") from None

    def revert_snapshot(self, name: str, snapshot: str) -> None:
        dom = self._dom(name)
        snap = self._snap(dom, snapshot)
        with self._libvirt_call(f"snapshot revert of {name}"):
            dom.revertToSnapshot(snap, 0)

    def delete_snapshot(self, name: str, snapshot: str) -> None:
        dom = self._dom(name)
        try:
            snap = self._snap(dom, snapshot)
        except SnapshotNotFound:
            return
        with self._libvirt_call(f"deleting snapshot {snapshot} of {name}"):
            snap.delete(0)

    # ---------------------------------------------------------------- migration

    def migrate_vm(self, name: str, destination: str, *, with_storage: bool = False,
                   live: bool = True) -> None:
        raise NotSupported("live migration is not supported by the hvcloud libvirt driver yet")
