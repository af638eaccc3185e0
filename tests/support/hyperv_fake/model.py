"""A strict in-memory model of the Hyper-V WMI v2 classes the driver uses.

Written from Microsoft's documented schema (see :mod:`hvcloud.hypervisor.hyperv.schema`), it
rejects unknown classes, properties, methods and parameters and wrongly typed values with a
:class:`~.types.SchemaViolation` (which the driver never catches), and it keeps state the way
Hyper-V documents it: ``EnabledState`` 2 running, 3 off, 6 saved, 9 paused, transitional values
while a job runs; methods answer 0, 4096 with a ``Msvm_ConcreteJob`` or an error code; jobs move
from Running to Completed/Exception/Terminated as the clock ticks (every WMI call is one tick);
objects read through the connection are copies, so a property changed locally does nothing until
it is sent back through a method, exactly as with real WMI.
"""

from __future__ import annotations

import copy
import ipaddress
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hvcloud.hypervisor.hyperv import cimxml, schema
from hvcloud.hypervisor.hyperv.errors import WmiNotFound
from tests.support.hyperv_fake.types import (
    SchemaViolation,
    UnknownClass,
    UnknownMethod,
    UnknownProperty,
    WrongType,
    check_value,
    from_dmtf,
)

OK, JOB_STARTED = 0, 4096
FAILED, NOT_SUPPORTED, INVALID_PARAMETER, IN_USE, INVALID_STATE = 32768, 32770, 32773, 32774, 32775
#: Msvm_VirtualSystemSettingData.UserSnapshotType
SNAPSHOT_DISABLED, SNAPSHOT_PRODUCTION, SNAPSHOT_PRODUCTION_ONLY, SNAPSHOT_STANDARD = 2, 3, 4, 5

RUNNING, OFF, SHUTTING_DOWN, SAVED, PAUSED = 2, 3, 4, 6, 9
STARTING, SAVING, STOPPING, PAUSING, RESUMING, SNAPSHOTTING = 32770, 32773, 32774, 32776, 32777, 32771

REALIZED = "Microsoft:Hyper-V:System:Realized"
SNAPSHOT = "Microsoft:Hyper-V:Snapshot:Realized"

SUBTYPES: dict[str, tuple[str, int]] = {
    "Microsoft:Hyper-V:Emulated IDE Controller": ("Msvm_ResourceAllocationSettingData", 5),
    "Microsoft:Hyper-V:Synthetic SCSI Controller": ("Msvm_ResourceAllocationSettingData", 6),
    "Microsoft:Hyper-V:Synthetic Disk Drive": ("Msvm_ResourceAllocationSettingData", 17),
    "Microsoft:Hyper-V:Synthetic DVD Drive": ("Msvm_ResourceAllocationSettingData", 16),
    "Microsoft:Hyper-V:Virtual Hard Disk": ("Msvm_StorageAllocationSettingData", 31),
    "Microsoft:Hyper-V:Virtual CD/DVD Disk": ("Msvm_StorageAllocationSettingData", 16),
    "Microsoft:Hyper-V:Synthetic Ethernet Port": ("Msvm_SyntheticEthernetPortSettingData", 10),
    "Microsoft:Hyper-V:Emulated Ethernet Port": ("Msvm_EmulatedEthernetPortSettingData", 10),
    "Microsoft:Hyper-V:Ethernet Connection": ("Msvm_EthernetPortAllocationSettingData", 33),
    "Microsoft:Hyper-V:Memory": ("Msvm_MemorySettingData", 4),
    "Microsoft:Hyper-V:Processor": ("Msvm_ProcessorSettingData", 3),
}
_CONTROLLERS = ("Microsoft:Hyper-V:Emulated IDE Controller",
                "Microsoft:Hyper-V:Synthetic SCSI Controller")
_DRIVES = ("Microsoft:Hyper-V:Synthetic Disk Drive", "Microsoft:Hyper-V:Synthetic DVD Drive")
_MEDIA = {"Microsoft:Hyper-V:Virtual Hard Disk": ("Microsoft:Hyper-V:Synthetic Disk Drive",
                                                  (".vhd", ".vhdx")),
          "Microsoft:Hyper-V:Virtual CD/DVD Disk": ("Microsoft:Hyper-V:Synthetic DVD Drive",
                                                    (".iso",))}
_PORTS = ("Microsoft:Hyper-V:Synthetic Ethernet Port", "Microsoft:Hyper-V:Emulated Ethernet Port")
#: the job class each service's methods hand back (Msvm_ConcreteJob for the others)
_JOB_CLASS = {"Msvm_ImageManagementService": "Msvm_StorageJob",
              "Msvm_VirtualSystemMigrationService": "Msvm_MigrationJob"}
_COMPONENTS = ("Msvm_ShutdownComponent", "Msvm_HeartbeatComponent", "Msvm_KvpExchangeComponent")
_FILE_NOT_FOUND = "The system cannot find the file specified. (0x80070002)"


class JobError(Exception):
    """Raised inside an effect to fail the job with Hyper-V's code and text."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass
class Guest:
    """What the model pretends the guest OS does."""

    ic_running: bool = True
    honours_shutdown: bool = True
    shutdown_ticks: int = 2
    cpu_load: int = 7
    ips: dict[str, list[str]] = field(default_factory=dict)
    kvp: dict[str, str] = field(default_factory=dict)
    reboots: int = 0
    resets: int = 0


@dataclass
class _Record:
    class_name: str
    props: dict[str, Any]
    path: str


@dataclass
class _Job:
    record: _Record
    method: str
    due: int
    effect: Callable[[], list[str]]
    hang: bool = False
    fail: tuple[int, str] | None = None
    target: str = ""


@dataclass
class _Result:
    code: int = OK
    outputs: dict[str, Any] = field(default_factory=dict)
    effect: Callable[[], list[str]] | None = None


def _guid() -> str:
    return str(uuid.uuid4()).upper()


def _now() -> str:
    return "20260101120000.000000+000"


class ModelObject:
    """A local copy of one instance. Unknown properties and wrong types raise at once."""

    def __init__(self, model: HyperVModel, class_name: str, props: dict[str, Any], path: str):
        self._model = model
        self._class = class_name
        self._props = props
        self._path = path

    @property
    def class_name(self) -> str:
        return self._class

    @property
    def path(self) -> str:
        return self._path

    def _type(self, prop: str) -> str:
        types = schema.properties(self._class)
        if prop not in types:
            raise UnknownProperty(f"{self._class} has no property {prop!r}")
        return types[prop]

    def __getitem__(self, prop: str) -> Any:
        typ = self._type(prop)
        value = copy.deepcopy(self._props.get(prop))
        if typ == "datetime" and isinstance(value, str) and value[-4:-3] in ("+", "-"):
            # PyMI converts CIM datetimes into datetime.datetime (intervals are not used here)
            return from_dmtf(value)
        return value

    def __setitem__(self, prop: str, value: Any) -> None:
        typ = self._type(prop)
        self._props[prop] = check_value(f"{self._class}.{prop}", typ, value,
                                        self._model._check_ref, self._model._check_embedded)

    def __repr__(self) -> str:
        return f"<ModelObject {self._class} {self._path}>"


class ModelConnection:
    """:class:`~hvcloud.hypervisor.hyperv.connection.WmiConnection` over the model."""

    def __init__(self, model: HyperVModel, namespace: str) -> None:
        self._model = model
        self._ns = namespace

    def query(self, class_name: str, where: Mapping[str, Any] | None = None) -> list[Any]:
        return self._model.query(self._ns, class_name, where or {})

    def get(self, path: str) -> Any:
        return self._model.get(self._ns, path)

    def associators(self, obj: Any, *, assoc_class: str, result_class: str) -> list[Any]:
        return self._model.associators(self._ns, obj, assoc_class, result_class)

    def new_instance(self, class_name: str) -> Any:
        return self._model.new_instance(self._ns, class_name)

    def embed(self, obj: Any) -> str:
        return self._model.embed(obj)

    def invoke(self, obj: Any, method: str, **params: Any) -> dict[str, Any]:
        return self._model.invoke(self._ns, obj, method, params)


class HyperVModel:
    """One modelled Hyper-V host with both namespaces the driver uses."""

    def __init__(self, host: str = "HVHOST", memory_mb: int = 65536, job_ticks: int = 2) -> None:
        self.host = host
        self.memory_mb = memory_mb
        self.job_ticks = job_ticks
        self.ticks = 0
        self.calls: list[str] = []
        #: why the model answered Invalid parameter to a call missing a required parameter
        self.refusals: list[str] = []
        self.files: set[str] = set()
        #: the virtual hard disks IMS created or resized, by lower-cased path
        self.virtual_disks: dict[str, dict[str, Any]] = {}
        #: optional view of the host's real files (Windows path → whether it exists); tests map
        #: pools onto temporary directories so that files made by the storage backend count
        self.host_files: Callable[[str], bool] | None = None
        #: optional writer that makes the file an IMS job creates or resizes: (operation, settings)
        self.disk_writer: Callable[[str, dict[str, Any]], None] | None = None
        self.exports: dict[str, dict[str, Any]] = {}
        self.guests: dict[str, Guest] = {}
        self.peers: dict[str, HyperVModel] = {}
        self.sync_methods: set[str] = set()
        #: methods whose answer after 4096 carries no reference out-parameter and whose job
        #: links no affected element: a host is not bound to fill either (os-win looks the
        #: result up by name instead)
        self.bare_jobs: set[str] = set()
        self._fail_next: dict[str, int] = {}
        self._fail_next_job: dict[str, tuple[int, str]] = {}
        self._hang_next_job: set[str] = set()
        self._lock = threading.RLock()
        self._records: dict[str, _Record] = {}
        self._assocs: list[tuple[str, str, str]] = []
        self._jobs: list[_Job] = []
        self._events: list[tuple[int, Callable[[], None]]] = []
        self._snapshot_memory: dict[str, bool] = {}
        self._seed()

    # ------------------------------------------------------------------ test controls

    def connection(self, namespace: str = schema.V2) -> ModelConnection:
        return ModelConnection(self, namespace)

    def add_file(self, path: str) -> None:
        self.files.add(path.lower())

    def has_file(self, path: str) -> bool:
        if path.lower() in self.files:
            return True
        return self.host_files is not None and self.host_files(path)

    def fail_next(self, method: str, code: int) -> None:
        """The next call of ``method`` answers ``code`` at once."""
        self._fail_next[method] = code

    def fail_next_job(self, method: str, code: int, text: str) -> None:
        """The next job of ``method`` ends in Exception with ErrorCode/ErrorDescription."""
        self._fail_next_job[method] = (code, text)

    def hang_next_job(self, method: str) -> None:
        """The next job of ``method`` never finishes by itself."""
        self._hang_next_job.add(method)

    def guest(self, vm_name: str) -> Guest:
        rec = self._vm_by_name(vm_name)
        return self.guests.setdefault(rec.props["Name"], Guest())

    def vm_state(self, vm_name: str) -> int:
        return int(self._vm_by_name(vm_name).props["EnabledState"])

    def jobs(self) -> list[dict[str, Any]]:
        return [dict(j.record.props) for j in self._jobs]

    def vm_resources(self, vm_name: str) -> list[dict[str, Any]]:
        """The VM's current resource allocation settings, for assertions."""
        vssd = self._vssd_of(self._vm_by_name(vm_name))
        return [dict(r.props) | {"__class": r.class_name} for r in self._parts(vssd)]

    # ------------------------------------------------------------------ storage

    def _path_for(self, class_name: str, props: dict[str, Any]) -> str:
        ns = schema.CLASSES[class_name].namespace
        for key in ("InstanceID", "DeviceID", "Name"):
            if props.get(key):
                return f'\\\\{self.host}\\{ns}:{class_name}.{key}="{props[key]}"'
        raise AssertionError(f"{class_name} record without a key")

    def _add(self, class_name: str, props: dict[str, Any]) -> _Record:
        types = schema.properties(class_name)
        for name in props:
            if name not in types:
                raise AssertionError(f"model bug: {class_name}.{name}")
        rec = _Record(class_name, dict(props), self._path_for(class_name, props))
        self._records[rec.path.lower()] = rec
        return rec

    def _remove(self, rec: _Record) -> None:
        self._records.pop(rec.path.lower(), None)
        p = rec.path.lower()
        self._assocs = [a for a in self._assocs if a[1].lower() != p and a[2].lower() != p]

    def _link(self, assoc: str, a: _Record, b: _Record) -> None:
        self._assocs.append((assoc, a.path, b.path))

    def _unlink(self, assoc: str, a: _Record) -> None:
        self._assocs = [x for x in self._assocs if not (x[0] == assoc and x[1] == a.path)]

    def _lookup(self, path: str) -> _Record | None:
        return self._records.get(path.lower())

    def _related(self, rec: _Record, assoc: str, result_class: str) -> list[_Record]:
        out: list[_Record] = []
        for name, a, b in self._assocs:
            if name != assoc:
                continue
            other = b if a == rec.path else a if b == rec.path else None
            if other is None:
                continue
            found = self._lookup(other)
            if found and schema.is_subclass(found.class_name, result_class):
                out.append(found)
        return out

    def _of_class(self, class_name: str) -> list[_Record]:
        return [r for r in self._records.values() if schema.is_subclass(r.class_name, class_name)]

    def _obj(self, rec: _Record) -> ModelObject:
        return ModelObject(self, rec.class_name, copy.deepcopy(rec.props), rec.path)

    # ------------------------------------------------------------------ checks

    def _known_class(self, ns: str, class_name: str) -> schema.ClassDef:
        cls = schema.CLASSES.get(class_name)
        if cls is None:
            raise UnknownClass(f"no class {class_name!r} in the model's schema")
        if cls.namespace != ns:
            raise UnknownClass(f"{class_name} is not in namespace {ns}")
        return cls

    def _check_ref(self, path: str, target: str) -> None:
        rec = self._lookup(path)
        if rec is None:
            raise WmiNotFound(f"reference {path} does not resolve", 0x80041002)
        if not schema.is_subclass(rec.class_name, target):
            raise WrongType(f"reference {path} is a {rec.class_name}, expected {target}")

    def _check_embedded(self, text: str, target: str) -> None:
        self._parse(text, target)

    def _parse(self, text: str, target: str) -> tuple[str, dict[str, Any]]:
        try:
            class_name, raw = cimxml.load(text)
        except cimxml.CimXmlError as exc:
            raise WrongType(f"embedded instance: {exc}") from exc
        if class_name not in schema.CLASSES:
            raise UnknownClass(f"embedded instance of unknown class {class_name!r}")
        if not schema.is_subclass(class_name, target):
            raise WrongType(f"embedded {class_name} where {target} is expected")
        types = schema.properties(class_name)
        props: dict[str, Any] = {}
        for name, value in raw.items():
            if name not in types:
                raise UnknownProperty(f"embedded {class_name} has no property {name!r}")
            props[name] = check_value(f"{class_name}.{name}", types[name], value,
                                      lambda p, t: None, self._check_embedded)
        return class_name, props

    # ------------------------------------------------------------------ the WMI surface

    def query(self, ns: str, class_name: str, where: Mapping[str, Any]) -> list[Any]:
        with self._lock:
            self._tick(f"query {class_name}")
            self._known_class(ns, class_name)
            types = schema.properties(class_name)
            for key, value in where.items():
                if key not in types:
                    raise UnknownProperty(f"{class_name} has no property {key!r} (in WHERE)")
                expected = types[key]
                if expected.endswith("[]"):
                    raise WrongType(f"cannot compare array property {key} in WHERE")
                ok = (isinstance(value, bool) if expected == "boolean" else
                      isinstance(value, int) and not isinstance(value, bool)
                      if expected.startswith("uint") else isinstance(value, str))
                if not ok:
                    raise WrongType(f"WHERE {key}: {type(value).__name__} for {expected}")
            out = []
            for rec in self._of_class(class_name):
                if all(_equal(rec.props.get(k), v) for k, v in where.items()):
                    out.append(self._obj(rec))
            return out

    def get(self, ns: str, path: str) -> Any:
        with self._lock:
            self._tick("get")
            rec = self._lookup(path)
            if rec is None or schema.CLASSES[rec.class_name].namespace != ns:
                raise WmiNotFound(f"{path} not found", 0x80041002)
            return self._obj(rec)

    def associators(self, ns: str, obj: Any, assoc_class: str, result_class: str) -> list[Any]:
        with self._lock:
            self._tick(f"associators {assoc_class}")
            assoc = self._known_class(ns, assoc_class)
            if assoc.association is None:
                raise WrongType(f"{assoc_class} is not an association class")
            self._known_class(ns, result_class)
            rec = self._lookup(obj.path)
            if rec is None:
                raise WmiNotFound(f"{obj.path} not found", 0x80041002)
            return [self._obj(r) for r in self._related(rec, assoc_class, result_class)]

    def new_instance(self, ns: str, class_name: str) -> Any:
        with self._lock:
            cls = self._known_class(ns, class_name)
            if cls.association is not None:
                raise WrongType(f"{class_name} is an association")
            return ModelObject(self, class_name, {}, "")

    def embed(self, obj: Any) -> str:
        if not isinstance(obj, ModelObject):
            raise WrongType("only objects from this model can be embedded")
        props = {k: v for k, v in obj._props.items() if v is not None}
        return cimxml.dump(obj.class_name, props, schema.properties(obj.class_name))

    def invoke(self, ns: str, obj: Any, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._tick(f"{obj.class_name}.{method}")
            self.calls.append(f"{obj.class_name}.{method}")
            self._known_class(ns, obj.class_name)
            mdef = schema.method(obj.class_name, method)
            if mdef is None:
                raise UnknownMethod(f"{obj.class_name} has no method {method!r}")
            for name, value in params.items():
                if name not in mdef.inputs:
                    raise UnknownProperty(f"{obj.class_name}.{method} has no parameter {name!r}")
                check_value(f"{method}({name})", mdef.inputs[name], value,
                            self._check_ref, self._check_embedded)
            target = self._lookup(obj.path)
            if target is None:
                raise WmiNotFound(f"{obj.path} not found", 0x80041002)
            empty = {name: None for name in mdef.outputs}
            missing = sorted(n for n in mdef.required if params.get(n) is None)
            if missing:
                # the provider checks its parameters before starting a job: Invalid parameter
                self.refusals.append(f"{obj.class_name}.{method}: missing {', '.join(missing)}")
                return empty | {"ReturnValue": INVALID_PARAMETER}
            if method in self._fail_next:
                return empty | {"ReturnValue": self._fail_next.pop(method)}
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                raise AssertionError(f"model bug: no handler for {method}")
            result: _Result = handler(target, dict(params))
            outputs = empty | result.outputs
            if result.code != OK:
                return empty | {"ReturnValue": result.code}
            if result.effect is None:
                return outputs | {"ReturnValue": OK}
            if not mdef.has_job or method in self.sync_methods:
                try:
                    result.effect()
                except JobError as exc:
                    return empty | {"ReturnValue": exc.code}
                return outputs | {"ReturnValue": OK}
            job = self._start_job(method, result.effect, _JOB_CLASS.get(obj.class_name,
                                                                         "Msvm_ConcreteJob"))
            job.target = target.path
            if method in self.bare_jobs:
                outputs = empty
            return outputs | {"Job": job.record.path, "ReturnValue": JOB_STARTED}

    # ------------------------------------------------------------------ jobs and time

    def _start_job(self, method: str, effect: Callable[[], list[str]], job_class: str) -> _Job:
        rec = self._add(job_class, {
            "InstanceID": _guid(), "Name": method, "ElementName": method, "JobState": 4,
            "ErrorCode": 0, "PercentComplete": 0, "Cancellable": True, "JobType": 0,
            "TimeSubmitted": _now(), "Caption": method, "Description": method})
        job = _Job(rec, method, self.ticks + self.job_ticks, effect,
                   hang=method in self._hang_next_job, fail=self._fail_next_job.pop(method, None))
        self._hang_next_job.discard(method)
        self._jobs.append(job)
        return job

    def _m_RequestStateChange(self, target: _Record, p: dict[str, Any]) -> _Result:
        if schema.is_subclass(target.class_name, "CIM_ConcreteJob"):
            return self._job_state_change(target, int(p.get("RequestedState") or 0))
        return self._vm_state_change(target, int(p.get("RequestedState") or 0))

    def _job_state_change(self, target: _Record, requested: int) -> _Result:
        job = next((j for j in self._jobs if j.record is target), None)
        if job is None or target.props["JobState"] != 4:
            return _Result(4097)
        if requested not in (4, 5):
            return _Result(INVALID_PARAMETER)
        target.props["JobState"] = 8 if requested == 4 else 9
        target.props["ErrorDescription"] = "The operation was cancelled."
        return _Result()

    def _tick(self, what: str) -> None:
        self.ticks += 1
        for job in list(self._jobs):
            rec = job.record
            if rec.props["JobState"] != 4 or job.hang or job.due > self.ticks:
                continue
            if job.fail is not None:
                rec.props.update(JobState=10, ErrorCode=job.fail[0], ErrorDescription=job.fail[1],
                                 ErrorSummaryDescription=job.fail[1])
                continue
            try:
                affected = job.effect()
            except JobError as exc:
                rec.props.update(JobState=10, ErrorCode=exc.code, ErrorDescription=exc.text,
                                 ErrorSummaryDescription=exc.text)
                continue
            rec.props.update(JobState=7, PercentComplete=100)
            for path in [] if job.method in self.bare_jobs else affected:
                other = self._lookup(path)
                if other is not None:
                    self._link("Msvm_AffectedJobElement", rec, other)
        for due, event in list(self._events):
            if due <= self.ticks:
                self._events.remove((due, event))
                event()

    # ------------------------------------------------------------------ seed

    def _seed(self) -> None:
        self.host_record = self._add("Msvm_ComputerSystem", {
            "Name": self.host, "ElementName": self.host, "Caption": "Hosting Computer System",
            "EnabledState": RUNNING, "CreationClassName": "Msvm_ComputerSystem"})
        self.vsms = self._add("Msvm_VirtualSystemManagementService", {
            "Name": "vmms", "SystemName": self.host, "ElementName": "vmms"})
        self._add("Msvm_VirtualSystemManagementServiceSettingData", {
            "InstanceID": "Microsoft:" + self.host,
            "DefaultVirtualHardDiskPath": "C:\\Users\\Public\\Documents\\Hyper-V\\Virtual Hard Disks",
            "DefaultExternalDataRoot": "C:\\ProgramData\\Microsoft\\Windows\\Hyper-V"})
        self._add("Msvm_VirtualSystemSnapshotService", {"Name": "vssnap", "SystemName": self.host})
        self.terminal_settings = self._add("Msvm_TerminalServiceSettingData", {
            "InstanceID": "Microsoft:TerminalServiceSettingData", "ListenerPort": 2179})
        self._add("Msvm_ImageManagementService", {
            "Name": "vhdsvc", "SystemName": self.host, "ElementName": "Image Management Service"})
        self._add("Msvm_VirtualSystemMigrationService", {
            "Name": "vsmig", "SystemName": self.host,
            "MigrationServiceListenerIPAddressList": ["10.0.0.10"]})
        self._add("Msvm_VirtualEthernetSwitchManagementService",
                  {"Name": "nvspwmi", "SystemName": self.host})
        self._add("Msvm_ExternalEthernetPort", {
            "Name": "{" + _guid() + "}", "DeviceID": "Microsoft:EXT0",
            "ElementName": "Intel(R) Ethernet Connection", "PermanentAddress": "00155D000001",
            "IsBound": False, "EnabledState": RUNNING})
        for subtype, (class_name, rtype) in SUBTYPES.items():
            props: dict[str, Any] = {
                "InstanceID": f"Microsoft:Definition\\{_guid()}\\Default",
                "ResourceType": rtype, "ResourceSubType": subtype, "ElementName": subtype}
            if class_name == "Msvm_EthernetPortAllocationSettingData":
                props["EnabledState"] = RUNNING
            self._add(class_name, props)
        cimv2 = {
            "Win32_OperatingSystem": [{"Caption": "Microsoft Hyper-V Server 2019",
                                       "Version": "10.0.17763", "CSName": self.host,
                                       "TotalVisibleMemorySize": self.memory_mb * 1024,
                                       "FreePhysicalMemory": self.memory_mb * 1024}],
            "Win32_ComputerSystem": [{"Name": self.host, "DNSHostName": self.host.lower(),
                                      "Domain": "example.test",
                                      "TotalPhysicalMemory": self.memory_mb * 1024 * 1024}],
            "Win32_Processor": [{"DeviceID": f"CPU{i}", "NumberOfCores": 8,
                                 "NumberOfLogicalProcessors": 16, "MaxClockSpeed": 2400}
                                for i in range(2)],
            "Win32_PerfFormattedData_Counters_ProcessorInformation": [
                {"Name": "_Total", "PercentIdleTime": 75, "PercentProcessorTime": 25}],
            "Win32_LogicalDisk": [{"DeviceID": "C:", "Size": 500 * 2**30,
                                   "FreeSpace": 320 * 2**30}],
            "Win32_NetworkAdapterConfiguration": [
                {"Description": "Intel(R) Ethernet Connection", "IPAddress": ["10.0.0.10"],
                 "IPSubnet": ["255.255.255.0"], "MACAddress": "00:15:5D:00:00:01",
                 "IPEnabled": True}],
        }
        for class_name, rows in cimv2.items():
            for i, row in enumerate(rows):
                keyed = dict(row)
                if not any(k in keyed for k in ("InstanceID", "DeviceID", "Name")):
                    keyed["Name"] = f"{class_name}-{i}"
                if class_name in ("Win32_OperatingSystem", "Win32_NetworkAdapterConfiguration"):
                    self._records[f"{class_name}.{i}"] = _Record(
                        class_name, row, f"\\\\{self.host}\\root\\cimv2:{class_name}=@{i}")
                else:
                    self._add(class_name, keyed)

    # ------------------------------------------------------------------ VM helpers

    def _vm_by_name(self, name: str) -> _Record:
        for rec in self._of_class("Msvm_ComputerSystem"):
            if rec.props.get("ElementName") == name and rec is not self.host_record:
                return rec
        raise KeyError(name)

    def _vssd_of(self, vm: _Record) -> _Record:
        found = self._related(vm, "Msvm_SettingsDefineState", "Msvm_VirtualSystemSettingData")
        return found[0]

    def _vm_of_vssd(self, vssd: _Record) -> _Record | None:
        found = self._related(vssd, "Msvm_SettingsDefineState", "Msvm_ComputerSystem")
        return found[0] if found else None

    def _parts(self, vssd: _Record) -> list[_Record]:
        """The VM's devices (the KVP settings, a resource allocation too, stay with the VM)."""
        return [r for r in self._related(vssd, "Msvm_VirtualSystemSettingDataComponent",
                                         "CIM_ResourceAllocationSettingData")
                if r.class_name != "Msvm_KvpExchangeComponentSettingData"]

    def _owner(self, rasd: _Record) -> _Record | None:
        found = self._related(rasd, "Msvm_VirtualSystemSettingDataComponent",
                              "CIM_VirtualSystemSettingData")
        return found[0] if found else None

    def _vm_memory(self, vm: _Record) -> int:
        for r in self._parts(self._vssd_of(vm)):
            if r.class_name == "Msvm_MemorySettingData":
                return int(r.props.get("VirtualQuantity") or 0)
        return 0

    def _running_memory(self) -> int:
        return sum(self._vm_memory(vm) for vm in self._of_class("Msvm_ComputerSystem")
                   if vm is not self.host_record and vm.props["EnabledState"] not in (OFF, SAVED))

    def _new_rasd(self, vm_guid: str, props: dict[str, Any], instance_id: str | None
                  ) -> dict[str, Any]:
        return props | {"InstanceID": instance_id or f"Microsoft:{vm_guid}\\{_guid()}"}

    def _create_vm(self, guid: str, settings: dict[str, Any], resources: list[dict[str, Any]]
                   ) -> _Record:
        vm = self._add("Msvm_ComputerSystem", {
            "Name": guid, "ElementName": settings.get("ElementName"), "Caption": "Virtual Machine",
            "EnabledState": OFF, "RequestedState": 12, "HealthState": 5,
            "OnTimeInMilliseconds": 0, "CreationClassName": "Msvm_ComputerSystem",
            "OperationalStatus": [2]})
        vssd_props = {k: v for k, v in settings.items() if v is not None} | {
            "InstanceID": f"Microsoft:{guid}", "VirtualSystemIdentifier": guid,
            "VirtualSystemType": REALIZED, "CreationTime": _now()}
        vssd_props.setdefault("VirtualSystemSubType", "Microsoft:Hyper-V:SubType:1")
        # since Server 2016 a new VM takes production checkpoints (no memory), falling back to
        # standard ones only when the guest cannot make a production one
        vssd_props.setdefault("UserSnapshotType", SNAPSHOT_PRODUCTION)
        vssd = self._add("Msvm_VirtualSystemSettingData", vssd_props)
        self._link("Msvm_SettingsDefineState", vm, vssd)
        for props in resources:
            self._attach_rasd(vm, vssd, props["__class"], {k: v for k, v in props.items()
                                                            if k != "__class"})
        # Host KVP items belong to the VM's settings, whatever its state: reached from the
        # realized Msvm_VirtualSystemSettingData through Msvm_VirtualSystemSettingDataComponent
        # (a resource allocation setting, as Microsoft documents its parent class).
        kvp_sd = self._add("Msvm_KvpExchangeComponentSettingData", {
            "InstanceID": f"Microsoft:{guid}\\KvpExchange", "HostExchangeItems": [],
            "HostOnlyItems": [], "ResourceType": 1, "ResourceSubType": None,
            "OtherResourceType": "Microsoft:Hyper-V:Key-Value Pair Exchange Component",
            "EnabledState": RUNNING})
        self._link("Msvm_VirtualSystemSettingDataComponent", vssd, kvp_sd)
        self.guests.setdefault(guid, Guest())
        self._refresh_guest(vm)
        return vm

    def _attach_rasd(self, vm: _Record, vssd: _Record, class_name: str, props: dict[str, Any],
                     instance_id: str | None = None) -> _Record:
        rec = self._add(class_name, self._new_rasd(vm.props["Name"], props, instance_id))
        self._link("Msvm_VirtualSystemSettingDataComponent", vssd, rec)
        if rec.props.get("ResourceSubType") in _PORTS:
            cfg = self._add("Msvm_GuestNetworkAdapterConfiguration", {
                "InstanceID": f"Microsoft:GuestNetwork\\{vm.props['Name']}\\{_guid()}",
                "IPAddresses": [], "Subnets": [], "DHCPEnabled": True, "ProtocolIFType": 4096})
            self._link("Msvm_SettingDataComponent", rec, cfg)
        return rec

    def _sync_components(self, vm: _Record) -> None:
        """The VM's Msvm_*Component devices (shutdown, heartbeat, KVP exchange) exist only while
        its worker process runs: a VM that is off or saved has none, as on a real host."""
        present = vm.props["EnabledState"] not in (OFF, SAVED)
        found = self._related(vm, "Msvm_SystemDevice", "CIM_LogicalElement")
        if not present:
            for comp in found:
                self._remove(comp)
            return
        if found:
            return
        guid = vm.props["Name"]
        for class_name in _COMPONENTS:
            comp = self._add(class_name, {"DeviceID": f"{class_name}\\{guid}", "SystemName": guid,
                                          "EnabledState": OFF, "OperationalStatus": [12]})
            self._link("Msvm_SystemDevice", vm, comp)

    def _refresh_guest(self, vm: _Record) -> None:
        """Integration components report only while the VM runs."""
        guest = self.guests.setdefault(vm.props["Name"], Guest())
        self._sync_components(vm)
        live = vm.props["EnabledState"] == RUNNING and guest.ic_running
        for comp in self._related(vm, "Msvm_SystemDevice", "CIM_LogicalElement"):
            comp.props["EnabledState"] = RUNNING if live else OFF
            comp.props["OperationalStatus"] = [2] if live else [12]
            if comp.class_name == "Msvm_KvpExchangeComponent":
                comp.props["GuestExchangeItems"] = [
                    _kvp_text(k, v, 1) for k, v in guest.kvp.items()] if live else []
                intrinsic = {"FullyQualifiedDomainName": str(vm.props["ElementName"]),
                             "IntegrationServicesVersion": "10.0.17763.1"}
                addrs = [ip for ips in guest.ips.values() for ip in ips if ":" not in ip]
                if addrs:
                    intrinsic["NetworkAddressIPv4"] = ";".join(addrs)
                comp.props["GuestIntrinsicExchangeItems"] = [
                    _kvp_text(k, v, 2) for k, v in intrinsic.items()] if live else []
        for port in self._parts(self._vssd_of(vm)):
            if port.props.get("ResourceSubType") not in _PORTS:
                continue
            mac = str(port.props.get("Address") or "").upper()
            for cfg in self._related(port, "Msvm_SettingDataComponent",
                                     "Msvm_GuestNetworkAdapterConfiguration"):
                cfg.props["IPAddresses"] = list(guest.ips.get(mac, [])) if live else []

    def _set_state(self, vm: _Record, state: int) -> None:
        vm.props["EnabledState"] = state
        vm.props["RequestedState"] = 12
        self._refresh_guest(vm)

    def set_guest(self, vm_name: str, **changes: Any) -> None:
        """Change what the guest does (IPs, KVP, IC running…) and refresh what WMI shows."""
        with self._lock:
            vm = self._vm_by_name(vm_name)
            guest = self.guests.setdefault(vm.props["Name"], Guest())
            for key, value in changes.items():
                if not hasattr(guest, key):
                    raise AttributeError(key)
                setattr(guest, key, value)
            self._refresh_guest(vm)

    # ------------------------------------------------------------------ IMS methods

    def _m_CreateVirtualHardDisk(self, target: _Record, p: dict[str, Any]) -> _Result:
        _, sd = self._parse(p["VirtualDiskSettingData"], "Msvm_VirtualHardDiskSettingData")
        path = str(sd.get("Path") or "")
        dtype, fmt = sd.get("Type"), sd.get("Format")
        ext = {2: ".vhd", 3: ".vhdx"}.get(int(fmt or 0))
        if not _is_windows_abs(path) or dtype not in (2, 3, 4) or ext is None \
                or not path.lower().endswith(ext):
            return _Result(INVALID_PARAMETER)
        size = int(sd.get("MaxInternalSize") or 0)
        parent = str(sd.get("ParentPath") or "")
        if dtype == 4:
            if not _is_windows_abs(parent) or size or not parent.lower().endswith(ext):
                return _Result(INVALID_PARAMETER)
        elif size <= 0 or size % 512 or parent:
            return _Result(INVALID_PARAMETER)

        def effect() -> list[str]:
            if self.has_file(path):
                raise JobError(FAILED, f"Failed to create the virtual hard disk. '{path}': "
                                       "The file exists. (0x80070050)")
            if dtype == 4 and not self.has_file(parent):
                raise JobError(FAILED, f"Failed to create the virtual hard disk. '{parent}': "
                                       f"{_FILE_NOT_FOUND}")
            record = {"Path": path, "Type": dtype, "Format": fmt, "ParentPath": parent or None,
                      "MaxInternalSize": size or self.virtual_disks.get(
                          parent.lower(), {}).get("MaxInternalSize", 0)}
            if self.disk_writer is not None:
                self.disk_writer("create", dict(record))
            self.virtual_disks[path.lower()] = record
            self.files.add(path.lower())
            return []

        return _Result(effect=effect)

    def _m_ResizeVirtualHardDisk(self, target: _Record, p: dict[str, Any]) -> _Result:
        path = str(p.get("Path") or "")
        size = int(p.get("MaxInternalSize") or 0)
        if not _is_windows_abs(path) or size <= 0 or size % 512:
            return _Result(INVALID_PARAMETER)

        def effect() -> list[str]:
            if not self.has_file(path):
                raise JobError(FAILED, f"Failed to resize the virtual disk. '{path}': "
                                       f"{_FILE_NOT_FOUND}")
            refusal = self._resize_refusal(path)
            if refusal is not None:
                raise JobError(FAILED, f"Failed to resize the virtual disk. '{path}': {refusal}")
            record = self.virtual_disks.setdefault(path.lower(), {"Path": path})
            if size < int(record.get("MaxInternalSize") or 0):
                raise JobError(FAILED, f"Failed to resize the virtual disk. '{path}': the new "
                                       "size is smaller than the disk's data.")
            if self.disk_writer is not None:
                self.disk_writer("resize", {"Path": path, "MaxInternalSize": size})
            record["MaxInternalSize"] = size
            return []

        return _Result(effect=effect)

    def _resize_refusal(self, path: str) -> str | None:
        """Why a host refuses to resize ``path`` now, or None.

        ResizeVirtualHardDisk never works on a differencing disk, and works on a disk a VM holds
        only while that VM is off, except a VHDX on a SCSI controller (online resize, 2012 R2+).
        """
        record = self.virtual_disks.get(path.lower(), {})
        if record.get("Type") == 4 or record.get("ParentPath"):
            return "a differencing disk cannot be resized."
        for media in self._of_class("Msvm_StorageAllocationSettingData"):
            if path.lower() not in [str(h).lower() for h in media.props.get("HostResource") or []]:
                continue
            owner = self._owner(media)
            vm = self._vm_of_vssd(owner) if owner is not None else None
            if vm is None or owner is None or owner.props.get("VirtualSystemType") != REALIZED \
                    or vm.props["EnabledState"] == OFF:
                continue
            drive = self._lookup(str(media.props.get("Parent") or ""))
            controller = self._lookup(str(drive.props.get("Parent") or "")) if drive else None
            on_scsi = controller is not None and \
                controller.props.get("ResourceSubType") == _CONTROLLERS[1]
            running = vm.props["EnabledState"] == RUNNING
            if not (running and on_scsi and path.lower().endswith(".vhdx")):
                return (f"the disk is in use by '{vm.props['ElementName']}'; only a VHDX on a "
                        "SCSI controller of a running virtual machine can be resized online.")
        return None

    def _m_GetVirtualHardDiskSettingData(self, target: _Record, p: dict[str, Any]) -> _Result:
        path = str(p.get("Path") or "")
        if not _is_windows_abs(path):
            return _Result(INVALID_PARAMETER)
        if not self.has_file(path):
            return _Result(effect=lambda: _fail(FAILED, f"'{path}': {_FILE_NOT_FOUND}"))
        record = self.virtual_disks.get(path.lower(), {})
        props = {"Path": path, "Type": record.get("Type", 3),
                 "Format": record.get("Format", 3 if path.lower().endswith(".vhdx") else 2),
                 "ParentPath": record.get("ParentPath"),
                 "MaxInternalSize": record.get("MaxInternalSize", 0)}
        text = cimxml.dump("Msvm_VirtualHardDiskSettingData",
                           {k: v for k, v in props.items() if v is not None},
                           schema.properties("Msvm_VirtualHardDiskSettingData"))
        return _Result(outputs={"SettingData": text})

    # ------------------------------------------------------------------ VSMS methods

    def _m_DefineSystem(self, target: _Record, p: dict[str, Any]) -> _Result:
        if target.class_name == "Msvm_VirtualEthernetSwitchManagementService":
            return self._define_switch(p)
        _, settings = self._parse(p["SystemSettings"], "Msvm_VirtualSystemSettingData")
        if not settings.get("ElementName"):
            return _Result(INVALID_PARAMETER)
        resources = []
        for text in p.get("ResourceSettings") or []:
            class_name, props = self._parse(text, "CIM_ResourceAllocationSettingData")
            resources.append(props | {"__class": class_name})
        guid = _guid()
        path = self._path_for("Msvm_ComputerSystem", {"Name": guid})
        mem_default = {"__class": "Msvm_MemorySettingData", "ResourceType": 4,
                       "ResourceSubType": "Microsoft:Hyper-V:Memory", "VirtualQuantity": 1024,
                       "Reservation": 1024, "Limit": 1024, "DynamicMemoryEnabled": False,
                       "AllocationUnits": "byte * 2^20"}
        cpu_default = {"__class": "Msvm_ProcessorSettingData", "ResourceType": 3,
                       "ResourceSubType": "Microsoft:Hyper-V:Processor", "VirtualQuantity": 1,
                       "Limit": 100000, "Reservation": 0, "Weight": 100}
        ide = [{"__class": "Msvm_ResourceAllocationSettingData", "ResourceType": 5,
                "ResourceSubType": _CONTROLLERS[0], "Address": str(i),
                "ElementName": "IDE Controller"} for i in (0, 1)]

        def effect() -> list[str]:
            vm = self._create_vm(guid, settings, [mem_default, cpu_default, *ide])
            vssd = self._vssd_of(vm)
            for res in resources:
                code = self._add_resource(vm, vssd, res.pop("__class"), res)
                if isinstance(code, int):
                    raise JobError(code, "resource rejected")
            return [vm.path]

        return _Result(outputs={"ResultingSystem": path}, effect=effect)

    def _m_DestroySystem(self, target: _Record, p: dict[str, Any]) -> _Result:
        rec = self._lookup(p["AffectedSystem"])
        assert rec is not None
        if target.class_name == "Msvm_VirtualEthernetSwitchManagementService":
            return self._destroy_switch(rec)
        if rec.class_name != "Msvm_ComputerSystem" or rec is self.host_record:
            return _Result(INVALID_PARAMETER)
        if rec.props["EnabledState"] not in (OFF, SAVED):
            return _Result(INVALID_STATE)

        def effect() -> list[str]:
            self._delete_vm(rec)
            return []

        return _Result(effect=effect)

    def _delete_vm(self, vm: _Record) -> None:
        vssd = self._vssd_of(vm)
        for snap in self._related(vm, "Msvm_SnapshotOfVirtualSystem", "CIM_VirtualSystemSettingData"):
            for part in self._parts(snap):
                self._remove_rasd_tree(part)
            self._remove(snap)
        for part in self._related(vssd, "Msvm_VirtualSystemSettingDataComponent", "CIM_SettingData"):
            self._remove_rasd_tree(part)
        for comp in self._related(vm, "Msvm_SystemDevice", "CIM_LogicalElement"):
            self._remove(comp)
        self._remove(vssd)
        self._remove(vm)

    def _remove_rasd_tree(self, rec: _Record) -> None:
        for feat in self._related(rec, "Msvm_EthernetPortSettingDataComponent",
                                  "Msvm_EthernetSwitchPortFeatureSettingData"):
            self._remove(feat)
        for cfg in self._related(rec, "Msvm_SettingDataComponent",
                                 "Msvm_GuestNetworkAdapterConfiguration"):
            self._remove(cfg)
        self._remove(rec)

    def _m_ModifySystemSettings(self, target: _Record, p: dict[str, Any]) -> _Result:
        class_name, props = self._parse(p["SystemSettings"], "CIM_VirtualSystemSettingData")
        rec = self._lookup(self._path_for(class_name, props)) if props.get("InstanceID") else None
        if rec is None:
            return _Result(INVALID_PARAMETER)
        for fixed in ("VirtualSystemIdentifier", "VirtualSystemType"):
            if fixed in props and props[fixed] != rec.props.get(fixed):
                return _Result(INVALID_PARAMETER)

        def effect() -> list[str]:
            rec.props.update(props)
            vm = self._vm_of_vssd(rec)
            if vm is not None and "ElementName" in props:
                vm.props["ElementName"] = props["ElementName"]
            return [rec.path]

        return _Result(effect=effect)

    def _m_AddResourceSettings(self, target: _Record, p: dict[str, Any]) -> _Result:
        vssd = self._lookup(p["AffectedConfiguration"])
        assert vssd is not None
        vm = self._vm_of_vssd(vssd)
        if vm is None or vssd.props.get("VirtualSystemType") != REALIZED:
            return _Result(INVALID_PARAMETER)
        items = [self._parse(t, "CIM_ResourceAllocationSettingData")
                 for t in p.get("ResourceSettings") or []]
        if not items:
            return _Result(INVALID_PARAMETER)
        for class_name, props in items:
            code = self._validate_new_resource(vm, vssd, class_name, props)
            if code != OK:
                return _Result(code)
        paths = [self._path_for(c, {"InstanceID": f"Microsoft:{vm.props['Name']}\\{_guid()}"})
                 for c, _ in items]

        def effect() -> list[str]:
            for (class_name, props), path in zip(items, paths, strict=True):
                self._check_media(props)
                self._attach_rasd(vm, vssd, class_name, props,
                                  instance_id=path.split('InstanceID="')[1][:-1])
            self._refresh_guest(vm)
            return paths

        return _Result(outputs={"ResultingResourceSettings": paths}, effect=effect)

    def _add_resource(self, vm: _Record, vssd: _Record, class_name: str, props: dict[str, Any]
                      ) -> _Record | int:
        code = self._validate_new_resource(vm, vssd, class_name, props)
        if code != OK:
            return code
        self._check_media(props)
        return self._attach_rasd(vm, vssd, class_name, props)

    def _check_media(self, props: dict[str, Any]) -> None:
        subtype = props.get("ResourceSubType")
        if subtype in _MEDIA:
            path = (props.get("HostResource") or [""])[0]
            if not self.has_file(path):
                raise JobError(FAILED, f"Failed to add device '{subtype}'. '{path}': "
                                       f"{_FILE_NOT_FOUND}")
            if not path.lower().endswith(_MEDIA[subtype][1]):
                raise JobError(FAILED, f"'{path}' is not a valid file for {subtype}.")

    def _validate_new_resource(self, vm: _Record, vssd: _Record, class_name: str,
                               props: dict[str, Any]) -> int:
        subtype = props.get("ResourceSubType")
        if subtype not in SUBTYPES:
            return INVALID_PARAMETER
        expected_class, rtype = SUBTYPES[subtype]
        if class_name != expected_class or props.get("ResourceType") != rtype:
            return INVALID_PARAMETER
        off = vm.props["EnabledState"] == OFF
        siblings = self._parts(vssd)
        if subtype == _CONTROLLERS[0] or subtype in ("Microsoft:Hyper-V:Memory",
                                                     "Microsoft:Hyper-V:Processor"):
            return NOT_SUPPORTED
        if subtype == _CONTROLLERS[1]:
            if not off:
                return INVALID_STATE
            if sum(1 for s in siblings if s.props.get("ResourceSubType") == subtype) >= 4:
                return INVALID_PARAMETER
            return OK
        if subtype in _DRIVES:
            parent = self._lookup(str(props.get("Parent") or ""))
            if parent is None or parent not in siblings or \
                    parent.props.get("ResourceSubType") not in _CONTROLLERS:
                return INVALID_PARAMETER
            ide = parent.props["ResourceSubType"] == _CONTROLLERS[0]
            try:
                slot = int(str(props.get("AddressOnParent")))
            except ValueError:
                return INVALID_PARAMETER
            if not 0 <= slot < (2 if ide else 64):
                return INVALID_PARAMETER
            if ide and not off:
                return INVALID_STATE
            for s in siblings:
                if s.props.get("Parent") == parent.path and \
                        str(s.props.get("AddressOnParent")) == str(slot):
                    return IN_USE
            return OK
        if subtype in _MEDIA:
            drive = self._lookup(str(props.get("Parent") or ""))
            if drive is None or drive not in siblings or \
                    drive.props.get("ResourceSubType") != _MEDIA[subtype][0]:
                return INVALID_PARAMETER
            if len(props.get("HostResource") or []) != 1:
                return INVALID_PARAMETER
            if any(s.props.get("Parent") == drive.path for s in siblings):
                return IN_USE
            return OK
        if subtype in _PORTS:
            if not off:
                return INVALID_STATE
            if props.get("StaticMacAddress") and not _is_mac(props.get("Address")):
                return INVALID_PARAMETER
            return OK
        # Ethernet connection
        port = self._lookup(str(props.get("Parent") or ""))
        if port is None or port not in siblings or port.props.get("ResourceSubType") not in _PORTS:
            return INVALID_PARAMETER
        return self._check_switch_ref(props)

    def _check_switch_ref(self, props: dict[str, Any]) -> int:
        hosts = props.get("HostResource") or []
        if len(hosts) != 1:
            return INVALID_PARAMETER
        switch = self._lookup(hosts[0])
        if switch is None or switch.class_name != "Msvm_VirtualEthernetSwitch":
            return INVALID_PARAMETER
        if props.get("EnabledState") not in (None, RUNNING, OFF):
            return INVALID_PARAMETER
        return OK

    def _m_ModifyResourceSettings(self, target: _Record, p: dict[str, Any]) -> _Result:
        changes: list[tuple[_Record, dict[str, Any]]] = []
        for text in p.get("ResourceSettings") or []:
            class_name, props = self._parse(text, "CIM_ResourceAllocationSettingData")
            rec = self._lookup(self._path_for(class_name, props)) if props.get("InstanceID") \
                else None
            if rec is None or rec.class_name != class_name:
                return _Result(INVALID_PARAMETER)
            owner = self._owner(rec)
            vm = self._vm_of_vssd(owner) if owner else None
            if vm is None:
                return _Result(INVALID_PARAMETER)
            if props.get("ResourceSubType", rec.props.get("ResourceSubType")) != \
                    rec.props.get("ResourceSubType"):
                return _Result(INVALID_PARAMETER)
            running = vm.props["EnabledState"] != OFF
            if rec.class_name in ("Msvm_MemorySettingData", "Msvm_ProcessorSettingData") and \
                    running and props.get("VirtualQuantity") != rec.props.get("VirtualQuantity"):
                return _Result(INVALID_STATE)
            if rec.class_name == "Msvm_MemorySettingData" and any(
                    int(props.get(k) or 0) % 2 for k in ("VirtualQuantity", "Reservation", "Limit")):
                # Hyper-V gives memory in 2 MB units and refuses an odd number of megabytes
                return _Result(INVALID_PARAMETER)
            if rec.class_name == "Msvm_MemorySettingData" and props.get("DynamicMemoryEnabled") \
                    is False and props.get("Reservation") not in (None, props.get("VirtualQuantity")):
                return _Result(INVALID_PARAMETER)
            if rec.class_name == "Msvm_EthernetPortAllocationSettingData":
                code = self._check_switch_ref(props)
                if code != OK:
                    return _Result(code)
            changes.append((rec, props))

        def effect() -> list[str]:
            for rec, props in changes:
                self._check_media(props | {"ResourceSubType": rec.props.get("ResourceSubType")})
                rec.props.update({k: v for k, v in props.items() if k != "InstanceID"})
            return [r.path for r, _ in changes]

        return _Result(outputs={"ResultingResourceSettings": [r.path for r, _ in changes]},
                       effect=effect)

    def _m_RemoveResourceSettings(self, target: _Record, p: dict[str, Any]) -> _Result:
        recs = [self._lookup(path) for path in p.get("ResourceSettings") or []]
        if not recs:
            return _Result(INVALID_PARAMETER)
        for rec in recs:
            assert rec is not None
            owner = self._owner(rec)
            vm = self._vm_of_vssd(owner) if owner else None
            if vm is None:
                return _Result(INVALID_PARAMETER)
            subtype = rec.props.get("ResourceSubType")
            if subtype in ("Microsoft:Hyper-V:Memory", "Microsoft:Hyper-V:Processor",
                           _CONTROLLERS[0]):
                return _Result(NOT_SUPPORTED)
            parent = self._lookup(str(rec.props.get("Parent") or ""))
            off = vm.props["EnabledState"] == OFF
            if subtype in _DRIVES and parent is not None and \
                    parent.props.get("ResourceSubType") == _CONTROLLERS[0] and not off:
                return _Result(INVALID_STATE)
            if (subtype in _PORTS or subtype == _CONTROLLERS[1]) and not off:
                return _Result(INVALID_STATE)

        def effect() -> list[str]:
            for rec in recs:
                assert rec is not None
                owner = self._owner(rec)
                if owner is None:
                    continue
                for child in self._parts(owner):
                    if child.props.get("Parent") == rec.path:
                        self._remove_rasd_tree(child)
                self._remove_rasd_tree(rec)
            return []

        return _Result(effect=effect)

    # ------------------------------------------------------------------ switch port features

    def _m_AddFeatureSettings(self, target: _Record, p: dict[str, Any]) -> _Result:
        alloc = self._lookup(p["AffectedConfiguration"])
        assert alloc is not None
        if alloc.class_name != "Msvm_EthernetPortAllocationSettingData":
            return _Result(INVALID_PARAMETER)
        existing = {f.class_name for f in self._related(
            alloc, "Msvm_EthernetPortSettingDataComponent",
            "Msvm_EthernetSwitchPortFeatureSettingData")}
        items = [self._parse(t, "Msvm_EthernetSwitchPortFeatureSettingData")
                 for t in p.get("FeatureSettings") or []]
        weights = {(f.props.get("Direction"), f.props.get("Weight")) for f in self._related(
            alloc, "Msvm_EthernetPortSettingDataComponent", _EXT_ACL)}
        for class_name, props in items:
            if class_name == "Msvm_EthernetSwitchPortFeatureSettingData":
                return _Result(INVALID_PARAMETER)
            # a port holds one setting of each feature class, but any number of ACLs
            if class_name in existing and class_name != _EXT_ACL:
                return _Result(INVALID_PARAMETER)
            if not _valid_feature(class_name, props):
                return _Result(INVALID_PARAMETER)
            if class_name == _EXT_ACL:
                # extended ACL weights are unique per direction on a port
                key = (props.get("Direction"), props.get("Weight"))
                if key in weights:
                    return _Result(INVALID_PARAMETER)
                weights.add(key)
        paths = [self._path_for(c, {"InstanceID": f"{alloc.props['InstanceID']}\\{_guid()}"})
                 for c, _ in items]

        def effect() -> list[str]:
            for (class_name, props), path in zip(items, paths, strict=True):
                iid = path.split('InstanceID="')[1][:-1]
                rec = self._add(class_name, props | {"InstanceID": iid})
                self._link("Msvm_EthernetPortSettingDataComponent", alloc, rec)
            return paths

        return _Result(outputs={"ResultingFeatureSettings": paths}, effect=effect)

    def _m_ModifyFeatureSettings(self, target: _Record, p: dict[str, Any]) -> _Result:
        changes = []
        for text in p.get("FeatureSettings") or []:
            class_name, props = self._parse(text, "Msvm_EthernetSwitchPortFeatureSettingData")
            rec = self._lookup(self._path_for(class_name, props)) if props.get("InstanceID") \
                else None
            if rec is None or not _valid_feature(class_name, rec.props | props):
                return _Result(INVALID_PARAMETER)
            if class_name == "Msvm_EthernetSwitchPortVlanSettingData":
                # os-win removes and re-adds a port's VLAN setting because a host refuses to
                # modify it in place; the model refuses the same way
                return _Result(effect=lambda: _fail(
                    FAILED, "Failed to modify the VLAN setting of the switch port."))
            changes.append((rec, props))

        def effect() -> list[str]:
            for rec, props in changes:
                rec.props.update(props)
            return [r.path for r, _ in changes]

        return _Result(outputs={"ResultingFeatureSettings": [r.path for r, _ in changes]},
                       effect=effect)

    def _m_RemoveFeatureSettings(self, target: _Record, p: dict[str, Any]) -> _Result:
        recs = [self._lookup(x) for x in p.get("FeatureSettings") or []]

        def effect() -> list[str]:
            for rec in recs:
                if rec is not None:
                    self._remove(rec)
            return []

        return _Result(effect=effect)

    # ------------------------------------------------------------------ VM state

    def _vm_state_change(self, vm: _Record, requested: int) -> _Result:
        if vm is self.host_record:
            return _Result(NOT_SUPPORTED)
        state = vm.props["EnabledState"]
        if any(j.record.props["JobState"] == 4 and j.target == vm.path for j in self._jobs):
            return _Result(INVALID_STATE)
        transitions: dict[int, tuple[set[int], int, int]] = {
            2: ({OFF, SAVED, PAUSED}, RUNNING, STARTING),
            3: ({RUNNING, PAUSED, SAVED, SHUTTING_DOWN}, OFF, STOPPING),
            6: ({RUNNING, PAUSED}, SAVED, SAVING),
            9: ({RUNNING}, PAUSED, PAUSING),
            10: ({OFF, SAVED}, RUNNING, STARTING),
            11: ({RUNNING}, RUNNING, RUNNING),
        }
        if requested not in transitions:
            return _Result(NOT_SUPPORTED if requested in (4, 7, 8) else INVALID_PARAMETER)
        allowed, final, transitional = transitions[requested]
        if state not in allowed:
            return _Result(INVALID_STATE)
        if requested == 2 and state == PAUSED:
            transitional = RESUMING
        if requested in (2, 10) and state == OFF:
            need = self._vm_memory(vm)
            if self._running_memory() + need > self.memory_mb:
                return _Result(effect=lambda: _fail(
                    32778, f"'{vm.props['ElementName']}' could not initialize. Not enough memory "
                           f"in the system to start the virtual machine"))
        vm.props["RequestedState"] = requested

        def effect() -> list[str]:
            if requested == 11:
                self.guests[vm.props["Name"]].resets += 1
            self._set_state(vm, final)
            return [vm.path]

        vm.props["EnabledState"] = transitional
        return _Result(effect=self._restore_on_fail(vm, state, effect))

    def _restore_on_fail(self, vm: _Record, previous: int, effect: Callable[[], list[str]]
                         ) -> Callable[[], list[str]]:
        def run() -> list[str]:
            try:
                return effect()
            except JobError:
                vm.props["EnabledState"] = previous
                raise
        return run

    def _m_InitiateShutdown(self, target: _Record, p: dict[str, Any]) -> _Result:
        return self._guest_power(target, reboot=False)

    def _m_InitiateReboot(self, target: _Record, p: dict[str, Any]) -> _Result:
        return self._guest_power(target, reboot=True)

    def _guest_power(self, comp: _Record, reboot: bool) -> _Result:
        vm = next(r for r in self._of_class("Msvm_ComputerSystem")
                  if r.props["Name"] == comp.props["SystemName"])
        guest = self.guests[vm.props["Name"]]
        if vm.props["EnabledState"] != RUNNING:
            return _Result(INVALID_STATE)
        if not guest.ic_running:
            return _Result(32777)

        def effect() -> list[str]:
            if not guest.honours_shutdown:
                return []
            if reboot:
                guest.reboots += 1
                return []
            vm.props["EnabledState"] = SHUTTING_DOWN
            self._events.append((self.ticks + guest.shutdown_ticks,
                                 lambda: self._set_state(vm, OFF)
                                 if vm.props["EnabledState"] == SHUTTING_DOWN else None))
            return []

        return _Result(effect=effect)

    # ------------------------------------------------------------------ summary, thumbnail, KVP

    def _m_GetSummaryInformation(self, target: _Record, p: dict[str, Any]) -> _Result:
        fields = {0: "Name", 1: "ElementName", 4: "NumberOfProcessors", 100: "EnabledState",
                  101: "ProcessorLoad", 102: "ProcessorLoadHistory", 103: "MemoryUsage",
                  104: "Heartbeat", 105: "UpTime", 109: "HealthState"}
        wanted = list(p.get("RequestedInformation") or [])
        for code in wanted:
            if code not in fields:
                return _Result(INVALID_PARAMETER)
        out = []
        for path in p.get("SettingData") or []:
            vssd = self._lookup(path)
            vm = self._vm_of_vssd(vssd) if vssd else None
            if vm is None:
                continue
            guest = self.guests[vm.props["Name"]]
            running = vm.props["EnabledState"] == RUNNING
            cpus = next((int(r.props["VirtualQuantity"]) for r in self._parts(self._vssd_of(vm))
                         if r.class_name == "Msvm_ProcessorSettingData"), 1)
            full = {"Name": vm.props["Name"], "ElementName": vm.props["ElementName"],
                    "NumberOfProcessors": cpus, "EnabledState": vm.props["EnabledState"],
                    "ProcessorLoad": guest.cpu_load if running else 0, "HealthState": 5,
                    "ProcessorLoadHistory": [guest.cpu_load if running else 0] * 100,
                    "MemoryUsage": self._vm_memory(vm) if running else 0,
                    "Heartbeat": 2 if running and guest.ic_running else 12,
                    "UpTime": 60000 if running else 0}
            props = {fields[c]: full[fields[c]] for c in wanted}
            out.append(ModelObject(self, "Msvm_SummaryInformation", props, ""))
        return _Result(outputs={"SummaryInformation": out}, effect=lambda: [])

    def _m_GetVirtualSystemThumbnailImage(self, target: _Record, p: dict[str, Any]) -> _Result:
        vssd = self._lookup(p["TargetSystem"])
        vm = self._vm_of_vssd(vssd) if vssd else None
        width, height = int(p.get("WidthPixels") or 0), int(p.get("HeightPixels") or 0)
        if vm is None or not (0 < width <= 1024 and 0 < height <= 768):
            return _Result(INVALID_PARAMETER)
        if vm.props["EnabledState"] != RUNNING:
            return _Result(INVALID_STATE)
        data: list[int] = []
        for y in range(height):
            for x in range(width):
                r = x * 31 // max(width - 1, 1)
                g = y * 63 // max(height - 1, 1)
                value = (r << 11) | (g << 5) | 0x0A
                data += [value & 0xFF, value >> 8]
        return _Result(outputs={"ImageData": data}, effect=lambda: [])

    def _kvp_settings(self, vm: _Record) -> _Record:
        return self._related(self._vssd_of(vm), "Msvm_VirtualSystemSettingDataComponent",
                             "Msvm_KvpExchangeComponentSettingData")[0]

    def _kvp_call(self, p: dict[str, Any], mode: str) -> _Result:
        vm = self._lookup(p["TargetSystem"])
        if vm is None or vm.class_name != "Msvm_ComputerSystem" or vm is self.host_record:
            return _Result(INVALID_PARAMETER)
        items = [self._parse(t, "Msvm_KvpExchangeDataItem")[1] for t in p.get("DataItems") or []]
        for item in items:
            name, data = item.get("Name") or "", item.get("Data") or ""
            if not name or len(name) > 256 or len(data) > 1024 or item.get("Source") != 0:
                return _Result(INVALID_PARAMETER)
        sd = self._kvp_settings(vm)

        def effect() -> list[str]:
            current = {}
            for text in sd.props.get("HostExchangeItems") or []:
                _, it = self._parse(text, "Msvm_KvpExchangeDataItem")
                current[it["Name"]] = it["Data"]
            for item in items:
                exists = item["Name"] in current
                if mode == "add" and exists:
                    raise JobError(FAILED, f"The KVP item '{item['Name']}' already exists.")
                if mode in ("modify", "remove") and not exists:
                    raise JobError(FAILED, f"The KVP item '{item['Name']}' was not found.")
                if mode == "remove":
                    del current[item["Name"]]
                else:
                    current[item["Name"]] = item.get("Data") or ""
            sd.props["HostExchangeItems"] = [_kvp_text(k, v, 0) for k, v in current.items()]
            return [vm.path]

        return _Result(effect=effect)

    def _m_AddKvpItems(self, target: _Record, p: dict[str, Any]) -> _Result:
        return self._kvp_call(p, "add")

    def _m_ModifyKvpItems(self, target: _Record, p: dict[str, Any]) -> _Result:
        return self._kvp_call(p, "modify")

    def _m_RemoveKvpItems(self, target: _Record, p: dict[str, Any]) -> _Result:
        return self._kvp_call(p, "remove")

    # ------------------------------------------------------------------ snapshots

    def _m_CreateSnapshot(self, target: _Record, p: dict[str, Any]) -> _Result:
        vm = self._lookup(p["AffectedSystem"])
        if vm is None or vm.class_name != "Msvm_ComputerSystem" or vm is self.host_record:
            return _Result(INVALID_PARAMETER)
        if p.get("SnapshotType") not in (None, 2):
            return _Result(NOT_SUPPORTED)
        if vm.props["EnabledState"] not in (RUNNING, OFF, SAVED, PAUSED):
            return _Result(INVALID_STATE)
        snapshot_type = self._vssd_of(vm).props.get("UserSnapshotType")
        if snapshot_type == SNAPSHOT_DISABLED:
            return _Result(NOT_SUPPORTED)
        with_memory = snapshot_type == SNAPSHOT_STANDARD and \
            vm.props["EnabledState"] in (RUNNING, PAUSED)
        iid = f"Microsoft:{_guid()}"
        path = self._path_for("Msvm_VirtualSystemSettingData", {"InstanceID": iid})

        def effect() -> list[str]:
            vssd = self._vssd_of(vm)
            current = self._current_snapshot(vm)
            props = {k: v for k, v in vssd.props.items()} | {
                "InstanceID": iid, "VirtualSystemType": SNAPSHOT, "CreationTime": _now(),
                "ElementName": f"{vm.props['ElementName']} - checkpoint",
                "Parent": current.path if current else None}
            snap = self._add("Msvm_VirtualSystemSettingData", props)
            self._copy_parts(self._parts(vssd), lambda cls, props: self._add(
                cls, props | {"InstanceID": f"{iid}\\{_guid()}"}), snap)
            self._link("Msvm_SnapshotOfVirtualSystem", vm, snap)
            self._unlink("Msvm_MostCurrentSnapshotInBranch", vm)
            self._link("Msvm_MostCurrentSnapshotInBranch", vm, snap)
            self._snapshot_memory[snap.path] = with_memory
            return [snap.path]

        return _Result(outputs={"ResultingSnapshot": path}, effect=effect)

    def _copy_parts(self, parts: list[_Record], make: Callable[[str, dict[str, Any]], _Record],
                    owner: _Record | None = None) -> None:
        """Copy a settings tree, pointing each copy's ``Parent`` at the copy of its parent."""
        copies: dict[str, _Record] = {}
        for part in parts:
            copies[part.path] = rec = make(part.class_name, dict(part.props))
            if owner is not None:
                self._link("Msvm_VirtualSystemSettingDataComponent", owner, rec)
            for feature in self._related(part, "Msvm_EthernetPortSettingDataComponent",
                                         "Msvm_EthernetSwitchPortFeatureSettingData"):
                self._link("Msvm_EthernetPortSettingDataComponent", rec, self._add(
                    feature.class_name, dict(feature.props) | {
                        "InstanceID": f"{rec.props['InstanceID']}\\{_guid()}"}))
        for rec in copies.values():
            parent = rec.props.get("Parent")
            if parent in copies:
                rec.props["Parent"] = copies[parent].path

    def _current_snapshot(self, vm: _Record) -> _Record | None:
        found = self._related(vm, "Msvm_MostCurrentSnapshotInBranch",
                              "CIM_VirtualSystemSettingData")
        return found[0] if found else None

    def _snapshot_owner(self, snap: _Record) -> _Record | None:
        found = self._related(snap, "Msvm_SnapshotOfVirtualSystem", "Msvm_ComputerSystem")
        return found[0] if found else None

    def _m_ApplySnapshot(self, target: _Record, p: dict[str, Any]) -> _Result:
        snap = self._lookup(p["Snapshot"])
        vm = self._snapshot_owner(snap) if snap else None
        if snap is None or vm is None:
            return _Result(INVALID_PARAMETER)
        if vm.props["EnabledState"] not in (OFF, SAVED):
            return _Result(INVALID_STATE)

        def effect() -> list[str]:
            vssd = self._vssd_of(vm)
            for part in self._parts(vssd):
                self._remove_rasd_tree(part)
            self._copy_parts(self._parts(snap), lambda cls, props: self._attach_rasd(
                vm, vssd, cls, {k: v for k, v in props.items() if k != "InstanceID"}))
            self._unlink("Msvm_MostCurrentSnapshotInBranch", vm)
            self._link("Msvm_MostCurrentSnapshotInBranch", vm, snap)
            self._set_state(vm, SAVED if self._snapshot_memory.get(snap.path) else OFF)
            return [vm.path]

        return _Result(effect=effect)

    def _m_DestroySnapshot(self, target: _Record, p: dict[str, Any]) -> _Result:
        snap = self._lookup(p["AffectedSnapshot"])
        vm = self._snapshot_owner(snap) if snap else None
        if snap is None or vm is None or snap.props.get("VirtualSystemType") != SNAPSHOT:
            return _Result(INVALID_PARAMETER)

        def effect() -> list[str]:
            parent_path = snap.props.get("Parent")
            for other in self._related(vm, "Msvm_SnapshotOfVirtualSystem",
                                       "CIM_VirtualSystemSettingData"):
                if other.props.get("Parent") == snap.path:
                    other.props["Parent"] = parent_path
            was_current = self._current_snapshot(vm) is snap
            for part in self._parts(snap):
                self._remove_rasd_tree(part)
            self._remove(snap)
            parent = self._lookup(parent_path) if parent_path else None
            if was_current and parent is not None:
                self._link("Msvm_MostCurrentSnapshotInBranch", vm, parent)
            return [vm.path]

        return _Result(effect=effect)

    # ------------------------------------------------------------------ export, import, migration

    def _blob(self, vm: _Record) -> dict[str, Any]:
        vssd = self._vssd_of(vm)
        return {"guid": vm.props["Name"], "settings": dict(vssd.props),
                "resources": [dict(r.props) | {"__class": r.class_name, "__path": r.path}
                              for r in self._parts(vssd)]}

    def _restore_blob(self, blob: dict[str, Any], guid: str) -> _Record:
        settings = {k: v for k, v in blob["settings"].items()
                    if k not in ("InstanceID", "VirtualSystemIdentifier", "VirtualSystemType")}
        vm = self._create_vm(guid, settings, [])
        vssd = self._vssd_of(vm)
        path_map: dict[str, str] = {}
        for res in blob["resources"]:
            props = {k: v for k, v in res.items() if not k.startswith("__") and k != "InstanceID"}
            if props.get("Parent") in path_map:
                props["Parent"] = path_map[props["Parent"]]
            rec = self._attach_rasd(vm, vssd, res["__class"], props)
            path_map[res["__path"]] = rec.path
        return vm

    def _restore_snapshots(self, vm: _Record, snaps: list[dict[str, Any]]) -> None:
        paths: dict[str, str] = {}
        for item in snaps:
            iid = f"Microsoft:{_guid()}"
            props = dict(item["props"]) | {"InstanceID": iid,
                                           "VirtualSystemIdentifier": vm.props["Name"]}
            rec = self._add("Msvm_VirtualSystemSettingData", props)
            self._copy_parts(item["parts"], lambda cls, part, iid=iid: self._add(
                cls, part | {"InstanceID": f"{iid}\\{_guid()}"}), rec)
            paths[item["path"]] = rec.path
            self._link("Msvm_SnapshotOfVirtualSystem", vm, rec)
            self._snapshot_memory[rec.path] = item["memory"]
            if item["current"]:
                self._link("Msvm_MostCurrentSnapshotInBranch", vm, rec)
        for rec_path in paths.values():
            rec = self._lookup(rec_path)
            if rec is not None and rec.props.get("Parent"):
                rec.props["Parent"] = paths.get(rec.props["Parent"])

    def _m_ExportSystemDefinition(self, target: _Record, p: dict[str, Any]) -> _Result:
        vm = self._lookup(p["ComputerSystem"])
        if vm is None or vm is self.host_record or not p.get("ExportDirectory"):
            return _Result(INVALID_PARAMETER)
        _, opts = self._parse(p["ExportSettingData"], "Msvm_VirtualSystemExportSettingData")

        def effect() -> list[str]:
            base = str(p["ExportDirectory"]).rstrip("\\")
            if opts.get("CreateVmExportSubdirectory"):
                base += "\\" + str(vm.props["ElementName"])
            blob = self._blob(vm)
            if opts.get("CopyVmStorage"):
                for res in blob["resources"]:
                    if res.get("ResourceSubType") == "Microsoft:Hyper-V:Virtual Hard Disk":
                        src = res["HostResource"][0]
                        dst = f"{base}\\Virtual Hard Disks\\{src.rsplit(chr(92), 1)[-1]}"
                        self.add_file(dst)
                        res["HostResource"] = [dst]
            config = f"{base}\\Virtual Machines\\{vm.props['Name']}.vmcx"
            if opts.get("CopySnapshotConfiguration") in (None, 0):  # 0: all snapshots
                blob["snapshot_folder"] = f"{base}\\Snapshots"
                blob["snapshots"] = self._snapshot_blobs(vm, blob["snapshot_folder"])
            self.add_file(config)
            self.exports[config.lower()] = blob
            return [vm.path]

        return _Result(effect=effect)

    def _snapshot_blobs(self, vm: _Record, folder: str) -> list[dict[str, Any]]:
        out = []
        for snap in self._related(vm, "Msvm_SnapshotOfVirtualSystem",
                                  "CIM_VirtualSystemSettingData"):
            self.add_file(f"{folder}\\{snap.props['InstanceID'].split(':')[-1]}.vmcx")
            out.append({"path": snap.path, "props": dict(snap.props),
                        "parts": [_Record(p.class_name, dict(p.props), p.path)
                                  for p in self._parts(snap)],
                        "memory": self._snapshot_memory.get(snap.path, False),
                        "current": self._current_snapshot(vm) is snap})
        return out

    def _m_ImportSystemDefinition(self, target: _Record, p: dict[str, Any]) -> _Result:
        file = str(p.get("SystemDefinitionFile") or "")
        new_id = bool(p.get("GenerateNewSystemIdentifier"))
        blob = self.exports.get(file.lower())
        if blob is None:
            return _Result(effect=lambda: _fail(FAILED, f"'{file}': {_FILE_NOT_FOUND}"))
        folder = str(p.get("SnapshotFolder") or "").rstrip("\\")
        if blob.get("snapshots") and folder.lower() != blob["snapshot_folder"].lower():
            # the snapshots' configurations are read from SnapshotFolder: without the export's
            # Snapshots folder the import of a VM that has snapshots fails
            return _Result(effect=lambda: _fail(
                FAILED, f"'{folder}\\…vmcx': {_FILE_NOT_FOUND} (snapshot configuration)"))
        guid = _guid() if new_id else blob["guid"]
        planned_path = self._path_for("Msvm_PlannedComputerSystem", {"Name": guid})

        def effect() -> list[str]:
            if any(r.props["Name"] == guid for r in self._of_class("CIM_ComputerSystem")):
                raise JobError(FAILED, "A virtual machine with the same identifier already exists.")
            rec = self._add("Msvm_PlannedComputerSystem", {
                "Name": guid, "ElementName": blob["settings"].get("ElementName"),
                "CreationClassName": "Msvm_PlannedComputerSystem"})
            self._planned[rec.path] = blob
            return [rec.path]

        return _Result(outputs={"ImportedSystem": planned_path}, effect=effect)

    @property
    def _planned(self) -> dict[str, dict[str, Any]]:
        if not hasattr(self, "_planned_store"):
            self._planned_store: dict[str, dict[str, Any]] = {}
        return self._planned_store

    def _m_ValidatePlannedSystem(self, target: _Record, p: dict[str, Any]) -> _Result:
        planned = self._lookup(p["PlannedSystem"])
        assert planned is not None
        blob = self._planned[planned.path]

        def effect() -> list[str]:
            for res in blob["resources"]:
                if res.get("ResourceSubType") in _MEDIA:
                    path = res["HostResource"][0]
                    if not self.has_file(path):
                        raise JobError(FAILED, f"'{path}': {_FILE_NOT_FOUND}")
            return []

        return _Result(effect=effect)

    def _m_RealizePlannedSystem(self, target: _Record, p: dict[str, Any]) -> _Result:
        planned = self._lookup(p["PlannedSystem"])
        assert planned is not None
        guid = planned.props["Name"]
        path = self._path_for("Msvm_ComputerSystem", {"Name": guid})

        def effect() -> list[str]:
            blob = self._planned.pop(planned.path)
            self._remove(planned)
            vm = self._restore_blob(blob, guid)
            self._restore_snapshots(vm, blob.get("snapshots") or [])
            return [vm.path]

        return _Result(outputs={"ResultingSystem": path}, effect=effect)

    def _m_MigrateVirtualSystemToHost(self, target: _Record, p: dict[str, Any]) -> _Result:
        vm = self._lookup(p["ComputerSystem"])
        if vm is None or vm is self.host_record:
            return _Result(INVALID_PARAMETER)
        _, msd = self._parse(p["MigrationSettingData"], "Msvm_VirtualSystemMigrationSettingData")
        mtype = msd.get("MigrationType")
        if mtype not in (32768, 32769, 32770, 32771):
            return _Result(INVALID_PARAMETER)
        if mtype in (32769, 32770):
            return _Result(NOT_SUPPORTED)
        dest = str(p.get("DestinationHost") or "")
        peer = self.peers.get(dest.lower())

        def effect() -> list[str]:
            if peer is None:
                raise JobError(FAILED, f"The Virtual Machine Management Service failed to "
                                       f"establish a connection for a Virtual Machine migration "
                                       f"with host '{dest}': No such host is known. (0x80072AF9)")
            blob = self._blob(vm)
            state = vm.props["EnabledState"]
            for res in blob["resources"]:
                if res.get("ResourceSubType") in _MEDIA:
                    path = res["HostResource"][0]
                    if mtype == 32768 and not peer.has_file(path):
                        raise JobError(FAILED, f"Migration did not succeed: the destination "
                                               f"cannot access '{path}'.")
                    peer.add_file(path)
            with peer._lock:
                moved = peer._restore_blob(blob, vm.props["Name"])
                peer._set_state(moved, state)
            self._delete_vm(vm)
            return []

        return _Result(effect=effect)

    # ------------------------------------------------------------------ switches

    def _define_switch(self, p: dict[str, Any]) -> _Result:
        _, settings = self._parse(p["SystemSettings"], "Msvm_VirtualEthernetSwitchSettingData")
        if not settings.get("ElementName"):
            return _Result(INVALID_PARAMETER)
        ports = [self._parse(t, "Msvm_EthernetPortAllocationSettingData")[1]
                 for t in p.get("ResourceSettings") or []]
        targets = []
        for port in ports:
            hosts = port.get("HostResource") or []
            rec = self._lookup(hosts[0]) if len(hosts) == 1 else None
            if rec is None or not (rec.class_name == "Msvm_ExternalEthernetPort"
                                   or rec is self.host_record):
                return _Result(INVALID_PARAMETER)
            targets.append(rec)
        guid = _guid()
        path = self._path_for("Msvm_VirtualEthernetSwitch", {"Name": guid})

        def effect() -> list[str]:
            for rec in targets:
                if rec.class_name == "Msvm_ExternalEthernetPort" and rec.props.get("IsBound"):
                    raise JobError(FAILED, f"The network adapter '{rec.props['ElementName']}' is "
                                           f"already bound to a virtual switch.")
            switch = self._add("Msvm_VirtualEthernetSwitch", {
                "Name": guid, "ElementName": settings["ElementName"], "EnabledState": RUNNING,
                "CreationClassName": "Msvm_VirtualEthernetSwitch"})
            sd = self._add("Msvm_VirtualEthernetSwitchSettingData", {
                "InstanceID": f"Microsoft:{guid}", "VirtualSystemIdentifier": guid,
                "ElementName": settings["ElementName"]})
            self._link("Msvm_SettingsDefineState", switch, sd)
            for port, rec in zip(ports, targets, strict=True):
                alloc = self._add("Msvm_EthernetPortAllocationSettingData", {
                    k: v for k, v in port.items() if k != "InstanceID"} | {
                    "InstanceID": f"Microsoft:{guid}\\{_guid()}", "HostResource": [rec.path]})
                self._link("Msvm_VirtualSystemSettingDataComponent", sd, alloc)
                if rec.class_name == "Msvm_ExternalEthernetPort":
                    rec.props["IsBound"] = True
            return [switch.path]

        return _Result(outputs={"ResultingSystem": path}, effect=effect)

    def _destroy_switch(self, switch: _Record) -> _Result:
        if switch.class_name != "Msvm_VirtualEthernetSwitch":
            return _Result(INVALID_PARAMETER)

        def effect() -> list[str]:
            sd = self._related(switch, "Msvm_SettingsDefineState",
                               "Msvm_VirtualEthernetSwitchSettingData")[0]
            for alloc in self._related(sd, "Msvm_VirtualSystemSettingDataComponent",
                                       "Msvm_EthernetPortAllocationSettingData"):
                for hr in alloc.props.get("HostResource") or []:
                    ext = self._lookup(hr)
                    if ext is not None and ext.class_name == "Msvm_ExternalEthernetPort":
                        ext.props["IsBound"] = False
                self._remove(alloc)
            for alloc in self._of_class("Msvm_EthernetPortAllocationSettingData"):
                if switch.path in (alloc.props.get("HostResource") or []):
                    self._remove_rasd_tree(alloc)
            self._remove(sd)
            self._remove(switch)
            return []

        return _Result(effect=effect)


def _is_windows_abs(path: str) -> bool:
    """A drive path (``E:\\x``) or a UNC path (``\\\\server\\share\\x``)."""
    return (len(path) > 3 and path[0].isalpha() and path[1:3] == ":\\") or \
        (path.startswith("\\\\") and path.count("\\") >= 4)


def _fail(code: int, text: str) -> list[str]:
    raise JobError(code, text)


def _equal(actual: Any, wanted: Any) -> bool:
    if isinstance(actual, str) and isinstance(wanted, str):
        return actual.lower() == wanted.lower()
    return bool(actual == wanted) and type(actual) is type(wanted)


def _is_mac(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 12 and \
        all(c in "0123456789ABCDEFabcdef" for c in value)


_EXT_ACL = "Msvm_EthernetSwitchPortExtendedAclSettingData"
_ACL_PROTOCOLS = {"ANY", "TCP", "UDP", "ICMPV4", "ICMPV6"}
_STATEFUL_PROTOCOLS = {"TCP", "UDP", "6", "17"}


def _acl_address(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 40:
        return False
    if value.upper() == "ANY":
        return True
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        return False
    return True


def _acl_port(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 21:
        return False
    if value.upper() == "ANY":
        return True
    parts = value.split("-")
    if len(parts) > 2 or not all(p.isdigit() and int(p) <= 65535 for p in parts):
        return False
    return len(parts) == 1 or int(parts[0]) <= int(parts[1])


def _valid_ext_acl(props: Mapping[str, Any]) -> bool:
    """What a host refuses in an extended port ACL (Microsoft's class documentation: MaxLen of the
    strings, the enumerations; stateful ACLs are Allow rules for TCP or UDP)."""
    proto = str(props.get("Protocol") or "ANY").upper()
    if len(proto) > 15 or not (proto in _ACL_PROTOCOLS or (proto.isdigit() and int(proto) <= 255)):
        return False
    if props.get("Direction") not in (1, 2) or props.get("Action") not in (1, 2, 3):
        return False
    if not all(_acl_address(props.get(k, "ANY")) for k in ("LocalIPAddress", "RemoteIPAddress")):
        return False
    if not all(_acl_port(props.get(k, "ANY")) for k in ("LocalPort", "RemotePort")):
        return False
    if len(str(props.get("Name") or "")) > 64 or not 1 <= int(props.get("Weight") or 0) <= 65535:
        return False
    return not props.get("Stateful") or (props.get("Action") == 1 and proto in _STATEFUL_PROTOCOLS)


def _valid_feature(class_name: str, props: Mapping[str, Any]) -> bool:
    if class_name == _EXT_ACL:
        return _valid_ext_acl(props)
    if class_name == "Msvm_EthernetSwitchPortVlanSettingData":
        mode = props.get("OperationMode")
        if mode == 1:
            return 1 <= int(props.get("AccessVlanId") or 0) <= 4094
        return mode == 2 and all(1 <= v <= 4094 for v in props.get("TrunkVlanIdArray") or [])
    return True


def _kvp_text(name: str, data: str, source: int) -> str:
    return cimxml.dump("Msvm_KvpExchangeDataItem", {"Name": name, "Data": data, "Source": source},
                       schema.properties("Msvm_KvpExchangeDataItem"))


__all__ = ["Guest", "HyperVModel", "JobError", "ModelConnection", "ModelObject",
           "SchemaViolation"]
