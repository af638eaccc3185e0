"""Storage commands: copies between image stores and pools, volumes, pools and attach/detach.

Handlers only translate: every file operation is the host's StorageBackend's job.
"""

from __future__ import annotations

import posixpath
from typing import Any

from hvcloud import logs
from hvcloud.agent import translate
from hvcloud.agent.context import HostContext
from hvcloud.agent.dispatch import handles
from hvcloud.hypervisor.driver import DeviceNotFound, DiskSpec
from hvcloud.storage.backend import ImageInPool, ImageOnStore, PoolRef, Progress, StoreRef, VolumeResult
from hvcloud.wire import answers as A
from hvcloud.wire import commands as C
from hvcloud.wire.base import Answer, DataTO
from hvcloud.wire.to import NfsTO, PrimaryDataStoreTO, StoragePoolInfo, TemplateObjectTO, VolumeObjectTO, VolumeTO

log = logs.get("hvcloud.agent.storage")
TranslationError = translate.TranslationError


def _progress(what: str, name: str) -> Progress:
    """Log a transfer's progress every 10%."""
    last = [-1]

    def report(done: int, total: int | None) -> None:
        if not total:
            return
        pct = int(done * 100 / total) // 10 * 10
        if pct > last[0]:
            last[0] = pct
            log.info("transfer progress", what=what, name=name, percent=pct, bytes=done, total=total)

    return report


def _updated(obj: DataTO, res: VolumeResult, **extra: Any) -> DataTO:
    fields: dict[str, Any] = {"path": res.path, "size": res.virtual_size, "format": res.format.upper()}
    if isinstance(obj, TemplateObjectTO):
        fields["physicalSize"] = res.physical_size
    fields.update(extra)
    return obj.model_copy(update=fields)


def _primary(obj: DataTO) -> PrimaryDataStoreTO | None:
    store = translate.data_store_of(obj)
    return store if isinstance(store, PrimaryDataStoreTO) else None


def _volume_name(v: VolumeObjectTO) -> str:
    name = v.uuid or v.name
    if not name:
        raise TranslationError("the destination volume has neither uuid nor name")
    return name


# --------------------------------------------------------------------------- copy


@handles(C.CopyCommand, A.CopyCmdAnswer)
def copy(ctx: HostContext, cmd: C.CopyCommand) -> Answer:
    src, dst = cmd.srcTO, cmd.destTO
    src_pool, dst_pool = _primary(src), _primary(dst)
    st = ctx.storage
    if isinstance(src, TemplateObjectTO) and src_pool is None and dst_pool is not None:
        image = translate.template_on_store(src)
        pool = translate.pool_from_primary(dst_pool)
        name = (dst.uuid if isinstance(dst, (TemplateObjectTO, VolumeObjectTO)) else None) or src.uuid or src.name
        if not name:
            raise TranslationError("the template has no uuid")
        if isinstance(dst, TemplateObjectTO):
            res = st.template_to_pool(image, pool, name, _progress("template", name))
            return A.CopyCmdAnswer(newData=_updated(dst, res))
        if isinstance(dst, VolumeObjectTO):
            cached = st.template_to_pool(image, pool, src.uuid or name, _progress("template", name))
            tmpl = ImageInPool(pool, cached.path, cached.format)
            res = st.volume_from_template(tmpl, pool, _volume_name(dst), dst.size, bool(dst_pool.fullCloneFlag))
            return A.CopyCmdAnswer(newData=_updated(dst, res))
    if isinstance(src, TemplateObjectTO) and src_pool is not None and isinstance(dst, VolumeObjectTO) \
            and dst_pool is not None:
        full = bool(dst_pool.fullCloneFlag) or (cmd.options or {}).get("fullClone", "").lower() == "true"
        res = st.volume_from_template(translate.template_in_pool(src), translate.pool_from_primary(dst_pool),
                                      _volume_name(dst), dst.size, full)
        return A.CopyCmdAnswer(newData=_updated(dst, res))
    if isinstance(src, VolumeObjectTO) and src_pool is not None and dst_pool is None:
        store_to = translate.data_store_of(dst)
        if store_to is None:
            raise TranslationError("the destination has no image store")
        store = translate.store_ref(store_to)
        if isinstance(dst, TemplateObjectTO):
            dest_dir = dst.path or f"template/tmpl/{dst.accountId or 0}/{dst.id or 0}"
            name = dst.uuid or dst.name or "template"
        elif isinstance(dst, VolumeObjectTO):
            dest_dir = dst.path or f"volumes/{dst.volumeId or dst.id or 0}"
            name = dst.uuid or dst.name or "volume"
        else:
            raise TranslationError(f"cannot copy a volume to {type(dst).__name__}")
        res = st.volume_to_store(translate.volume_in_pool(src), store, dest_dir, name, _progress("volume", name))
        return A.CopyCmdAnswer(newData=_updated(dst, res))
    if isinstance(src, VolumeObjectTO) and src_pool is None and isinstance(dst, VolumeObjectTO) \
            and dst_pool is not None:
        res = st.store_to_volume(translate.volume_on_store(src), translate.pool_from_primary(dst_pool),
                                 _volume_name(dst), _progress("volume", _volume_name(dst)))
        return A.CopyCmdAnswer(newData=_updated(dst, res))
    raise TranslationError(f"copying {type(src).__name__} ({'primary' if src_pool else 'image store'}) to "
                           f"{type(dst).__name__} ({'primary' if dst_pool else 'image store'}) is not supported")


# --------------------------------------------------------------------------- volumes


@handles(C.CreateObjectCommand, A.CreateObjectAnswer)
def create_object(ctx: HostContext, cmd: C.CreateObjectCommand) -> Answer:
    data = cmd.data
    if not isinstance(data, VolumeObjectTO):
        raise TranslationError(f"CreateObjectCommand can create volumes only, not {type(data).__name__}")
    pool_to = _primary(data)
    if pool_to is None:
        raise TranslationError("a new volume must be on primary storage")
    if not data.size or data.size <= 0:
        raise TranslationError("a new volume needs a positive size")
    fmt = translate.image_format(data.format, "qcow2")
    res = ctx.storage.create_volume(translate.pool_from_primary(pool_to), _volume_name(data), data.size, fmt)
    return A.CreateObjectAnswer(data=_updated(data, res))


@handles(C.DeleteCommand, Answer)
def delete(ctx: HostContext, cmd: C.DeleteCommand) -> Answer:
    data = cmd.data
    if isinstance(data, VolumeObjectTO) and _primary(data) is not None:
        ctx.storage.delete_volume(translate.volume_in_pool(data))
        return Answer(details=f"deleted volume {data.path or data.uuid}")
    if isinstance(data, TemplateObjectTO) and _primary(data) is not None:
        ctx.storage.delete_volume(translate.template_in_pool(data))
        return Answer(details=f"deleted template copy {data.path or data.uuid}")
    raise TranslationError(f"DeleteCommand handles volumes and templates on primary storage, not "
                           f"{type(data).__name__} on an image store")


def _legacy_pool(volume: VolumeTO) -> tuple[PoolRef, str]:
    if not volume.path:
        raise TranslationError("the volume has no path")
    mount = volume.mountPoint or posixpath.dirname(volume.path.replace("\\", "/"))
    pool = PoolRef(uuid=volume.storagePoolUuid or "legacy", pool_type=translate.pool_type(
        volume.storagePoolType or "Filesystem"), path=mount)
    path = volume.path.replace("\\", "/")
    root = mount.replace("\\", "/").rstrip("/") + "/"
    rel = path[len(root):] if path.startswith(root) else path
    return pool, rel


@handles(C.DestroyCommand, Answer)
def destroy(ctx: HostContext, cmd: C.DestroyCommand) -> Answer:
    pool, rel = _legacy_pool(cmd.volume)
    image = ImageInPool(pool, rel, translate.image_format(cmd.volume.format, "qcow2"))
    if cmd.vmName:
        try:
            ctx.driver.detach_disk(cmd.vmName, ctx.storage.local_path(image))
        except Exception as exc:  # the VM may be gone or never had the disk; the file goes anyway
            log.info("detach before destroy skipped", vm=cmd.vmName, reason=str(exc))
    ctx.storage.delete_volume(image)
    return Answer(details=f"destroyed {rel}")


@handles(C.CreateCommand, A.CreateAnswer)
def create_legacy(ctx: HostContext, cmd: C.CreateCommand) -> Answer:
    pool = translate.pool_from_filer(cmd.pool)
    dc = cmd.diskCharacteristics
    name = f"{cmd.volId or dc.volumeId or 'volume'}-{dc.name or 'disk'}"
    if cmd.templateUrl:
        tmpl = ImageInPool(pool, cmd.templateUrl, "qcow2")
        res = ctx.storage.volume_from_template(tmpl, pool, name, dc.size or None)
    else:
        if not dc.size or dc.size <= 0:
            raise TranslationError("a blank volume needs a positive size")
        res = ctx.storage.create_volume(pool, name, dc.size)
    return A.CreateAnswer(volume=VolumeTO(
        id=cmd.volId, name=dc.name, type=dc.type, storagePoolType=pool.pool_type, storagePoolUuid=pool.uuid,
        mountPoint=pool.path, path=ctx.storage.local_path(ImageInPool(pool, res.path, res.format)),
        size=res.virtual_size, format=res.format.upper()))


@handles(C.ResizeVolumeCommand, A.ResizeVolumeAnswer, vm=lambda c: c.vmInstance or None)
def resize_volume(ctx: HostContext, cmd: C.ResizeVolumeCommand) -> Answer:
    """A disk of a running VM grows through the hypervisor; any other volume file is resized in its
    pool (shrinking only with ``shrinkOk``, and never below the data it holds)."""
    if cmd.managed or cmd.iScsiName:
        raise TranslationError("managed (iSCSI) volumes cannot be resized by this agent")
    if cmd.passphrase or cmd.encryptFormat:
        raise TranslationError("encrypted volumes are not supported by this agent")
    if cmd.newSize is None or cmd.newSize <= 0:
        raise TranslationError("ResizeVolumeCommand needs a positive newSize")
    image = translate.volume_at(cmd.pool, cmd.path)
    if cmd.vmInstance:
        live = ctx.driver.resize_disk(cmd.vmInstance, ctx.storage.local_path(image), cmd.newSize)
        if live is not None:
            return A.ResizeVolumeAnswer(newSize=live, details=f"resized {image.path} of running VM {cmd.vmInstance}")
    res = ctx.storage.resize_volume(image, cmd.newSize, cmd.shrinkOk)
    return A.ResizeVolumeAnswer(newSize=res.virtual_size)


@handles(C.PrimaryStorageDownloadCommand, A.PrimaryStorageDownloadAnswer)
def primary_storage_download(ctx: HostContext, cmd: C.PrimaryStorageDownloadCommand) -> Answer:
    if cmd.primaryPool is not None:
        pool = translate.pool_from_filer(cmd.primaryPool)
    elif cmd.poolUuid and cmd.localPath:
        pool = PoolRef(uuid=cmd.poolUuid, pool_type="Filesystem", path=cmd.localPath)
    else:
        raise TranslationError("PrimaryStorageDownloadCommand needs primaryPool or poolUuid and localPath")
    fmt = translate.image_format(cmd.format, "qcow2")
    scheme = cmd.url.split(":", 1)[0].lower()
    if scheme in ("http", "https"):
        image = ImageOnStore(StoreRef(kind="http", url=cmd.url), cmd.url, fmt, cmd.checksum)
    elif cmd.secondaryStorageUrl and cmd.url.startswith(cmd.secondaryStorageUrl):
        store = translate.store_ref(NfsTO.model_validate({"_url": cmd.secondaryStorageUrl}))
        image = ImageOnStore(store, cmd.url[len(cmd.secondaryStorageUrl):].lstrip("/"), fmt, cmd.checksum)
    else:
        raise TranslationError(f"cannot download {scheme} URLs here; give an http(s) URL or one under the "
                               "secondary storage URL")
    name = cmd.name or posixpath.basename(cmd.url)
    res = ctx.storage.template_to_pool(image, pool, name, _progress("template", name))
    return A.PrimaryStorageDownloadAnswer(installPath=res.path, templateSize=res.virtual_size)


# --------------------------------------------------------------------------- attach / detach


def _disk_for(ctx: HostContext, disk: Any) -> DiskSpec:
    return translate.disk_spec(disk, ctx.storage)


@handles(C.AttachCommand, A.AttachAnswer, vm=lambda c: c.vmName)
def attach(ctx: HostContext, cmd: C.AttachCommand) -> Answer:
    spec = _disk_for(ctx, cmd.disk)
    if spec.path is None:
        raise TranslationError("nothing to attach: the disk has no data")
    ctx.driver.attach_disk(cmd.vmName, spec)
    return A.AttachAnswer(disk=cmd.disk)


@handles(C.DettachCommand, A.DettachAnswer, vm=lambda c: c.vmName)
def detach(ctx: HostContext, cmd: C.DettachCommand) -> Answer:
    spec = _disk_for(ctx, cmd.disk)
    path = spec.path
    if path is None and spec.device == "cdrom":
        current = ctx.driver.get_vm(cmd.vmName)
        path = next((d.path for d in current.spec.disks if d.device == "cdrom" and d.path), None)
        if path is None:
            return A.DettachAnswer(disk=cmd.disk, details="no ISO is inserted")
    assert path is not None
    try:
        ctx.driver.detach_disk(cmd.vmName, path)
    except DeviceNotFound:
        return A.DettachAnswer(disk=cmd.disk, details="the disk was not attached")
    return A.DettachAnswer(disk=cmd.disk)


# --------------------------------------------------------------------------- pools


def _pool_info(pool: PoolRef, local_path: str, capacity: int, available: int) -> StoragePoolInfo:
    return StoragePoolInfo(uuid=pool.uuid, host=pool.host, hostPath=pool.path, localPath=local_path,
                           poolType=pool.pool_type, capacityBytes=capacity, availableBytes=available)


@handles(C.ModifyStoragePoolCommand, A.ModifyStoragePoolAnswer)
def modify_storage_pool(ctx: HostContext, cmd: C.ModifyStoragePoolCommand) -> Answer:
    pool = translate.pool_from_filer(cmd.pool)
    if not cmd.add:
        ctx.storage.detach_pool(pool)
        ctx.forget_pool(pool.uuid)
        return A.ModifyStoragePoolAnswer(details=f"pool {pool.uuid} detached")
    stats = ctx.storage.attach_pool(pool)
    ctx.remember_pool(pool)
    try:
        ctx.storage.write_heartbeat(pool, ctx.host_ip)
    except Exception as exc:
        log.warning("heartbeat write failed", pool=pool.uuid, reason=str(exc))
    return A.ModifyStoragePoolAnswer(poolInfo=_pool_info(pool, stats.path, stats.capacity_bytes,
                                                         stats.available_bytes), localPath=stats.path)


@handles(C.CreateStoragePoolCommand, Answer, blocking=False)
def create_storage_pool(ctx: HostContext, cmd: C.CreateStoragePoolCommand) -> Answer:
    return Answer(details="success - NOP")


@handles(C.DeleteStoragePoolCommand, Answer)
def delete_storage_pool(ctx: HostContext, cmd: C.DeleteStoragePoolCommand) -> Answer:
    if cmd.pool is not None and cmd.pool.uuid:
        pool = translate.pool_from_filer(cmd.pool)
        ctx.storage.detach_pool(pool)
        ctx.forget_pool(pool.uuid)
    return Answer(details="pool detached; no file was deleted")


@handles(C.GetStorageStatsCommand, A.GetStorageStatsAnswer)
def storage_stats(ctx: HostContext, cmd: C.GetStorageStatsCommand) -> Answer:
    pool = ctx.pools.get(cmd.id or "")
    if pool is None:
        local = ctx.driver.local_pool()
        if cmd.id and cmd.id == ctx.identity.guid and local is not None:
            return A.GetStorageStatsAnswer(capacity=local.capacity_bytes, used=local.used_bytes)
        if not cmd.localPath or not cmd.id:
            raise TranslationError(f"storage pool {cmd.id} is not attached to this host")
        pool = PoolRef(uuid=cmd.id, pool_type=translate.pool_type(cmd.pooltype or "Filesystem"), path=cmd.localPath)
    stats = ctx.storage.pool_stats(pool)
    return A.GetStorageStatsAnswer(capacity=stats.capacity_bytes, used=stats.used_bytes)


@handles(C.MigrateVolumeCommand, A.MigrateVolumeAnswer)
def migrate_volume(ctx: HostContext, cmd: C.MigrateVolumeCommand) -> Answer:
    return A.MigrateVolumeAnswer(result=False, volumePath=cmd.volumePath,
                                 details="MigrateVolumeCommand failed: storage migration is not supported yet")
