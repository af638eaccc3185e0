"""The one place hvcloud runs ``qemu-img``: argument lists only, typed results, clear errors.

Every call names the image format explicitly (``-f``) so that qemu-img never probes a format from
untrusted bytes, and ``info`` is run with ``--output=json`` and parsed here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hvcloud.storage.errors import ImageError

QEMU_IMG = "qemu-img"

#: hvcloud format names → qemu-img driver names
QEMU_FORMAT = {"qcow2": "qcow2", "raw": "raw", "vhd": "vpc", "vpc": "vpc", "vhdx": "vhdx", "iso": "raw"}


class QemuImgError(ImageError):
    """qemu-img failed; the message carries its stderr."""


@dataclass(frozen=True)
class ImageInfo:
    format: str
    virtual_size: int
    actual_size: int
    backing_file: str | None
    backing_format: str | None
    data_file: str | None
    dirty: bool
    raw: dict[str, Any]


def available() -> bool:
    return shutil.which(QEMU_IMG) is not None


def qemu_format(fmt: str) -> str:
    try:
        return QEMU_FORMAT[fmt.lower()]
    except KeyError:
        raise ImageError(f"unknown disk format {fmt!r}") from None


def run(args: Sequence[str], *, timeout: float | None = None) -> str:
    """Run qemu-img with ``args`` and return stdout; raise QemuImgError with stderr on failure."""
    cmd = [QEMU_IMG, *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    except FileNotFoundError:
        raise QemuImgError("qemu-img is not installed") from None
    except subprocess.TimeoutExpired:
        raise QemuImgError(f"qemu-img {args[0]} timed out after {timeout} s") from None
    if proc.returncode != 0:
        msg = proc.stderr.strip() or proc.stdout.strip() or f"exit status {proc.returncode}"
        raise QemuImgError(f"qemu-img {args[0]} failed: {msg}")
    return proc.stdout


def info(path: str, fmt: str, *, timeout: float = 60) -> ImageInfo:
    """``qemu-img info`` with an explicit format, never following a backing chain."""
    out = run(["info", "--output=json", "-f", qemu_format(fmt), path], timeout=timeout)
    try:
        data = json.loads(out)
    except json.JSONDecodeError as exc:
        raise QemuImgError(f"qemu-img info printed invalid JSON: {exc}") from None
    fmt_specific = data.get("format-specific", {}).get("data", {})
    return ImageInfo(
        format=str(data.get("format", "")),
        virtual_size=int(data.get("virtual-size", 0)),
        actual_size=int(data.get("actual-size", 0)),
        backing_file=data.get("backing-filename") or data.get("full-backing-filename"),
        backing_format=data.get("backing-filename-format"),
        data_file=fmt_specific.get("data-file"),
        dirty=bool(data.get("dirty-flag", False)),
        raw=data,
    )


def create(path: str, fmt: str, size: int | None = None, *, backing: str | None = None,
           backing_fmt: str | None = None, options: Sequence[str] = ()) -> None:
    args = ["create", "-q", "-f", qemu_format(fmt)]
    if backing is not None:
        if backing_fmt is None:
            raise ImageError("a backing file needs an explicit backing format")
        args += ["-b", backing, "-F", qemu_format(backing_fmt)]
    for opt in options:
        args += ["-o", opt]
    args.append(path)
    if size is not None:
        args.append(str(size))
    run(args)


def convert(src: str, src_fmt: str, dst: str, dst_fmt: str, *, options: Sequence[str] = (),
            timeout: float | None = None) -> None:
    args = ["convert", "-q", "-f", qemu_format(src_fmt), "-O", qemu_format(dst_fmt)]
    for opt in options:
        args += ["-o", opt]
    run([*args, src, dst], timeout=timeout)


def resize(path: str, fmt: str, size: int, *, shrink: bool = False) -> None:
    run(["resize", "-q", *(["--shrink"] if shrink else []), "-f", qemu_format(fmt), path, str(size)])


def data_end(path: str, fmt: str, *, timeout: float = 300) -> int:
    """Where the image's last extent holding data ends, in guest bytes (``qemu-img map``, backing
    chain included): shrinking the image below it would cut data off. 0 for an image without data."""
    out = run(["map", "--output=json", "-f", qemu_format(fmt), path], timeout=timeout)
    try:
        extents = json.loads(out)
        return max((int(e["start"]) + int(e["length"]) for e in extents if e.get("data")), default=0)
    except (json.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
        raise QemuImgError(f"qemu-img map printed an unexpected answer: {exc}") from None


def check(path: str, fmt: str) -> dict[str, Any]:
    """``qemu-img check --output=json``; qemu-img exits 2/3 for corruption/leaks, reported here."""
    cmd = [QEMU_IMG, "check", "--output=json", "-f", qemu_format(fmt), path]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode not in (0, 2, 3):
        raise QemuImgError(f"qemu-img check failed: {proc.stderr.strip()}")
    try:
        result: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise QemuImgError(f"qemu-img check printed invalid JSON: {proc.stderr.strip()}") from None
    return result


def compare(a: str, a_fmt: str, b: str, b_fmt: str) -> bool:
    """True when both images have the same guest-visible content."""
    cmd = [QEMU_IMG, "compare", "-q", "-f", qemu_format(a_fmt), "-F", qemu_format(b_fmt), a, b]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode in (0, 1):
        return proc.returncode == 0
    raise QemuImgError(f"qemu-img compare failed: {proc.stderr.strip()}")
