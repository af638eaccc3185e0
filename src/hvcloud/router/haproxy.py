"""The router's load balancers: one HAProxy configuration for all of a router's LB rules, as
CloudStack's router runs them (TCP mode, ``check`` on every backend so a stopped VM is skipped).

HAProxy runs in the router's namespace, daemonized with a pid file; a new rule set is a new file
and a new process started with ``-sf <old pid>``: the old one stops listening and finishes the
connections it holds, so a reload drops none. Only validated values reach the renderer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hvcloud.router.api import LoadBalancer

#: how fast a dead backend is noticed (and a revived one taken back)
CHECK = "check inter 500ms fall 2 rise 1"


@dataclass(frozen=True)
class HaproxyPaths:
    dir: Path

    @property
    def conf(self) -> Path:
        return self.dir / "haproxy.cfg"

    @property
    def pid(self) -> Path:
        return self.dir / "haproxy.pid"

    @property
    def log(self) -> Path:
        return self.dir / "haproxy.log"

    @property
    def marker(self) -> str:
        return str(self.conf)


def render(balancers: Iterable[LoadBalancer], maxconn: int = 4096) -> str:
    lines = [
        "# hvcloud router load balancers: written by the agent, replaced on every change",
        "global",
        f"  maxconn {maxconn}",
        "defaults",
        "  mode tcp",
        "  timeout connect 5s",
        "  timeout client 60s",
        "  timeout server 60s",
        "  timeout check 2s",
    ]
    for b in balancers:
        name = f"lb_{b.rule_id.replace(':', '_')}"
        lines += ["", f"listen {name}", f"  bind {b.public_ip}:{b.public_port}", f"  balance {b.algorithm}"]
        lines += [f"  server b{i} {ip}:{b.private_port} {CHECK}" for i, ip in enumerate(b.backends)]
    return "\n".join(lines) + "\n"
