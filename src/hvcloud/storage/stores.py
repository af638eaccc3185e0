"""Image (secondary) stores as an agent sees them: which way reaches a store named on the wire.

Local and NFS stores are directories (NFS exports mounted under the data dir), served by
:class:`~hvcloud.storage.store_io.DirectoryStore`; S3 buckets by
:class:`~hvcloud.storage.s3_store.S3Store`; HTTP(S) stores by the shared download of
:mod:`hvcloud.storage.http_fetch`, with the management server's rules for URLs, redirects, sizes and
time. Every fetched image is size-limited and checked against its checksum.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from hvcloud import logs
from hvcloud.storage.backend import ImageOnStore, Progress, StoreRef
from hvcloud.storage.errors import StoreError
from hvcloud.storage.http_fetch import download
from hvcloud.storage.limits import StoreLimits
from hvcloud.storage.path_policy import PathPolicy
from hvcloud.storage.pools import CommandRunner, confine, is_mounted, run_command
from hvcloud.storage.s3_store import S3Store
from hvcloud.storage.store_io import DirectoryStore, StoreIO
from hvcloud.storage.transfer import parse_checksum

log = logs.get(__name__)


class Stores:
    def __init__(self, data_dir: Path, limits: StoreLimits | None = None,
                 runner: CommandRunner = run_command, nfs_options: str = "vers=4.1,soft,ro",
                 policy: PathPolicy | None = None) -> None:
        self.data_dir = data_dir
        self.limits = limits or StoreLimits()
        self._run = runner
        self.nfs_options = nfs_options
        #: with a policy, local stores must lie inside its store roots
        self.policy = policy

    # ---------------------------------------------------------------- file stores

    def root(self, store: StoreRef) -> Path:
        """The local directory of a local or NFS store (mounting NFS under the data dir)."""
        if store.kind == "local":
            path = store.url.removeprefix("file://")
            if not path.startswith("/"):
                raise StoreError(f"local store {store.url!r} must be an absolute path")
            return Path(path) if self.policy is None else self.policy.store(path)
        if store.kind == "nfs":
            parts = urlsplit(store.url)
            if parts.scheme != "nfs" or not parts.hostname or not parts.path.startswith("/"):
                raise StoreError(f"invalid NFS store URL {store.url!r}")
            mp = self.data_dir / "stores" / hashlib.sha256(store.url.encode()).hexdigest()[:16]
            mp.mkdir(parents=True, exist_ok=True)
            if not is_mounted(mp):
                self._run(["mount", "-t", "nfs", "-o", self.nfs_options,
                           f"{parts.hostname}:{parts.path}", str(mp)])
                log.info("store.mounted", url=store.url)
            return mp
        raise StoreError(f"{store.kind} stores have no local directory on Linux hosts")

    def local_file(self, image: ImageOnStore) -> Path:
        return confine(self.root(image.store), image.path)

    def store_io(self, store: StoreRef) -> StoreIO:
        """How to read and write files of a local, NFS or S3 store."""
        if store.kind in ("local", "nfs"):
            return DirectoryStore(self.root(store), self.limits.max_image_bytes)
        if store.kind == "s3":
            if store.s3 is None:
                raise StoreError("S3 store without S3 settings")
            return S3Store(store.s3, self.limits)
        raise StoreError(f"cannot reach a {store.kind} image store this way")

    # ---------------------------------------------------------------- reading

    def fetch(self, image: ImageOnStore, dest: Path, progress: Progress | None = None) -> int:
        """Copy the image into ``dest`` and verify its checksum; return its size."""
        checksum = parse_checksum(image.checksum)
        kind = image.store.kind
        if kind == "http":
            return download(self.http_url(image), dest, self.limits.url_policy, self.limits.download(),
                            checksum=checksum, progress=progress)
        if kind not in ("local", "nfs", "s3"):
            raise StoreError(f"{kind} image stores are not supported on Linux hosts")
        return self.store_io(image.store).get(image.path, dest, checksum=checksum, progress=progress)

    def iso_cache_file(self, iso: ImageOnStore) -> Path:
        """Where this host keeps its copy of an ISO from a store it cannot open in place."""
        cache = self.data_dir / "iso-cache"
        cache.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256(f"{iso.store.kind}\x00{iso.store.url}\x00{iso.path}".encode()).hexdigest()[:24]
        return cache / f"{key}.iso"

    def http_url(self, image: ImageOnStore) -> str:
        return image.path if "://" in image.path else urljoin(image.store.url.rstrip("/") + "/", image.path)

    # ---------------------------------------------------------------- writing

    def put_file(self, store: StoreRef, rel: str, src: Path, progress: Progress | None = None) -> None:
        self._writable(store).put(src, rel, progress)

    def put_bytes(self, store: StoreRef, rel: str, data: bytes) -> None:
        self._writable(store).put_bytes(data, rel)

    def _writable(self, store: StoreRef) -> StoreIO:
        if store.kind not in ("local", "nfs", "s3"):
            raise StoreError(f"cannot write to a {store.kind} image store")
        return self.store_io(store)
