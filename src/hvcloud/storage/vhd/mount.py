"""Attaching a VHD to this host as a block device, and detaching it.

Preference order: a fixed VHD is its own raw data, so a loop device limited to the data size is
enough; otherwise ``qemu-nbd`` when the nbd module is present; otherwise a ``qemu-storage-daemon``
FUSE export (the disk seen as a raw file) behind a loop device. A differencing chain is never
handed to qemu: it is flattened natively into a sparse raw file first and attached read-only.
State lives in a small registry so ``unmount`` undoes exactly what ``mount`` did.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hvcloud.storage.vhd.chain import Progress
from hvcloud.storage.vhd.errors import VhdError
from hvcloud.storage.vhd.flatten import chain_to_raw
from hvcloud.storage.vhd.image import VhdFile
from hvcloud.storage.vhd.structs import DiskType

STATE_DIR = Path(os.environ.get("HVCLOUD_MOUNT_STATE", "/run/hvcloud/disk-mounts"))


class MountError(VhdError):
    pass


@dataclass
class Attachment:
    path: str
    device: str
    method: str
    read_only: bool
    mountpoint: str | None = None
    daemon_pid: int | None = None
    fuse_file: str | None = None
    temp_raw: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _run(cmd: Sequence[str], what: str, timeout: float = 60) -> str:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    except FileNotFoundError:
        raise MountError(f"{what}: {cmd[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise MountError(f"{what}: {cmd[0]} timed out") from None
    if proc.returncode != 0:
        raise MountError(f"{what} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip()


def _state_file(path: str) -> Path:
    return STATE_DIR / (hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:24] + ".json")


def nbd_available() -> bool:
    return shutil.which("qemu-nbd") is not None and os.path.exists("/dev/nbd0")


def fuse_available() -> bool:
    return (
        shutil.which("qemu-storage-daemon") is not None
        and os.path.exists("/dev/fuse")
        and shutil.which("losetup") is not None
    )


def loop_available() -> bool:
    return shutil.which("losetup") is not None and os.path.exists("/dev/loop-control") and os.geteuid() == 0


def _free_nbd() -> str:
    for i in range(16):
        dev = f"/dev/nbd{i}"
        size = Path(f"/sys/block/nbd{i}/size")
        if os.path.exists(dev) and (not size.exists() or size.read_text().strip() == "0"):
            return dev
    raise MountError("no free /dev/nbd device")


def _losetup(file: str, *, read_only: bool, sizelimit: int | None = None) -> str:
    cmd = ["losetup", "--find", "--show", "--partscan"]
    if read_only:
        cmd.append("--read-only")
    if sizelimit is not None:
        cmd += ["--sizelimit", str(sizelimit)]
    return _run([*cmd, file], "losetup")


def qemu_option_value(value: str) -> str:
    """``value`` as one value inside a QEMU ``key=value,…`` option string: a comma is doubled, so
    a file name can neither end the value early nor add options of its own."""
    return value.replace(",", ",,")


def nbd_connect_command(device: str, path: str, *, read_only: bool) -> list[str]:
    """``qemu-nbd`` attaching VHD ``path`` to kernel NBD ``device`` (it forks and stays as the
    server); the file name is an argument of its own, never part of an option string."""
    return ["qemu-nbd", "--connect", device, "--format", "vpc", *(["--read-only"] if read_only else []), path]


def nbd_disconnect_command(device: str) -> list[str]:
    return ["qemu-nbd", "--disconnect", device]


def fuse_export_command(path: str, fuse_file: str, pidfile: str, *, read_only: bool) -> list[str]:
    """``qemu-storage-daemon`` exporting VHD ``path`` as the raw file ``fuse_file`` (FUSE), daemonised."""
    ro = "on" if read_only else "off"
    return [
        "qemu-storage-daemon",
        "--blockdev",
        f"driver=file,node-name=file0,filename={qemu_option_value(path)},read-only={ro}",
        "--blockdev",
        f"driver=vpc,node-name=disk0,file=file0,read-only={ro}",
        "--export",
        f"type=fuse,id=exp0,node-name=disk0,mountpoint={qemu_option_value(fuse_file)},"
        f"writable={'off' if read_only else 'on'}",
        "--pidfile",
        pidfile,
        "--daemonize",
    ]


def _start_fuse_export(path: str, fuse_file: str, *, read_only: bool) -> int:
    Path(fuse_file).touch()
    pidfile = fuse_file + ".pid"
    _run(fuse_export_command(path, fuse_file, pidfile, read_only=read_only), "qemu-storage-daemon")
    pid = int(Path(pidfile).read_text().strip())
    with contextlib.suppress(FileNotFoundError):
        os.unlink(pidfile)
    return pid


def mount(
    path: str, *, read_only: bool = False, mountpoint: str | None = None, progress: Progress | None = None
) -> Attachment:
    """Attach ``path`` and return where it is; with ``mountpoint``, also mount its first
    partition (or the whole device when it has no partition table)."""
    path = os.path.abspath(path)
    state = _state_file(path)
    if state.exists():
        raise MountError(f"{path} is already attached ({json.loads(state.read_text()).get('device')})")
    with VhdFile(path) as vf:
        dtype = vf.disk_type
        size = vf.size
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    work = str(STATE_DIR / state.stem)
    att: Attachment
    if dtype == DiskType.DIFFERENCING:
        if not read_only:
            raise MountError(f"{path}: a differencing disk is attached read-only (it is flattened first)")
        if not loop_available():
            raise MountError("attaching needs root and loop devices")
        raw = work + ".raw"
        chain_to_raw(path, raw, progress=progress, overwrite=True)
        att = Attachment(path, _losetup(raw, read_only=True), "flatten+loop", True, temp_raw=raw)
    elif dtype == DiskType.FIXED and loop_available():
        att = Attachment(path, _losetup(path, read_only=read_only, sizelimit=size), "loop", read_only)
    elif nbd_available():
        dev = _free_nbd()
        _run(nbd_connect_command(dev, path, read_only=read_only), "qemu-nbd")
        att = Attachment(path, dev, "nbd", read_only)
    elif fuse_available() and loop_available():
        fuse_file = work + ".fuse"
        pid = _start_fuse_export(path, fuse_file, read_only=read_only)
        try:
            dev = _losetup(fuse_file, read_only=read_only)
        except MountError:
            _stop_daemon(pid, fuse_file)
            raise
        att = Attachment(path, dev, "fuse+loop", read_only, daemon_pid=pid, fuse_file=fuse_file)
    else:
        raise MountError("cannot attach: needs root and either the nbd module or FUSE with loop devices")
    state.write_text(json.dumps(asdict(att)))
    if mountpoint:
        try:
            target = _partition_or_device(att.device)
            _run(["mount", *(["-o", "ro"] if read_only else []), target, mountpoint], "mount")
        except MountError:
            unmount(path)
            raise
        att.mountpoint = mountpoint
        state.write_text(json.dumps(asdict(att)))
    return att


def _partition_or_device(device: str) -> str:
    for _ in range(20):
        for cand in (device + "p1", device + "1"):
            if os.path.exists(cand):
                return cand
        time.sleep(0.05)
    return device


def _stop_daemon(pid: int, fuse_file: str | None) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    if fuse_file:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(fuse_file)


def attachments() -> list[Attachment]:
    if not STATE_DIR.is_dir():
        return []
    return [Attachment(**json.loads(p.read_text())) for p in sorted(STATE_DIR.glob("*.json"))]


def unmount(path: str) -> Attachment:
    """Undo :func:`mount` for ``path`` (the disk file, or the device it was attached as)."""
    state = _state_file(os.path.abspath(path))
    if not state.exists():
        for att in attachments():
            if att.device == path:
                state = _state_file(att.path)
                break
        else:
            raise MountError(f"{path} is not attached by hvcloud")
    att = Attachment(**json.loads(state.read_text()))
    if att.mountpoint:
        _run(["umount", att.mountpoint], "umount")
    if att.method == "nbd":
        _run(nbd_disconnect_command(att.device), "qemu-nbd --disconnect")
    else:
        _run(["losetup", "--detach", att.device], "losetup --detach")
    if att.daemon_pid:
        _stop_daemon(att.daemon_pid, att.fuse_file)
    if att.temp_raw:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(att.temp_raw)
    state.unlink()
    return att
