"""Files on an image store, by their path relative to the store root
(``template/tmpl/<account>/<template>/<file>``): the one way the management server and the agents
read, write and delete them. :class:`DirectoryStore` serves stores reachable as a directory (local,
NFS or SMB mounts); :class:`hvcloud.storage.s3_store.S3Store` serves S3 buckets.

Reads are bounded by the size limit and verified against the checksum; writes appear whole or not
at all (a hidden ``.part`` file, flushed, then renamed); relative paths from the wire or the
database are confined to the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from hvcloud.storage.backend import Progress
from hvcloud.storage.errors import StoreError
from hvcloud.storage.pools import confine
from hvcloud.storage.transfer import Checksum, copy_checked, part_file, replace_atomically


class StoreIO(Protocol):
    def get(self, rel: str, dest: Path, *, checksum: Checksum | None = None,
            progress: Progress | None = None) -> int:
        """Copy the file ``rel`` into ``dest`` (created or truncated); return its size."""

    def put(self, src: Path, rel: str, progress: Progress | None = None) -> None: ...

    def put_bytes(self, data: bytes, rel: str) -> None: ...

    def delete(self, rel: str) -> None:
        """Remove ``rel``; a missing file is not an error."""


class DirectoryStore:
    """A store reachable as a directory on this machine."""

    def __init__(self, root: Path, max_bytes: int | None = None) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path(self, rel: str) -> Path:
        """The real path of ``rel`` inside the store; raises PathOutsidePool or StoreError."""
        if not self.root.is_dir():
            raise StoreError(f"the image store directory {self.root} is not available on this host")
        return confine(self.root, rel)

    def get(self, rel: str, dest: Path, *, checksum: Checksum | None = None,
            progress: Progress | None = None) -> int:
        src = self.path(rel)
        if not src.is_file():
            raise StoreError(f"{rel} does not exist on the image store")
        return copy_checked(src, dest, what=rel, max_bytes=self.max_bytes, checksum=checksum, progress=progress)

    def put(self, src: Path, rel: str, progress: Progress | None = None) -> None:
        self._write(rel, src)

    def put_bytes(self, data: bytes, rel: str) -> None:
        self._write(rel, data)

    def _write(self, rel: str, content: Path | bytes) -> None:
        self.path(rel).parent.mkdir(parents=True, exist_ok=True)
        replace_atomically(self.path(rel), content)  # confined again, now that the directories exist

    def delete(self, rel: str) -> None:
        path = self.path(rel)
        path.unlink(missing_ok=True)
        part_file(path).unlink(missing_ok=True)
        root = self.root.resolve()
        parent = path.parent
        while parent != root and parent.is_relative_to(root):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
