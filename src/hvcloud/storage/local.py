"""The real :class:`~hvcloud.storage.backend.StorageBackend`: files in pools, qemu-img, stores.

* Templates are copied into a pool once (``template_to_pool`` is cached by name and serialised by
  a lock file, so concurrent requests download once), checked by :mod:`image_check`, and VHD/VHDX
  are converted to qcow2 because libvirt pools cannot use them.
* Volumes are linked clones by default: a qcow2 child whose backing file is the cached template,
  named *relative* to the child so the pool can be mounted anywhere.
* Every wire path goes through :func:`~hvcloud.storage.pools.confine`.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from hvcloud import logs
from hvcloud.hosttypes import PoolStats
from hvcloud.storage import qemu_img
from hvcloud.storage.backend import (
    ImageFormat,
    ImageInPool,
    ImageOnStore,
    PoolRef,
    Progress,
    StorageBackend,
    StoreRef,
    VolumeResult,
)
from hvcloud.storage.errors import ImageError, StorageError, StoreError
from hvcloud.storage.image_check import inspect_untrusted
from hvcloud.storage.limits import StoreLimits
from hvcloud.storage.path_policy import PathPolicy
from hvcloud.storage.pools import Pools, confine, is_mounted
from hvcloud.storage.stores import Stores
from hvcloud.storage.transfer import PRIVATE_FILE, staged

log = logs.get(__name__)

_EXT = {"qcow2": ".qcow2", "raw": ".raw", "vhd": ".vhd", "vhdx": ".vhdx", "iso": ".iso"}
#: formats a libvirt pool keeps as they are; others are converted to qcow2 on the way in
_POOL_NATIVE = ("qcow2", "raw", "iso")


def with_ext(name: str, fmt: str) -> str:
    """CloudStack's rule: append ``.<format>`` unless the name already has an extension."""
    base = name.rsplit("/", 1)[-1]
    return name if "." in base else name + _EXT[fmt]


def template_properties(template_id: str, name: str, filename: str, fmt: str,
                        virtual_size: int, physical_size: int) -> str:
    """CloudStack's ``template.properties`` beside a template on an image store."""
    lines = [
        f"id={template_id}",
        f"filename={filename}",
        f"{fmt}.filename={filename}",
        f"uniquename={name}",
        f"{fmt}=true",
        f"virtualsize={virtual_size}",
        f"{fmt}.virtualsize={virtual_size}",
        f"size={physical_size}",
        f"{fmt}.size={physical_size}",
        "public=false",
    ]
    return "\n".join(lines) + "\n"


class LocalStorageBackend(StorageBackend):
    def __init__(self, data_dir: str | Path, limits: StoreLimits | None = None,
                 pools: Pools | None = None, stores: Stores | None = None, policy: PathPolicy | None = None) -> None:
        """``policy`` confines pools and local stores (``hvcloud.storage.path_policy``); the agent
        always gives one."""
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.pools = pools or Pools(self.data_dir, policy=policy)
        self.stores = stores or Stores(self.data_dir, limits, policy=policy)

    # ---------------------------------------------------------------- helpers

    def _root(self, pool: PoolRef) -> Path:
        """The pool's directory, attaching the pool first if this host has not yet (after an
        agent restart the management server may send work before ModifyStoragePool)."""
        root = self.pools.root(pool)
        if pool.pool_type == "Filesystem":
            root.mkdir(parents=True, exist_ok=True)
        elif not is_mounted(root):
            self.pools.attach(pool)
        return root

    def _path(self, image: ImageInPool) -> Path:
        """The file of an image; CloudStack often names it by bare uuid, so the format's
        extension is added when the name has none."""
        return confine(self._root(image.pool), with_ext(image.path, image.format))

    def _result(self, root: Path, path: Path, fmt: ImageFormat) -> VolumeResult:
        if fmt == "iso":
            size = path.stat().st_size
            return VolumeResult(path=str(path.relative_to(root)), format=fmt,
                                virtual_size=size, physical_size=size)
        info = qemu_img.info(str(path), fmt)
        return VolumeResult(path=str(path.relative_to(root)), format=fmt,
                            virtual_size=info.virtual_size, physical_size=path.stat().st_blocks * 512,
                            backing_path=info.backing_file)

    @contextmanager
    def _locked(self, root: Path, name: str) -> Iterator[None]:
        lockdir = root / ".hvcloud-locks"
        lockdir.mkdir(exist_ok=True)
        with open(lockdir / f"{name.replace('/', '_')}.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _download_checked(self, src: ImageOnStore, dest: Path, progress: Progress | None) -> ImageFormat:
        """Fetch, inspect and (if needed) convert ``src`` into ``dest``; return dest's format."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        out_fmt: ImageFormat = src.format if src.format in _POOL_NATIVE else "qcow2"
        with staged(dest) as part:
            raw = part if out_fmt == src.format else part.with_name("download")
            self.stores.fetch(src, raw, progress)
            inspect_untrusted(raw, src.format)
            if raw != part:
                qemu_img.convert(str(raw), src.format, str(part), out_fmt)
        return out_fmt

    # ---------------------------------------------------------------- pools

    def attach_pool(self, pool: PoolRef) -> PoolStats:
        return self.pools.attach(pool)

    def detach_pool(self, pool: PoolRef) -> None:
        self.pools.detach(pool)

    def restore_pools(self, pools: list[PoolRef]) -> None:
        for pool in pools:
            try:
                self.pools.adopt(pool)
            except StorageError as exc:
                log.warning("pool.not_restored", pool=pool.uuid, reason=str(exc))

    def pool_stats(self, pool: PoolRef) -> PoolStats:
        return self.pools.stats(pool)

    def local_path(self, image: ImageInPool) -> str:
        return str(self._path(image))

    # ---------------------------------------------------------------- templates and volumes

    def template_to_pool(self, src: ImageOnStore, pool: PoolRef, name: str,
                         progress: Progress | None = None) -> VolumeResult:
        return self._fetch_into_pool(src, pool, name, progress, reuse=True)

    def _fetch_into_pool(self, src: ImageOnStore, pool: PoolRef, name: str, progress: Progress | None, *,
                         reuse: bool) -> VolumeResult:
        """``src`` as the file ``name`` in the pool, fetched under the name's lock; with ``reuse``,
        a file already there (a template cached by an earlier command) is the answer."""
        root = self._root(pool)
        out_fmt: ImageFormat = src.format if src.format in _POOL_NATIVE else "qcow2"
        dest = confine(root, with_ext(name, out_fmt))
        with self._locked(root, name):
            if reuse and dest.exists():
                log.info("template.cached", pool=pool.uuid, name=name)
            else:
                log.info("template.download" if reuse else "volume.download", pool=pool.uuid, name=name,
                         store=src.store.kind)
                self._download_checked(src, dest, progress)
            return self._result(root, dest, out_fmt)

    def volume_from_template(self, template: ImageInPool, pool: PoolRef, name: str,
                             size: int | None = None, full_copy: bool = False) -> VolumeResult:
        root = self._root(pool)
        base = self._path(template)
        if not base.is_file():
            raise StorageError(f"template {template.path} is not in pool {template.pool.uuid}")
        dest = confine(root, with_ext(name, "qcow2"))
        if dest.exists():
            return self._result(root, dest, "qcow2")
        base_size = qemu_img.info(str(base), template.format).virtual_size
        grow = size if size is not None and size > base_size else None
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        with suppress(FileNotFoundError):
            tmp.unlink()
        if full_copy:
            qemu_img.convert(str(base), template.format, str(tmp), "qcow2")
            if grow:
                qemu_img.resize(str(tmp), "qcow2", grow)
        else:
            backing = os.path.relpath(base, dest.parent)
            qemu_img.create(str(tmp), "qcow2", grow, backing=backing, backing_fmt=template.format)
        os.chmod(tmp, PRIVATE_FILE)
        os.replace(tmp, dest)
        log.info("volume.created", pool=pool.uuid, name=dest.name, linked=not full_copy)
        if full_copy:
            return self._result(root, dest, "qcow2")
        # a fresh child's facts are known; skipping a third qemu-img run keeps clones fast
        return VolumeResult(path=str(dest.relative_to(root)), format="qcow2", virtual_size=grow or base_size,
                            physical_size=dest.stat().st_blocks * 512, backing_path=backing)

    def create_volume(self, pool: PoolRef, name: str, size: int,
                      format: ImageFormat = "qcow2") -> VolumeResult:
        if format not in ("qcow2", "raw"):
            raise ImageError(f"blank volumes can be qcow2 or raw, not {format}")
        if size <= 0:
            raise ImageError(f"invalid volume size {size}")
        root = self._root(pool)
        dest = confine(root, with_ext(name, format))
        if dest.exists():
            existing = self._result(root, dest, format)
            if existing.virtual_size != size:
                raise StorageError(f"volume {dest.name} exists with another size")
            return existing
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        qemu_img.create(str(tmp), format, size)
        os.chmod(tmp, PRIVATE_FILE)
        os.replace(tmp, dest)
        return self._result(root, dest, format)

    def delete_volume(self, image: ImageInPool) -> None:
        """The file, and the partial file of a creation that was cut short (the agent killed while
        it cloned or created the volume under its hidden temporary name)."""
        path = self._path(image)
        for target in (path, path.with_name(f".{path.name}.part")):
            with suppress(FileNotFoundError):
                target.unlink()
                log.info("volume.deleted", pool=image.pool.uuid, path=str(target.relative_to(self._root(image.pool))))

    def resize_volume(self, image: ImageInPool, new_size: int, shrink_ok: bool = False) -> VolumeResult:
        path = self._path(image)
        root = self._root(image.pool)
        if image.format not in ("qcow2", "raw"):
            raise ImageError(f"cannot resize a {image.format} volume on a libvirt host")
        if new_size <= 0:
            raise ImageError(f"invalid volume size {new_size}")
        current = qemu_img.info(str(path), image.format).virtual_size
        if new_size < current:
            if not shrink_ok:
                raise StorageError(f"shrinking {image.path} from {current} to {new_size} bytes needs shrink_ok")
            used = qemu_img.data_end(str(path), image.format)
            if new_size < used:
                raise StorageError(f"cannot shrink {image.path} to {new_size} bytes: it holds data up to byte "
                                   f"{used}")
        if new_size != current:
            qemu_img.resize(str(path), image.format, new_size, shrink=new_size < current)
        return self._result(root, path, image.format)

    def volume_to_store(self, src: ImageInPool, dest: StoreRef, dest_dir: str, name: str,
                        progress: Progress | None = None) -> VolumeResult:
        path = self._path(src)
        fmt: ImageFormat = "qcow2"
        filename = with_ext(name, fmt)
        rel = f"{dest_dir.strip('/')}/{filename}" if dest_dir.strip("/") else filename
        with tempfile.TemporaryDirectory(dir=self.data_dir, prefix=".hvcloud-up-") as tmp:
            flat = Path(tmp) / filename
            qemu_img.convert(str(path), src.format, str(flat), fmt)
            info = qemu_img.info(str(flat), fmt)
            physical = flat.stat().st_size
            self.stores.put_file(dest, rel, flat, progress)
        template_id = dest_dir.rstrip("/").rsplit("/", 1)[-1] or name
        props = template_properties(template_id, name, filename, fmt, info.virtual_size, physical)
        props_rel = f"{rel.rsplit('/', 1)[0]}/template.properties" if "/" in rel else "template.properties"
        self.stores.put_bytes(dest, props_rel, props.encode())
        log.info("volume.uploaded", store=dest.kind, path=rel)
        return VolumeResult(path=rel, format=fmt, virtual_size=info.virtual_size, physical_size=physical)

    def store_to_volume(self, src: ImageOnStore, pool: PoolRef, name: str,
                        progress: Progress | None = None) -> VolumeResult:
        return self._fetch_into_pool(src, pool, name, progress, reuse=False)

    def iso_path(self, iso: ImageOnStore) -> str:
        if iso.store.kind in ("local", "nfs"):
            path = self.stores.local_file(iso)
            if not path.is_file():
                raise StoreError(f"ISO {iso.path} does not exist on the image store")
            return str(path)
        dest = self.stores.iso_cache_file(iso)
        with self._locked(dest.parent, dest.stem):
            if not dest.exists():
                with staged(dest) as part:
                    self.stores.fetch(iso, part)
                    inspect_untrusted(part, "iso")
        return str(dest)
