"""Merging a differencing disk into an ancestor, and compacting."""

from __future__ import annotations

import contextlib
import glob
import os
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

from hvcloud.storage import fileio
from hvcloud.storage.vhd.builder import DynamicBuilder
from hvcloud.storage.vhd.chain import Chain, Progress, read_locator_data
from hvcloud.storage.vhd.errors import ChainError, OperationRefused, VhdError
from hvcloud.storage.vhd.image import VhdFile
from hvcloud.storage.vhd.structs import SECTOR, UNALLOCATED, DiskType, Footer

#: bytes buffered per crash-consistent write transaction during a merge
MERGE_BATCH = 32 * 1024 * 1024


def other_children(parent: str, exclude: set[str]) -> list[str]:
    """VHDs beside ``parent`` (other than ``exclude``) that name it as their parent by id."""
    with VhdFile(parent) as p:
        pid = p.footer.unique_id
    out = []
    directory = os.path.dirname(os.path.abspath(parent))
    for cand in glob.glob(os.path.join(glob.escape(directory), "*")):
        if not cand.lower().endswith((".vhd", ".avhd")) or os.path.abspath(cand) in exclude:
            continue
        try:
            with VhdFile(cand) as c:
                if (
                    c.header is not None
                    and c.disk_type == DiskType.DIFFERENCING
                    and c.header.parent_id == pid
                ):
                    out.append(cand)
        except VhdError:
            continue
    return out


def merge(
    child: str,
    *,
    into: str | None = None,
    keep: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> str:
    """Write every sector that ``child`` (and the disks between it and ``into``) holds into
    ``into`` (default: the direct parent), then delete the merged files unless ``keep``.

    Each batch is a crash-consistent write into the destination and the child stays valid until
    the end, so an interrupted merge can simply be run again. Returns the destination path."""
    with Chain(child) as chain:
        if chain.top.disk_type != DiskType.DIFFERENCING:
            raise OperationRefused(f"{child}: only a differencing disk can be merged into its parent")
        paths = [os.path.abspath(vf.path) for vf in chain.layers]
        dest_index = 1 if into is None else _index_of(paths, into, child)
        dest = chain.layers[dest_index].path
        merged = set(paths[:dest_index])
        if not force:
            others = other_children(dest, merged)
            if others:
                raise OperationRefused(
                    f"{dest} has other children ({', '.join(others)}) that merging "
                    "would corrupt; use force to merge anyway"
                )
        with VhdFile(dest, writable=True) as target:
            if target.footer.saved_state:
                raise OperationRefused(f"{dest}: belongs to a saved-state VM")
            _write_batches(chain, target, dest_index, progress)
    if not keep:
        for p in paths[:dest_index]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
    return dest


def _write_batches(chain: Chain, target: VhdFile, stop: int, progress: Progress | None) -> None:
    """Every sector the layers above ``stop`` hold, into ``target`` in batches of at most
    ``MERGE_BATCH`` bytes, each one crash-consistent :meth:`VhdFile.write_sectors` call.

    Batches are applied one after the other, in order, as before; a worker thread writes batch
    k while batch k+1 is read into the second buffer, so reading overlaps with the disk."""
    buffers = []
    for _ in range(2):
        raw, first = fileio.aligned_buffer(MERGE_BATCH)
        buffers.append(memoryview(raw)[first : first + MERGE_BATCH])
    turn = held = 0
    batch: list[tuple[int, fileio.Buffer]] = []
    pending: Future[None] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vhd-merge") as pool:

        def submit() -> None:
            nonlocal pending, turn, held, batch
            if pending is not None:
                pending.result()
            pending = pool.submit(target.write_sectors, batch, direct=True)
            turn, held, batch = turn ^ 1, 0, []

        for ext in chain.extents(stop=stop, progress=progress, step=MERGE_BATCH // SECTOR):
            if ext.layer is None:
                continue
            n = ext.count * SECTOR
            if held + n > MERGE_BATCH:
                submit()
            part = buffers[turn][held : held + n]
            chain.read_extent_into(ext, part)
            batch.append((ext.start, part))
            held += n
        if batch:
            submit()
        if pending is not None:
            pending.result()


def _index_of(paths: list[str], into: str, child: str) -> int:
    want = os.path.abspath(into)
    for i, p in enumerate(paths[1:], start=1):
        if p == want or (os.path.exists(want) and os.path.samefile(p, want)):
            return i
    raise ChainError(f"{into} is not an ancestor of {child}")


def compact(path: str, *, progress: Progress | None = None) -> int:
    """Rewrite a dynamic or differencing disk without unused space: all-zero blocks (dynamic)
    or blocks with an empty bitmap (differencing) and leaked space are dropped. The disk keeps
    its id and modification time, so children stay valid. Returns bytes saved."""
    with VhdFile(path) as vf:
        if vf.header is None:
            raise OperationRefused(f"{path}: a fixed disk cannot be compacted (convert it to dynamic)")
        if vf.footer.saved_state:
            raise OperationRefused(f"{path}: belongs to a saved-state VM")
        h = vf.header
        st = os.fstat(vf.fd)
        before = vf.file_size
        locators = [
            (loc.platform, data)
            for i, loc in enumerate(h.locators)
            for data in [read_locator_data(vf).get(i)]
            if loc.used and data is not None
        ]
        db = DynamicBuilder(
            path,
            vf.footer,
            block_size=h.block_size,
            parent_id=h.parent_id,
            parent_timestamp=h.parent_timestamp,
            parent_name=h.parent_name,
            locators=locators,
            overwrite=True,
        )
        try:
            zero = bytes(h.block_size)
            nblocks = len(vf.bat)
            for i, sec in enumerate(vf.bat):
                if sec != UNALLOCATED:
                    bitmap = vf.read_bitmap(i)
                    if vf.disk_type == DiskType.DIFFERENCING:
                        if any(bitmap):
                            db.add_block(
                                i, fileio.pread(vf.fd, h.block_size, sec * SECTOR + vf.bitmap_bytes), bitmap
                            )
                    else:
                        data = fileio.pread(vf.fd, h.block_size, sec * SECTOR + vf.bitmap_bytes)
                        if data != zero:
                            db.add_block(i, data, bitmap)
                if progress:
                    progress((i + 1) * h.block_size, nblocks * h.block_size)
            db.commit()
        except BaseException:
            db.abort()
            raise
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return before - os.path.getsize(path)


def rebuild(
    vf: VhdFile,
    footer: Footer,
    *,
    locators: list[tuple[bytes, bytes]] | None = None,
    parent_name: str | None = None,
    parent_id: uuid.UUID | None = None,
    parent_timestamp: int | None = None,
) -> None:
    """Rewrite ``vf`` into a fresh layout (used when metadata must grow and cannot in place)."""
    assert vf.header is not None
    h = vf.header
    data = read_locator_data(vf)
    locs = (
        locators
        if locators is not None
        else [(loc.platform, data[i]) for i, loc in enumerate(h.locators) if loc.used and i in data]
    )
    db = DynamicBuilder(
        vf.path,
        footer,
        block_size=h.block_size,
        parent_id=parent_id or h.parent_id,
        parent_timestamp=h.parent_timestamp if parent_timestamp is None else parent_timestamp,
        parent_name=h.parent_name if parent_name is None else parent_name,
        locators=locs,
        overwrite=True,
    )
    try:
        for i, sec in enumerate(vf.bat):
            if sec != UNALLOCATED:
                db.add_block(
                    i, fileio.pread(vf.fd, h.block_size, sec * SECTOR + vf.bitmap_bytes), vf.read_bitmap(i)
                )
        db.commit()
    except BaseException:
        db.abort()
        raise
