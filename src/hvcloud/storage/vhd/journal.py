"""A tiny redo journal for in-place metadata rewrites that span more than one sector (parent
change, in-place expand). The new bytes are first written to ``<disk>.hvcloud-journal`` with a
digest and fsynced; then applied to the disk and fsynced; then the journal is removed. Opening
the disk for writing replays a complete journal and discards a torn one, so an interrupted
rewrite ends as all-old or all-new."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence

from hvcloud.storage import fileio
from hvcloud.storage.vhd.errors import VhdError

SUFFIX = ".hvcloud-journal"
_MAGIC = "hvcloud-vhd-journal-1"


def journal_path(path: str) -> str:
    return path + SUFFIX


def pending(path: str) -> bool:
    return os.path.exists(journal_path(path))


def _encode(writes: Sequence[tuple[int, bytes]], truncate: int | None) -> bytes:
    body = json.dumps(
        {"magic": _MAGIC, "truncate": truncate, "writes": [[off, data.hex()] for off, data in writes]}
    ).encode()
    return hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def _decode(raw: bytes) -> tuple[list[tuple[int, bytes]], int | None] | None:
    digest, _, body = raw.partition(b"\n")
    if hashlib.sha256(body).hexdigest().encode() != digest:
        return None
    try:
        doc = json.loads(body)
        if doc.get("magic") != _MAGIC:
            return None
        return [(int(o), bytes.fromhex(h)) for o, h in doc["writes"]], doc["truncate"]
    except (ValueError, KeyError, TypeError):
        return None


def _apply(fd: int, writes: Sequence[tuple[int, bytes]], truncate: int | None) -> None:
    if truncate is not None and truncate > os.fstat(fd).st_size:
        os.ftruncate(fd, truncate)
    for off, data in writes:
        fileio.pwrite(fd, data, off)
    if truncate is not None:
        os.ftruncate(fd, truncate)
    os.fsync(fd)


def write_atomically(
    path: str, fd: int, writes: Sequence[tuple[int, bytes]], *, truncate: int | None = None
) -> None:
    """Apply ``writes`` (and an optional final length) to the open file ``fd`` all-or-nothing."""
    jp = journal_path(path)
    if os.path.exists(jp):
        raise VhdError(f"{path}: an interrupted operation left {jp}; run 'hvcloud disk check --repair'")
    jfd = fileio.open_fd(jp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(jfd, _encode(writes, truncate))
        os.fsync(jfd)
    finally:
        os.close(jfd)
    _apply(fd, writes, truncate)
    os.unlink(jp)


def recover(path: str) -> str | None:
    """Finish or discard an interrupted rewrite of ``path``; returns what was done, or None."""
    jp = journal_path(path)
    try:
        with open(jp, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    decoded = _decode(raw)
    if decoded is None:
        os.unlink(jp)
        return "discarded an incomplete journal (the disk was not touched)"
    fd = fileio.open_fd(path, os.O_RDWR)
    try:
        _apply(fd, *decoded)
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(jp)
    return "replayed an interrupted metadata update"
