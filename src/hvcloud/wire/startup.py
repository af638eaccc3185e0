"""The startup exchange: the one request whose body is a class-wrapped array (reference §3.3)."""

from __future__ import annotations

from typing import Any, ClassVar

from hvcloud.wire.base import Command, JInt, JLong, StrMap, command
from hvcloud.wire.to import StoragePoolInfo


@command
class StartupRoutingCommand(Command):
    """Sent by the management server with the host's identity; the agent fills in its hardware
    and echoes every other field unchanged (the server checks that ``dataCenter``, ``pod``,
    ``cluster``, ``guid``, ``name`` and ``privateIpAddress`` come back as sent)."""

    FQCN: ClassVar[str] = "com.cloud.agent.api.StartupRoutingCommand"

    type: str | None = None
    dataCenter: str | None = None
    pod: str | None = None
    cluster: str | None = None
    guid: str | None = None
    name: str | None = None
    version: str | None = None
    pool: str | None = None
    resourceName: str | None = None
    iqn: str | None = None
    privateIpAddress: str | None = None
    privateNetmask: str | None = None
    privateMacAddress: str | None = None
    storageIpAddress: str | None = None
    storageNetmask: str | None = None
    storageMacAddress: str | None = None
    publicIpAddress: str | None = None
    gatewayIpAddress: str | None = None
    cpus: JInt | None = None
    cpuSockets: JInt | None = None
    speed: JLong | None = None
    memory: JLong | None = None
    dom0MinMemory: JLong | None = None
    poolSync: bool | None = None
    supportsClonedVolumes: bool | None = None
    hypervisorType: str | None = None
    hypervisorVersion: str | None = None
    caps: str | None = None
    hostDetails: StrMap | None = None
    hostTags: list[str] | None = None
    groupDetails: StrMap | None = None
    vms: dict[str, Any] | None = None


@command
class StartupStorageCommand(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.StartupStorageCommand"

    poolInfo: StoragePoolInfo | None = None
    guid: str | None = None
    dataCenter: str | None = None
    pod: str | None = None
    resourceType: str | None = None
    totalSize: JLong | None = None
    templateInfo: StrMap | None = None
