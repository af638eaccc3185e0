"""The "outside" of a router's public side for tests and benches: a public bridge made for the run
and a namespace on it holding the public range's gateway, plus helpers to serve HTTP with busybox
in any namespace and fetch with a bounded wait (a dropped SYN must not hang a test).

Names carry the lab's random suffix; :meth:`Outside.close` removes what it made, also after a
failure half-way. No packet leaves the test's namespaces and bridges.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from hvcloud.network.bridges import Bridges
from tests.support.router_lab import BUSYBOX, run

#: busybox httpd CGI: who is asking (the address a NAT rewrote the request to come from)
WHOAMI_CGI = ('#!/bin/sh\na="${REMOTE_ADDR#[::ffff:}"\na="${a%]}"\n'
              'printf "Content-Type: text/plain\\r\\n\\r\\n%s\\n" "$a"\n')


def serve(ns: str, root: Path, port: int, index: str) -> None:
    """busybox httpd in ``ns`` on ``port``, serving ``index`` at ``/`` and ``/cgi-bin/whoami``."""
    (root / "cgi-bin").mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(index)
    cgi = root / "cgi-bin" / "whoami"
    cgi.write_text(WHOAMI_CGI)
    cgi.chmod(0o755)
    run(["ip", "netns", "exec", ns, BUSYBOX, "httpd", "-p", str(port), "-h", str(root)])


def stop_serving(ns: str, port: int) -> None:
    """Stop the httpd this lab started in ``ns`` on ``port`` (found by pid, never by name)."""
    for pid in run(["ip", "netns", "pids", ns], check=False).stdout.split():
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"httpd" in args and str(port).encode() in args:
            run(["kill", pid], check=False)


def fetch(ns: str, url: str, wait: float = 3.0) -> str | None:
    """The body of a GET from inside ``ns``, or None when nothing answered within ``wait`` s."""
    try:
        proc = subprocess.run(["ip", "netns", "exec", ns, BUSYBOX, "wget", "-q", "-O", "-", url],  # noqa: S603
                              capture_output=True, text=True, timeout=wait, check=False)
    except subprocess.TimeoutExpired:
        return None
    return proc.stdout if proc.returncode == 0 else None


@dataclass
class Outside:
    """A public bridge and the namespace ``ns`` on it holding ``gateway``/``prefix``."""

    suffix: str
    gateway: str
    prefix: int

    def __post_init__(self) -> None:
        self.bridge = f"hvp{self.suffix}"
        self.ns = f"hvo{self.suffix}"
        self.veth = f"ho{self.suffix}"
        Bridges().ensure_bridge(self.bridge)
        run(["ip", "netns", "add", self.ns])
        run(["ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.ns])
        run(["ip", "link", "set", "dev", self.veth, "master", self.bridge, "up"])
        run(["ip", "-n", self.ns, "addr", "add", f"{self.gateway}/{self.prefix}", "dev", "eth0"])
        run(["ip", "-n", self.ns, "link", "set", "dev", "eth0", "up"])
        run(["ip", "-n", self.ns, "link", "set", "dev", "lo", "up"])

    def close(self) -> None:
        kill_namespace_processes(self.ns)
        run(["ip", "link", "del", "dev", self.veth], check=False)
        run(["ip", "netns", "del", self.ns], check=False)
        Bridges().delete(self.bridge)


def static_guest(ns: str, address: str, prefix: int, gateway: str) -> None:
    """A lab client with its address set by hand (no DHCP round: these tests are about NAT)."""
    run(["ip", "-n", ns, "addr", "flush", "dev", "eth0"])
    run(["ip", "-n", ns, "addr", "add", f"{address}/{prefix}", "dev", "eth0"])
    run(["ip", "-n", ns, "route", "replace", "default", "via", gateway])


def kill_namespace_processes(ns: str) -> None:
    for pid in run(["ip", "netns", "pids", ns], check=False).stdout.split():
        run(["kill", pid], check=False)
