"""Moving image bytes: checksums in CloudStack's forms, bounded copies, progress in the logs, and
files that appear on a store whole or not at all.

CloudStack sends checksums as ``{ALGO}hex`` (``{MD5}…``, ``{SHA-1}…``, ``{SHA-256}…``,
``{SHA-384}…``, ``{SHA-512}…``) or, for older templates, a bare hex MD5.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hvcloud import logs
from hvcloud.storage.backend import Progress
from hvcloud.storage.errors import ChecksumMismatch, SizeLimitExceeded, StoreError
from hvcloud.storage.fileio import fsync_dir

log = logs.get(__name__)

CHUNK = 1 << 20
#: images are tenants' data: no other local user may read them (qemu runs as root)
PRIVATE_FILE = 0o600
_ALGOS = {"MD5": "md5", "SHA-1": "sha1", "SHA1": "sha1", "SHA-224": "sha224", "SHA-256": "sha256",
          "SHA256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512", "SHA512": "sha512"}
_PLAIN_BY_LEN = {32: "md5", 40: "sha1", 64: "sha256", 96: "sha384", 128: "sha512"}
_BRACED = re.compile(r"^\{([A-Za-z0-9-]{2,10})\}([0-9a-fA-F]+)$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    hexdigest: str

    def new(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)

    def matches(self, hexdigest: str) -> bool:
        return hexdigest.lower() == self.hexdigest


def parse_checksum(text: str | None) -> Checksum | None:
    """None for an empty checksum; StoreError for one that is malformed or of an unknown kind."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if len(text) > 160:
        raise StoreError("checksum is too long")
    m = _BRACED.match(text)
    if m:
        algo = _ALGOS.get(m.group(1).upper())
        if algo is None:
            raise StoreError(f"unknown checksum algorithm {m.group(1)!r}")
        digest = m.group(2).lower()
    elif _HEX.match(text):
        digest = text.lower()
        algo = _PLAIN_BY_LEN.get(len(digest), "")
        if not algo:
            raise StoreError(f"a bare checksum of {len(digest)} hex digits matches no algorithm")
    else:
        raise StoreError("malformed checksum; expected {ALGO}hex or a hex MD5")
    if len(digest) != hashlib.new(algo).digest_size * 2:
        raise StoreError(f"{algo} checksum has the wrong length")
    return Checksum(algo, digest)


class ProgressLog:
    """Logs a transfer's progress every ``interval`` seconds, and forwards to a callback."""

    def __init__(self, what: str, total: int | None, callback: Progress | None = None,
                 interval: float = 2.0) -> None:
        self.what, self.total, self.callback, self.interval = what, total, callback, interval
        self.done = 0
        self._start = self._last = time.monotonic()

    def __call__(self, n: int) -> None:
        self.done += n
        if self.callback is not None:
            self.callback(self.done, self.total)
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._log("transfer.progress", now)

    def finish(self) -> None:
        self._log("transfer.done", time.monotonic())

    def _log(self, event: str, now: float) -> None:
        elapsed = max(now - self._start, 1e-6)
        pct = round(100.0 * self.done / self.total, 1) if self.total else None
        log.info(event, what=self.what, bytes=self.done, total=self.total, percent=pct,
                 mib_per_s=round(self.done / elapsed / 2**20, 1))


def check_size(size: int | None, max_bytes: int | None) -> None:
    """Refuse an image whose announced size is over the limit, before any byte moves."""
    if size is not None and max_bytes is not None and size > max_bytes:
        raise SizeLimitExceeded(f"the image is {size} bytes, larger than the size limit of {max_bytes} bytes")


def write_chunks(chunks: Iterable[bytes], dest: BinaryIO, *, max_bytes: int | None,
                 progress: ProgressLog | None = None, checksum: Checksum | None = None) -> int:
    """Write ``chunks`` to ``dest``, refusing more than ``max_bytes``; verify ``checksum``."""
    h = checksum.new() if checksum else None
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise SizeLimitExceeded(f"the image is larger than the size limit of {max_bytes} bytes")
        dest.write(chunk)
        if h is not None:
            h.update(chunk)
        if progress is not None:
            progress(len(chunk))
    if progress is not None:
        progress.finish()
    if h is not None and checksum is not None and h.hexdigest() != checksum.hexdigest:
        raise ChecksumMismatch(f"checksum mismatch: expected {checksum.algorithm} "
                               f"{checksum.hexdigest}, got {h.hexdigest()}")
    return total


def copy_checked(src: Path, dest: Path, *, what: str, max_bytes: int | None,
                 checksum: Checksum | None = None, progress: Progress | None = None) -> int:
    """Copy the file ``src`` to ``dest`` (created or truncated) within the size limit, with
    progress, verifying ``checksum``; return the size."""
    size = src.stat().st_size
    check_size(size, max_bytes)
    with open(dest, "wb") as out:
        return write_chunks(file_chunks(src), out, max_bytes=max_bytes,
                            progress=ProgressLog(what, size, progress), checksum=checksum)


def part_file(dest: Path) -> Path:
    """The hidden sibling a file is written to before it takes its name."""
    return dest.with_name(f".{dest.name}.part")


def replace_atomically(dest: Path, content: Path | bytes) -> None:
    """Give ``dest`` the bytes of the file or buffer ``content`` so that readers see the old file
    or the whole new one: written to :func:`part_file`, flushed to disk, then renamed."""
    tmp = part_file(dest)
    try:
        with open(tmp, "wb", opener=_private) as out:
            os.fchmod(out.fileno(), PRIVATE_FILE)
            if isinstance(content, bytes):
                out.write(content)
            else:
                with open(content, "rb") as src:
                    shutil.copyfileobj(src, out, 4 * CHUNK)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(str(dest.parent))


@contextlib.contextmanager
def staged(dest: Path) -> Iterator[Path]:
    """A path in a private directory beside ``dest`` to build a file in (fetch, check, convert;
    the block may put scratch files beside it); when the block ends normally the file takes
    ``dest``'s name in one rename, and however it ends, nothing else is left behind."""
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".hvcloud-dl-") as tmp:
        part = Path(tmp) / "staged"
        yield part
        os.chmod(part, PRIVATE_FILE)
        os.replace(part, dest)


def _private(path: str, flags: int) -> int:
    """``open`` opener creating files readable by their owner only."""
    return os.open(path, flags, PRIVATE_FILE)


def file_chunks(path: Path, chunk: int = CHUNK) -> Iterable[bytes]:
    with open(path, "rb") as f:
        while True:
            data = f.read(chunk)
            if not data:
                return
            yield data


def verify_file(path: Path, checksum: Checksum | None) -> None:
    if checksum is None:
        return
    h = checksum.new()
    for data in file_chunks(path, 4 * CHUNK):
        h.update(data)
    if h.hexdigest() != checksum.hexdigest:
        raise ChecksumMismatch(f"checksum mismatch for {path.name}: expected {checksum.algorithm} "
                               f"{checksum.hexdigest}, got {h.hexdigest()}")
