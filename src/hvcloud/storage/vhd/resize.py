"""Expanding fixed and dynamic disks (VHD v1 never shrinks)."""

from __future__ import annotations

import os

from hvcloud.storage.vhd import journal
from hvcloud.storage.vhd.builder import check_size
from hvcloud.storage.vhd.errors import OperationRefused, VhdError
from hvcloud.storage.vhd.image import VhdFile
from hvcloud.storage.vhd.merge import rebuild
from hvcloud.storage.vhd.structs import FOOTER_SIZE, DiskType, round_up


def expand(path: str, new_size: int) -> bool:
    """Grow ``path`` to ``new_size`` bytes. Returns True when done in place, False when the file
    had to be rewritten (its BAT could not grow where it was)."""
    check_size(new_size)
    journal.recover(path)
    with VhdFile(path, writable=True) as vf:
        f = vf.footer
        if f.saved_state:
            raise OperationRefused(f"{path}: belongs to a saved-state VM")
        if vf.disk_type == DiskType.DIFFERENCING:
            raise OperationRefused(
                f"{path}: a differencing disk must keep its parent's size; expand the "
                "parent chain after merging"
            )
        if new_size < f.current_size:
            raise OperationRefused(f"{path}: cannot shrink from {f.current_size} to {new_size} bytes")
        if new_size == f.current_size:
            return True
        footer = f.with_size(new_size)
        if vf.header is None:
            old = f.current_size
            journal.write_atomically(
                path,
                vf.fd,
                [(old, bytes(FOOTER_SIZE)), (new_size, footer.pack())],
                truncate=new_size + FOOTER_SIZE,
            )
            try:
                os.posix_fallocate(vf.fd, old, new_size - old)
            except OSError as exc:
                raise VhdError(
                    f"{path}: grown, but the new space could not be allocated: {exc.strerror}"
                ) from None
            os.fsync(vf.fd)
            return True
        h = vf.header
        entries = -(-new_size // h.block_size)
        new_bat_end = h.table_offset + round_up(entries * 4)
        starts = [vf.file_size - FOOTER_SIZE]
        starts += [
            s
            for s, _, name in vf.metadata_regions()
            if name.startswith("parent locator") and s >= h.table_offset
        ]
        starts += [sec * 512 for sec in vf.bat if sec != 0xFFFFFFFF]
        if new_bat_end <= min(starts):
            from dataclasses import replace

            header = replace(h, max_table_entries=entries)
            old_end = h.table_offset + len(vf.bat) * 4
            writes = [
                (old_end, b"\xff" * (new_bat_end - old_end)),
                (f.data_offset, header.pack()),
                (0, footer.pack()),
                (vf.file_size - FOOTER_SIZE, footer.pack()),
            ]
            journal.write_atomically(path, vf.fd, writes)
            return True
        rebuild(vf, footer)
        return False
