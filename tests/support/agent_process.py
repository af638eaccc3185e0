"""A real ``hvcloud agent run`` process, any driver, serving one or more hosts on loopback.

The one agent-process harness of the suites and benches. By default each agent takes a random
127.X.Y.0/24 block and a port free on all of its addresses, so suites running side by side do not
collide; ``address`` pins the (first) listen address instead. It is ready when every address accepts a
TCP connection (a TLS or HTTP probe would fail against ``--auth mtls``). Processes are stopped by
their PID only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from hvcloud.agent_client import AgentClient
from hvcloud.wire import signing
from tests.support.ports import free_port, loopback_block
from tests.support.processes import terminate

USER, PASSWORD = "hvadmin", "agent-pass-123"


class AgentProcess:
    def __init__(self, data_dir: Path, *, hosts: int = 1, driver: str = "simulator", args: Sequence[str] = (),
                 address: str | None = None, port: int | None = None, log_level: str = "warning",
                 username: str = USER, password: str = PASSWORD) -> None:
        """``hosts`` simulated hosts (the simulator driver; other drivers serve one), on consecutive
        addresses from ``address`` (a random loopback block when None); ``args`` go to ``agent run``
        as they are. Call :meth:`start`."""
        if address is None:
            self.addresses = loopback_block(hosts)
        else:
            first = ipaddress.ip_address(address)
            self.addresses = [str(first + i) for i in range(hosts)]
        self.data_dir = data_dir
        self.driver = driver
        self.args = list(args)
        self.log_level = log_level
        self.port = port if port is not None else free_port(self.addresses)
        self.username, self.password = username, password
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"agent-{data_dir.name}-{self.port}.log"

    @property
    def address(self) -> str:
        """The first (with one host, the only) listen address."""
        return self.addresses[0]

    def url(self, index: int = 0) -> str:
        """The host's address as ``addHost`` takes it."""
        return f"http://{self.addresses[index]}:{self.port}"

    def endpoint(self, index: int = 0) -> str:
        """The host's HTTPS endpoint, for clients talking to the agent directly."""
        return f"https://{self.addresses[index]}:{self.port}"

    def start(self, timeout: float = 60.0) -> AgentProcess:
        cmd = [sys.executable, "-m", "hvcloud.cli.main", "agent", "run", "--driver", self.driver,
               "--listen", f"{self.addresses[0]}:{self.port}", "--data-dir", str(self.data_dir),
               "--log-level", self.log_level]
        if self.driver == "simulator":
            cmd += ["--sim-hosts", str(len(self.addresses)), "--sim-first-address", self.addresses[0]]
        cmd += self.args
        env = {**os.environ, "HVCLOUD_AGENT_USERNAME": self.username, "HVCLOUD_AGENT_PASSWORD": self.password}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)  # noqa: S603
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
            if all(self._accepts(addr) for addr in self.addresses):
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"agent did not come up: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def _accepts(self, addr: str) -> bool:
        try:
            with socket.create_connection((addr, self.port), timeout=1):
                return True
        except OSError:
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (default SIGKILL, as a crashed host would look) and wait for the exit."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)

    def client(self, index: int = 0) -> AgentClient:
        return AgentClient(self.endpoint(index), username=self.username, password=self.password)

    def faults(self, index: int, plan: dict[str, object]) -> None:
        body = json.dumps(plan).encode()
        headers = signing.sign_headers(self.username, self.password, "POST", "/simulator/faults", body)
        r = httpx.post(f"{self.endpoint(index)}/simulator/faults", content=body,
                       headers={**headers, "content-type": "application/json"}, verify=False, timeout=10)
        r.raise_for_status()

    def send_body(self, index: int, fqcn: str, body: dict[str, object]) -> dict[str, object]:
        """POST one command straight to a host (behind the server's back) and return the answer fields."""
        async def go() -> dict[str, object]:
            async with self.client(index) as c:
                answer = await c.send_body(fqcn, body)
                return answer.to_json_obj()
        return asyncio.run(go())


def run_cli(args: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """``hvcloud ARGS`` in a child process, its output captured."""
    return subprocess.run([sys.executable, "-m", "hvcloud.cli.main", *args], capture_output=True,  # noqa: S603
                          text=True, timeout=timeout, check=False)
