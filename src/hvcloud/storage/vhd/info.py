"""``info``: what a VHD is, as a JSON-ready dict (the ``Msvm_VirtualHardDiskInfo`` fields and more)."""

from __future__ import annotations

import datetime
import os
from typing import Any

from hvcloud.storage.vhd.chain import find_parent, read_locator_data
from hvcloud.storage.vhd.errors import ChainError
from hvcloud.storage.vhd.image import VhdFile
from hvcloud.storage.vhd.locators import decode_locator
from hvcloud.storage.vhd.structs import DiskType, unix_time


def _iso(vhd_stamp: int) -> str:
    return datetime.datetime.fromtimestamp(unix_time(vhd_stamp), tz=datetime.UTC).isoformat()


def info(path: str) -> dict[str, Any]:
    with VhdFile(path) as vf:
        f = vf.footer
        out: dict[str, Any] = {
            "path": path,
            "format": "vhd",
            "type": f.disk_type.name.lower(),
            "type_code": int(f.disk_type),
            "virtual_size": f.current_size,
            "original_size": f.original_size,
            "file_size": vf.file_size,
            "allocated_bytes": os.fstat(vf.fd).st_blocks * 512,
            "unique_id": str(f.unique_id),
            "timestamp": _iso(f.timestamp),
            "creator_application": f.creator_app.decode("latin-1"),
            "creator_version": f"{f.creator_version >> 16}.{f.creator_version & 0xFFFF}",
            "creator_host_os": f.creator_host.decode("latin-1"),
            "geometry": {
                "cylinders": f.cylinders,
                "heads": f.heads,
                "sectors_per_track": f.sectors_per_track,
                "size": f.chs_size,
            },
            "saved_state": bool(f.saved_state),
            "footer_checksum": f"0x{f.checksum:08x}",
        }
        if vf.header is not None:
            h = vf.header
            out.update(
                {
                    "block_size": h.block_size,
                    "bat_entries": h.max_table_entries,
                    "allocated_blocks": vf.allocated_blocks(),
                    "header_checksum": f"0x{h.checksum:08x}",
                }
            )
        if f.disk_type == DiskType.DIFFERENCING:
            assert vf.header is not None
            h = vf.header
            data = read_locator_data(vf)
            parent: dict[str, Any] = {
                "unique_id": str(h.parent_id),
                "timestamp": _iso(h.parent_timestamp),
                "name": h.parent_name,
                "locators": [
                    {
                        "platform": loc.platform.decode("latin-1"),
                        "path": decode_locator(loc.platform, data.get(i, b"")),
                        "data_space": loc.space_bytes,
                        "data_offset": loc.data_offset,
                    }
                    for i, loc in enumerate(h.locators)
                    if loc.used
                ],
            }
            try:
                parent["path"], _ = find_parent(vf)
            except ChainError as exc:
                parent["path"] = None
                parent["error"] = str(exc)
            out["parent"] = parent
        return out
