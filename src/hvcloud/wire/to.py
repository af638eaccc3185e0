"""CloudStack transfer objects (``*TO``) as they appear in JSON (reference §2.3)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from hvcloud.wire.base import (
    DataStoreTO,
    DataTO,
    JInt,
    JLong,
    StrMap,
    WireModel,
    WrappedDataStoreTO,
    WrappedDataTO,
    transfer_object,
)

# --------------------------------------------------------------------------- data stores


@transfer_object
class PrimaryDataStoreTO(DataStoreTO):
    FQCN: ClassVar[str] = "org.apache.cloudstack.storage.to.PrimaryDataStoreTO"

    uuid: str | None = None
    name: str | None = None
    type: str | None = None
    id: JLong | None = None
    poolType: str | None = None
    host: str | None = None
    path: str | None = None
    port: JInt | None = None
    url: str | None = None
    details: StrMap | None = None
    fullCloneFlag: bool | None = None
    isManaged: bool | None = None


@transfer_object
class NfsTO(DataStoreTO):
    FQCN: ClassVar[str] = "com.cloud.agent.api.to.NfsTO"

    url: str | None = Field(None, alias="_url")
    role: str | None = Field(None, alias="_role")
    uuid: str | None = None
    nfsVersion: str | None = None


@transfer_object
class S3TO(DataStoreTO):
    FQCN: ClassVar[str] = "com.cloud.agent.api.to.S3TO"

    id: JLong | None = None
    uuid: str | None = None
    accessKey: str | None = None
    secretKey: str | None = Field(None, repr=False)
    endPoint: str | None = None
    bucketName: str | None = None
    signer: str | None = None
    httpsFlag: bool | None = None
    useTCPKeepAlive: bool | None = None
    connectionTimeout: JInt | None = None
    maxErrorRetry: JInt | None = None
    socketTimeout: JInt | None = None
    connectionTtl: JInt | None = None
    created: str | None = None
    enableRRS: bool | None = None
    maxSingleUploadSizeInBytes: JLong | None = None


@transfer_object
class ImageStoreTO(DataStoreTO):
    FQCN: ClassVar[str] = "com.cloud.agent.api.to.ImageStoreTO"

    type: str | None = None
    uri: str | None = None
    providerName: str | None = None
    role: str | None = None
    uuid: str | None = None


# --------------------------------------------------------------------------- data objects


@transfer_object
class TemplateObjectTO(DataTO):
    FQCN: ClassVar[str] = "org.apache.cloudstack.storage.to.TemplateObjectTO"

    path: str | None = None
    origUrl: str | None = None
    uuid: str | None = None
    id: JLong | None = None
    format: str | None = None
    accountId: JLong | None = None
    checksum: str | None = None
    hvm: bool | None = None
    displayText: str | None = None
    imageDataStore: WrappedDataStoreTO | None = None
    name: str | None = None
    guestOsType: str | None = None
    size: JLong | None = None
    physicalSize: JLong | None = None
    hypervisorType: str | None = None
    bootable: bool | None = None
    uniqueName: str | None = None
    directDownload: bool | None = None
    deployAsIs: bool | None = None
    deployAsIsConfiguration: str | None = None


@transfer_object
class VolumeObjectTO(DataTO):
    FQCN: ClassVar[str] = "org.apache.cloudstack.storage.to.VolumeObjectTO"

    uuid: str | None = None
    volumeType: str | None = None
    dataStore: WrappedDataStoreTO | None = None
    name: str | None = None
    size: JLong | None = None
    path: str | None = None
    volumeId: JLong | None = None
    vmName: str | None = None
    accountId: JLong | None = None
    chainInfo: str | None = None
    format: str | None = None
    provisioningType: str | None = None
    poolId: JLong | None = None
    id: JLong | None = None
    deviceId: JLong | None = None
    bytesReadRate: JLong | None = None
    bytesWriteRate: JLong | None = None
    iopsReadRate: JLong | None = None
    iopsWriteRate: JLong | None = None
    cacheMode: str | None = None
    hypervisorType: str | None = None
    directDownload: bool | None = None
    dataStoreUuid: str | None = None
    deployAsIs: bool | None = None


@transfer_object
class SnapshotObjectTO(DataTO):
    FQCN: ClassVar[str] = "org.apache.cloudstack.storage.to.SnapshotObjectTO"

    path: str | None = None
    volume: VolumeObjectTO | None = None
    parentSnapshotPath: str | None = None
    dataStore: WrappedDataStoreTO | None = None
    vmName: str | None = None
    name: str | None = None
    hypervisorType: str | None = None
    id: JLong | None = None
    quiescevm: bool | None = None
    parents: list[str] | None = None


# --------------------------------------------------------------------------- VM, disks, NICs


class DiskTO(WireModel):
    """``com.cloud.agent.api.to.DiskTO``; ``data`` is absent for an empty ISO drive."""

    data: WrappedDataTO | None = None
    diskSeq: JLong | None = None
    path: str | None = None
    type: str | None = None
    details: StrMap | None = None


class NetworkTO(WireModel):
    uuid: str | None = None
    ip: str | None = None
    netmask: str | None = None
    gateway: str | None = None
    mac: str | None = None
    dns1: str | None = None
    dns2: str | None = None
    broadcastType: str | None = None
    type: str | None = None
    broadcastUri: str | None = None
    isolationUri: str | None = None
    isSecurityGroupEnabled: bool | None = None
    name: str | None = None
    ip6address: str | None = None
    ip6gateway: str | None = None
    ip6cidr: str | None = None
    ip6Dns1: str | None = None
    ip6Dns2: str | None = None


class NicTO(NetworkTO):
    deviceId: JInt | None = None
    networkRateMbps: JInt | None = None
    networkRateMulticastMbps: JInt | None = None
    defaultNic: bool | None = None
    pxeDisable: bool | None = None
    nicUuid: str | None = None
    nicSecIps: list[str] | None = None
    details: StrMap | None = None
    dpdkDisabled: bool | None = None
    mtu: JInt | None = None


class VirtualMachineTO(WireModel):
    id: JLong | None = None
    name: str | None = None
    bootloader: str | None = None
    state: str | None = None
    type: str | None = None
    cpus: JInt | None = None
    speed: JInt | None = None
    minSpeed: JInt | None = None
    maxSpeed: JInt | None = None
    minRam: JLong | None = None
    maxRam: JLong | None = None
    hostName: str | None = None
    arch: str | None = None
    os: str | None = None
    platformEmulator: str | None = None
    bootArgs: str | None = None
    bootupScripts: str | None = None
    enableHA: bool | None = None
    limitCpuUse: bool | None = None
    enableDynamicallyScaleVm: bool | None = None
    vncPassword: str | None = Field(None, repr=False)
    vncAddr: str | None = None
    params: StrMap | None = None
    uuid: str | None = None
    disks: list[DiskTO] | None = None
    nics: list[NicTO] | None = None
    vcpuMaxLimit: JInt | None = None
    cpuQuotaPercentage: float | None = None
    guestOsDetails: StrMap | None = None
    extraConfig: StrMap | None = None


# --------------------------------------------------------------------------- legacy storage TOs


class StorageFilerTO(WireModel):
    id: JLong | None = None
    uuid: str | None = None
    host: str | None = None
    path: str | None = None
    userInfo: str | None = Field(None, repr=False)
    port: JInt | None = None
    type: str | None = None


class VolumeTO(WireModel):
    """The legacy flat volume shape of DestroyCommand and CreateAnswer."""

    id: JLong | None = None
    name: str | None = None
    mountPoint: str | None = None
    path: str | None = None
    size: JLong | None = None
    type: str | None = None
    storagePoolType: str | None = None
    storagePoolUuid: str | None = None
    deviceId: JLong | None = None
    chainInfo: str | None = None
    format: str | None = None


class DiskProfile(WireModel):
    size: JLong | None = None
    tags: list[str] | None = None
    type: str | None = None
    name: str | None = None
    useLocalStorage: bool | None = None
    recreatable: bool | None = None
    diskOfferingId: JLong | None = None
    volumeId: JLong | None = None
    hyperType: str | None = None
    templateId: JLong | None = None


class HostTO(WireModel):
    guid: str | None = None
    privateNetwork: NetworkTO | None = None
    publicNetwork: NetworkTO | None = None
    storageNetwork1: NetworkTO | None = None
    storageNetwork2: NetworkTO | None = None
    parent: str | None = None


class StoragePoolInfo(WireModel):
    uuid: str | None = None
    host: str | None = None
    localPath: str | None = None
    hostPath: str | None = None
    poolType: str | None = None
    capacityBytes: JLong | None = None
    availableBytes: JLong | None = None
    details: StrMap | None = None


class VolumeFilerPair(WireModel):
    """``com.cloud.utils.Pair<VolumeTO, StorageFilerTO>`` as Gson writes it."""

    t: dict[str, Any] | None = None
    u: StorageFilerTO | None = None
