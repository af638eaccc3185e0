"""What the parts of the Hyper-V driver share: the WMI connections, method calls with job
waiting and retries, result lookup, the service cache and the VM lookups.

os-win keeps the same in its base utils class; here it is one :class:`WmiSession` that
every part (:class:`Part`) is handed, so there is one copy of each helper.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from hvcloud import logs
from hvcloud.hypervisor.driver import (
    DriverError,
    VmNotFound,
    VmState,
)
from hvcloud.hypervisor.hyperv import jobs
from hvcloud.hypervisor.hyperv.connection import WmiConnection, WmiObject
from hvcloud.hypervisor.hyperv.errors import (
    HyperVError,
    HyperVJobCancelled,
    HyperVJobTimeout,
    WmiNotFound,
)
from hvcloud.hypervisor.hyperv.states import vm_state_of

log = logs.get(__name__)

MIB = 1024 * 1024
REALIZED = "Microsoft:Hyper-V:System:Realized"
NOTES_MARK = "hvcloud:"

# RequestStateChange values (V2)
RSC_START, RSC_OFF, RSC_SAVE, RSC_PAUSE, RSC_RESET = 2, 3, 6, 9, 11
#: ReturnValue "invalid state" of a power change: the VM is (already) in the requested state
ALREADY_IN_STATE = 32775
#: os-win retries resource and feature setting changes (the host sometimes refuses one briefly)
RETRIED_METHODS = frozenset({"AddResourceSettings", "ModifyResourceSettings",
                             "RemoveResourceSettings", "AddFeatureSettings",
                             "ModifyFeatureSettings", "RemoveFeatureSettings"})
RETRY_ATTEMPTS = 3
RETRY_DELAY = 1.0


def path_of(obj: WmiObject | None) -> str | None:
    return obj.path if obj is not None else None


def notes_meta(vssd: WmiObject) -> dict[str, Any]:
    for line in vssd["Notes"] or []:
        if isinstance(line, str) and line.startswith(NOTES_MARK):
            try:
                meta = json.loads(line[len(NOTES_MARK):])
            except ValueError:
                return {}
            return meta if isinstance(meta, dict) else {}
    return {}


class WmiSession:
    """One Hyper-V host's WMI v2 and cimv2 connections and the helpers over them."""

    def __init__(self, conn: WmiConnection, cimv2: WmiConnection, *, job_timeout: float = 600.0,
                 clock: jobs.Clock | None = None, cancel: threading.Event | None = None) -> None:
        self.conn = conn
        self.cimv2 = cimv2
        self.job_timeout = job_timeout
        self.clock = clock or jobs.Clock()
        self.cancel = cancel or threading.Event()
        self._services: dict[str, WmiObject] = {}
        self._lock = threading.Lock()

    def policy(self, timeout: float | None = None) -> jobs.JobPolicy:
        return jobs.JobPolicy(timeout=timeout or self.job_timeout, cancel=self.cancel,
                              clock=self.clock)

    def call(self, obj: WmiObject, method: str, operation: str, *,
             timeout: float | None = None, success: Sequence[int] = (0,),
             **params: Any) -> tuple[dict[str, Any], WmiObject | None]:
        attempts = RETRY_ATTEMPTS if method in RETRIED_METHODS else 1
        for attempt in range(1, attempts + 1):
            try:
                return self.call_once(obj, method, operation, timeout, success, params)
            except (HyperVJobTimeout, HyperVJobCancelled):
                raise
            except HyperVError as exc:
                if attempt == attempts:
                    raise
                log.warning("hyperv_call_retried", operation=operation, attempt=attempt,
                            code=exc.code, error=exc.text)
                self.clock.sleep(RETRY_DELAY * attempt)
        raise AssertionError("unreachable")

    def call_once(self, obj: WmiObject, method: str, operation: str, timeout: float | None,
                  success: Sequence[int], params: dict[str, Any]
                  ) -> tuple[dict[str, Any], WmiObject | None]:
        out = self.conn.invoke(obj, method, **params)
        job = jobs.check(self.conn, out, operation, self.policy(timeout), success=success)
        return out, job

    def service(self, class_name: str) -> WmiObject:
        with self._lock:
            if class_name not in self._services:
                found = self.conn.query(class_name)
                if not found:
                    raise DriverError(f"{class_name} not found: is the Hyper-V role installed?")
                self._services[class_name] = found[0]
            return self._services[class_name]

    def vsms(self) -> WmiObject:
        return self.service("Msvm_VirtualSystemManagementService")

    def default(self, class_name: str, subtype: str) -> WmiObject:
        for obj in self.conn.query(class_name, {"ResourceSubType": subtype}):
            if str(obj["InstanceID"]).endswith("\\Default"):
                return obj
        raise DriverError(f"no default {class_name} for {subtype}")

    def resulting(self, out: dict[str, Any], key: str, job: WmiObject | None,
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
            found = self.conn.associators(job, assoc_class="Msvm_AffectedJobElement",
                                          result_class=result_class)
            if found:
                return found[0].path
        path = lookup() if lookup is not None else None
        if path:
            log.info("result_looked_up", key=key, path=path)
            return path
        raise DriverError(f"Hyper-V did not return the {key}")

    def find_vssd(self, name: str) -> WmiObject | None:
        found = self.conn.query("Msvm_VirtualSystemSettingData",
                                {"ElementName": name, "VirtualSystemType": REALIZED})
        if len(found) > 1:
            raise DriverError(f"{len(found)} Hyper-V VMs are named {name}; rename the extras")
        return found[0] if found else None

    def find_vm(self, name: str) -> WmiObject | None:
        vssd = self.find_vssd(name)
        if vssd is None:
            return None
        found = self.conn.query("Msvm_ComputerSystem", {"Name": vssd["VirtualSystemIdentifier"]})
        return found[0] if found else None

    def vm(self, name: str) -> WmiObject:
        vm = self.find_vm(name)
        if vm is None:
            raise VmNotFound(name)
        return vm

    def vssd(self, vm: WmiObject) -> WmiObject:
        for sd in self.conn.associators(vm, assoc_class="Msvm_SettingsDefineState",
                                        result_class="Msvm_VirtualSystemSettingData"):
            if sd["VirtualSystemType"] == REALIZED:
                return sd
        raise DriverError(f"VM {vm['ElementName']} has no realized settings")

    def resources(self, vssd: WmiObject, result_class: str = "CIM_ResourceAllocationSettingData"
                  ) -> list[WmiObject]:
        return self.conn.associators(vssd, assoc_class="Msvm_VirtualSystemSettingDataComponent",
                                     result_class=result_class)

    def state(self, vm: WmiObject) -> VmState:
        return vm_state_of(vm["EnabledState"])

    def refresh(self, vm: WmiObject) -> WmiObject:
        try:
            return self.conn.get(vm.path)
        except WmiNotFound as exc:
            raise VmNotFound(str(vm["ElementName"])) from exc

    def request(self, vm: WmiObject, state: int, operation: str) -> None:
        # like os-win, take 32775 (invalid state) as done: the VM already is where it was sent
        self.call(vm, "RequestStateChange", operation, RequestedState=state,
                  success=(0, ALREADY_IN_STATE))

    def add_resource(self, vssd: WmiObject, rasd: WmiObject, operation: str) -> str:
        out, job = self.call(self.vsms(), "AddResourceSettings", operation,
                             AffectedConfiguration=vssd.path,
                             ResourceSettings=[self.conn.embed(rasd)])
        return self.resulting(out, "ResultingResourceSettings", job,
                              "CIM_ResourceAllocationSettingData")


class Part:
    """What every part of the driver holds: the shared session's connections and helpers, bound
    under the names the parts use (the helpers themselves live only in :class:`WmiSession`)."""

    def __init__(self, session: WmiSession) -> None:
        self._session = session
        self._conn = session.conn
        self._cimv2 = session.cimv2
        self._clock = session.clock
        self._job_timeout = session.job_timeout
        self._policy = session.policy
        self._call = session.call
        self._service = session.service
        self._vsms = session.vsms
        self._default = session.default
        self._resulting = session.resulting
        self._find_vssd = session.find_vssd
        self._find_vm = session.find_vm
        self._vm = session.vm
        self._vssd = session.vssd
        self._resources = session.resources
        self._state = session.state
        self._refresh = session.refresh
        self._request = session.request
        self._add_resource = session.add_resource
