"""The Hyper-V driver's VM operations: define and remove VMs, read them back, power states and
the summary statistics.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from hvcloud import logs
from hvcloud.hypervisor.driver import (
    DriverError,
    InsufficientCapacity,
    InvalidVmState,
    NicSpec,
    NotSupported,
    VmAlreadyExists,
    VmInfo,
    VmSpec,
    VmState,
    VmStats,
)
from hvcloud.hypervisor.hyperv import jobs
from hvcloud.hypervisor.hyperv.connection import WmiObject
from hvcloud.hypervisor.hyperv.disks import SCSI_CONTROLLER, DiskOps
from hvcloud.hypervisor.hyperv.errors import HyperVError
from hvcloud.hypervisor.hyperv.kvp import KVP_DATA_MAX, USER_DATA_KVP, USERDATA_KVP, KvpOps
from hvcloud.hypervisor.hyperv.networking import NetworkOps, refuse_vxlan
from hvcloud.hypervisor.hyperv.session import (
    MIB,
    NOTES_MARK,
    REALIZED,
    RSC_OFF,
    RSC_PAUSE,
    RSC_RESET,
    RSC_SAVE,
    RSC_START,
    Part,
    WmiSession,
    notes_meta,
    path_of,
)
from hvcloud.hypervisor.hyperv.states import vm_state_of

log = logs.get(__name__)


def _memory_units(memory_mib: int) -> int:
    """Hyper-V allocates memory in 2 MB units and refuses an odd number of megabytes."""
    return memory_mib + memory_mib % 2


class VmOps(Part):
    """VM definition, state changes and summaries (os-win: vmutils; nova: vmops)."""

    def __init__(self, session: WmiSession, *, disks: DiskOps, network: NetworkOps, kvp: KvpOps,
                 dom0_min_memory_bytes: int) -> None:
        super().__init__(session)
        self._disk_ops = disks
        self._network = network
        self._kvp = kvp
        self._dom0_min = dom0_min_memory_bytes

    def info(self, vm: WmiObject, vssd: WmiObject) -> VmInfo:
        resources = self._resources(vssd)
        vcpus, memory = 0, 0
        for r in resources:
            if r.class_name == "Msvm_ProcessorSettingData":
                vcpus = int(r["VirtualQuantity"] or 0)
            elif r.class_name == "Msvm_MemorySettingData":
                memory = int(r["VirtualQuantity"] or 0)
        meta = notes_meta(vssd)
        asked = meta.get("memory_mib")
        if isinstance(asked, int) and _memory_units(asked) == memory:
            memory = asked  # read back what was asked for, not the 2 MB rounding of it
        spec = VmSpec(
            name=str(vm["ElementName"]), vcpus=vcpus, memory_mib=memory,
            uuid=meta.get("uuid"), cpu_mhz=meta.get("cpu_mhz"),
            disks=tuple(self._disk_ops.read_disks(resources)),
            nics=tuple(NicSpec(device_id=n.device_id, mac=n.mac, network=n.network, vlan=n.vlan,
                               enabled=n.enabled, model=m)
                       for n, m in self._network.read_nics(resources)),
            boot_args=str(meta.get("boot_args", "")), os_type=meta.get("os_type"),
            metadata=dict(meta.get("metadata", {})))
        return VmInfo(name=spec.name, state=self._state(vm), spec=spec, uuid=str(vm["Name"]))

    def list_vms(self) -> list[VmInfo]:
        systems = {str(vm["Name"]).lower(): vm for vm in self._conn.query("Msvm_ComputerSystem")}
        out = []
        for vssd in self._conn.query("Msvm_VirtualSystemSettingData",
                                     {"VirtualSystemType": REALIZED}):
            vm = systems.get(str(vssd["VirtualSystemIdentifier"]).lower())
            if vm is not None:
                out.append(self.info(vm, vssd))
        return out

    def get_vm(self, name: str) -> VmInfo:
        vm = self._vm(name)
        return self.info(vm, self._vssd(vm))

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
        for nic in spec.nics:
            refuse_vxlan(nic)
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
                                            lambda: path_of(self._find_vm(spec.name))))
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
            self._disk_ops.attach(vm, disk)
        for nic in sorted(spec.nics, key=lambda n: n.device_id):
            self._network.add_port(vm, vssd, nic)
        if spec.boot_args:
            self._kvp.write_kvp(spec.name, USERDATA_KVP, spec.boot_args[:KVP_DATA_MAX])
        if spec.user_data:
            self._kvp.write_kvp(spec.name, USER_DATA_KVP, spec.user_data)

    def undefine_vm(self, name: str) -> None:
        vm = self._find_vm(name)
        if vm is None:
            return
        if self._state(vm) not in (VmState.STOPPED, VmState.SAVED):
            self._request(vm, RSC_OFF, f"turn off {name}")
        self._call(self._vsms(), "DestroySystem", f"remove VM {name}", AffectedSystem=vm.path)

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

