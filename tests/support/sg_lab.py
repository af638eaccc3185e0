"""A throw-away "host" for security-group tests and benches: a network namespace holding a bridge,
and "VM" namespaces plugged into it by veth pairs whose bridge end plays the VM's tap.

The host is a namespace of its own so that its nftables tables, bridge options and conntrack are
the test's alone (helpers and suites run in parallel). Names carry a random suffix;
:meth:`SgLab.close` removes every namespace it made (their veths go with them), also after a
failure half-way. Each VM namespace can run :data:`ECHO_SERVER` (TCP and UDP echo on given ports)
and probe others with :meth:`Vm.tcp`/:meth:`Vm.udp`, from a chosen source address.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field

BUSYBOX = shutil.which("busybox") or "/bin/busybox"

#: listens on every TCP and UDP port named on its command line and answers "ok <port>"
ECHO_SERVER = r"""
import socket, sys, threading
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64)
    while True:
        c, _ = s.accept()
        try: c.sendall(b"ok %d\n" % port)
        finally: c.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    while True:
        _, peer = s.recvfrom(2048); s.sendto(b"ok %d\n" % port, peer)
for p in sys.argv[1:]:
    kind, port = p.split(":")
    threading.Thread(target=tcp if kind == "tcp" else udp, args=(int(port),), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""

PROBE = r"""
import socket, sys
kind, src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
s.settimeout(float(sys.argv[5]))
if src != "-": s.bind((src, 0))
try:
    if kind == "tcp":
        s.connect((dst, port)); data = s.recv(64)
    else:
        s.sendto(b"x", (dst, port)); data = s.recv(64)
except OSError:
    sys.exit(1)
sys.exit(0 if data.startswith(b"ok") else 2)
"""


def run(argv: list[str], timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def missing_tools() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = f"hvsgprobe{uuid.uuid4().hex[:6]}"
    if run(["ip", "netns", "add", probe], check=False).returncode != 0:
        return "cannot create network namespaces here"
    run(["ip", "netns", "del", probe], check=False)
    return None


@dataclass
class Vm:
    """A "VM": namespace ``ns`` whose eth0 (``mac``, ``ip``/24) is a veth whose host end ``tap``
    is a port of the lab's bridge."""

    ns: str
    tap: str
    mac: str
    ip: str
    servers: list[subprocess.Popen[str]] = field(default_factory=list)

    def run(self, *argv: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", self.ns, *argv], timeout=timeout, check=check)

    def serve(self, *ports: str) -> None:
        """Start the echo server on ``tcp:N``/``udp:N`` ports; returns when it listens."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns, sys.executable, "-c", ECHO_SERVER, *ports],  # noqa: S603
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        self.servers.append(proc)
        assert line.strip() == "ready", f"echo server in {self.ns} did not start"

    def reaches(self, kind: str, dst: str, port: int, src: str | None = None, timeout: float = 1.0) -> bool:
        """Whether a ``kind`` (tcp/udp) exchange with ``dst:port`` gets the echo back."""
        proc = self.run(sys.executable, "-c", PROBE, kind, src or "-", dst, str(port), str(timeout),
                        check=False, timeout=timeout + 20)
        return proc.returncode == 0

    def pings(self, dst: str) -> bool:
        return self.run(BUSYBOX, "ping", "-c", "1", "-W", "1", dst, check=False).returncode == 0

    def close(self) -> None:
        for proc in self.servers:
            proc.kill()
            proc.wait()
        self.servers.clear()


@dataclass
class SgLab:
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    vms: list[Vm] = field(default_factory=list)
    prefix: str = "10.88.0"

    def __post_init__(self) -> None:
        self.host = f"hvsgh{self.suffix}"
        self.bridge = "br0"
        run(["ip", "netns", "add", self.host])
        self.hrun("ip", "link", "add", self.bridge, "type", "bridge")
        self.hrun("ip", "link", "set", self.bridge, "up")

    def hrun(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", self.host, *argv], check=check)

    def vm(self, index: int, *, mac: str | None = None) -> Vm:
        """A VM namespace with address ``<prefix>.<index>`` and MAC 02:88:00:00:00:<index>."""
        ns, tap = f"hvsg{self.suffix}v{index}", f"tap{index}"
        vm = Vm(ns=ns, tap=tap, mac=mac or f"02:88:00:00:00:{index:02x}", ip=f"{self.prefix}.{index}")
        run(["ip", "netns", "add", ns])
        self.vms.append(vm)
        run(["ip", "-n", self.host, "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", ns])
        self.hrun("ip", "link", "set", tap, "master", self.bridge, "up")
        vm.run("ip", "link", "set", "eth0", "address", vm.mac)
        vm.run("ip", "link", "set", "eth0", "up")
        vm.run("ip", "link", "set", "lo", "up")
        vm.run("ip", "addr", "add", f"{vm.ip}/24", "dev", "eth0")
        return vm

    def close(self) -> None:
        for vm in self.vms:
            vm.close()
            run(["ip", "netns", "del", vm.ns], check=False)
        self.vms.clear()
        run(["ip", "netns", "del", self.host], check=False)

