"""Creating fixed, dynamic and differencing disks."""

from __future__ import annotations

import os

from hvcloud.storage.vhd.builder import DynamicBuilder, FixedBuilder, check_block_size, check_size
from hvcloud.storage.vhd.errors import VhdError
from hvcloud.storage.vhd.image import VhdFile
from hvcloud.storage.vhd.locators import encode_locators
from hvcloud.storage.vhd.structs import DEFAULT_BLOCK_SIZE, DiskType, new_footer, vhd_time


def create_fixed(path: str, size: int, *, sparse: bool = False, overwrite: bool = False) -> None:
    """A fixed disk of ``size`` bytes; fully allocated unless ``sparse`` (Windows refuses sparse ones)."""
    FixedBuilder(path, size, sparse=sparse, overwrite=overwrite).commit()


def create_dynamic(
    path: str, size: int, *, block_size: int = DEFAULT_BLOCK_SIZE, overwrite: bool = False
) -> None:
    check_size(size)
    check_block_size(block_size)
    DynamicBuilder(
        path, new_footer(DiskType.DYNAMIC, size), block_size=block_size, overwrite=overwrite
    ).commit()


def create_differencing(
    path: str, parent: str, *, block_size: int | None = None, overwrite: bool = False
) -> None:
    """A child of ``parent`` (any VHD type), with the parent's size and geometry, its id and
    modification time, its file name, and W2ru/W2ku/MacX locators."""
    if os.path.abspath(path) == os.path.abspath(parent):
        raise VhdError(f"{path}: a disk cannot be its own parent")
    with VhdFile(parent) as p:
        size = p.size
        bs = block_size or p.block_size or DEFAULT_BLOCK_SIZE
        parent_id = p.footer.unique_id
        stamp = vhd_time(os.fstat(p.fd).st_mtime)
        geometry = (p.footer.cylinders, p.footer.heads, p.footer.sectors_per_track)
    footer = new_footer(DiskType.DIFFERENCING, size)
    from dataclasses import replace

    footer = replace(footer, cylinders=geometry[0], heads=geometry[1], sectors_per_track=geometry[2])
    DynamicBuilder(
        path,
        footer,
        block_size=bs,
        parent_id=parent_id,
        parent_timestamp=stamp,
        parent_name=os.path.basename(parent),
        locators=encode_locators(parent, path),
        overwrite=overwrite,
    ).commit()
