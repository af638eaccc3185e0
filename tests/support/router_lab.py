"""A throw-away L2 segment for router tests and benches: a bridge and "VM" client namespaces
plugged into it by veth, with busybox's DHCP client, resolver and wget run inside them.

Names carry a random suffix (helpers and suites run in parallel); :meth:`Lab.close` removes every
namespace, veth and bridge it made, and is safe to call after a failure half-way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from hvcloud.network.bridges import Bridges

BUSYBOX = shutil.which("busybox") or "/bin/busybox"

#: udhcpc calls this with the lease in its environment: apply it and record what was offered
UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    printf 'ip=%s\\nmask=%s\\nrouter=%s\\ndns=%s\\ndomain=%s\\n' "$ip" "$mask" "$router" "$dns" "$domain" \\
      > "$HVC_LEASE_OUT"
    ;;
esac
exit 0
"""


def run(argv: list[str], timeout: float = 60, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,  # noqa: S603
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def missing_tools() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "dnsmasq"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not Path(BUSYBOX).exists():
        return "busybox is not installed (busybox-static)"
    probe = f"hvprobe{uuid.uuid4().hex[:6]}"
    if run(["ip", "netns", "add", probe], check=False).returncode != 0:
        return "cannot create network namespaces here"
    run(["ip", "netns", "del", probe], check=False)
    return None


@dataclass
class Client:
    """A "VM": a namespace whose eth0 (``mac``) is a veth into the lab's bridge."""

    ns: str
    veth: str
    mac: str
    work: Path

    def run(self, *argv: str, timeout: float = 60, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", self.ns, *argv], timeout=timeout, check=check, env=env)

    def dhcp(self, tries: int = 3, pause: int = 1) -> dict[str, str] | None:
        """Run ``udhcpc`` once in the foreground; the lease it applied, or None when none came."""
        out = self.work / f"{self.ns}.lease"
        out.unlink(missing_ok=True)
        script = self.work / "udhcpc.sh"
        proc = self.run(BUSYBOX, "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", str(tries), "-T", str(pause),
                        "-s", str(script), check=False, env={"HVC_LEASE_OUT": str(out)})
        if proc.returncode != 0 or not out.exists():
            return None
        return dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)

    def wget(self, url: str, header: str | None = None) -> tuple[int, str]:
        # (no -T: this busybox build crashes with it; the subprocess timeout bounds the wait)
        argv = [BUSYBOX, "wget", "-q", "-O", "-"]
        if header:
            argv += ["--header", header]
        proc = self.run(*argv, url, check=False, timeout=30)
        return proc.returncode, proc.stdout

    def nslookup(self, name: str, server: str) -> str:
        return self.run(BUSYBOX, "nslookup", name, server, check=False, timeout=30).stdout

    def address(self) -> str | None:
        out = self.run("ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout.split()
        return out[out.index("inet") + 1].split("/")[0] if "inet" in out else None


@dataclass
class Lab:
    work: Path
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    clients: list[Client] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bridge = f"hvb{self.suffix}"
        self.work.mkdir(parents=True, exist_ok=True)
        script = self.work / "udhcpc.sh"
        script.write_text(UDHCPC_SCRIPT)
        script.chmod(0o755)
        Bridges().ensure_bridge(self.bridge)

    def client(self, mac: str) -> Client:
        n = len(self.clients)
        c = Client(ns=f"hvc{self.suffix}{n}", veth=f"hc{self.suffix}{n}", mac=mac, work=self.work)
        self.clients.append(c)
        run(["ip", "netns", "add", c.ns])
        run(["ip", "link", "add", c.veth, "type", "veth", "peer", "name", "eth0", "netns", c.ns])
        run(["ip", "-n", c.ns, "link", "set", "dev", "eth0", "address", mac])
        run(["ip", "-n", c.ns, "link", "set", "dev", "eth0", "up"])
        run(["ip", "-n", c.ns, "link", "set", "dev", "lo", "up"])
        run(["ip", "link", "set", "dev", c.veth, "master", self.bridge, "up"])
        return c

    def close(self) -> None:
        for c in self.clients:
            run(["ip", "link", "del", "dev", c.veth], check=False)
            run(["ip", "netns", "del", c.ns], check=False)
        self.clients.clear()
        Bridges().delete(self.bridge)
