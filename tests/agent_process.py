"""A real ``hvcloud agent run --driver simulator`` process serving one or more hosts on loopback.

Each test picks its own random 127.X.Y.0/24 block and a free port, so suites running side by side
do not collide. Processes are stopped by their PID only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from hvcloud.agent_client import AgentClient
from hvcloud.wire import signing

USER, PASSWORD = "hvadmin", "agent-pass-123"


def free_port(addresses: list[str]) -> int:
    """A port that is free on every one of ``addresses``."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind((addresses[0], 0))
            port = int(s.getsockname()[1])
        ok = True
        for addr in addresses[1:]:
            with socket.socket() as s:
                try:
                    s.bind((addr, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no common free port")


def loopback_block(count: int) -> list[str]:
    """``count`` consecutive loopback addresses, as the agent's multi-host mode numbers them from the
    first (past .255 into the next /24: a thousand hosts span four)."""
    first = ipaddress.ip_address(f"127.{random.randint(2, 250)}.{random.randint(2, 200)}.1")
    return [str(first + i) for i in range(count)]


class AgentProcess:
    def __init__(self, data_dir: Path, hosts: int = 3, *, username: str = USER, password: str = PASSWORD) -> None:
        self.data_dir = data_dir
        self.addresses = loopback_block(hosts)
        self.port = free_port(self.addresses)
        self.username, self.password = username, password
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"agent-{self.port}.log"
        self.start()

    def url(self, index: int) -> str:
        return f"http://{self.addresses[index]}:{self.port}"

    def start(self) -> None:
        cmd = [sys.executable, "-m", "hvcloud.cli.main", "agent", "run", "--driver", "simulator",
               "--listen", f"{self.addresses[0]}:{self.port}", "--data-dir", str(self.data_dir),
               "--sim-hosts", str(len(self.addresses)), "--sim-first-address", self.addresses[0],
               "--log-level", "warning"]
        env = {**os.environ, "HVCLOUD_AGENT_USERNAME": self.username, "HVCLOUD_AGENT_PASSWORD": self.password}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)  # noqa: S603
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited: {self.log_path.read_text()[-3000:]}")
            if all(self._answers(addr) for addr in self.addresses):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"agent did not come up: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def _answers(self, addr: str) -> bool:
        try:
            httpx.get(f"https://{addr}:{self.port}/api/HypervResource", verify=False, timeout=1)
            return True
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """SIGKILL, as a crashed host would look."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self, index: int) -> AgentClient:
        return AgentClient(f"https://{self.addresses[index]}:{self.port}", username=self.username,
                           password=self.password)

    def faults(self, index: int, plan: dict[str, object]) -> None:
        body = json.dumps(plan).encode()
        headers = signing.sign_headers(self.username, self.password, "POST", "/simulator/faults", body)
        r = httpx.post(f"https://{self.addresses[index]}:{self.port}/simulator/faults", content=body,
                       headers={**headers, "content-type": "application/json"}, verify=False, timeout=10)
        r.raise_for_status()

    def send_body(self, index: int, fqcn: str, body: dict[str, object]) -> dict[str, object]:
        """POST one command straight to a host (behind the server's back) and return the answer fields."""
        async def go() -> dict[str, object]:
            async with self.client(index) as c:
                answer = await c.send_body(fqcn, body)
                return answer.to_json_obj()
        return asyncio.run(go())
