"""Native VHD (Virtual Hard Disk v1) library: fixed, dynamic and differencing disks.

qemu-img cannot create, check, resize or re-parent VHDs and reads differencing ones wrongly, so
all of that lives here; qemu-img is used only to convert to and from other formats.
"""

from hvcloud.storage.vhd.chain import Chain, Extent
from hvcloud.storage.vhd.convert import convert, detect_format
from hvcloud.storage.vhd.create import create_differencing, create_dynamic, create_fixed
from hvcloud.storage.vhd.errors import (
    ChainError,
    CorruptImage,
    OperationRefused,
    ParentLoop,
    ParentMismatch,
    ParentNotFound,
    UnsupportedImage,
    VhdError,
)
from hvcloud.storage.vhd.flatten import chain_to_raw, chain_to_vhd, raw_to_vhd
from hvcloud.storage.vhd.image import VhdFile
from hvcloud.storage.vhd.info import info
from hvcloud.storage.vhd.merge import compact, merge
from hvcloud.storage.vhd.reparent import set_parent
from hvcloud.storage.vhd.resize import expand
from hvcloud.storage.vhd.structs import DiskType
from hvcloud.storage.vhd.validate import Report, check

__all__ = [
    "Chain",
    "ChainError",
    "CorruptImage",
    "DiskType",
    "Extent",
    "OperationRefused",
    "ParentLoop",
    "ParentMismatch",
    "ParentNotFound",
    "Report",
    "UnsupportedImage",
    "VhdError",
    "VhdFile",
    "chain_to_raw",
    "chain_to_vhd",
    "check",
    "compact",
    "convert",
    "create_differencing",
    "create_dynamic",
    "create_fixed",
    "detect_format",
    "expand",
    "info",
    "merge",
    "raw_to_vhd",
    "set_parent",
]
