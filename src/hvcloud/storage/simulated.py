"""Simulated storage: pools and images are records with sizes, never real files.

It keeps the same rules as the real backend where they matter to a management server: path
confinement, a template is copied into a pool once, volumes are linked clones of it, capacity is
accounted, a missing file deletes fine, heartbeats are kept per pool.

Every host keeps the images it wrote in its own ``storage.json``. A pool that is not the host's
local pool is shared storage: the hosts of one agent process (one :class:`SharedPools`) see each
other's images there, so a volume one host created is found, reused, resized and deleted through any
other host, as on a real NFS or shared-mount pool.
"""

from __future__ import annotations

import posixpath
import threading
import time
from pathlib import Path
from typing import Any

from hvcloud.atomic_file import load_json, save_json
from hvcloud.hosttypes import PoolStats
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
from hvcloud.storage.errors import PathOutsidePool, StorageError

GiB = 1024**3
DEFAULT_POOL_BYTES = 4096 * GiB
DEFAULT_TEMPLATE_BYTES = 2 * GiB

#: heartbeats live on "shared storage": every simulated host of the process sees them
_HEARTBEATS: dict[str, dict[str, float]] = {}
_HEARTBEATS_LOCK = threading.Lock()


def confined(path: str) -> str:
    """A relative, normalised path that stays inside its root, or PathOutsidePool."""
    if not path or "\x00" in path:
        raise PathOutsidePool(f"invalid path {path!r}")
    unix = path.replace("\\", "/")
    if unix.startswith("/") or (len(unix) > 1 and unix[1] == ":"):
        raise PathOutsidePool(f"absolute path {path!r} is not allowed here")
    norm = posixpath.normpath(unix)
    if norm == ".." or norm.startswith("../") or norm == ".":
        raise PathOutsidePool(f"path {path!r} escapes its storage pool")
    return norm


class SharedPools:
    """The simulated hosts of one agent process: their non-local pools are one shared storage."""

    def __init__(self) -> None:
        self._members: list[SimulatedStorage] = []
        self._lock = threading.Lock()

    def join(self, storage: SimulatedStorage) -> None:
        with self._lock:
            self._members.append(storage)

    def others(self, storage: SimulatedStorage) -> list[SimulatedStorage]:
        with self._lock:
            return [m for m in self._members if m is not storage]


class SimulatedStorage(StorageBackend):
    def __init__(self, state_dir: Path, local_pool: PoolStats | None = None, *, fsync: bool = True,
                 shared: SharedPools | None = None) -> None:
        self._file = state_dir / "storage.json"
        self._fsync = fsync
        self._lock = threading.RLock()
        raw = load_json(self._file, {})
        self._pools: dict[str, dict[str, Any]] = raw.get("pools", {})
        self._store_images: dict[str, int] = raw.get("store_images", {})
        self._local = local_pool
        self._shared = shared
        if shared is not None:
            shared.join(self)

    def _save(self) -> None:
        save_json(self._file, {"pools": self._pools, "store_images": self._store_images},
                  fsync=self._fsync)

    def _pool(self, pool: PoolRef, *, create: bool = True) -> dict[str, Any]:
        rec = self._pools.get(pool.uuid)
        if rec is None:
            if not create:
                raise StorageError(f"storage pool {pool.uuid} is not attached to this host")
            capacity = DEFAULT_POOL_BYTES
            if self._local is not None and pool.pool_type == "Filesystem" and pool.path == self._local.path:
                capacity = self._local.capacity_bytes
            rec = {"type": pool.pool_type, "path": pool.path, "host": pool.host,
                   "capacity": capacity, "files": {}}
            self._pools[pool.uuid] = rec
        return rec

    def _is_local(self, pool: PoolRef) -> bool:
        return self._local is not None and pool.pool_type == "Filesystem" and pool.path == self._local.path

    def _peers(self, pool: PoolRef) -> list[SimulatedStorage]:
        """The other hosts of the agent process that see ``pool`` (none for a host's local pool)."""
        if self._shared is None or self._is_local(pool):
            return []
        return [peer for peer in self._shared.others(self) if not peer._is_local(pool)]

    def _own_file(self, pool_uuid: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            rec = self._pools.get(pool_uuid)
            found = rec["files"].get(name) if rec is not None else None
            return dict(found) if found is not None else None

    def _peer_file(self, pool: PoolRef, name: str) -> dict[str, Any] | None:
        """An image another host wrote on this shared pool. Called without holding our own lock, so
        two hosts looking at each other's images never wait on each other."""
        for peer in self._peers(pool):
            found = peer._own_file(pool.uuid, name)
            if found is not None:
                return found
        return None

    def _drop_own(self, pool_uuid: str, name: str) -> None:
        with self._lock:
            rec = self._pools.get(pool_uuid)
            if rec is not None and rec["files"].pop(name, None) is not None:
                self._save()

    def _stats(self, pool: PoolRef, rec: dict[str, Any]) -> PoolStats:
        used = sum(int(f["physical"]) for f in rec["files"].values())
        return PoolStats(path=pool.path, capacity_bytes=int(rec["capacity"]),
                         available_bytes=max(0, int(rec["capacity"]) - used))

    def _add_file(self, pool: PoolRef, name: str, fmt: ImageFormat, virtual: int, physical: int,
                  backing: str | None = None) -> VolumeResult:
        rec = self._pool(pool)
        stats = self._stats(pool, rec)
        if physical > stats.available_bytes:
            raise StorageError(f"pool {pool.uuid} has {stats.available_bytes} bytes free, "
                               f"{physical} needed")
        rec["files"][name] = {"format": fmt, "virtual": virtual, "physical": physical,
                              "backing": backing, "created": time.time()}
        self._save()
        return VolumeResult(path=name, format=fmt, virtual_size=virtual, physical_size=physical,
                            backing_path=backing)

    # ---------------------------------------------------------------- pools

    def attach_pool(self, pool: PoolRef) -> PoolStats:
        with self._lock:
            rec = self._pool(pool)
            self._save()
            return self._stats(pool, rec)

    def detach_pool(self, pool: PoolRef) -> None:
        return

    def pool_stats(self, pool: PoolRef) -> PoolStats:
        with self._lock:
            return self._stats(pool, self._pool(pool))

    def local_path(self, image: ImageInPool) -> str:
        rel = confined(image.path)
        return posixpath.join(image.pool.path.replace("\\", "/"), rel)

    # ---------------------------------------------------------------- images

    def template_to_pool(self, src: ImageOnStore, pool: PoolRef, name: str,
                         progress: Progress | None = None) -> VolumeResult:
        name = confined(name)
        if src.store.kind != "http":
            confined(src.path)
        elsewhere = self._peer_file(pool, name)
        if elsewhere is not None:
            return VolumeResult(path=name, format=elsewhere["format"], virtual_size=elsewhere["virtual"],
                                physical_size=elsewhere["physical"])
        with self._lock:
            rec = self._pool(pool)
            existing = rec["files"].get(name)
            if existing is not None:
                return VolumeResult(path=name, format=existing["format"], virtual_size=existing["virtual"],
                                    physical_size=existing["physical"])
            size = src.size or self._store_images.get(f"{src.store.url}/{src.path}") or DEFAULT_TEMPLATE_BYTES
            fmt: ImageFormat = "qcow2" if src.format in ("vhd", "vhdx") else src.format
            if progress:
                progress(size, size)
            return self._add_file(pool, name, fmt, size, size // 4)

    def volume_from_template(self, template: ImageInPool, pool: PoolRef, name: str,
                             size: int | None = None, full_copy: bool = False) -> VolumeResult:
        name = confined(name)
        tpath = confined(template.path)
        peer_template = self._peer_file(template.pool, tpath)
        elsewhere = self._peer_file(pool, name)
        if elsewhere is not None:
            return VolumeResult(path=name, format=elsewhere["format"], virtual_size=elsewhere["virtual"],
                                physical_size=elsewhere["physical"], backing_path=elsewhere.get("backing"))
        with self._lock:
            trec = self._pool(template.pool, create=peer_template is not None)["files"].get(tpath) or peer_template
            if trec is None:
                raise StorageError(f"template {template.path} is not in pool {template.pool.uuid}")
            existing = self._pool(pool)["files"].get(name)
            if existing is not None:
                return VolumeResult(path=name, format=existing["format"], virtual_size=existing["virtual"],
                                    physical_size=existing["physical"], backing_path=existing.get("backing"))
            virtual = max(int(trec["virtual"]), size or 0)
            if full_copy:
                return self._add_file(pool, name, trec["format"], virtual, int(trec["physical"]))
            return self._add_file(pool, name, "qcow2", virtual, 196_608, backing=tpath)

    def create_volume(self, pool: PoolRef, name: str, size: int, format: ImageFormat = "qcow2") -> VolumeResult:
        name = confined(name)
        if size <= 0:
            raise StorageError("a volume needs a positive size")
        elsewhere = self._peer_file(pool, name)
        with self._lock:
            existing = self._pool(pool)["files"].get(name) or elsewhere
            if existing is not None:
                if int(existing["virtual"]) != size:
                    raise StorageError(f"volume {name} already exists with another size")
                return VolumeResult(path=name, format=existing["format"], virtual_size=size,
                                    physical_size=existing["physical"])
            return self._add_file(pool, name, format, size, 196_608 if format != "raw" else size)

    def delete_volume(self, image: ImageInPool) -> None:
        path = confined(image.path)
        self._drop_own(image.pool.uuid, path)
        for peer in self._peers(image.pool):
            peer._drop_own(image.pool.uuid, path)

    def resize_volume(self, image: ImageInPool, new_size: int, shrink_ok: bool = False) -> VolumeResult:
        path = confined(image.path)
        if self._own_file(image.pool.uuid, path) is None:
            owner = next((s for s in self._peers(image.pool) if s._own_file(image.pool.uuid, path) is not None), None)
            if owner is not None:
                return owner.resize_volume(image, new_size, shrink_ok)
        with self._lock:
            f = self._pool(image.pool, create=False)["files"].get(path)
            if f is None:
                raise StorageError(f"volume {image.path} not found")
            if new_size <= 0:
                raise StorageError(f"invalid volume size {new_size}")
            if new_size < int(f["virtual"]):
                if not shrink_ok:
                    raise StorageError("shrinking a volume needs shrink_ok")
                if new_size < int(f["physical"]):
                    raise StorageError(f"cannot shrink {path} to {new_size} bytes: it holds {f['physical']} "
                                       "bytes of data")
            f["virtual"] = new_size
            self._save()
            return VolumeResult(path=path, format=f["format"], virtual_size=new_size,
                                physical_size=int(f["physical"]), backing_path=f.get("backing"))

    def volume_to_store(self, src: ImageInPool, dest: StoreRef, dest_dir: str, name: str,
                        progress: Progress | None = None) -> VolumeResult:
        path = confined(src.path)
        with self._lock:
            f = self._pool(src.pool, create=False)["files"].get(path)
            if f is None:
                raise StorageError(f"volume {src.path} not found")
            rel = confined(posixpath.join(dest_dir, f"{name}.{f['format']}"))
            self._store_images[f"{dest.url}/{rel}"] = int(f["virtual"])
            self._save()
            return VolumeResult(path=rel, format=f["format"], virtual_size=int(f["virtual"]),
                                physical_size=int(f["physical"]))

    def store_to_volume(self, src: ImageOnStore, pool: PoolRef, name: str,
                        progress: Progress | None = None) -> VolumeResult:
        rel = confined(src.path)
        size = src.size or self._store_images.get(f"{src.store.url}/{rel}") or DEFAULT_TEMPLATE_BYTES
        with self._lock:
            return self._add_file(pool, confined(name), src.format, size, size // 2)

    def iso_path(self, iso: ImageOnStore) -> str:
        return f"/var/lib/hvcloud-sim/iso/{confined(iso.path)}"

    # ---------------------------------------------------------------- heartbeats

    def write_heartbeat(self, pool: PoolRef, host_ip: str, when: float | None = None) -> None:
        with _HEARTBEATS_LOCK:
            _HEARTBEATS.setdefault(pool.uuid, {})[host_ip] = time.time() if when is None else when

    def read_heartbeat(self, pool: PoolRef, host_ip: str) -> float | None:
        with _HEARTBEATS_LOCK:
            return _HEARTBEATS.get(pool.uuid, {}).get(host_ip)
