"""Every command the management server sends to a Hyper-V-protocol agent (reference §2.4).

Field names and types follow the Java classes; the URL path of each command is its ``FQCN``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from hvcloud.wire.base import Command, JInt, JLong, StrMap, WrappedDataTO, command
from hvcloud.wire.to import (
    DiskProfile,
    DiskTO,
    HostTO,
    NicTO,
    StorageFilerTO,
    VirtualMachineTO,
    VolumeFilerPair,
    VolumeTO,
)

# --------------------------------------------------------------------------- VMs


@command
class StartCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.StartCommand"

    vm: VirtualMachineTO
    hostIp: str | None = None
    executeInSequence: bool | None = None
    enableHumanReadableSizes: bool | None = None
    secondaryStorage: str | None = None


@command
class RebootCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.RebootCommand"

    vmName: str
    executeInSequence: bool | None = None
    vm: VirtualMachineTO | None = None


@command
class StopCommand(RebootCommand):
    FQCN: ClassVar[str] = "com.cloud.agent.api.StopCommand"

    isProxy: bool | None = None
    urlPort: str | None = None
    publicConsoleProxyIpAddress: str | None = None
    checkBeforeCleanup: bool | None = None
    forceStop: bool | None = None
    volumesToDisconnect: list[Any] | None = None
    expungeVM: bool | None = None
    controlIp: str | None = None
    vlanToPersistenceMap: StrMap | None = None
    details: StrMap | None = Field(None, alias="_details")


@command
class CheckVirtualMachineCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.CheckVirtualMachineCommand"

    vmName: str


@command
class GetVmStatsCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.GetVmStatsCommand"

    vmNames: list[str] = Field(default_factory=list)
    hostGuid: str | None = None
    hostName: str | None = None


@command
class GetVncPortCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.GetVncPortCommand"

    id: JLong | None = None
    name: str


@command
class GetVmThumbnailCommand(Command):
    """hvcloud's own command (CloudStack has none): the VM's screen as a PNG scaled to fit
    ``width`` x ``height`` (aspect kept, so one side may come out smaller). Answered by
    ``GetVmThumbnailAnswer``; the stock Java server never sends it. Each side is within
    ``hosttypes.THUMBNAIL_MIN_SIDE``..``THUMBNAIL_MAX_SIDE`` (the server checks before sending)."""

    FQCN: ClassVar[str] = "org.hvcloud.agent.api.GetVmThumbnailCommand"

    vmName: str
    width: JInt = 320
    height: JInt = 240


@command
class GetVmConfigCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.GetVmConfigCommand"

    vmName: str
    nics: list[Any] | None = None


@command
class ModifyVmNicConfigCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.ModifyVmNicConfigCommand"

    vmName: str
    vlan: str | None = None
    macAddress: str | None = None
    index: JInt | None = None
    enable: bool | None = None
    switchLableName: str | None = None


@command
class PlugNicCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.PlugNicCommand"

    nic: NicTO | None = None
    instanceName: str | None = None
    vmType: str | None = None
    details: StrMap | None = None


@command
class UnPlugNicCommand(Command):
    """Remove one NIC (found by its MAC) from a VM, live when it runs."""

    FQCN: ClassVar[str] = "com.cloud.agent.api.UnPlugNicCommand"

    nic: NicTO | None = None
    instanceName: str | None = None
    vlanToPersistenceMap: dict[str, bool] | None = None


@command
class PrepareForMigrationCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.PrepareForMigrationCommand"

    vm: VirtualMachineTO | None = None
    rollback: bool | None = None


@command
class MigrateCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.MigrateCommand"

    vmName: str
    destIp: str
    hostGuid: str | None = None
    isWindows: bool | None = None
    vmTO: VirtualMachineTO | None = None
    executeInSequence: bool | None = None
    migrateStorage: StrMap | None = None
    autoConvergence: bool | None = None


@command
class MigrateWithStorageCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.MigrateWithStorageCommand"

    vm: VirtualMachineTO
    tgtHost: str | None = None
    volumeToFilerAsList: list[VolumeFilerPair] | None = None
    volumeToFiler: StrMap | None = None


# --------------------------------------------------------------------------- storage


@command
class CopyCommand(Command):
    FQCN: ClassVar[str] = "org.apache.cloudstack.storage.command.CopyCommand"

    srcTO: WrappedDataTO
    destTO: WrappedDataTO
    cacheTO: WrappedDataTO | None = None
    executeInSequence: bool | None = None
    options: dict[str, str] | None = None
    options2: dict[str, str] | None = None


@command
class CreateObjectCommand(Command):
    FQCN: ClassVar[str] = "org.apache.cloudstack.storage.command.CreateObjectCommand"

    data: WrappedDataTO


@command
class DeleteCommand(Command):
    FQCN: ClassVar[str] = "org.apache.cloudstack.storage.command.DeleteCommand"

    data: WrappedDataTO


@command
class AttachCommand(Command):
    FQCN: ClassVar[str] = "org.apache.cloudstack.storage.command.AttachCommand"

    disk: DiskTO
    vmName: str
    inSeq: bool | None = None
    forced: bool | None = None
    controllerInfo: StrMap | None = None


@command
class DettachCommand(Command):
    FQCN: ClassVar[str] = "org.apache.cloudstack.storage.command.DettachCommand"

    disk: DiskTO
    vmName: str
    managed: bool | None = Field(None, alias="_managed")
    iScsiName: str | None = Field(None, alias="_iScsiName")
    storageHost: str | None = Field(None, alias="_storageHost")
    storagePort: JInt | None = Field(None, alias="_storagePort")
    params: StrMap | None = None
    forced: bool | None = None


@command
class CreateCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.storage.CreateCommand"

    volId: JLong | None = None
    pool: StorageFilerTO
    diskCharacteristics: DiskProfile
    templateUrl: str | None = None
    executeInSequence: bool | None = None


@command
class DestroyCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.storage.DestroyCommand"

    volume: VolumeTO
    vmName: str | None = None


@command
class PrimaryStorageDownloadCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.storage.PrimaryStorageDownloadCommand"

    localPath: str | None = None
    poolUuid: str | None = None
    poolId: JLong | None = None
    primaryPool: StorageFilerTO | None = None
    secondaryStorageUrl: str | None = None
    primaryStorageUrl: str | None = None
    url: str
    format: str | None = None
    accountId: JLong | None = None
    name: str | None = None
    checksum: str | None = None


@command
class ModifyStoragePoolCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.ModifyStoragePoolCommand"

    add: bool = True
    pool: StorageFilerTO
    localPath: str | None = None
    storagePath: str | None = None
    details: StrMap | None = None


@command
class CreateStoragePoolCommand(ModifyStoragePoolCommand):
    FQCN: ClassVar[str] = "com.cloud.agent.api.CreateStoragePoolCommand"

    createDatastore: bool | None = None


@command
class DeleteStoragePoolCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.DeleteStoragePoolCommand"

    pool: StorageFilerTO | None = None
    localPath: str | None = None
    removeDatastore: bool | None = None
    details: StrMap | None = None


@command
class GetStorageStatsCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.GetStorageStatsCommand"

    id: str | None = None
    localPath: str | None = None
    pooltype: str | None = None
    secUrl: str | None = None
    store: StrMap | None = None


@command
class MigrateVolumeCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.storage.MigrateVolumeCommand"

    volumeId: JLong | None = None
    volumePath: str | None = None
    pool: StorageFilerTO | None = None
    attachedVmName: str | None = None
    volumeType: str | None = None
    srcData: WrappedDataTO | None = None
    destData: WrappedDataTO | None = None


@command
class ResizeVolumeCommand(Command):
    """Grow (or, with ``shrinkOk``, shrink) a volume in a pool. ``path`` is the volume's path in the
    pool; ``vmInstance`` names the VM it is attached to, if any. ``passphrase`` is an encrypted
    volume's key, which this agent never takes (encrypted volumes are refused)."""

    FQCN: ClassVar[str] = "com.cloud.agent.api.storage.ResizeVolumeCommand"

    path: str | None = None
    pool: StorageFilerTO | None = None
    currentSize: JLong | None = None
    newSize: JLong | None = None
    shrinkOk: bool = False
    vmInstance: str | None = None
    chainInfo: str | None = None
    newReadRateIops: JLong | None = None
    newWriteRateIops: JLong | None = None
    managed: bool = False
    iScsiName: str | None = None
    passphrase: list[int] | None = Field(None, repr=False)
    encryptFormat: str | None = None


# --------------------------------------------------------------------------- host


@command
class ReadyCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.ReadyCommand"

    details: StrMap | None = Field(None, alias="_details")
    dcId: JLong | None = None
    hostId: JLong | None = None
    hostUuid: str | None = None
    hostName: str | None = None
    msHostList: list[str] | None = None
    lbAlgorithm: str | None = None
    lbCheckInterval: JLong | None = None
    enableHumanReadableSizes: bool | None = None


@command
class SetupCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.SetupCommand"

    env: StrMap | None = None
    multipath: bool | None = None
    needSetup: bool | None = None


@command
class CheckHealthCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.CheckHealthCommand"


@command
class MaintainCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.MaintainCommand"


@command
class PingCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.PingCommand"

    hostType: str | None = None
    hostId: JLong | None = None
    outOfBand: bool | None = None


class HostVmStateReportEntry(Command):
    state: str | None = None
    host: str | None = None


@command
class PingRoutingCommand(PingCommand):
    FQCN: ClassVar[str] = "com.cloud.agent.api.PingRoutingCommand"

    hostVmStateReport: dict[str, HostVmStateReportEntry] | None = Field(None, alias="_hostVmStateReport")
    gatewayAccessible: bool | None = Field(None, alias="_gatewayAccessible")
    vnetAccessible: bool | None = Field(None, alias="_vnetAccessible")


@command
class GetHostStatsCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.GetHostStatsCommand"

    hostGuid: str | None = None
    hostName: str | None = None
    hostId: JLong | None = None


@command
class CheckOnHostCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.CheckOnHostCommand"

    host: HostTO
    reportCheckFailureIfOneStorageIsDown: bool | None = None


@command
class CheckSshCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.check.CheckSshCommand"

    ip: str | None = None
    port: JInt | None = None
    interval: JInt | None = None
    retries: JInt | None = None
    name: str | None = None


@command
class CheckNetworkCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.CheckNetworkCommand"

    networkInfoList: list[Any] | None = None


@command
class CleanupNetworkRulesCmd(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.CleanupNetworkRulesCmd"

    interval: JInt | None = None


#: the pseudo-command used for VM state sync; there is no Java class behind it (reference §3.4)
HOST_VM_STATE_REPORT = "org.apache.cloudstack.HostVmStateReportCommand"
#: the startup exchange's URL name; its body is a class-wrapped array (reference §3.3)
STARTUP = "com.cloud.agent.api.StartupCommand"
