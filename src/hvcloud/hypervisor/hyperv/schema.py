"""The part of the Hyper-V WMI schema this driver uses, written from Microsoft's documentation.

Namespaces ``root\\virtualization\\v2`` (``Msvm_*``) and ``root\\cimv2`` (``Win32_*``). Types are
CIM types: ``string``, ``boolean``, ``uint8/16/32/64``, ``datetime`` (CIM DMTF text), arrays with
``[]``, ``ref:Class`` (an object path of an instance of Class or a subclass) and
``embedded:Class`` (an instance serialised as text, what ``GetText_(1)`` returns).

The strict model in :mod:`tests.support.hyperv_fake` validates every property read and write,
every method name and every parameter against this table; the real PyMI connection uses it to name
the out-parameters PyMI returns as a tuple sorted by name. Only the classes, properties and methods
the driver touches are listed: anything else is rejected by the model on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

V2 = "root\\virtualization\\v2"
CIMV2 = "root\\cimv2"


@dataclass(frozen=True)
class MethodDef:
    inputs: Mapping[str, str]
    outputs: Mapping[str, str]
    #: whether the method may answer 4096 and hand back a ``Job`` out-parameter
    has_job: bool = True
    #: in-parameters the documentation lets a caller leave out; every other input is required
    optional: frozenset[str] = frozenset()

    @property
    def required(self) -> frozenset[str]:
        return frozenset(self.inputs) - self.optional


@dataclass(frozen=True)
class ClassDef:
    name: str
    namespace: str
    parent: str | None
    own_properties: Mapping[str, str]
    methods: Mapping[str, MethodDef] = field(default_factory=dict)
    association: tuple[str, str] | None = None


def _props(spec: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in spec.split():
        name, _, typ = item.partition(":")
        out[name] = typ
    return out


_JOB = "ref:CIM_ConcreteJob"

_CLASSES: list[ClassDef] = [
    # ------------------------------------------------------------------ bases
    ClassDef("CIM_ManagedElement", V2, None,
             _props("Caption:string Description:string ElementName:string")),
    ClassDef("CIM_SettingData", V2, "CIM_ManagedElement", _props("InstanceID:string")),
    ClassDef("CIM_ResourceAllocationSettingData", V2, "CIM_SettingData", _props(
        "ResourceType:uint16 OtherResourceType:string ResourceSubType:string PoolID:string "
        "ConsumerVisibility:uint16 HostResource:string[] AllocationUnits:string "
        "VirtualQuantity:uint64 Reservation:uint64 Limit:uint64 Weight:uint32 "
        "AutomaticAllocation:boolean AutomaticDeallocation:boolean Parent:string "
        "Connection:string[] Address:string MappingBehavior:uint16 AddressOnParent:string "
        "VirtualQuantityUnits:string")),
    ClassDef("CIM_LogicalElement", V2, "CIM_ManagedElement", _props(
        "EnabledState:uint16 RequestedState:uint16 HealthState:uint16 OperationalStatus:uint16[] "
        "StatusDescriptions:string[]")),
    # ------------------------------------------------------------------ VMs and the host
    ClassDef("CIM_ComputerSystem", V2, "CIM_LogicalElement", _props("Name:string")),
    ClassDef("Msvm_ComputerSystem", V2, "CIM_ComputerSystem", _props(
        "CreationClassName:string InstallDate:datetime OnTimeInMilliseconds:uint64 "
        "ProcessID:uint32 TimeOfLastStateChange:datetime NumberOfNumaNodes:uint16"),
        {"RequestStateChange": MethodDef(
            {"RequestedState": "uint16", "TimeoutPeriod": "datetime"}, {"Job": _JOB},
            optional=frozenset({"TimeoutPeriod"}))}),
    ClassDef("Msvm_PlannedComputerSystem", V2, "CIM_ComputerSystem",
             _props("CreationClassName:string")),
    ClassDef("CIM_VirtualSystemSettingData", V2, "CIM_SettingData", _props(
        "VirtualSystemIdentifier:string VirtualSystemType:string Notes:string[] "
        "CreationTime:datetime ConfigurationDataRoot:string SnapshotDataRoot:string "
        "ConfigurationFile:string")),
    ClassDef("Msvm_VirtualSystemSettingData", V2, "CIM_VirtualSystemSettingData", _props(
        "VirtualSystemSubType:string AutomaticStartupAction:uint16 AutomaticShutdownAction:uint16 "
        "Parent:string BootOrder:uint16[] IsSaved:boolean Version:string "
        "UserSnapshotType:uint16")),
    ClassDef("Msvm_ResourceAllocationSettingData", V2, "CIM_ResourceAllocationSettingData", {}),
    ClassDef("Msvm_StorageAllocationSettingData", V2, "CIM_ResourceAllocationSettingData",
             _props("HostExtentStartingAddress:uint64 HostExtentName:string")),
    ClassDef("Msvm_MemorySettingData", V2, "CIM_ResourceAllocationSettingData",
             _props("DynamicMemoryEnabled:boolean")),
    ClassDef("Msvm_ProcessorSettingData", V2, "CIM_ResourceAllocationSettingData", {}),
    ClassDef("Msvm_SyntheticEthernetPortSettingData", V2, "CIM_ResourceAllocationSettingData",
             _props("StaticMacAddress:boolean VirtualSystemIdentifiers:string[]")),
    ClassDef("Msvm_EmulatedEthernetPortSettingData", V2, "CIM_ResourceAllocationSettingData",
             _props("StaticMacAddress:boolean")),
    ClassDef("Msvm_EthernetPortAllocationSettingData", V2, "CIM_ResourceAllocationSettingData",
             _props("EnabledState:uint16 LastKnownSwitchName:string RequiredFeatures:string[]")),
    ClassDef("Msvm_EthernetSwitchPortFeatureSettingData", V2, "CIM_SettingData", {}),
    ClassDef("Msvm_EthernetSwitchPortVlanSettingData", V2,
             "Msvm_EthernetSwitchPortFeatureSettingData", _props(
                 "OperationMode:uint32 AccessVlanId:uint16 NativeVlanId:uint16 "
                 "TrunkVlanIdArray:uint16[]")),
    ClassDef("Msvm_EthernetSwitchPortBandwidthSettingData", V2,
             "Msvm_EthernetSwitchPortFeatureSettingData",
             _props("Limit:uint64 Reservation:uint64 BurstLimit:uint64 BurstSize:uint64")),
    ClassDef("Msvm_EthernetSwitchPortExtendedAclSettingData", V2,
             "Msvm_EthernetSwitchPortFeatureSettingData", _props(
                 "Name:string Direction:uint8 Action:uint8 LocalIPAddress:string RemoteIPAddress:string "
                 "LocalPort:string RemotePort:string Protocol:string Weight:uint16 Stateful:boolean "
                 "IdleSessionTimeout:uint16 IsolationID:uint32")),
    ClassDef("Msvm_GuestNetworkAdapterConfiguration", V2, "CIM_SettingData", _props(
        "IPAddresses:string[] Subnets:string[] DefaultGateways:string[] DNSServers:string[] "
        "DHCPEnabled:boolean ProtocolIFType:uint16")),
    # ------------------------------------------------------------------ integration services
    ClassDef("Msvm_ShutdownComponent", V2, "CIM_LogicalElement",
             _props("SystemName:string DeviceID:string"), {
                 "InitiateShutdown": MethodDef({"Force": "boolean", "Reason": "string"}, {},
                                               has_job=False),
                 "InitiateReboot": MethodDef({"Force": "boolean", "Reason": "string"}, {},
                                             has_job=False),
             }),
    ClassDef("Msvm_HeartbeatComponent", V2, "CIM_LogicalElement",
             _props("SystemName:string DeviceID:string")),
    ClassDef("Msvm_KvpExchangeComponent", V2, "CIM_LogicalElement", _props(
        "SystemName:string DeviceID:string GuestIntrinsicExchangeItems:string[] "
        "GuestExchangeItems:string[]")),
    # both parents as Microsoft documents them: the KVP settings are a resource allocation (so they
    # are among a VM's settings components) and a data item is a plain managed element
    ClassDef("Msvm_KvpExchangeComponentSettingData", V2, "CIM_ResourceAllocationSettingData",
             _props("HostExchangeItems:string[] HostOnlyItems:string[] EnabledState:uint16 "
                    "DisableHostKVPItems:boolean")),
    ClassDef("Msvm_KvpExchangeDataItem", V2, "CIM_ManagedElement",
             _props("Name:string Data:string Source:uint16")),
    # the host's VM console (RDP over VMConnect) listener; its port is configurable
    ClassDef("Msvm_TerminalServiceSettingData", V2, "CIM_SettingData",
             _props("ListenerPort:uint32")),
    # ------------------------------------------------------------------ services
    ClassDef("Msvm_VirtualSystemManagementService", V2, "CIM_LogicalElement",
             _props("Name:string SystemName:string"), {
                 "DefineSystem": MethodDef(
                     {"SystemSettings": "embedded:Msvm_VirtualSystemSettingData",
                      "ResourceSettings": "embedded[]:CIM_ResourceAllocationSettingData",
                      "ReferenceConfiguration": "ref:CIM_VirtualSystemSettingData"},
                     {"ResultingSystem": "ref:CIM_ComputerSystem", "Job": _JOB},
                     optional=frozenset({"ResourceSettings", "ReferenceConfiguration"})),
                 "DestroySystem": MethodDef({"AffectedSystem": "ref:CIM_ComputerSystem"},
                                            {"Job": _JOB}),
                 "ModifySystemSettings": MethodDef(
                     {"SystemSettings": "embedded:CIM_VirtualSystemSettingData"}, {"Job": _JOB}),
                 "AddResourceSettings": MethodDef(
                     {"AffectedConfiguration": "ref:CIM_VirtualSystemSettingData",
                      "ResourceSettings": "embedded[]:CIM_ResourceAllocationSettingData"},
                     {"ResultingResourceSettings": "ref[]:CIM_ResourceAllocationSettingData",
                      "Job": _JOB}),
                 "ModifyResourceSettings": MethodDef(
                     {"ResourceSettings": "embedded[]:CIM_ResourceAllocationSettingData"},
                     {"ResultingResourceSettings": "ref[]:CIM_ResourceAllocationSettingData",
                      "Job": _JOB}),
                 "RemoveResourceSettings": MethodDef(
                     {"ResourceSettings": "ref[]:CIM_ResourceAllocationSettingData"}, {"Job": _JOB}),
                 "AddFeatureSettings": MethodDef(
                     {"AffectedConfiguration": "ref:CIM_ResourceAllocationSettingData",
                      "FeatureSettings": "embedded[]:Msvm_EthernetSwitchPortFeatureSettingData"},
                     {"ResultingFeatureSettings": "ref[]:Msvm_EthernetSwitchPortFeatureSettingData",
                      "Job": _JOB}),
                 "ModifyFeatureSettings": MethodDef(
                     {"FeatureSettings": "embedded[]:Msvm_EthernetSwitchPortFeatureSettingData"},
                     {"ResultingFeatureSettings": "ref[]:Msvm_EthernetSwitchPortFeatureSettingData",
                      "Job": _JOB}),
                 "RemoveFeatureSettings": MethodDef(
                     {"FeatureSettings": "ref[]:Msvm_EthernetSwitchPortFeatureSettingData"},
                     {"Job": _JOB}),
                 "GetSummaryInformation": MethodDef(
                     {"SettingData": "ref[]:CIM_VirtualSystemSettingData",
                      "RequestedInformation": "uint32[]"},
                     {"SummaryInformation": "instance[]:Msvm_SummaryInformation"}, has_job=False),
                 "GetVirtualSystemThumbnailImage": MethodDef(
                     {"TargetSystem": "ref:CIM_VirtualSystemSettingData", "WidthPixels": "uint16",
                      "HeightPixels": "uint16"},
                     {"ImageData": "uint8[]"}, has_job=False),
                 "AddKvpItems": MethodDef(
                     {"TargetSystem": "ref:CIM_ComputerSystem",
                      "DataItems": "embedded[]:Msvm_KvpExchangeDataItem"}, {"Job": _JOB}),
                 "ModifyKvpItems": MethodDef(
                     {"TargetSystem": "ref:CIM_ComputerSystem",
                      "DataItems": "embedded[]:Msvm_KvpExchangeDataItem"}, {"Job": _JOB}),
                 "RemoveKvpItems": MethodDef(
                     {"TargetSystem": "ref:CIM_ComputerSystem",
                      "DataItems": "embedded[]:Msvm_KvpExchangeDataItem"}, {"Job": _JOB}),
                 "ExportSystemDefinition": MethodDef(
                     {"ComputerSystem": "ref:CIM_ComputerSystem", "ExportDirectory": "string",
                      "ExportSettingData": "embedded:Msvm_VirtualSystemExportSettingData"},
                     {"Job": _JOB}),
                 "ImportSystemDefinition": MethodDef(
                     {"SystemDefinitionFile": "string", "SnapshotFolder": "string",
                      "GenerateNewSystemIdentifier": "boolean"},
                     {"ImportedSystem": "ref:Msvm_PlannedComputerSystem", "Job": _JOB},
                     optional=frozenset({"SnapshotFolder"})),
                 "ValidatePlannedSystem": MethodDef(
                     {"PlannedSystem": "ref:Msvm_PlannedComputerSystem"}, {"Job": _JOB}),
                 "RealizePlannedSystem": MethodDef(
                     {"PlannedSystem": "ref:Msvm_PlannedComputerSystem"},
                     {"ResultingSystem": "ref:CIM_ComputerSystem", "Job": _JOB}),
             }),
    ClassDef("Msvm_VirtualSystemManagementServiceSettingData", V2, "CIM_SettingData", _props(
        "DefaultVirtualHardDiskPath:string DefaultExternalDataRoot:string "
        "MaximumMacAddress:string MinimumMacAddress:string")),
    ClassDef("Msvm_VirtualSystemExportSettingData", V2, "CIM_SettingData", _props(
        "CopySnapshotConfiguration:uint8 CopyVmRuntimeInformation:boolean CopyVmStorage:boolean "
        "CreateVmExportSubdirectory:boolean SnapshotVirtualSystem:string")),
    ClassDef("Msvm_SummaryInformation", V2, None, _props(
        "Name:string ElementName:string EnabledState:uint16 NumberOfProcessors:uint16 "
        "ProcessorLoad:uint16 ProcessorLoadHistory:uint16[] MemoryUsage:uint64 UpTime:uint64 "
        "Heartbeat:uint16 HealthState:uint16")),
    ClassDef("Msvm_VirtualSystemSnapshotService", V2, "CIM_LogicalElement",
             _props("Name:string SystemName:string"), {
                 "CreateSnapshot": MethodDef(
                     {"AffectedSystem": "ref:CIM_ComputerSystem",
                      "SnapshotSettings": "string", "SnapshotType": "uint16"},
                     {"ResultingSnapshot": "ref:CIM_VirtualSystemSettingData", "Job": _JOB},
                     optional=frozenset({"SnapshotSettings"})),
                 "DestroySnapshot": MethodDef(
                     {"AffectedSnapshot": "ref:CIM_VirtualSystemSettingData"}, {"Job": _JOB}),
                 "ApplySnapshot": MethodDef(
                     {"Snapshot": "ref:CIM_VirtualSystemSettingData"}, {"Job": _JOB}),
             }),
    ClassDef("Msvm_VirtualSystemMigrationService", V2, "CIM_LogicalElement",
             _props("Name:string SystemName:string MigrationServiceListenerIPAddressList:string[]"), {
                 "MigrateVirtualSystemToHost": MethodDef(
                     {"ComputerSystem": "ref:CIM_ComputerSystem", "DestinationHost": "string",
                      "MigrationSettingData": "embedded:Msvm_VirtualSystemMigrationSettingData",
                      "NewSystemSettingData": "embedded:Msvm_VirtualSystemSettingData",
                      "NewResourceSettingData": "embedded[]:CIM_ResourceAllocationSettingData"},
                     {"Job": _JOB},
                     optional=frozenset({"NewSystemSettingData", "NewResourceSettingData"})),
             }),
    ClassDef("Msvm_VirtualSystemMigrationSettingData", V2, "CIM_SettingData", _props(
        "MigrationType:uint16 TransportType:uint16 DestinationIPAddressList:string[] "
        "DestinationPlannedVirtualSystemId:string RetainVhdCopiesOnSource:boolean")),
    # ------------------------------------------------------------------ virtual hard disks
    # Msvm_ImageManagementService (learn.microsoft.com, "Msvm_ImageManagementService class"):
    # CreateVirtualHardDisk(VirtualDiskSettingData) and ResizeVirtualHardDisk(Path,
    # MaxInternalSize) answer 0, 4096 + Job, or an error code. Msvm_VirtualHardDiskSettingData:
    # Type 2 fixed / 3 dynamic / 4 differencing, Format 2 VHD / 3 VHDX / 4 VHDSet.
    ClassDef("Msvm_VirtualHardDiskSettingData", V2, "CIM_SettingData", _props(
        "Type:uint16 Format:uint16 Path:string ParentPath:string ParentTimestamp:datetime "
        "ParentIdentifier:string MaxInternalSize:uint64 BlockSize:uint32 "
        "LogicalSectorSize:uint32 PhysicalSectorSize:uint32 VirtualDiskId:string "
        "DataAlignment:uint64 PmemAddressAbstractionType:uint16 IsPmemCompatible:boolean")),
    ClassDef("Msvm_ImageManagementService", V2, "CIM_LogicalElement",
             _props("Name:string SystemName:string"), {
                 "CreateVirtualHardDisk": MethodDef(
                     {"VirtualDiskSettingData": "embedded:Msvm_VirtualHardDiskSettingData"},
                     {"Job": _JOB}),
                 "ResizeVirtualHardDisk": MethodDef(
                     {"Path": "string", "MaxInternalSize": "uint64"}, {"Job": _JOB}),
                 # SettingData: an embedded Msvm_VirtualHardDiskSettingData (Type, ParentPath…)
                 "GetVirtualHardDiskSettingData": MethodDef(
                     {"Path": "string"}, {"SettingData": "string", "Job": _JOB}),
             }),
    # ------------------------------------------------------------------ switches
    ClassDef("Msvm_VirtualEthernetSwitch", V2, "CIM_ComputerSystem",
             _props("CreationClassName:string")),
    ClassDef("Msvm_VirtualEthernetSwitchSettingData", V2, "CIM_VirtualSystemSettingData",
             _props("IOVPreferred:boolean")),
    ClassDef("Msvm_ExternalEthernetPort", V2, "CIM_LogicalElement", _props(
        "Name:string DeviceID:string PermanentAddress:string IsBound:boolean")),
    ClassDef("Msvm_VirtualEthernetSwitchManagementService", V2, "CIM_LogicalElement",
             _props("Name:string SystemName:string"), {
                 "DefineSystem": MethodDef(
                     {"SystemSettings": "embedded:Msvm_VirtualEthernetSwitchSettingData",
                      "ResourceSettings": "embedded[]:Msvm_EthernetPortAllocationSettingData",
                      "ReferenceConfiguration": "ref:CIM_VirtualSystemSettingData"},
                     {"ResultingSystem": "ref:CIM_ComputerSystem", "Job": _JOB},
                     optional=frozenset({"ResourceSettings", "ReferenceConfiguration"})),
                 "DestroySystem": MethodDef({"AffectedSystem": "ref:CIM_ComputerSystem"},
                                            {"Job": _JOB}),
             }),
    # ------------------------------------------------------------------ jobs
    ClassDef("CIM_ConcreteJob", V2, "CIM_LogicalElement", _props(
        "InstanceID:string Name:string JobState:uint16 ErrorCode:uint16 ErrorDescription:string "
        "ErrorSummaryDescription:string PercentComplete:uint16 Cancellable:boolean "
        "JobType:uint16 TimeSubmitted:datetime"),
        {"RequestStateChange": MethodDef(
            {"RequestedState": "uint16", "TimeoutPeriod": "datetime"}, {}, has_job=False,
            optional=frozenset({"TimeoutPeriod"}))}),
    ClassDef("Msvm_ConcreteJob", V2, "CIM_ConcreteJob", {}),
    # Not every job is a Msvm_ConcreteJob: Msvm_ImageManagementService hands back a
    # Msvm_StorageJob (a direct CIM_ConcreteJob subclass) and Msvm_VirtualSystemMigrationService a
    # Msvm_MigrationJob (a Msvm_ConcreteJob subclass); both are polled and terminated the same way.
    ClassDef("Msvm_StorageJob", V2, "CIM_ConcreteJob", {}),
    ClassDef("Msvm_MigrationJob", V2, "Msvm_ConcreteJob", {}),
    # ------------------------------------------------------------------ associations
    ClassDef("Msvm_SettingsDefineState", V2, None,
             _props("ManagedElement:ref:CIM_ManagedElement SettingData:ref:CIM_SettingData"),
             association=("ManagedElement", "SettingData")),
    ClassDef("Msvm_VirtualSystemSettingDataComponent", V2, None,
             _props("GroupComponent:ref:CIM_VirtualSystemSettingData "
                    "PartComponent:ref:CIM_ManagedElement"),
             association=("GroupComponent", "PartComponent")),
    ClassDef("Msvm_SnapshotOfVirtualSystem", V2, None,
             _props("ManagedElement:ref:CIM_ComputerSystem "
                    "SettingData:ref:CIM_VirtualSystemSettingData"),
             association=("ManagedElement", "SettingData")),
    ClassDef("Msvm_MostCurrentSnapshotInBranch", V2, None,
             _props("Antecedent:ref:CIM_ComputerSystem Dependent:ref:CIM_VirtualSystemSettingData"),
             association=("Antecedent", "Dependent")),
    ClassDef("Msvm_SystemDevice", V2, None,
             _props("GroupComponent:ref:CIM_ComputerSystem PartComponent:ref:CIM_LogicalElement"),
             association=("GroupComponent", "PartComponent")),
    ClassDef("Msvm_ElementSettingData", V2, None,
             _props("ManagedElement:ref:CIM_ManagedElement SettingData:ref:CIM_SettingData"),
             association=("ManagedElement", "SettingData")),
    ClassDef("Msvm_EthernetPortSettingDataComponent", V2, None,
             _props("GroupComponent:ref:Msvm_EthernetPortAllocationSettingData "
                    "PartComponent:ref:Msvm_EthernetSwitchPortFeatureSettingData"),
             association=("GroupComponent", "PartComponent")),
    ClassDef("Msvm_SettingDataComponent", V2, None,
             _props("GroupComponent:ref:CIM_ResourceAllocationSettingData "
                    "PartComponent:ref:Msvm_GuestNetworkAdapterConfiguration"),
             association=("GroupComponent", "PartComponent")),
    ClassDef("Msvm_AffectedJobElement", V2, None,
             _props("AffectedElement:ref:CIM_ManagedElement AffectingElement:ref:CIM_ConcreteJob"),
             association=("AffectingElement", "AffectedElement")),
    # ------------------------------------------------------------------ root\cimv2
    ClassDef("Win32_OperatingSystem", CIMV2, None, _props(
        "Caption:string Version:string CSName:string TotalVisibleMemorySize:uint64 "
        "FreePhysicalMemory:uint64")),
    ClassDef("Win32_ComputerSystem", CIMV2, None,
             _props("Name:string DNSHostName:string Domain:string TotalPhysicalMemory:uint64")),
    ClassDef("Win32_Processor", CIMV2, None, _props(
        "DeviceID:string NumberOfCores:uint32 NumberOfLogicalProcessors:uint32 "
        "MaxClockSpeed:uint32")),
    ClassDef("Win32_PerfFormattedData_Counters_ProcessorInformation", CIMV2, None,
             _props("Name:string PercentIdleTime:uint64 PercentProcessorTime:uint64")),
    ClassDef("Win32_LogicalDisk", CIMV2, None,
             _props("DeviceID:string Size:uint64 FreeSpace:uint64")),
    ClassDef("Win32_NetworkAdapterConfiguration", CIMV2, None, _props(
        "Description:string IPAddress:string[] IPSubnet:string[] MACAddress:string "
        "IPEnabled:boolean")),
]

CLASSES: Mapping[str, ClassDef] = {c.name: c for c in _CLASSES}


def is_subclass(name: str, ancestor: str) -> bool:
    current: str | None = name
    while current is not None:
        if current == ancestor:
            return True
        current = CLASSES[current].parent
    return False


def properties(name: str) -> dict[str, str]:
    """Every property of the class, inherited ones included."""
    chain: list[ClassDef] = []
    current: str | None = name
    while current is not None:
        cls = CLASSES[current]
        chain.append(cls)
        current = cls.parent
    out: dict[str, str] = {}
    for cls in reversed(chain):
        out.update(cls.own_properties)
    return out


def method(name: str, method_name: str) -> MethodDef | None:
    current: str | None = name
    while current is not None:
        cls = CLASSES[current]
        if method_name in cls.methods:
            return cls.methods[method_name]
        current = cls.parent
    return None


def out_parameter_names(class_name: str, method_name: str) -> list[str]:
    """Out-parameters in the order PyMI returns them (sorted by name, ReturnValue included)."""
    m = method(class_name, method_name)
    if m is None:
        raise KeyError(f"{class_name}.{method_name} is not in the schema")
    return sorted([*m.outputs, "ReturnValue"])
