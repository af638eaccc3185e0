"""The storage backend interface: what the agent's storage handlers ask of a host's storage.

Handlers translate CloudStack's TOs (PrimaryDataStoreTO, NfsTO, S3TO, TemplateObjectTO,
VolumeObjectTO …) into the neutral references below and call a :class:`StorageBackend`; they never
touch files themselves. The simulator has a backend that only keeps records; the real one
(``hvcloud.storage.local``) works on files with qemu-img, NFS mounts, HTTP and S3.

All methods are blocking (the agent runs them in worker threads). Paths in references come from
the wire and are **untrusted**: a backend resolves them inside the pool or store root and raises
``PathOutsidePool`` for anything that escapes (``..``, absolute paths, symlinks out).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hvcloud.atomic_file import write_atomic
from hvcloud.hosttypes import PoolStats

PoolType = Literal["Filesystem", "NetworkFilesystem", "SMB"]
StoreKind = Literal["nfs", "cifs", "local", "http", "s3"]
ImageFormat = Literal["qcow2", "raw", "vhd", "vhdx", "iso"]

#: called with (bytes done, bytes total or None)
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class PoolRef:
    """A primary storage pool. ``path`` is a local directory for Filesystem pools and the export
    or share path on ``host`` otherwise."""

    uuid: str
    pool_type: PoolType
    path: str
    host: str = ""
    port: int = 0


@dataclass(frozen=True)
class S3Location:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str = ""
    https: bool = True
    region: str | None = None

    def __repr__(self) -> str:  # never show the secret in logs or tracebacks
        return f"S3Location(endpoint={self.endpoint!r}, bucket={self.bucket!r}, https={self.https})"


@dataclass(frozen=True)
class StoreRef:
    """An image (secondary) store: ``nfs://host/export``, ``cifs://host/share``, a local
    directory, an HTTP(S) base URL, or an S3 bucket."""

    kind: StoreKind
    url: str
    s3: S3Location | None = None


@dataclass(frozen=True)
class ImageOnStore:
    """A template, ISO or volume file on an image store, ``path`` relative to the store root
    (or a full URL for ``http`` stores)."""

    store: StoreRef
    path: str
    format: ImageFormat
    checksum: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class ImageInPool:
    """A file in a primary pool, ``path`` relative to the pool root (CloudStack sends the bare
    file name or uuid)."""

    pool: PoolRef
    path: str
    format: ImageFormat


@dataclass(frozen=True)
class VolumeResult:
    """What CloudStack needs back about a file created in a pool or on a store."""

    path: str
    format: ImageFormat
    virtual_size: int
    physical_size: int
    backing_path: str | None = None


class StorageBackend(abc.ABC):
    # ---------------------------------------------------------------- pools

    @abc.abstractmethod
    def attach_pool(self, pool: PoolRef) -> PoolStats:
        """Make the pool usable on this host (mount NFS/SMB, create the directory) and report its
        capacity. Idempotent."""

    @abc.abstractmethod
    def detach_pool(self, pool: PoolRef) -> None:
        """Forget the pool (unmount network pools). Files are never deleted. Idempotent."""

    def restore_pools(self, pools: list[PoolRef]) -> None:  # noqa: B027 - optional, empty by default
        """The pools this host attached before a restart (the agent keeps the list): usable again
        without touching them. Backends that confine pools to attached ones override this."""

    @abc.abstractmethod
    def pool_stats(self, pool: PoolRef) -> PoolStats:
        ...

    @abc.abstractmethod
    def local_path(self, image: ImageInPool) -> str:
        """The absolute path of an image in a pool, for handing to the hypervisor driver.
        Raises PathOutsidePool."""

    # ---------------------------------------------------------------- templates and volumes

    @abc.abstractmethod
    def template_to_pool(self, src: ImageOnStore, pool: PoolRef, name: str,
                         progress: Progress | None = None) -> VolumeResult:
        """Copy a template from an image store into a pool, once: a second call with the same
        ``name`` returns the cached copy. The image is checked (format as declared, no backing or
        external data file, checksum) and converted to the pool's preferred format if needed."""

    @abc.abstractmethod
    def volume_from_template(self, template: ImageInPool, pool: PoolRef, name: str,
                             size: int | None = None, full_copy: bool = False) -> VolumeResult:
        """A new volume ``name`` in ``pool`` from a template already in a pool: a linked clone
        (copy-on-write child) unless ``full_copy``; grown to ``size`` if larger than the
        template."""

    @abc.abstractmethod
    def create_volume(self, pool: PoolRef, name: str, size: int,
                      format: ImageFormat = "qcow2") -> VolumeResult:
        """A new blank sparse volume. Idempotent for an existing volume of the same size."""

    @abc.abstractmethod
    def delete_volume(self, image: ImageInPool) -> None:
        """Remove the file. A missing file is not an error."""

    @abc.abstractmethod
    def resize_volume(self, image: ImageInPool, new_size: int, shrink_ok: bool = False) -> VolumeResult:
        ...

    @abc.abstractmethod
    def volume_to_store(self, src: ImageInPool, dest: StoreRef, dest_dir: str, name: str,
                        progress: Progress | None = None) -> VolumeResult:
        """Copy a volume (flattened) to an image store as ``dest_dir/name.<fmt>``, writing
        CloudStack's ``template.properties`` beside it. ``path`` in the result is relative to
        the store root."""

    @abc.abstractmethod
    def store_to_volume(self, src: ImageOnStore, pool: PoolRef, name: str,
                        progress: Progress | None = None) -> VolumeResult:
        """Copy an image from a store into a pool as a new independent volume."""

    @abc.abstractmethod
    def iso_path(self, iso: ImageOnStore) -> str:
        """A local path the hypervisor can open for an ISO on an image store (mounting the store
        or caching a download as needed)."""

    # ---------------------------------------------------------------- heartbeats

    def write_heartbeat(self, pool: PoolRef, host_ip: str, when: float | None = None) -> None:
        """Record that the host at ``host_ip`` is alive, in file ``hb-<ip>`` on the pool, as
        CloudStack's Hyper-V agent does; neighbours read it for CheckOnHostCommand."""
        path = self.local_path(ImageInPool(pool, f"hb-{host_ip}", "raw"))
        stamp = time.time() if when is None else when
        write_atomic(Path(path), time.strftime("%Y-%m-%d@%H:%M:%S", time.gmtime(stamp)).encode("ascii"),
                     fsync=False, private=False)

    def read_heartbeat(self, pool: PoolRef, host_ip: str) -> float | None:
        """When the host at ``host_ip`` last wrote its heartbeat on the pool, or None."""
        path = self.local_path(ImageInPool(pool, f"hb-{host_ip}", "raw"))
        try:
            with open(path, encoding="ascii") as fh:
                text = fh.read(64).strip()
            return time.mktime(time.strptime(text, "%Y-%m-%d@%H:%M:%S")) - time.timezone
        except (OSError, ValueError):
            return None
