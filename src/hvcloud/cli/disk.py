"""``hvcloud disk``: VHD/VHDX and other disk image tools."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from hvcloud.storage import qemu_img
from hvcloud.storage.errors import ImageError
from hvcloud.storage.vhd import (
    check,
    compact,
    convert,
    create_differencing,
    create_dynamic,
    create_fixed,
    detect_format,
    expand,
    info,
    journal,
    merge,
    set_parent,
)
from hvcloud.storage.vhd.floppy import create_floppy
from hvcloud.storage.vhd.mount import mount as mount_disk
from hvcloud.storage.vhd.mount import unmount as unmount_disk
from hvcloud.storage.vhd.structs import DEFAULT_BLOCK_SIZE

app = typer.Typer(
    help="Create, inspect, check, convert and repair virtual disk images.", no_args_is_help=True
)
err = Console(stderr=True)
out = Console()

_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """``10G``, ``512M``, ``1.5T``, ``4096`` (bytes); binary units."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if not m:
        raise typer.BadParameter(f"{text!r} is not a size such as 10G, 512M or 4096")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}", highlight=False)
    return typer.Exit(1)


@contextlib.contextmanager
def _progress(label: str, quiet: bool = False) -> Iterator[Callable[[int, int], None] | None]:
    if quiet:
        yield None
        return
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except (ImageError, OSError) as exc:
        raise _fail(exc) from None


@app.command()
def create(
    path: str,
    type_: Annotated[str, typer.Option("--type", "-t", help="fixed, dynamic or differencing")] = "dynamic",
    size: Annotated[str | None, typer.Option("--size", "-s", help="virtual size, e.g. 10G")] = None,
    parent: Annotated[
        str | None, typer.Option("--parent", "-p", help="parent of a differencing disk")
    ] = None,
    block_size: Annotated[str | None, typer.Option(help="dynamic block size (default 2M)")] = None,
    sparse: Annotated[
        bool, typer.Option(help="fixed: do not allocate the data (Windows refuses it)")
    ] = False,
) -> None:
    """Create a fixed, dynamic or differencing VHD."""
    with _errors():
        bs = parse_size(block_size) if block_size else None
        if type_ == "differencing":
            if not parent or size:
                raise _fail(ValueError("a differencing disk takes --parent and no --size"))
            create_differencing(path, parent, block_size=bs)
        elif type_ in ("fixed", "dynamic"):
            if not size or parent:
                raise _fail(ValueError(f"a {type_} disk takes --size and no --parent"))
            if type_ == "fixed":
                create_fixed(path, parse_size(size), sparse=sparse)
            else:
                create_dynamic(path, parse_size(size), block_size=bs or DEFAULT_BLOCK_SIZE)
        else:
            raise _fail(ValueError(f"unknown type {type_!r}: use fixed, dynamic or differencing"))
    out.print(path, highlight=False)


def _print_info(data: dict[str, Any]) -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            out.print(f"{key}:", highlight=False)
            for k, v in value.items():
                out.print(f"  {k}: {v}", highlight=False)
        else:
            out.print(f"{key}: {value}", highlight=False)


@app.command("info")
def info_cmd(path: str, as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Show what a disk image is (VHD natively, other formats through qemu-img)."""
    with _errors():
        fmt = detect_format(path)
        if fmt == "vhd":
            data = info(path)
        else:
            qi = qemu_img.info(path, fmt)
            data = {
                "path": path,
                "format": qi.format,
                "virtual_size": qi.virtual_size,
                "file_size": qi.actual_size,
                "backing_file": qi.backing_file,
            }
    if as_json:
        out.print_json(json.dumps(data))
    else:
        _print_info(data)


@app.command("check")
def check_cmd(
    path: str,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    repair: Annotated[
        bool, typer.Option(help="finish or discard an interrupted metadata update first")
    ] = False,
) -> None:
    """Validate a VHD: structures, checksums, BAT, bitmaps and the parent chain. Exit 1 on errors."""
    with _errors():
        if repair:
            done = journal.recover(path)
            if done:
                err.print(f"{path}: {done}", highlight=False)
        if detect_format(path) != "vhd":
            result = qemu_img.check(path, detect_format(path))
            ok = not result.get("corruptions") and not result.get("check-errors")
            report: dict[str, Any] = {"path": path, "ok": ok, "qemu-img": result}
        else:
            report = check(path).as_dict()
    if as_json:
        out.print_json(json.dumps(report))
    else:
        for e in report.get("errors", []):
            err.print(f"[red]error:[/red] {e}", highlight=False)
        for w in report.get("warnings", []):
            err.print(f"[yellow]warning:[/yellow] {w}", highlight=False)
        out.print(f"{path}: {'ok' if report['ok'] else 'CORRUPT'}", highlight=False)
    if not report["ok"]:
        raise typer.Exit(1)


@app.command("convert")
def convert_cmd(
    src: str,
    dst: str,
    type_: Annotated[str, typer.Option("--type", "-t", help="VHD target type: fixed or dynamic")] = "dynamic",
    src_format: Annotated[str | None, typer.Option("--from", help="source format (default: detect)")] = None,
    dst_format: Annotated[str | None, typer.Option("--to", help="target format (default: from name)")] = None,
    block_size: Annotated[str, typer.Option(help="VHD target block size")] = "2M",
    sparse: Annotated[bool, typer.Option(help="fixed VHD target: leave holes")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Convert between VHD types (flattening chains) and raw, qcow2, VHDX, VMDK."""
    with _errors(), _progress(f"convert {src}", quiet) as prog:
        convert(
            src,
            dst,
            src_format=src_format,
            dst_format=dst_format,
            vhd_type=type_,
            block_size=parse_size(block_size),
            sparse=sparse,
            progress=prog,
        )


@app.command("merge")
def merge_cmd(
    child: str,
    into: Annotated[str | None, typer.Option(help="ancestor to merge into (default: the parent)")] = None,
    keep: Annotated[bool, typer.Option(help="keep the merged differencing files")] = False,
    force: Annotated[bool, typer.Option(help="merge even if the target has other children")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Merge a differencing disk into its parent (or a higher ancestor)."""
    with _errors(), _progress(f"merge {child}", quiet) as prog:
        dest = merge(child, into=into, keep=keep, force=force, progress=prog)
    out.print(dest, highlight=False)


@app.command("compact")
def compact_cmd(path: str, quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False) -> None:
    """Drop unused blocks from a dynamic or differencing VHD (identity kept)."""
    with _errors(), _progress(f"compact {path}", quiet) as prog:
        saved = compact(path, progress=prog)
    out.print(f"{path}: {saved} bytes reclaimed", highlight=False)


@app.command("resize")
def resize_cmd(path: str, size: str) -> None:
    """Expand a fixed or dynamic VHD to SIZE (VHDs never shrink)."""
    with _errors():
        expand(path, parse_size(size))
    out.print(f"{path}: {parse_size(size)} bytes", highlight=False)


@app.command("set-parent")
def set_parent_cmd(
    child: str,
    parent: str,
    force: Annotated[bool, typer.Option(help="attach even if the parent's identity differs")] = False,
) -> None:
    """Reconnect a differencing disk to its (moved) parent."""
    with _errors():
        set_parent(child, parent, force=force)
    out.print(f"{child} -> {parent}", highlight=False)


@app.command("mount")
def mount_cmd(
    path: str,
    read_only: Annotated[bool, typer.Option("--read-only", "-r")] = False,
    mountpoint: Annotated[str | None, typer.Option(help="also mount the first partition here")] = None,
) -> None:
    """Attach a VHD as a block device (loop, qemu-nbd, or qemu-storage-daemon FUSE + loop)."""
    with _errors():
        att = mount_disk(path, read_only=read_only, mountpoint=mountpoint)
    out.print(att.device, highlight=False)


@app.command("unmount")
def unmount_cmd(path: str) -> None:
    """Detach a disk attached with ``hvcloud disk mount`` (by file or device)."""
    with _errors():
        att = unmount_disk(path)
    out.print(f"{att.device} detached", highlight=False)


@app.command("floppy")
def floppy_cmd(
    path: str,
    files: Annotated[
        list[str] | None, typer.Argument(help="files for the root directory (8.3 names)")
    ] = None,
    label: Annotated[str, typer.Option(help="volume label")] = "",
    blank: Annotated[bool, typer.Option(help="unformatted (all zeros), like Hyper-V's New-VFD")] = False,
) -> None:
    """Create a 1.44 MB floppy image (.vfd), FAT12-formatted with FILES in it."""
    with _errors():
        create_floppy(path, files=files or [], label=label, formatted=not blank)
    out.print(path, highlight=False)
