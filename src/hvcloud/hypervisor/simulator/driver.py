"""The simulator driver: the whole driver interface with no hypervisor behind it.

Each simulated host keeps its VMs in ``<state_dir>/vms.json`` (rewritten atomically on every
change), so a restarted agent finds every VM as it was, as a real hypervisor would. Capacity is
enforced (a VM never starts beyond the host's memory), transitions follow the real drivers'
rules, and every simulated host of one process shares a :class:`SimulatedCluster` so that
migration between them works.

Consoles are real: :meth:`SimulatorDriver.console` opens a small VNC server for a running VM on the
host's address (:mod:`.vnc_server`, one event loop per process) the first time it is asked, and
stopping, saving, migrating or undefining the VM closes it. The screen it serves and the thumbnail
(:meth:`SimulatorDriver.screenshot`) are one drawing (:mod:`.screen`).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from hvcloud.atomic_file import load_json, save_json
from hvcloud.hosttypes import HostNic, PoolStats
from hvcloud.hypervisor import thumbnails
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
    SnapshotInfo,
    SnapshotNotFound,
    Thumbnail,
    VmAlreadyExists,
    VmInfo,
    VmNotFound,
    VmSpec,
    VmState,
    VmStats,
    vm_spec_from_dict,
    vm_spec_to_dict,
)
from hvcloud.hypervisor.simulator import screen
from hvcloud.hypervisor.simulator.vnc_server import VncHub, shared_hub
from hvcloud.network.security_groups import NicPolicy
from hvcloud.network.sg_policy import check_policy

GiB = 1024**3


@dataclass(frozen=True)
class HostProfile:
    """The simulated hardware of one host."""

    address: str
    cpus: int = 32
    cpu_sockets: int = 2
    cpu_mhz: int = 2600
    memory_bytes: int = 128 * GiB
    dom0_min_memory_bytes: int = 2 * GiB
    local_pool_bytes: int = 2048 * GiB
    hostname: str | None = None

    @property
    def name(self) -> str:
        return self.hostname or f"sim-{self.address.replace('.', '-')}"

    @property
    def mac(self) -> str:
        h = hashlib.sha256(self.address.encode()).digest()
        return "02:" + ":".join(f"{b:02x}" for b in h[:5])


class SimulatedCluster:
    """All simulated hosts of one process, by address, so that migration can find its target."""

    def __init__(self) -> None:
        self._hosts: dict[str, SimulatorDriver] = {}
        self._lock = threading.Lock()

    def register(self, driver: SimulatorDriver) -> None:
        with self._lock:
            self._hosts[driver.profile.address] = driver

    def get(self, address: str) -> SimulatorDriver | None:
        with self._lock:
            return self._hosts.get(address)


@dataclass
class _Vm:
    spec: VmSpec
    state: VmState
    started_at: float | None = None
    snapshots: list[dict[str, Any]] | None = None


class SimulatorDriver(Driver):
    name = "simulator"
    capabilities = {"vlan": None, "vxlan": None, "nic_hotplug": None, "security_groups": None,
                    "thumbnail": None}
    console_protocol = "vnc"

    def __init__(self, state_dir: Path, profile: HostProfile,
                 cluster: SimulatedCluster | None = None, *, fsync: bool = True,
                 vnc: VncHub | None = None) -> None:
        self.state_dir = state_dir
        self.profile = profile
        self.cluster = cluster or SimulatedCluster()
        self._fsync = fsync
        self._lock = threading.RLock()
        self._file = state_dir / "vms.json"
        self._vms: dict[str, _Vm] = {}
        #: security-group policies in force, by (VM, MAC); in memory only, as a real host's
        #: rules die with the host's ruleset (the server resends them at VM start)
        self._policies: dict[tuple[str, str], NicPolicy] = {}
        #: where the VMs' consoles are served (the process's hub unless a test brings its own)
        self._vnc = vnc or shared_hub()
        self._load()
        self.cluster.register(self)

    # ---------------------------------------------------------------- persistence

    def _load(self) -> None:
        raw = load_json(self._file, {"vms": {}})
        for name, rec in raw.get("vms", {}).items():
            self._vms[name] = _Vm(
                spec=vm_spec_from_dict(rec["spec"]),
                state=VmState(rec["state"]),
                started_at=rec.get("started_at"),
                snapshots=rec.get("snapshots") or [],
            )

    def _save(self) -> None:
        data = {"vms": {
            name: {"spec": vm_spec_to_dict(vm.spec), "state": vm.state.value,
                   "started_at": vm.started_at, "snapshots": vm.snapshots or []}
            for name, vm in self._vms.items()}}
        save_json(self._file, data, fsync=self._fsync)

    def _vm(self, name: str) -> _Vm:
        try:
            return self._vms[name]
        except KeyError:
            raise VmNotFound(name) from None

    def _info(self, vm: _Vm) -> VmInfo:
        return VmInfo(name=vm.spec.name, state=vm.state, spec=vm.spec, uuid=vm.spec.uuid)

    # ---------------------------------------------------------------- host

    def host_info(self) -> HostInfo:
        p = self.profile
        return HostInfo(
            hostname=p.name, hypervisor_type="Simulator", hypervisor_version="1.0",
            cpu_sockets=p.cpu_sockets, cpus=p.cpus, cpu_mhz=p.cpu_mhz, memory_bytes=p.memory_bytes,
            nics=(HostNic(name="eth0", ip=p.address, netmask="255.0.0.0", mac=p.mac),),
            dom0_min_memory_bytes=p.dom0_min_memory_bytes,
        )

    def _used_memory_mib(self) -> int:
        return sum(vm.spec.memory_mib for vm in self._vms.values()
                   if vm.state in (VmState.RUNNING, VmState.PAUSED))

    def host_stats(self) -> HostStats:
        with self._lock:
            used = self._used_memory_mib() * 1024
            running = [vm for vm in self._vms.values() if vm.state == VmState.RUNNING]
        total_kb = self.profile.memory_bytes // 1024
        busy = sum(vm.spec.vcpus for vm in running)
        cpu = min(100.0, 100.0 * busy * 0.1 / max(1, self.profile.cpus))
        return HostStats(cpu_utilization=round(cpu, 2), total_memory_kb=total_kb,
                         free_memory_kb=max(0, total_kb - used),
                         network_read_kb=float(len(running) * 10), network_write_kb=float(len(running) * 5))

    def local_pool(self) -> PoolStats | None:
        return PoolStats(path=f"/var/lib/hvcloud-sim/{self.profile.address}/local",
                         capacity_bytes=self.profile.local_pool_bytes,
                         available_bytes=self.profile.local_pool_bytes)

    # ---------------------------------------------------------------- lifecycle

    def list_vms(self) -> list[VmInfo]:
        with self._lock:
            return [self._info(vm) for vm in self._vms.values()]

    def get_vm(self, name: str) -> VmInfo:
        with self._lock:
            return self._info(self._vm(name))

    def define_vm(self, spec: VmSpec) -> VmInfo:
        if spec.vcpus < 1 or spec.memory_mib < 1:
            raise DriverError("a VM needs at least one vCPU and 1 MiB of memory")
        if spec.memory_mib * 1024 * 1024 > self.profile.memory_bytes - self.profile.dom0_min_memory_bytes:
            raise InsufficientCapacity(
                f"VM {spec.name} needs {spec.memory_mib} MiB; host {self.profile.name} can never "
                f"provide more than {(self.profile.memory_bytes - self.profile.dom0_min_memory_bytes) >> 20} MiB")
        with self._lock:
            if spec.name in self._vms:
                raise VmAlreadyExists(spec.name)
            vm = _Vm(spec=spec, state=VmState.STOPPED, snapshots=[])
            self._vms[spec.name] = vm
            self._save()
            return self._info(vm)

    def start_vm(self, name: str) -> None:
        with self._lock:
            vm = self._vm(name)
            if vm.state == VmState.RUNNING:
                return
            if vm.state == VmState.PAUSED:
                raise InvalidVmState(f"VM {name} is paused; resume it instead")
            free_mib = (self.profile.memory_bytes - self.profile.dom0_min_memory_bytes) // 2**20 \
                - self._used_memory_mib()
            if vm.spec.memory_mib > free_mib:
                raise InsufficientCapacity(
                    f"host {self.profile.name} has {free_mib} MiB free, VM {name} needs {vm.spec.memory_mib} MiB")
            vm.state = VmState.RUNNING
            vm.started_at = time.time()
            for nic in vm.spec.nics:
                self._sg_defaults(name, nic)
            self._save()

    def stop_vm(self, name: str, timeout: float, force: bool = False) -> None:
        with self._lock:
            vm = self._vm(name)
            if vm.state in (VmState.STOPPED,):
                return
            vm.state = VmState.STOPPED
            vm.started_at = None
            self._sg_forget(name)
            self._save()
        self._close_console(name)

    def reboot_vm(self, name: str, hard: bool = False) -> None:
        with self._lock:
            vm = self._vm(name)
            if vm.state != VmState.RUNNING:
                raise InvalidVmState(f"VM {name} is {vm.state.value}, not Running")
            vm.started_at = time.time()
            self._save()

    def undefine_vm(self, name: str) -> None:
        with self._lock:
            self._sg_forget(name)
            if self._vms.pop(name, None) is not None:
                self._save()
        self._close_console(name)

    def _transition(self, name: str, allowed: set[VmState], target: VmState, verb: str) -> None:
        with self._lock:
            vm = self._vm(name)
            if vm.state == target:
                return
            if vm.state not in allowed:
                raise InvalidVmState(f"cannot {verb} VM {name}: it is {vm.state.value}")
            vm.state = target
            self._save()

    def pause_vm(self, name: str) -> None:
        self._transition(name, {VmState.RUNNING}, VmState.PAUSED, "pause")

    def resume_vm(self, name: str) -> None:
        self._transition(name, {VmState.PAUSED}, VmState.RUNNING, "resume")

    def save_vm(self, name: str) -> None:
        self._transition(name, {VmState.RUNNING, VmState.PAUSED}, VmState.SAVED, "save")
        self._close_console(name)

    def restore_vm(self, name: str) -> None:
        self._transition(name, {VmState.SAVED}, VmState.RUNNING, "restore")

    # ---------------------------------------------------------------- devices

    def attach_disk(self, name: str, disk: DiskSpec) -> None:
        with self._lock:
            vm = self._vm(name)
            disks = list(vm.spec.disks)
            for i, d in enumerate(disks):
                if d.slot == disk.slot:
                    if d.path == disk.path and d.device == disk.device:
                        return
                    if d.device == "cdrom" and disk.device == "cdrom":
                        disks[i] = disk
                        break
                    raise DriverError(f"slot {disk.slot} of VM {name} already holds {d.path}")
            else:
                disks.append(disk)
            vm.spec = replace(vm.spec, disks=tuple(sorted(disks, key=lambda d: d.slot)))
            self._save()

    def detach_disk(self, name: str, path: str) -> None:
        with self._lock:
            vm = self._vm(name)
            disks = list(vm.spec.disks)
            for i, d in enumerate(disks):
                if d.path == path:
                    if d.device == "cdrom":
                        disks[i] = replace(d, path=None)
                    else:
                        del disks[i]
                    break
            else:
                raise DeviceNotFound(f"VM {name} has no disk {path}")
            vm.spec = replace(vm.spec, disks=tuple(disks))
            self._save()

    def resize_disk(self, name: str, path: str, size: int) -> int | None:
        """Simulated disks are records in the simulated storage, which resizes them running or not."""
        return None

    def list_nics(self, name: str) -> list[NicInfo]:
        with self._lock:
            vm = self._vm(name)
            return [NicInfo.of(n) for n in sorted(vm.spec.nics, key=lambda n: n.device_id)]

    def plug_nic(self, name: str, nic: NicSpec) -> NicInfo:
        with self._lock:
            vm = self._vm(name)
            same = next((n for n in vm.spec.nics if n.mac.lower() == nic.mac.lower()), None)
            if same is not None:
                if same == nic:
                    return NicInfo.of(same)
                raise InvalidVmState(f"VM {name} already has a NIC with MAC {nic.mac}")
            if any(n.device_id == nic.device_id for n in vm.spec.nics):
                raise InvalidVmState(f"VM {name} already has a NIC at device {nic.device_id}")
            vm.spec = replace(vm.spec, nics=(*vm.spec.nics, nic))
            if vm.state in (VmState.RUNNING, VmState.PAUSED):
                self._sg_defaults(name, nic)
            self._save()
            return NicInfo.of(nic)

    def unplug_nic(self, name: str, mac: str) -> None:
        with self._lock:
            vm = self._vm(name)
            kept = tuple(n for n in vm.spec.nics if n.mac.lower() != mac.lower())
            if len(kept) == len(vm.spec.nics):
                raise DeviceNotFound(f"VM {name} has no NIC with MAC {mac}")
            vm.spec = replace(vm.spec, nics=kept)
            self._policies.pop((name, mac.lower()), None)
            self._save()

    # ---------------------------------------------------------------- security groups

    def _sg_defaults(self, name: str, nic: NicSpec) -> None:
        """What a real host puts on a security-group port when it appears: no rule admits anything
        inbound (``seq`` -1: any policy replaces it)."""
        if nic.security_groups:
            self._policies[(name, nic.mac.lower())] = NicPolicy(mac=nic.mac.lower(), ips=nic.ips, ingress=(),
                                                                egress=(), seq=-1)

    def _sg_forget(self, name: str) -> None:
        for key in [k for k in self._policies if k[0] == name]:
            del self._policies[key]

    def apply_security_groups(self, name: str, policy: NicPolicy) -> None:
        check_policy(policy)
        with self._lock:
            vm = self._vm(name)
            if not any(n.mac.lower() == policy.mac for n in vm.spec.nics):
                raise DeviceNotFound(f"VM {name} has no NIC with MAC {policy.mac}")
            if vm.state not in (VmState.RUNNING, VmState.PAUSED):
                raise InvalidVmState(f"VM {name} is {vm.state.value}: its NIC {policy.mac} has no port")
            current = self._policies.get((name, policy.mac))
            if current is not None and policy.seq < current.seq:
                return
            self._policies[(name, policy.mac)] = policy

    def security_policy(self, name: str, mac: str) -> NicPolicy | None:
        """The policy in force on the NIC (seq -1: the defaults), or None (no security groups)."""
        with self._lock:
            return self._policies.get((name, mac.lower()))

    def security_policies(self) -> dict[tuple[str, str], NicPolicy]:
        with self._lock:
            return dict(self._policies)

    def update_nic(self, name: str, mac: str, *, vlan: int | Literal["keep"] | None = "keep",
                   network: str | Literal["keep"] | None = "keep", enabled: bool | None = None) -> NicInfo:
        with self._lock:
            vm = self._vm(name)
            nics = list(vm.spec.nics)
            for i, n in enumerate(nics):
                if n.mac.lower() == mac.lower():
                    new = replace(
                        n,
                        vlan=n.vlan if vlan == "keep" else vlan,
                        vxlan=n.vxlan if vlan == "keep" else None,
                        network=n.network if network == "keep" else network,
                        enabled=n.enabled if enabled is None else enabled,
                    )
                    nics[i] = new
                    vm.spec = replace(vm.spec, nics=tuple(nics))
                    self._save()
                    return NicInfo.of(new)
            raise DeviceNotFound(f"VM {name} has no NIC with MAC {mac}")

    # ---------------------------------------------------------------- console and screen

    def _console_key(self, name: str) -> str:
        return f"{self.profile.address}/{name}"

    def _close_console(self, name: str) -> None:
        self._vnc.close(self._console_key(name))

    def _screen_of(self, name: str) -> tuple[str, VmState]:
        """The VM's VNC password and state when it shows a screen (running or paused), else
        InvalidVmState."""
        with self._lock:
            vm = self._vm(name)
            if vm.state not in (VmState.RUNNING, VmState.PAUSED):
                raise InvalidVmState(f"{name} is {vm.state.value}; only a running VM has a screen")
            return vm.spec.vnc_password or "", vm.state

    def console(self, name: str) -> ConsoleEndpoint:
        """The VM's VNC server, opened on the host's address on first use (InvalidVmState unless the
        VM runs or is paused)."""
        password, state = self._screen_of(name)
        port = self._vnc.open(self._console_key(name), self.profile.address, password or None,
                              lambda: screen.Frame.of(screen.draw(name, state.value), name))
        return ConsoleEndpoint(protocol="vnc", host=self.profile.address, port=port,
                               password=password or None)

    def screenshot(self, name: str, width: int, height: int) -> Thumbnail:
        thumbnails.check_size(width, height)
        _password, state = self._screen_of(name)
        return thumbnails.to_thumbnail(screen.draw(name, state.value), width, height)

    def close(self) -> None:
        """Close this host's consoles (the hub and its thread stay for the process's other hosts)."""
        prefix = self._console_key("")
        for key in self._vnc.open_consoles():
            if key.startswith(prefix):
                self._vnc.close(key)

    # ---------------------------------------------------------------- stats

    def vm_stats(self, names: Sequence[str]) -> dict[str, VmStats]:
        now = time.time()
        out: dict[str, VmStats] = {}
        with self._lock:
            for name in names:
                vm = self._vms.get(name)
                if vm is None or vm.state != VmState.RUNNING:
                    continue
                phase = int(hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()[:6], 16)
                cpu = 20.0 + 15.0 * math.sin(now / 30.0 + phase)
                up = now - (vm.started_at or now)
                out[name] = VmStats(cpu_utilization=round(cpu, 2), num_cpus=vm.spec.vcpus,
                                    memory_kb=vm.spec.memory_mib * 1024,
                                    network_read_kb=round(up * 1.5, 1), network_write_kb=round(up * 0.7, 1),
                                    disk_read_kb=round(up * 4.0, 1), disk_write_kb=round(up * 2.0, 1))
        return out

    # ---------------------------------------------------------------- snapshots

    def create_snapshot(self, name: str, snapshot: str, description: str = "",
                        with_memory: bool = False) -> SnapshotInfo:
        with self._lock:
            vm = self._vm(name)
            snaps = vm.snapshots if vm.snapshots is not None else []
            if any(s["name"] == snapshot for s in snaps):
                raise DriverError(f"VM {name} already has a snapshot {snapshot}")
            parent = next((s["name"] for s in snaps if s.get("current")), None)
            for s in snaps:
                s["current"] = False
            rec = {"name": snapshot, "created_at": time.time(), "description": description,
                   "parent": parent, "current": True,
                   "with_memory": bool(with_memory and vm.state == VmState.RUNNING),
                   "state": vm.state.value, "spec": vm_spec_to_dict(vm.spec)}
            snaps.append(rec)
            vm.snapshots = snaps
            self._save()
            return self._snapshot_info(rec)

    @staticmethod
    def _snapshot_info(rec: dict[str, Any]) -> SnapshotInfo:
        return SnapshotInfo(name=rec["name"], created_at=rec["created_at"],
                            description=rec.get("description", ""), parent=rec.get("parent"),
                            current=bool(rec.get("current")), with_memory=bool(rec.get("with_memory")))

    def list_snapshots(self, name: str) -> list[SnapshotInfo]:
        with self._lock:
            return [self._snapshot_info(s) for s in (self._vm(name).snapshots or [])]

    def revert_snapshot(self, name: str, snapshot: str) -> None:
        with self._lock:
            vm = self._vm(name)
            rec = next((s for s in vm.snapshots or [] if s["name"] == snapshot), None)
            if rec is None:
                raise SnapshotNotFound(f"VM {name} has no snapshot {snapshot}")
            vm.spec = vm_spec_from_dict(rec["spec"])
            vm.state = VmState.RUNNING if rec.get("with_memory") else VmState.STOPPED
            vm.started_at = time.time() if vm.state == VmState.RUNNING else None
            for s in vm.snapshots or []:
                s["current"] = s["name"] == snapshot
            self._save()
        if vm.state != VmState.RUNNING:
            self._close_console(name)

    def delete_snapshot(self, name: str, snapshot: str) -> None:
        with self._lock:
            vm = self._vm(name)
            snaps = vm.snapshots or []
            rec = next((s for s in snaps if s["name"] == snapshot), None)
            if rec is None:
                return
            for s in snaps:
                if s.get("parent") == snapshot:
                    s["parent"] = rec.get("parent")
            snaps.remove(rec)
            self._save()

    # ---------------------------------------------------------------- migration

    def migrate_vm(self, name: str, destination: str, *, with_storage: bool = False,
                   live: bool = True) -> None:
        target = self.cluster.get(destination)
        if target is None:
            raise DriverError(f"migration target {destination} is not reachable")
        if target is self:
            raise DriverError("cannot migrate a VM to the host it runs on")
        with self._lock:
            vm = self._vm(name)
            if live and vm.state not in (VmState.RUNNING, VmState.PAUSED):
                raise InvalidVmState(f"live migration needs a running VM; {name} is {vm.state.value}")
            target.receive_vm(vm.spec, vm.state)
            del self._vms[name]
            self._sg_forget(name)
            self._save()
        self._close_console(name)

    def receive_vm(self, spec: VmSpec, state: VmState) -> None:
        """The target half of a migration between simulated hosts."""
        self.define_vm(spec)
        if state in (VmState.RUNNING, VmState.PAUSED):
            try:
                self.start_vm(spec.name)
            except InsufficientCapacity:
                self.undefine_vm(spec.name)
                raise
            if state == VmState.PAUSED:
                self.pause_vm(spec.name)
