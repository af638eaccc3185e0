"""A VHD and its ancestors as one disk: the reader that resolves differencing chains, and the
writer that applies guest writes to the top file."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType

from hvcloud import logs
from hvcloud.storage import fileio
from hvcloud.storage.vhd.errors import ChainError, CorruptImage, ParentLoop, ParentMismatch, ParentNotFound, VhdError
from hvcloud.storage.vhd.image import VhdFile
from hvcloud.storage.vhd.locators import candidate_paths
from hvcloud.storage.vhd.structs import SECTOR, DiskType, vhd_time

log = logs.get(__name__)

MAX_DEPTH = 64
#: unit of streaming work; bounds memory of every bulk operation
CHUNK = 8 * 1024 * 1024

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Extent:
    """``count`` sectors from virtual ``start``: in chain layer ``layer`` or zero (layer None)."""

    start: int
    count: int
    layer: int | None


def read_locator_data(vf: VhdFile) -> dict[int, bytes]:
    assert vf.header is not None
    out: dict[int, bytes] = {}
    for i, loc in enumerate(vf.header.locators):
        if loc.used and 0 < loc.data_length <= 65536:
            out[i] = fileio.pread(vf.fd, loc.data_length, loc.data_offset)
    return out


def find_parent(vf: VhdFile) -> tuple[str, list[str]]:
    """Path of the parent file of differencing ``vf`` (first candidate that exists), and all
    candidates tried."""
    assert vf.header is not None
    cands = candidate_paths(vf.path, vf.header, read_locator_data(vf))
    for c in cands:
        if os.path.isfile(c):
            return c, cands
    raise ParentNotFound(f"{vf.path}: parent {vf.header.parent_name!r} not found (tried: {', '.join(cands)})")


class Chain:
    """``layers[0]`` is the file opened; each next one is the previous one's parent."""

    def __init__(
        self,
        path: str,
        *,
        writable: bool = False,
        check_identity: bool = True,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.layers: list[VhdFile] = []
        self.warnings: list[str] = []
        self._warn = warn
        seen: set[tuple[int, int]] = set()
        current = path
        try:
            while True:
                vf = VhdFile(current, writable=writable and not self.layers)
                self.layers.append(vf)
                st = os.fstat(vf.fd)
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    raise ParentLoop(f"{path}: differencing chain loops back to {current}")
                seen.add(key)
                if vf.disk_type != DiskType.DIFFERENCING:
                    break
                if len(self.layers) > MAX_DEPTH:
                    raise ChainError(f"{path}: differencing chain deeper than {MAX_DEPTH}")
                parent_path, _ = find_parent(vf)
                parent = VhdFile(parent_path)
                try:
                    self._check_parent(vf, parent, check_identity)
                finally:
                    parent.close()
                current = parent_path
        except BaseException:
            self.close()
            raise

    def _check_parent(self, child: VhdFile, parent: VhdFile, check_identity: bool) -> None:
        assert child.header is not None
        if parent.footer.unique_id != child.header.parent_id:
            msg = (
                f"{child.path}: parent {parent.path} has id {parent.footer.unique_id}, the child expects "
                f"{child.header.parent_id}"
            )
            if check_identity:
                raise ParentMismatch(msg)
            self._note(msg)
        if parent.size != child.size:
            raise ChainError(
                f"{child.path}: size {child.size} differs from parent {parent.path} ({parent.size})"
            )
        stamp = vhd_time(os.fstat(parent.fd).st_mtime)
        if child.header.parent_timestamp not in (0, stamp):
            self._note(
                f"{child.path}: parent {parent.path} was modified after the child was made "
                f"(time stamp {child.header.parent_timestamp}, parent now {stamp})"
            )

    def _note(self, msg: str) -> None:
        self.warnings.append(msg)
        log.warning("vhd chain warning", detail=msg)
        if self._warn:
            self._warn(msg)

    @property
    def top(self) -> VhdFile:
        return self.layers[0]

    @property
    def size(self) -> int:
        return self.top.size

    def close(self) -> None:
        for vf in self.layers:
            vf.close()

    def __enter__(self) -> Chain:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------
    def resolve(self, start: int, count: int, *, stop: int | None = None) -> list[Extent]:
        """Which layer holds each of ``count`` sectors from ``start``. Layers from ``stop`` on are
        not consulted (their sectors come back as layer None)."""
        last = len(self.layers) if stop is None else stop
        pending = [(start, count)]
        found: list[Extent] = []
        for li in range(last):
            vf = self.layers[li]
            base = vf.disk_type != DiskType.DIFFERENCING
            nxt: list[tuple[int, int]] = []
            for s, n in pending:
                for r in vf.runs(s, n):
                    if r.present:
                        found.append(Extent(r.start, r.count, li))
                    elif base:
                        found.append(Extent(r.start, r.count, None))
                    else:
                        nxt.append((r.start, r.count))
            pending = nxt
            if not pending:
                break
        found.extend(Extent(s, n, None) for s, n in pending)
        found.sort(key=lambda e: e.start)
        return _merge_extents(found)

    def extents(
        self, *, stop: int | None = None, progress: Progress | None = None, step: int = CHUNK // SECTOR
    ) -> Iterator[Extent]:
        """Every extent of the disk in order, in pieces of at most one block (or ``step``)."""
        total = self.top.sectors
        s = 0
        while s < total:
            n = min(step, total - s)
            yield from self.resolve(s, n, stop=stop)
            s += n
            if progress:
                progress(s * SECTOR, total * SECTOR)

    def read_extent(self, e: Extent) -> bytes:
        if e.layer is None:
            return bytes(e.count * SECTOR)
        return self.layers[e.layer].read_present(e.start, e.count)

    def read_into(self, start: int, view: memoryview) -> bool:
        """Guest sectors from ``start`` into ``view`` (a whole number of sectors), without
        allocating. Returns False, leaving ``view`` untouched, when no layer holds any of them."""
        extents = self.resolve(start, len(view) // SECTOR)
        if all(e.layer is None for e in extents):
            return False
        for e in extents:
            first = (e.start - start) * SECTOR
            self.read_extent_into(e, view[first : first + e.count * SECTOR])
        return True

    def read_extent_into(self, e: Extent, view: memoryview) -> None:
        """The sectors of ``e`` into ``view`` (exactly their length)."""
        if e.layer is None:
            view[:] = bytes(len(view))
            return
        layer = self.layers[e.layer]
        for sector, count, at in layer.pieces(e.start, e.count):
            first = (sector - e.start) * SECTOR
            part = view[first : first + count * SECTOR]
            if fileio.pread_into(layer.fd, part, at) != len(part):
                raise CorruptImage(f"{layer.path}: data of sector {sector} lies past the end of the file")

    def read(self, offset: int, length: int) -> bytes:
        """Guest bytes ``offset``..``offset+length`` (clipped to the disk)."""
        if offset < 0 or length < 0:
            raise VhdError("negative offset or length")
        end = min(offset + length, self.size)
        if end <= offset:
            return b""
        first, last = offset // SECTOR, -(-end // SECTOR)
        buf = b"".join(self.read_extent(e) for e in self.resolve(first, last - first))
        skip = offset - first * SECTOR
        return buf[skip : skip + end - offset]

    # -- writing -----------------------------------------------------------------------------
    def write(self, offset: int, data: bytes, *, durable: bool = True) -> None:
        """Guest write into the top file; partial sectors are completed from the chain."""
        if offset < 0 or offset + len(data) > self.size:
            raise VhdError(f"write of {len(data)} bytes at {offset} is outside the {self.size}-byte disk")
        if not data:
            return
        first = offset // SECTOR
        end = offset + len(data)
        last = -(-end // SECTOR)
        head = offset - first * SECTOR
        tail = last * SECTOR - end
        if head or tail:
            old = self.read(first * SECTOR, (last - first) * SECTOR)
            data = old[:head] + data + old[len(old) - tail :]
        self.top.write_sectors([(first, data)], durable=durable)


def _merge_extents(extents: list[Extent]) -> list[Extent]:
    out: list[Extent] = []
    for e in extents:
        if out and out[-1].layer == e.layer and out[-1].start + out[-1].count == e.start:
            out[-1] = Extent(out[-1].start, out[-1].count + e.count, e.layer)
        else:
            out.append(e)
    return out
