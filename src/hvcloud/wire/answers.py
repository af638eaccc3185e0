"""Every answer class the agent sends back (reference §3.2). Class names must exist on the Java
side exactly, since the management server loads them with ``Class.forName``."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from hvcloud.wire.base import Answer, JInt, JLong, WireModel, WrappedDataTO, answer
from hvcloud.wire.to import DiskTO, StoragePoolInfo, VirtualMachineTO, VolumeTO

answer(Answer)


@answer
class UnsupportedAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.UnsupportedAnswer"


@answer
class StartAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.StartAnswer"

    vm: VirtualMachineTO | None = None


@answer
class StopAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.StopAnswer"

    vm: VirtualMachineTO | None = None


@answer
class RebootAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.RebootAnswer"


@answer
class CheckVirtualMachineAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.CheckVirtualMachineAnswer"

    state: str | None = None
    vncPort: JInt | None = None


class VmStatsEntry(WireModel):
    cpuUtilization: float = 0.0
    networkReadKBs: float = 0.0
    networkWriteKBs: float = 0.0
    diskReadKBs: float | None = None
    diskWriteKBs: float | None = None
    diskReadIOs: float | None = None
    diskWriteIOs: float | None = None
    memoryKBs: float | None = None
    numCPUs: JInt = 0
    entityType: str = "vm"


@answer
class GetVmStatsAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.GetVmStatsAnswer"

    vmStatsMap: dict[str, VmStatsEntry] = Field(default_factory=dict)


class HostStatsEntry(WireModel):
    hostId: JLong | None = None
    entityType: str = "host"
    cpuUtilization: float = 0.0
    networkReadKBs: float = 0.0
    networkWriteKBs: float = 0.0
    totalMemoryKBs: float = 0.0
    freeMemoryKBs: float = 0.0


@answer
class GetHostStatsAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.GetHostStatsAnswer"

    hostStats: HostStatsEntry | None = None


@answer
class GetStorageStatsAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.GetStorageStatsAnswer"

    capacity: JLong = 0
    used: JLong = 0


@answer
class GetVncPortAnswer(Answer):
    """The one answer without ``contextMap`` (reference §3.2)."""

    FQCN: ClassVar[str] = "com.cloud.agent.api.GetVncPortAnswer"

    contextMap: dict[str, str] | None = None
    address: str | None = None
    port: JInt = -1


@answer
class GetVmThumbnailAnswer(Answer):
    """``image``: the PNG, base64; ``width``/``height``: its real size."""

    FQCN: ClassVar[str] = "org.hvcloud.agent.api.GetVmThumbnailAnswer"

    image: str | None = None
    width: JInt = 0
    height: JInt = 0


class NicDetails(WireModel):
    macAddress: str
    vlanid: str
    state: bool


@answer
class GetVmConfigAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.GetVmConfigAnswer"

    vmName: str | None = None
    nics: list[NicDetails] = Field(default_factory=list)


@answer
class ModifyVmNicConfigAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.ModifyVmNicConfigAnswer"

    vmName: str | None = None


@answer
class PlugNicAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.PlugNicAnswer"


@answer
class UnPlugNicAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.UnPlugNicAnswer"


@answer
class SetupAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.SetupAnswer"

    reconnect: bool = Field(False, alias="_reconnect")


@answer
class ReadyAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.ReadyAnswer"


@answer
class CheckHealthAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.CheckHealthAnswer"


@answer
class CheckOnHostAnswer(Answer):
    """``result`` true means the queried host is **dead** (reference §4)."""

    FQCN: ClassVar[str] = "com.cloud.agent.api.CheckOnHostAnswer"


@answer
class CheckSshAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.check.CheckSshAnswer"


@answer
class CheckNetworkAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.CheckNetworkAnswer"


@answer
class MaintainAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.MaintainAnswer"

    willMigrate: bool = True
    reconnect: bool = Field(False, alias="_reconnect")


@answer
class ModifyStoragePoolAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.ModifyStoragePoolAnswer"

    poolInfo: StoragePoolInfo | None = None
    templateInfo: dict[str, Any] = Field(default_factory=dict)
    localPath: str | None = None
    datastoreClusterChildren: list[Any] = Field(default_factory=list)


@answer
class PrepareForMigrationAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.PrepareForMigrationAnswer"


@answer
class MigrateAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.MigrateAnswer"


@answer
class MigrateVolumeAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.storage.MigrateVolumeAnswer"

    volumePath: str | None = None


@answer
class MigrateWithStorageAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.MigrateWithStorageAnswer"

    volumeTos: list[dict[str, Any]] | None = None


@answer
class CopyCmdAnswer(Answer):
    FQCN: ClassVar[str] = "org.apache.cloudstack.storage.command.CopyCmdAnswer"

    newData: WrappedDataTO | None = None


@answer
class CreateObjectAnswer(Answer):
    FQCN: ClassVar[str] = "org.apache.cloudstack.storage.command.CreateObjectAnswer"

    data: WrappedDataTO | None = None


@answer
class AttachAnswer(Answer):
    FQCN: ClassVar[str] = "org.apache.cloudstack.storage.command.AttachAnswer"

    disk: DiskTO | None = None


@answer
class DettachAnswer(Answer):
    FQCN: ClassVar[str] = "org.apache.cloudstack.storage.command.DettachAnswer"

    disk: DiskTO | None = None


@answer
class CreateAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.storage.CreateAnswer"

    volume: VolumeTO | None = None
    requestTemplateReload: bool | None = None


@answer
class ResizeVolumeAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.storage.ResizeVolumeAnswer"

    newSize: JLong = 0


@answer
class PrimaryStorageDownloadAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.storage.PrimaryStorageDownloadAnswer"

    installPath: str | None = None
    templateSize: JLong = 0

