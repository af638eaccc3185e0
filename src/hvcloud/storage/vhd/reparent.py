"""Reconnecting a differencing disk to a (moved or replaced) parent."""

from __future__ import annotations

import os
from dataclasses import replace

from hvcloud.storage.vhd import journal
from hvcloud.storage.vhd.chain import Chain
from hvcloud.storage.vhd.errors import OperationRefused, ParentMismatch, VhdError
from hvcloud.storage.vhd.image import VhdFile
from hvcloud.storage.vhd.locators import encode_locators
from hvcloud.storage.vhd.merge import rebuild
from hvcloud.storage.vhd.structs import EMPTY_LOCATOR, DiskType, ParentLocator, vhd_time


def set_parent(child: str, parent: str, *, force: bool = False) -> bool:
    """Point ``child`` at ``parent``. The parent's id must be the one the child was made from
    unless ``force`` (then the child adopts the new parent's id). Returns True when rewritten in
    place, False when the file had to be rebuilt to make room for the locators."""
    journal.recover(child)
    if os.path.abspath(child) == os.path.abspath(parent):
        raise VhdError(f"{child}: a disk cannot be its own parent")
    with Chain(parent) as pchain:
        for layer in pchain.layers:
            if os.path.samefile(layer.path, child):
                raise OperationRefused(f"{parent} descends from {child}: that would make a loop")
    with VhdFile(parent) as p:
        pid = p.footer.unique_id
        psize = p.size
        stamp = vhd_time(os.fstat(p.fd).st_mtime)
    with VhdFile(child, writable=True) as vf:
        if vf.disk_type != DiskType.DIFFERENCING or vf.header is None:
            raise OperationRefused(f"{child}: not a differencing disk")
        h = vf.header
        if pid != h.parent_id and not force:
            raise ParentMismatch(
                f"{parent} has id {pid} but {child} was made from {h.parent_id}; "
                "use --force to attach it anyway"
            )
        if psize != vf.size:
            raise OperationRefused(f"{parent} is {psize} bytes, {child} is {vf.size}: sizes must match")
        wanted = encode_locators(parent, child)
        slots = list(h.locators)
        free = [i for i, loc in enumerate(slots)]
        placed: dict[int, ParentLocator] = {}
        writes: list[tuple[int, bytes]] = []
        for platform, data in wanted:
            order = sorted(free, key=lambda i: (slots[i].platform != platform, not slots[i].used))
            for i in order:
                loc = slots[i]
                if loc.used and loc.data_offset and loc.space_bytes >= len(data):
                    placed[i] = ParentLocator(platform, loc.data_space, len(data), loc.data_offset)
                    writes.append((loc.data_offset, data.ljust(loc.space_bytes, b"\0")))
                    free.remove(i)
                    break
            else:
                break
        name = os.path.basename(parent)
        if len(placed) == len(wanted):
            new_locs = tuple(placed.get(i, EMPTY_LOCATOR) for i in range(8))
            header = replace(h, parent_id=pid, parent_timestamp=stamp, parent_name=name, locators=new_locs)
            writes.append((vf.footer.data_offset, header.pack()))
            journal.write_atomically(child, vf.fd, writes)
            in_place = True
        else:
            rebuild(vf, vf.footer, locators=wanted, parent_name=name, parent_id=pid, parent_timestamp=stamp)
            in_place = False
    with Chain(child):
        pass
    return in_place
