"""``check``: every structural rule of the format, the chain, and the softer warnings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from hvcloud.storage.vhd import journal
from hvcloud.storage.vhd.chain import Chain, read_locator_data
from hvcloud.storage.vhd.errors import VhdError
from hvcloud.storage.vhd.image import VhdFile
from hvcloud.storage.vhd.locators import decode_locator
from hvcloud.storage.vhd.structs import (
    FEATURES_RESERVED,
    FOOTER_SIZE,
    NO_OFFSET,
    SECTOR,
    UNALLOCATED,
    DiskType,
)

#: creators whose images qemu < 10 and Virtual PC size by CHS rather than current_size
CHS_CREATORS = (b"vpc ", b"qemu", b"vs  ")


@dataclass
class Report:
    path: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    chain: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "errors": self.errors,
            "warnings": self.warnings,
            "chain": self.chain,
        }


def check(path: str, *, check_chain: bool = True) -> Report:
    """Validate ``path`` (read-only: the file is never modified)."""
    report = Report(path)
    if journal.pending(path):
        report.errors.append(
            f"an interrupted update left {journal.journal_path(path)}; run 'hvcloud disk check --repair'"
        )
    try:
        vf = VhdFile(path)
    except VhdError as exc:
        report.errors.append(str(exc))
        return report
    with vf:
        _soft_checks(vf, report)
    if check_chain and vf.disk_type == DiskType.DIFFERENCING:
        try:
            with Chain(path, warn=report.warnings.append) as chain:
                report.chain = [layer.path for layer in chain.layers]
        except VhdError as exc:
            report.errors.append(str(exc))
    else:
        report.chain = [path]
    return report


def _soft_checks(vf: VhdFile, report: Report) -> None:
    f = vf.footer
    if not f.features & FEATURES_RESERVED:
        report.warnings.append("footer features lack the reserved bit 0x2")
    if f.saved_state:
        report.warnings.append("the disk belongs to a saved-state VM: compact and expand are refused")
    if f.creator_app in CHS_CREATORS and f.chs_size != f.current_size:
        report.warnings.append(
            f"creator {f.creator_app.decode('latin-1')!r} with CHS size {f.chs_size} != "
            f"current size {f.current_size}: Virtual PC and qemu < 10 see {f.chs_size} bytes"
        )
    if vf.header is None:
        return
    h = vf.header
    if f.data_offset != FOOTER_SIZE:
        report.warnings.append(f"dynamic header at {f.data_offset} instead of 512")
    if h.data_offset != NO_OFFSET:
        report.warnings.append("dynamic header data offset is not 0xFFFFFFFFFFFFFFFF")
    need = -(-f.current_size // h.block_size)
    if h.max_table_entries != need:
        report.warnings.append(f"BAT has {h.max_table_entries} entries, the size needs {need}")
    leaked = vf.file_size - FOOTER_SIZE - vf.data_end
    if leaked > 0:
        report.warnings.append(
            f"{leaked} bytes after the last block are unused (an interrupted write?); compact reclaims them"
        )
    spb = vf.sectors_per_block
    tail = vf.sectors - (need - 1) * spb
    for i, sec in enumerate(vf.bat):
        if sec == UNALLOCATED:
            continue
        bitmap = vf.read_bitmap(i)
        if f.disk_type == DiskType.DIFFERENCING and not any(bitmap):
            report.warnings.append(f"block {i} is allocated with an empty bitmap (compact drops it)")
        if i == need - 1 and tail < spb and _any_bit_from(bitmap, tail, spb):
            report.warnings.append(f"block {i} has bitmap bits set past the end of the disk")
    if f.disk_type == DiskType.DIFFERENCING:
        data = read_locator_data(vf)
        for i, loc in enumerate(h.locators):
            if loc.used and i in data and decode_locator(loc.platform, data[i]) is None:
                report.warnings.append(f"parent locator {i} ({loc.platform!r}) cannot be decoded")
            if loc.used and loc.data_offset % SECTOR:
                report.errors.append(f"parent locator {i} data is not sector-aligned")
    if not os.access(vf.path, os.R_OK):
        report.errors.append("file is not readable")


def _any_bit_from(bitmap: bytes, first: int, end: int) -> bool:
    return any(bitmap[i >> 3] & (0x80 >> (i & 7)) for i in range(first, end))
