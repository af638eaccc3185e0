"""Rows → the transfer objects the agent reads (``hvcloud.agent.translate`` is the other side).

Pools are named on the wire by their uuid (a host's local pool by the host guid, kept in
``external_uuid``); templates on an image store by their path relative to the store; volumes by
their uuid (the file name the agent gives them) and, once created, the path the agent answered.
A template carries the checksum it was registered with, so the agent verifies the copy it fetches
from the image store (a store file changed since registration fails the deploy, not the guest).
"""

from __future__ import annotations

import hashlib

from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import ImageStore, Nic, StoragePool, TemplatePoolRef, VMInstance, VMTemplate, Volume
from hvcloud.server.orchestration.agents import wire_id
from hvcloud.server.orchestration.image_store_io import store_details
from hvcloud.wire.base import DataStoreTO
from hvcloud.wire.to import (
    S3TO,
    DiskTO,
    NfsTO,
    NicTO,
    PrimaryDataStoreTO,
    StorageFilerTO,
    TemplateObjectTO,
    VirtualMachineTO,
    VolumeObjectTO,
)

MiB = 1024 * 1024
ISO_SLOT = 3
#: the agent's pool types; a shared mount point is a directory every host sees at the same path
_POOL_TYPES = {"SharedMountPoint": "Filesystem"}


def primary_to(pool: StoragePool) -> PrimaryDataStoreTO:
    return PrimaryDataStoreTO(uuid=pool.external_uuid or pool.id, id=wire_id(pool.id), name=pool.name,
                              poolType=_POOL_TYPES.get(pool.pool_type, pool.pool_type), host=pool.host_address,
                              path=pool.path, port=0)


def filer_to(pool: StoragePool) -> StorageFilerTO:
    """The pool as the legacy storage commands (ResizeVolumeCommand) name it."""
    return StorageFilerTO(id=wire_id(pool.id), uuid=pool.external_uuid or pool.id, host=pool.host_address,
                          path=pool.path, port=0, type=_POOL_TYPES.get(pool.pool_type, pool.pool_type))


def image_store_to(store: ImageStore, box: SecretBox) -> DataStoreTO:
    if store.provider == "S3":
        d = store_details(store, box)
        return S3TO(uuid=store.id, id=wire_id(store.id), accessKey=d.get("accesskey"), secretKey=d.get("secretkey"),
                    endPoint=d.get("endpoint"), bucketName=d.get("bucket"),
                    httpsFlag=d.get("usehttps", "false").lower() == "true")
    return NfsTO(_url=store.url, _role="Image", uuid=store.id)


def template_on_store_to(template: VMTemplate, store: ImageStore, install_path: str,
                         box: SecretBox) -> TemplateObjectTO:
    return TemplateObjectTO(path=install_path, uuid=template.id, id=wire_id(template.id), format=template.format,
                            imageDataStore=image_store_to(store, box), name=template.name,
                            hypervisorType=template.hypervisor, bootable=template.bootable,
                            checksum=template.checksum or None)


def template_in_pool_to(template: VMTemplate, ref: TemplatePoolRef | None, pool: StoragePool) -> TemplateObjectTO:
    return TemplateObjectTO(path=ref.install_path if ref else None, uuid=template.id, id=wire_id(template.id),
                            format=template.format, imageDataStore=primary_to(pool), name=template.name)


def volume_to(volume: Volume, pool: StoragePool, vm_name: str | None, *, path: str | None = None,
              size: int | None = None) -> VolumeObjectTO:
    """``path`` and ``size``: what the volume is about to record (its creation's answer)."""
    return VolumeObjectTO(uuid=volume.id, id=wire_id(volume.id), volumeId=wire_id(volume.id),
                          volumeType=volume.volume_type, dataStore=primary_to(pool), name=volume.name,
                          size=size or volume.size, path=path or volume.path, format=volume.format, vmName=vm_name,
                          deviceId=volume.device_id, poolId=wire_id(pool.id))


def disk_to(volume: Volume, pool: StoragePool, vm_name: str, *, path: str | None = None,
            size: int | None = None) -> DiskTO:
    return DiskTO(data=volume_to(volume, pool, vm_name, path=path, size=size), diskSeq=volume.device_id or 0,
                  type=volume.volume_type)


def iso_disk_to(iso: TemplateObjectTO | None) -> DiskTO:
    return DiskTO(data=iso, diskSeq=ISO_SLOT, type="ISO")


def mac_for(vm_number: int, attempt: int = 0) -> str:
    """A locally administered unicast MAC derived from the VM number (unique per cloud; the database
    enforces it)."""
    if attempt == 0:
        n = vm_number & 0xFFFFFFFF
        return "02:00:" + ":".join(f"{(n >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))
    digest = hashlib.sha256(f"{vm_number}/{attempt}".encode()).digest()
    return "02:01:" + ":".join(f"{b:02x}" for b in digest[:4])


def nic_to(nic: Nic, label: str, broadcast_uri: str | None, broadcast_type: str, dns1: str | None,
           dns2: str | None) -> NicTO:
    """A NIC row on the wire; ``label`` is the bridge or switch it joins on the host (the traffic
    label), ``broadcast_uri`` its segment (``vlan://N``, ``vxlan://N``, ``vlan://untagged``)."""
    return NicTO(deviceId=nic.device_id, mac=nic.mac_address, ip=nic.ip4_address, netmask=nic.netmask,
                 gateway=nic.gateway, name=label, broadcastUri=broadcast_uri,
                 isolationUri=nic.isolation_uri or broadcast_uri, broadcastType=broadcast_type, type="Guest",
                 defaultNic=nic.is_default, dns1=dns1, dns2=dns2, nicUuid=nic.id, uuid=nic.id)


def vm_to(vm: VMInstance, disks: list[DiskTO], vnc_password: str | None, nics: list[NicTO]) -> VirtualMachineTO:
    """``nics``: the VM's live NICs in device order (``networks.nics.nic_tos``)."""
    details = {"hvcloud.userdata": vm.user_data} if vm.user_data else None
    return VirtualMachineTO(id=vm.vm_number, name=vm.instance_name, uuid=vm.id, type="User", cpus=vm.cpu_number,
                            speed=vm.cpu_speed, minSpeed=vm.cpu_speed, maxSpeed=vm.cpu_speed,
                            minRam=vm.memory * MiB, maxRam=vm.memory * MiB, hostName=vm.name,
                            os=vm.template.os_type.description if vm.template and vm.template.os_type else None,
                            bootloader="HVM", enableHA=vm.ha_enabled, limitCpuUse=False, vncPassword=vnc_password,
                            disks=disks, nics=nics, params=details)
