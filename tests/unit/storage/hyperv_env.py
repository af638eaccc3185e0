"""A Hyper-V host's storage on Linux: ``E:\\`` and ``\\\\srv\\share`` mapped onto temp directories,
and the strict WMI model wired to make the disks its image management service creates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any

from hvcloud.hypervisor.hyperv import HyperVDriver, schema
from hvcloud.hypervisor.hyperv.jobs import Clock
from hvcloud.storage import vhd, vhdx
from hvcloud.storage.hyperv import HyperVStorageBackend, PathMap
from hvcloud.storage.hyperv.winpath import relpath
from tests.support.hyperv_fake import HyperVModel


@dataclass
class FakeTime:
    t: float = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.001)


def disk_writer(paths: PathMap) -> Callable[[str, dict[str, Any]], None]:
    """What Hyper-V does to the file system when an IMS job runs, done with our writers."""

    def write(op: str, sd: dict[str, Any]) -> None:
        win = PureWindowsPath(sd["Path"])
        local = paths.local(win)
        if op == "resize":
            if win.suffix.lower() == ".vhdx":
                vhdx.set_virtual_size(local, sd["MaxInternalSize"])
            else:
                vhd.expand(str(local), sd["MaxInternalSize"])
            return
        if sd["Type"] == 4:
            parent_win = PureWindowsPath(sd["ParentPath"])
            parent = paths.local(parent_win)
            if sd["Format"] == 3:
                vhdx.create_differencing(local, parent, absolute_win32_path=str(parent_win),
                                         relative_path=relpath(parent_win, win.parent))
            else:
                vhd.create_differencing(str(local), str(parent))
        elif sd["Format"] == 3:
            vhdx.create_dynamic(local, sd["MaxInternalSize"])
        else:
            vhd.create_dynamic(str(local), sd["MaxInternalSize"])

    return write


@dataclass
class HyperVHost:
    root: Path
    paths: PathMap
    model: HyperVModel
    driver: HyperVDriver
    storage: HyperVStorageBackend

    def local(self, win: str) -> Path:
        return self.paths.local(PureWindowsPath(win))


def make_host(tmp: Path, *, with_ims: bool = True, native_vhd: bool = True) -> HyperVHost:
    (tmp / "e").mkdir()
    (tmp / "share").mkdir()
    (tmp / "secondary").mkdir()
    paths = PathMap({"E:\\": tmp / "e", "\\\\srv\\share": tmp / "share",
                     "\\\\10.1.1.1\\secondary": tmp / "secondary"})
    model = HyperVModel()
    model.host_files = lambda p: _exists(paths, p)
    model.disk_writer = disk_writer(paths)
    clock = FakeTime()
    driver = HyperVDriver(model.connection(schema.V2), model.connection(schema.CIMV2),
                          console_host="10.0.0.10", job_timeout=30.0,
                          clock=Clock(now=clock.now, sleep=clock.sleep))
    storage = HyperVStorageBackend(tmp / "data", paths=paths,
                                   disks=driver.image_management() if with_ims else None,
                                   native_vhd=native_vhd)
    return HyperVHost(tmp, paths, model, driver, storage)


def _exists(paths: PathMap, path: str) -> bool:
    try:
        return paths.local(PureWindowsPath(path)).is_file()
    except Exception:
        return False


def template_bytes(size: int) -> list[tuple[int, bytes]]:
    """Recognisable data at the start, in the middle and at the end of a disk."""
    return [(0, b"\xeb\x3c\x90MSDOS5.0" + bytes(500) + b"\x55\xaa"),
            (size // 2, b"middle-of-template" * 100),
            (size - 4096, b"E" * 4096)]


def write_vhd_template(path: Path, size: int, *, fixed: bool = False) -> bytes:
    """A VHD with :func:`template_bytes` written; returns its whole guest-visible content."""
    if fixed:
        vhd.create_fixed(str(path), size, sparse=True)
    else:
        vhd.create_dynamic(str(path), size)
    with vhd.Chain(str(path), writable=True) as c:
        for off, data in template_bytes(size):
            c.write(off, data)
        return c.read(0, size)
