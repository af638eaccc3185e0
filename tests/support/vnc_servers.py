"""Real VNC servers for console tests and benches: paused QEMU guests with ``-vnc`` on free ports.

A paused (``-S``) QEMU with ``-vga std`` shows "Guest has not initialized the display (yet)" on a
640x480 screen, costs a few MiB and no CPU, and speaks the same RFB (with VNC authentication from
``password-secret``) as a running VM's console.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import terminate
from tests.support.wait import wait_for

QEMU = "qemu-system-x86_64"
#: RFB display numbers count from this port
VNC_BASE_PORT = 5900


def qemu_missing() -> str | None:
    """Why QEMU VNC servers cannot run here, or None."""
    return None if shutil.which(QEMU) else f"{QEMU} is not installed"


@dataclass
class VncServer:
    host: str
    port: int
    password: str | None
    proc: subprocess.Popen[bytes]
    workdir: Path
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.workdir / "qemu.log"

    def accepting(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                return s.recv(12).startswith(b"RFB ")
        except OSError:
            return False

    def stop(self) -> None:
        terminate(self.proc, grace=5.0)


def start_vnc_server(workdir: Path, password: str | None = "vncpass1", host: str = "127.0.0.1",
                     memory_mb: int = 16, paused: bool = True) -> VncServer:
    """One QEMU whose VNC server listens on a free port of ``host`` (password: VNC authentication)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for _ in range(20):
        port = free_port(host)
        if port > VNC_BASE_PORT:
            break
    display = port - VNC_BASE_PORT
    secret: list[str] = []
    vnc = f"{host}:{display}"
    if password is not None:
        secret_file = workdir / "vnc-password"
        secret_file.write_text(password)
        secret = ["-object", f"secret,id=vncpw,file={secret_file}"]
        vnc += ",password-secret=vncpw"
    argv = [QEMU, "-machine", "pc,accel=tcg", "-nodefaults", "-vga", "std", "-display", "none", "-m", str(memory_mb),
            "-smp", "1", *secret, "-vnc", vnc, "-monitor", "none", "-serial", "none", "-parallel", "none",
            "-no-user-config", "-nic", "none", *(["-S"] if paused else [])]
    log = (workdir / "qemu.log").open("wb")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    log.close()
    server = VncServer(host, port, password, proc, workdir)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"QEMU exited {proc.returncode}: {server.log.read_text()[-2000:]}")
        return server.accepting()

    try:
        wait_for(f"QEMU VNC on {host}:{port}", up, timeout=60, interval=0.05)
    except BaseException:
        server.stop()
        raise
    return server


@contextmanager
def vnc_servers(count: int, password: str | None = "vncpass1", workdir: Path | None = None,
                memory_mb: int = 16, paused: bool = True) -> Iterator[list[VncServer]]:
    """``count`` QEMU VNC servers, stopped (by their own process handles) on the way out."""
    with tempfile.TemporaryDirectory(prefix="vnc-servers-") as tmp:
        base = workdir if workdir is not None else Path(tmp)
        servers: list[VncServer] = []
        try:
            for i in range(count):
                servers.append(start_vnc_server(base / f"vnc{i}", password, memory_mb=memory_mb, paused=paused))
            yield servers
        finally:
            for server in servers:
                server.stop()
