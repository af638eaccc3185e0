"""CloudStack transfer objects → hypervisor-neutral specs and storage references.

Handlers call these so that drivers and storage backends never see wire objects. Every function
raises :class:`TranslationError` (an :class:`~hvcloud.host_errors.InvalidRequest`, so it becomes an
in-band ``result:false``) for input that cannot be acted on.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import cast
from urllib.parse import urlsplit, urlunsplit

from hvcloud.host_errors import InvalidRequest
from hvcloud.hypervisor.driver import DiskSpec, NicSpec, VmSpec
from hvcloud.storage.backend import (
    ImageFormat,
    ImageInPool,
    ImageOnStore,
    PoolRef,
    PoolType,
    S3Location,
    StorageBackend,
    StoreRef,
)
from hvcloud.wire.base import DataStoreTO, DataTO
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
_FORMATS: dict[str, ImageFormat] = {"qcow2": "qcow2", "raw": "raw", "vhd": "vhd", "vhdx": "vhdx", "iso": "iso"}
_POOL_TYPES: dict[str, PoolType] = {"filesystem": "Filesystem", "networkfilesystem": "NetworkFilesystem",
                                    "nfs": "NetworkFilesystem", "smb": "SMB", "cifs": "SMB"}
_VLAN = re.compile(r"^(?:vlan|storage)://(\d{1,4})$", re.IGNORECASE)
_VXLAN = re.compile(r"^vxlan://(\d{1,8})$", re.IGNORECASE)
MAX_VNI = 16777215
MAX_SECONDARY_IPS = 63
_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-]?)[0-9a-fA-F]{2}(?:\1[0-9a-fA-F]{2}){4}$")


class TranslationError(InvalidRequest):
    """A command names something the agent cannot translate into a driver or storage request."""


def image_format(fmt: str | None, default: ImageFormat | None = None) -> ImageFormat:
    if fmt is None:
        if default is None:
            raise TranslationError("the disk format is missing")
        return default
    try:
        return _FORMATS[fmt.lower()]
    except KeyError:
        raise TranslationError(f"unsupported disk format {fmt}") from None


def pool_type(name: str | None) -> PoolType:
    try:
        return _POOL_TYPES[(name or "").lower()]
    except KeyError:
        raise TranslationError(f"unsupported storage pool type {name}") from None


def pool_from_primary(store: PrimaryDataStoreTO) -> PoolRef:
    if not store.uuid:
        raise TranslationError("the primary storage pool has no uuid")
    if not store.path:
        raise TranslationError(f"primary storage pool {store.uuid} has no path")
    return PoolRef(uuid=store.uuid, pool_type=pool_type(store.poolType or store.type),
                   path=store.path, host=store.host or "", port=store.port or 0)


def pool_from_filer(filer: StorageFilerTO) -> PoolRef:
    if not filer.uuid:
        raise TranslationError("the storage pool has no uuid")
    if not filer.path:
        raise TranslationError(f"storage pool {filer.uuid} has no path")
    return PoolRef(uuid=filer.uuid, pool_type=pool_type(filer.type), path=filer.path,
                   host=filer.host or "", port=max(filer.port or 0, 0))


def strip_credentials(url: str) -> str:
    """CloudStack's CIFS URLs may carry ``?user=…&password=…``; they never go further than here."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def store_ref(store: DataStoreTO) -> StoreRef:
    if isinstance(store, NfsTO):
        if not store.url:
            raise TranslationError("the image store has no URL")
        scheme = urlsplit(store.url).scheme.lower()
        kinds = {"nfs": "nfs", "cifs": "cifs", "smb": "cifs", "file": "local", "http": "http", "https": "http"}
        if scheme not in kinds:
            raise TranslationError(f"unsupported image store URL scheme {scheme or '(none)'}")
        kind = kinds[scheme]
        return StoreRef(kind=kind, url=strip_credentials(store.url))  # type: ignore[arg-type]
    if isinstance(store, S3TO):
        if not store.bucketName or not store.endPoint:
            raise TranslationError("the S3 image store needs endPoint and bucketName")
        https = True if store.httpsFlag is None else store.httpsFlag
        return StoreRef(kind="s3", url=f"s3://{store.bucketName}",
                        s3=S3Location(endpoint=store.endPoint, bucket=store.bucketName,
                                      access_key=store.accessKey or "", secret_key=store.secretKey or "",
                                      https=https))
    raise TranslationError(f"{type(store).FQCN or type(store).__name__} is not an image store")


def data_store_of(data: DataTO) -> DataStoreTO | None:
    if isinstance(data, TemplateObjectTO):
        return data.imageDataStore
    if isinstance(data, VolumeObjectTO):
        return data.dataStore
    return cast(DataStoreTO | None, getattr(data, "dataStore", None))


def template_on_store(t: TemplateObjectTO) -> ImageOnStore:
    if t.imageDataStore is None:
        raise TranslationError("the template has no image store")
    if not t.path:
        raise TranslationError("the template has no path on its image store")
    return ImageOnStore(store=store_ref(t.imageDataStore), path=t.path,
                        format=image_format(t.format), checksum=t.checksum, size=t.size)


def template_in_pool(t: TemplateObjectTO) -> ImageInPool:
    if not isinstance(t.imageDataStore, PrimaryDataStoreTO):
        raise TranslationError("the template is not on primary storage")
    name = t.path or t.uuid
    if not name:
        raise TranslationError("the template has neither path nor uuid")
    return ImageInPool(pool=pool_from_primary(t.imageDataStore), path=name, format=image_format(t.format, "qcow2"))


def volume_in_pool(v: VolumeObjectTO, default_format: ImageFormat = "qcow2") -> ImageInPool:
    if not isinstance(v.dataStore, PrimaryDataStoreTO):
        raise TranslationError("the volume is not on primary storage")
    name = v.path or v.uuid
    if not name:
        raise TranslationError("the volume has neither path nor uuid")
    return ImageInPool(pool=pool_from_primary(v.dataStore), path=name,
                       format=image_format(v.format, default_format))


def volume_at(filer: StorageFilerTO | None, path: str | None) -> ImageInPool:
    """A volume named by its pool and its path in the pool, as ResizeVolumeCommand names it. The
    format is the path's extension (``.qcow2``, ``.raw``, ``.vhd``, ``.vhdx``), qcow2 without one."""
    if filer is None:
        raise TranslationError("the volume's storage pool is missing")
    if not path:
        raise TranslationError("the volume's path is missing")
    base = path.replace("\\", "/").rsplit("/", 1)[-1]
    ext = base.rsplit(".", 1)[-1].lower() if "." in base else ""
    return ImageInPool(pool=pool_from_filer(filer), path=path, format=_FORMATS.get(ext, "qcow2"))


def volume_on_store(v: VolumeObjectTO) -> ImageOnStore:
    if v.dataStore is None or not v.path:
        raise TranslationError("the volume has no image store path")
    return ImageOnStore(store=store_ref(v.dataStore), path=v.path, format=image_format(v.format, "qcow2"),
                        size=v.size)


def vlan_of(uri: str | None) -> int | None:
    """``vlan://261`` → 261; ``vlan://untagged``, ``None`` → None. Other schemes are refused."""
    if uri is None or uri == "" or uri.lower() in ("vlan://untagged", "untagged"):
        return None
    m = _VLAN.match(uri.strip())
    if not m:
        raise TranslationError(f"unsupported network isolation {uri}")
    vlan = int(m.group(1))
    if not 1 <= vlan <= 4094:
        raise TranslationError(f"VLAN {vlan} out of range 1-4094")
    return vlan


def segment_of(uri: str | None) -> tuple[int | None, int | None]:
    """A broadcast or isolation URI as ``(vlan, vxlan)``: ``vlan://261`` → (261, None),
    ``vxlan://5001`` → (None, 5001), ``vlan://untagged`` or nothing → (None, None)."""
    if uri is not None:
        m = _VXLAN.match(uri.strip())
        if m:
            vni = int(m.group(1))
            if not 1 <= vni <= MAX_VNI:
                raise TranslationError(f"VXLAN VNI {vni} out of range 1-{MAX_VNI}")
            return None, vni
    return vlan_of(uri), None


def normalise_mac(mac: str | None) -> str:
    if not mac or not _MAC.match(mac):
        raise TranslationError(f"invalid MAC address {mac!r}")
    digits = mac.replace(":", "").replace("-", "").lower()
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def nic_spec(nic: NicTO, index: int) -> NicSpec:
    disabled = nic.ip == "0.0.0.0" and nic.netmask == "255.255.255.255"
    vlan, vxlan = segment_of(nic.broadcastUri or nic.isolationUri)
    device_id = nic.deviceId if nic.deviceId is not None else index
    if not 0 <= device_id < 64:
        raise TranslationError(f"NIC device id {device_id} out of range 0-63")
    return NicSpec(
        device_id=device_id,
        mac=normalise_mac(nic.mac),
        network=nic.name or None,
        vlan=vlan,
        rate_mbps=nic.networkRateMbps if nic.networkRateMbps and nic.networkRateMbps > 0 else None,
        enabled=not disabled,
        vxlan=vxlan,
        security_groups=bool(nic.isSecurityGroupEnabled),
        ips=nic_ips(nic.ip, nic.nicSecIps) if not disabled else (),
    )


def nic_ips(ip: str | None, secondary: list[str] | None, *, fields: tuple[str, str] = ("ip", "nicSecIps")
            ) -> tuple[str, ...]:
    """A NIC's IPv4 addresses, primary first: the ones a security-group port lets it use.
    An address that does not parse is refused (naming the field); an absent one is left out."""
    out: list[str] = []
    if secondary is not None and len(secondary) > MAX_SECONDARY_IPS:
        raise TranslationError(f"{fields[1]}: more than {MAX_SECONDARY_IPS} addresses")
    for field, value in [(fields[0], ip), *((f"{fields[1]}[{i}]", v) for i, v in enumerate(secondary or []))]:
        if value is None or value == "":
            continue
        try:
            addr = ipaddress.IPv4Address(value)
        except (ipaddress.AddressValueError, ValueError, TypeError):
            raise TranslationError(f"{field}: {str(value)[:60]!r} is not an IPv4 address") from None
        if addr.is_unspecified:
            continue
        if str(addr) not in out:
            out.append(str(addr))
    return tuple(out)


def disk_spec(disk: DiskTO, storage: StorageBackend) -> DiskSpec:
    kind = (disk.type or "").upper()
    slot = disk.diskSeq if disk.diskSeq is not None else 0
    if not 0 <= slot < 64:
        raise TranslationError(f"disk slot {slot} out of range")
    if kind == "ISO":
        if disk.data is None:
            return DiskSpec(slot=slot, device="cdrom", path=None, format="iso", read_only=True)
        if not isinstance(disk.data, TemplateObjectTO):
            raise TranslationError("an ISO must be a template object")
        if isinstance(disk.data.imageDataStore, PrimaryDataStoreTO):
            img = template_in_pool(disk.data)
            path = storage.local_path(img)
        else:
            path = storage.iso_path(template_on_store(disk.data))
        return DiskSpec(slot=slot, device="cdrom", path=path, format="iso", read_only=True)
    if kind in ("ROOT", "DATADISK", "SWAP"):
        if not isinstance(disk.data, VolumeObjectTO):
            raise TranslationError(f"{kind} disk at slot {slot} has no volume")
        vol = volume_in_pool(disk.data)
        return DiskSpec(slot=slot, device="disk", path=storage.local_path(vol), format=vol.format,
                        serial=(disk.data.uuid or "")[:20] or None, boot=kind == "ROOT")
    raise TranslationError(f"unsupported disk type {disk.type}")


def canonical_uuid(value: str | None) -> str | None:
    """CloudStack's VM uuid in canonical form, or None when it is not a UUID (hypervisors reject
    malformed ones; the VM is still found by name)."""
    if not value:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def vm_name(name: str | None, what: str = "VM") -> str:
    """A VM's (or router's) instance name as CloudStack forms them (``i-2-17-VM``, ``r-12-VM``);
    refuses anything a file or device name could be abused with."""
    if not name:
        raise TranslationError(f"the {what} has no name")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}", name):
        raise TranslationError(f"invalid {what} name {name[:100]!r}")
    return name


def vm_spec(vm: VirtualMachineTO, storage: StorageBackend) -> VmSpec:
    name = vm_name(vm.name)
    cpus = vm.cpus or 1
    if not 1 <= cpus <= 1024:
        raise TranslationError(f"invalid vCPU count {cpus}")
    ram = vm.maxRam or vm.minRam
    if not ram or ram < MiB:
        raise TranslationError("the VM's memory (maxRam) is missing or below 1 MiB")
    disks = tuple(disk_spec(d, storage) for d in vm.disks or [])
    nics = tuple(nic_spec(n, i) for i, n in enumerate(vm.nics or []))
    if len({n.mac for n in nics}) != len(nics):
        raise TranslationError("two NICs share a MAC address")
    meta = {"cloudstack.type": vm.type or "User"}
    if vm.id is not None:
        meta["cloudstack.id"] = str(vm.id)
    return VmSpec(name=name, vcpus=cpus, memory_mib=ram // MiB, uuid=canonical_uuid(vm.uuid),
                  cpu_mhz=vm.maxSpeed or vm.speed, disks=disks, nics=nics, boot_args=vm.bootArgs or "",
                  vnc_password=vm.vncPassword, os_type=vm.os, metadata=meta)
