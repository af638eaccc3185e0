"""The :class:`~hvcloud.storage.backend.StorageBackend` of Hyper-V hosts.

* Pools are local directories (``Filesystem``, e.g. ``E:\\Disks``) or SMB shares (``SMB``,
  ``\\\\host\\share\\dir``) reached as the service account: nothing is mounted. Paths handed to
  Hyper-V are Windows paths; a :class:`~.winpath.PathMap` says where this process opens them
  (the same on Windows; temporary directories in tests).
* Image stores are ``cifs://host/share`` (read at ``\\\\host\\share``, credentials in the URL
  ignored), S3 and HTTP(S) (through :mod:`hvcloud.storage.stores`).
* Templates are cached once per pool in their own format, VHD or VHDX; raw ones become dynamic
  VHDs and qcow2 ones are refused (Hyper-V cannot run them).
* Linked clones: a differencing VHD written by the native VHD library, its parent locators naming
  the template by relative (W2ru) and absolute (W2ku) Windows path; a differencing VHDX made by
  Hyper-V's ``Msvm_ImageManagementService`` (a full copy, logged, when that is not available).
"""

from __future__ import annotations

import bz2
import calendar
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path, PureWindowsPath
from typing import Literal, Protocol

from hvcloud import logs
from hvcloud.atomic_file import write_atomic
from hvcloud.hosttypes import PoolStats
from hvcloud.storage import vhd, vhdx
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
from hvcloud.storage.hyperv.checks import NATIVE_VHD, inspect_hyperv_image, vhd_footer, virtual_size
from hvcloud.storage.hyperv.winpath import PathMap, pool_root, relpath, unc_from_cifs
from hvcloud.storage.limits import StoreLimits
from hvcloud.storage.local import template_properties, with_ext
from hvcloud.storage.path_policy import PathPolicy
from hvcloud.storage.stores import Stores
from hvcloud.storage.transfer import CHUNK, copy_checked, parse_checksum, replace_atomically, staged
from hvcloud.storage.vhd.builder import DynamicBuilder
from hvcloud.storage.vhd.structs import W2KU, W2RU, DiskType, new_footer, vhd_time

log = logs.get(__name__)

MiB = 1024 * 1024
DiskFormat = Literal["vhd", "vhdx"]


class VirtualDisks(Protocol):
    """What the backend asks Hyper-V itself for (``Msvm_ImageManagementService``); paths are the
    Windows paths Hyper-V sees."""

    def create_dynamic(self, path: str, size: int, fmt: DiskFormat = "vhdx") -> None: ...

    def create_differencing(self, path: str, parent: str, fmt: DiskFormat = "vhdx") -> None: ...

    def resize(self, path: str, size: int) -> None: ...


class _Place:
    """A file as Hyper-V names it (``win``) and as this process opens it (``local``)."""

    __slots__ = ("local", "root_win", "win")

    def __init__(self, root_win: PureWindowsPath, win: PureWindowsPath, local: Path) -> None:
        self.root_win, self.win, self.local = root_win, win, local

    @property
    def rel(self) -> str:
        return "/".join(self.win.parts[len(self.root_win.parts):])


def _format_of(name: str) -> ImageFormat | None:
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return {"vhd": "vhd", "vhdx": "vhdx", "iso": "iso"}.get(ext)  # type: ignore[return-value]


def _physical(path: Path) -> int:
    st = path.stat()
    blocks = getattr(st, "st_blocks", None)
    return blocks * 512 if isinstance(blocks, int) else st.st_size


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes on this host (a thread lock is taken first)."""
    with open(path, "a+b") as f:
        if sys.platform == "win32":
            import msvcrt

            f.seek(0)
            while True:
                try:
                    msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    continue
            try:
                yield
            finally:
                f.seek(0)
                msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


class HyperVStorageBackend(StorageBackend):
    def __init__(self, data_dir: str | Path, *, paths: PathMap | None = None,
                 disks: VirtualDisks | None = None, limits: StoreLimits | None = None,
                 stores: Stores | None = None, native_vhd: bool = NATIVE_VHD,
                 policy: PathPolicy | None = None) -> None:
        """``policy`` confines pools (by their local paths) and local stores
        (``hvcloud.storage.path_policy``); the agent always gives one."""
        self.data_dir = Path(data_dir)
        self.policy = policy
        #: whether to use the native VHD library; without it VHDs are created and resized by
        #: Hyper-V's image management service and checked by their footer
        self.native_vhd = native_vhd
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.paths = paths or PathMap()
        self.disks = disks
        self.stores = stores or Stores(self.data_dir, limits, policy=policy)
        self._thread_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # ---------------------------------------------------------------- places

    def _root(self, pool: PoolRef) -> tuple[PureWindowsPath, Path]:
        """The pool's Windows path and local directory; with a policy, only an attached pool's."""
        win = pool_root(pool)
        local = self.paths.local(win)
        if self.policy is not None:
            self.policy.pool(local, pool.uuid)
        return win, self._ensure_dir(pool, win, local)

    def _ensure_dir(self, pool: PoolRef, win: PureWindowsPath, local: Path) -> Path:
        try:
            local.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"pool {pool.uuid} at {win} is not usable: {exc.strerror}") from None
        return local

    def _adopt(self, pool: PoolRef) -> tuple[PureWindowsPath, Path]:
        """Check a pool about to be attached against the policy and record it; its two paths."""
        win = pool_root(pool)
        local = self.paths.local(win)
        if self.policy is not None:
            if pool.pool_type == "Filesystem":
                self.policy.attachable(local)
            self.policy.remember(pool.uuid, local)
        return win, local

    def _place(self, pool: PoolRef, rel: str) -> _Place:
        root, _ = self._root(pool)
        win, local = self.paths.local_confined(root, rel)
        return _Place(root, win, local)

    def _image(self, image: ImageInPool) -> tuple[_Place, ImageFormat]:
        """The file of an image in a pool. CloudStack often sends a bare uuid and, for volumes,
        no format (the wire default is qcow2): then the ``.vhdx`` or ``.vhd`` that exists is
        taken, as the C# agent does."""
        name = image.path
        known = _format_of(name)
        if known is not None:
            return self._place(image.pool, name), known
        if image.format in ("vhd", "vhdx", "iso"):
            return self._place(image.pool, with_ext(name, image.format)), image.format
        for fmt in ("vhdx", "vhd"):
            place = self._place(image.pool, f"{name}.{fmt}")
            if place.local.exists():
                return place, fmt  # type: ignore[return-value]
        return self._place(image.pool, f"{name}.vhdx"), "vhdx"

    def _result(self, place: _Place, fmt: ImageFormat, backing: str | None = None) -> VolumeResult:
        return VolumeResult(path=place.rel, format=fmt, virtual_size=self._size(place.local, fmt),
                            physical_size=_physical(place.local), backing_path=backing)

    def _size(self, local: Path, fmt: ImageFormat) -> int:
        return virtual_size(local, fmt, native_vhd=self.native_vhd)

    def _need_disks(self, what: str) -> VirtualDisks:
        if self.disks is None:
            raise StorageError(f"{what} needs Hyper-V's image management service, which this host lacks")
        return self.disks

    @contextmanager
    def _locked(self, local_root: Path, name: str) -> Iterator[None]:
        lockdir = local_root / ".hvcloud-locks"
        lockdir.mkdir(exist_ok=True)
        key = name.replace("/", "_").replace("\\", "_")
        with self._guard:
            lock = self._thread_locks.setdefault(f"{local_root}\0{key}", threading.Lock())
        with lock, _file_lock(lockdir / f"{key}.lock"):
            yield

    # ---------------------------------------------------------------- stores

    def _store_file(self, store: StoreRef, rel: str) -> tuple[PureWindowsPath, Path]:
        return self.paths.local_confined(unc_from_cifs(store.url), rel)

    def _fetch(self, src: ImageOnStore, dest: Path, progress: Progress | None) -> None:
        if src.store.kind != "cifs":
            self.stores.fetch(src, dest, progress)
            return
        win, local = self._store_file(src.store, src.path)
        if not local.is_file():
            raise StoreError(f"{win} does not exist on the image store")
        copy_checked(local, dest, what=str(win), max_bytes=self.stores.limits.max_image_bytes,
                     checksum=parse_checksum(src.checksum), progress=progress)

    def _put(self, store: StoreRef, rel: str, src: Path | bytes, progress: Progress | None = None) -> None:
        if store.kind == "cifs":
            _, local = self._store_file(store, rel)
            local.parent.mkdir(parents=True, exist_ok=True)
            replace_atomically(local, src)
        elif isinstance(src, bytes):
            self.stores.put_bytes(store, rel, src)
        else:
            self.stores.put_file(store, rel, src, progress)

    def _download_checked(self, src: ImageOnStore, dest: Path, progress: Progress | None) -> ImageFormat:
        """Fetch, decompress (``.bz2``), inspect and, for raw images, convert ``src`` into
        ``dest``; return the format written."""
        fmt = src.format
        if fmt == "qcow2":
            raise ImageError("Hyper-V runs VHD and VHDX disks only; convert the qcow2 template "
                             "to VHD or VHDX and register it again")
        out_fmt: ImageFormat = "vhd" if fmt == "raw" else fmt
        if fmt == "raw" and not self.native_vhd:
            raise ImageError("a raw template must be converted to VHD, which needs the native VHD "
                             "library (not available on this platform); register a VHD or VHDX")
        with staged(dest) as part:
            got = part.with_name("download")
            self._fetch(src, got, progress)
            if src.path.lower().endswith(".bz2"):
                got = self._bunzip2(got, part.with_name("unpacked"))
            inspect_hyperv_image(got, fmt, native_vhd=self.native_vhd)
            if fmt == "raw":
                vhd.raw_to_vhd(str(got), str(part), DiskType.DYNAMIC)
            else:
                got.replace(part)
        return out_fmt

    def _bunzip2(self, src: Path, dest: Path) -> Path:
        limit = self.stores.limits.max_image_bytes
        total = 0
        with bz2.open(src, "rb") as f, open(dest, "xb") as out:
            while chunk := f.read(CHUNK):
                total += len(chunk)
                if total > limit:
                    raise StoreError(f"decompressed image is larger than the limit of {limit} bytes")
                out.write(chunk)
        src.unlink()
        return dest

    # ---------------------------------------------------------------- pools

    def attach_pool(self, pool: PoolRef) -> PoolStats:
        win, local = self._adopt(pool)
        self._ensure_dir(pool, win, local)
        return self.pool_stats(pool)

    def detach_pool(self, pool: PoolRef) -> None:
        pool_root(pool)
        if self.policy is not None:
            self.policy.forget(pool.uuid)

    def restore_pools(self, pools: list[PoolRef]) -> None:
        for pool in pools:
            try:
                self._adopt(pool)
            except StorageError as exc:
                log.warning("pool.not_restored", pool=pool.uuid, reason=str(exc))

    def pool_stats(self, pool: PoolRef) -> PoolStats:
        win, local = self._root(pool)
        try:
            usage = shutil.disk_usage(local)
        except OSError as exc:
            raise StorageError(f"pool {pool.uuid} at {win} is not usable: {exc.strerror}") from None
        return PoolStats(path=str(win), capacity_bytes=usage.total, available_bytes=usage.free)

    def local_path(self, image: ImageInPool) -> str:
        return str(self._image(image)[0].win)

    # ---------------------------------------------------------------- templates and volumes

    def template_to_pool(self, src: ImageOnStore, pool: PoolRef, name: str,
                         progress: Progress | None = None) -> VolumeResult:
        return self._fetch_into_pool(src, pool, name, progress, reuse=True)

    def _fetch_into_pool(self, src: ImageOnStore, pool: PoolRef, name: str, progress: Progress | None, *,
                         reuse: bool) -> VolumeResult:
        """``src`` as the file ``name`` in the pool, fetched under the name's lock; a file already
        there is the answer with ``reuse`` (a template cached by an earlier command), else an error."""
        out_fmt: ImageFormat = "vhd" if src.format == "raw" else src.format
        place = self._place(pool, with_ext(name, out_fmt))
        _, local_root = self._root(pool)
        with self._locked(local_root, name):
            if place.local.exists():
                if not reuse:
                    raise StorageError(f"volume {place.win} already exists")
                log.info("template.cached", pool=pool.uuid, name=place.rel)
                return self._result(place, out_fmt)
            log.info("template.download" if reuse else "volume.download", pool=pool.uuid, name=place.rel,
                     store=src.store.kind)
            self._download_checked(src, place.local, progress)
            return self._result(place, out_fmt)

    def volume_from_template(self, template: ImageInPool, pool: PoolRef, name: str,
                             size: int | None = None, full_copy: bool = False) -> VolumeResult:
        base, fmt = self._image(template)
        if fmt not in ("vhd", "vhdx"):
            raise ImageError(f"a volume cannot be made from a {fmt} template on Hyper-V")
        if not base.local.is_file():
            raise StorageError(f"template {base.win} is not in pool {template.pool.uuid}")
        dest = self._place(pool, with_ext(name, fmt))
        if dest.local.exists():
            return self._result(dest, fmt)
        base_size = self._size(base.local, fmt)
        grow = size if size is not None and size > base_size else None
        if fmt == "vhd":
            return self._vhd_volume(base, dest, grow, full_copy)
        return self._vhdx_volume(base, dest, grow, full_copy)

    def _vhd_volume(self, base: _Place, dest: _Place, grow: int | None, full_copy: bool) -> VolumeResult:
        if not self.native_vhd:
            return self._vhd_volume_by_hyperv(base, dest, grow, full_copy)
        tmp = dest.local.with_name(f".{dest.local.name}.part")
        with suppress(FileNotFoundError):
            tmp.unlink()
        if full_copy or grow:
            if not full_copy:
                log.info("volume.full_copy", volume=str(dest.win), reason="a differencing VHD keeps "
                         "its parent's size; a larger volume is a flattened copy")
            vhd.chain_to_vhd(str(base.local), str(tmp), DiskType.DYNAMIC)
            if grow:
                vhd.expand(str(tmp), grow)
            os.replace(tmp, dest.local)
            log.info("volume.created", volume=str(dest.win), linked=False)
            return self._result(dest, "vhd")
        self._differencing_vhd(base, dest, tmp)
        os.replace(tmp, dest.local)
        log.info("volume.created", volume=str(dest.win), linked=True, parent=str(base.win))
        return self._result(dest, "vhd", backing=str(base.win))

    def _vhd_volume_by_hyperv(self, base: _Place, dest: _Place, grow: int | None,
                              full_copy: bool) -> VolumeResult:
        disks = self._need_disks("a VHD volume on this platform")
        if not full_copy and not grow:
            disks.create_differencing(str(dest.win), str(base.win), "vhd")
            log.info("volume.created", volume=str(dest.win), linked=True, parent=str(base.win))
            return self._result(dest, "vhd", backing=str(base.win))
        tmp = dest.local.with_name(f".{dest.local.name}.part")
        shutil.copyfile(base.local, tmp)
        os.replace(tmp, dest.local)
        if grow:
            disks.resize(str(dest.win), grow)
        log.info("volume.created", volume=str(dest.win), linked=False)
        return self._result(dest, "vhd")

    def _differencing_vhd(self, base: _Place, dest: _Place, tmp: Path) -> None:
        """A child of ``base`` whose locators name it as Hyper-V will look for it: relative to
        the child's directory (W2ru) and by absolute Windows path (W2ku)."""
        with vhd.VhdFile(str(base.local)) as parent:
            size = parent.size
            block = parent.block_size or 2 * MiB
            parent_id = parent.footer.unique_id
            stamp = vhd_time(os.fstat(parent.fd).st_mtime)
            geometry = (parent.footer.cylinders, parent.footer.heads, parent.footer.sectors_per_track)
        footer = replace(new_footer(DiskType.DIFFERENCING, size), cylinders=geometry[0],
                         heads=geometry[1], sectors_per_track=geometry[2])
        locators = []
        rel = relpath(base.win, dest.win.parent)
        if rel is not None:
            locators.append((W2RU, rel.encode("utf-16-le")))
        locators.append((W2KU, str(base.win).encode("utf-16-le")))
        DynamicBuilder(str(tmp), footer, block_size=block, parent_id=parent_id, parent_timestamp=stamp,
                       parent_name=base.win.name, locators=locators).commit()

    def _vhdx_volume(self, base: _Place, dest: _Place, grow: int | None, full_copy: bool) -> VolumeResult:
        if not full_copy and not grow and self.disks is not None:
            # a grown clone is a full copy: Hyper-V never resizes a differencing disk
            self.disks.create_differencing(str(dest.win), str(base.win), "vhdx")
            log.info("volume.created", volume=str(dest.win), linked=True, parent=str(base.win))
            return self._result(dest, "vhdx", backing=str(base.win))
        if not full_copy:
            log.warning("volume.full_copy", volume=str(dest.win),
                        reason="no Msvm_ImageManagementService on this host: a VHDX linked clone "
                               "needs Hyper-V, so the template is copied in full")
        tmp = dest.local.with_name(f".{dest.local.name}.part")
        shutil.copyfile(base.local, tmp)
        os.replace(tmp, dest.local)
        if grow:
            self._grow_vhdx(dest, grow)
        log.info("volume.created", volume=str(dest.win), linked=False)
        return self._result(dest, "vhdx")

    def _grow_vhdx(self, place: _Place, size: int) -> None:
        if self.disks is not None:
            self.disks.resize(str(place.win), size)
        else:
            vhdx.set_virtual_size(place.local, size)

    def create_volume(self, pool: PoolRef, name: str, size: int,
                      format: ImageFormat = "vhdx") -> VolumeResult:
        if size <= 0:
            raise ImageError(f"invalid volume size {size}")
        if format == "iso":
            raise ImageError("a blank volume cannot be an ISO")
        fmt: DiskFormat = format if format in ("vhd", "vhdx") else "vhdx"  # type: ignore[assignment]
        if fmt == "vhdx" and self.disks is None:
            log.info("volume.format", requested=format, used="vhd",
                     reason="no Msvm_ImageManagementService on this host to create a VHDX")
            fmt = "vhd"
        size = -(-size // MiB) * MiB
        place = self._place(pool, with_ext(name, fmt))
        if place.local.exists():
            existing = self._result(place, fmt)
            if existing.virtual_size != size:
                raise StorageError(f"volume {place.win} exists with another size")
            return existing
        if fmt == "vhdx" or not self.native_vhd:
            self._need_disks("a blank volume").create_dynamic(str(place.win), size, fmt)
        else:
            tmp = place.local.with_name(f".{place.local.name}.part")
            vhd.create_dynamic(str(tmp), size, overwrite=True)
            os.replace(tmp, place.local)
        log.info("volume.created", volume=str(place.win), size=size, blank=True)
        return self._result(place, fmt)

    def delete_volume(self, image: ImageInPool) -> None:
        """The file, and the partial file of a creation that was cut short (see ``LocalStorageBackend``)."""
        place, _ = self._image(image)
        with suppress(FileNotFoundError):
            place.local.with_name(f".{place.local.name}.part").unlink()
        try:
            place.local.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"cannot delete {place.win}: {exc.strerror}") from None
        log.info("volume.deleted", pool=image.pool.uuid, path=str(place.win))

    def resize_volume(self, image: ImageInPool, new_size: int, shrink_ok: bool = False) -> VolumeResult:
        place, fmt = self._image(image)
        if not place.local.is_file():
            raise StorageError(f"volume {place.win} does not exist")
        current = self._size(place.local, fmt)
        if new_size < current:
            raise StorageError(f"shrinking {place.win} from {current} to {new_size} bytes is not "
                               "supported on Hyper-V volumes")
        if new_size > current:
            if fmt == "vhd" and not self.native_vhd:
                self._need_disks("resizing a VHD on this platform").resize(str(place.win), new_size)
            elif fmt == "vhd":
                vhd.expand(str(place.local), new_size)
            elif fmt == "vhdx":
                self._grow_vhdx(place, new_size)
            else:
                raise ImageError(f"cannot resize a {fmt} file")
        return self._result(place, fmt)

    def volume_to_store(self, src: ImageInPool, dest: StoreRef, dest_dir: str, name: str,
                        progress: Progress | None = None) -> VolumeResult:
        place, fmt = self._image(src)
        if fmt not in ("vhd", "vhdx"):
            raise ImageError(f"cannot copy a {fmt} file to an image store as a volume")
        filename = with_ext(name, fmt)
        clean_dir = dest_dir.replace("\\", "/").strip("/")
        rel = f"{clean_dir}/{filename}" if clean_dir else filename
        with tempfile.TemporaryDirectory(dir=self.data_dir, prefix=".hvcloud-up-") as tmp:
            flat = Path(tmp) / filename
            if fmt == "vhd" and not self.native_vhd:
                if vhd_footer(place.local).disk_type == DiskType.DIFFERENCING:
                    raise ImageError(f"{place.win} is a differencing VHD: flattening it needs the native "
                                     "VHD library (not available on this platform)")
                shutil.copyfile(place.local, flat)
            elif fmt == "vhd":
                vhd.chain_to_vhd(str(place.local), str(flat), DiskType.DYNAMIC)
            else:
                if vhdx.read_info(place.local).has_parent:
                    raise ImageError(f"{place.win} is a differencing VHDX: flattening it needs "
                                     "Hyper-V's ConvertVirtualHardDisk, which this agent does not call yet")
                shutil.copyfile(place.local, flat)
            vsize = self._size(flat, fmt)
            physical = flat.stat().st_size
            self._put(dest, rel, flat, progress)
        template_id = clean_dir.rsplit("/", 1)[-1] or name
        props = template_properties(template_id, name, filename, fmt, vsize, physical)
        props_rel = f"{clean_dir}/template.properties" if clean_dir else "template.properties"
        self._put(dest, props_rel, props.encode())
        log.info("volume.uploaded", store=dest.kind, path=rel)
        return VolumeResult(path=rel, format=fmt, virtual_size=vsize, physical_size=physical)

    def store_to_volume(self, src: ImageOnStore, pool: PoolRef, name: str,
                        progress: Progress | None = None) -> VolumeResult:
        return self._fetch_into_pool(src, pool, name, progress, reuse=False)

    def iso_path(self, iso: ImageOnStore) -> str:
        if iso.store.kind == "cifs":
            win, local = self._store_file(iso.store, iso.path)
            if not local.is_file():
                raise StoreError(f"ISO {win} does not exist on the image store")
            return str(win)
        dest = self.stores.iso_cache_file(iso)
        with self._locked(dest.parent, dest.stem):
            if not dest.exists():
                with staged(dest) as part:
                    self._fetch(iso, part, None)
                    inspect_hyperv_image(part, "iso", native_vhd=self.native_vhd)
        return str(dest)

    # ---------------------------------------------------------------- heartbeats

    def write_heartbeat(self, pool: PoolRef, host_ip: str, when: float | None = None) -> None:
        place = self._place(pool, f"hb-{host_ip}")
        stamp = time.time() if when is None else when
        write_atomic(place.local, time.strftime("%Y-%m-%d@%H:%M:%S", time.gmtime(stamp)).encode("ascii"),
                     fsync=False, private=False)

    def read_heartbeat(self, pool: PoolRef, host_ip: str) -> float | None:
        place = self._place(pool, f"hb-{host_ip}")
        try:
            text = place.local.read_text(encoding="ascii")[:64].strip()
            return float(calendar.timegm(time.strptime(text, "%Y-%m-%d@%H:%M:%S")))
        except (OSError, ValueError):
            return None
