"""A real ``hvcloud server run`` process: the one server harness of the suites and benches."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.ports import free_port
from tests.support.processes import terminate

REPO_ROOT = Path(__file__).resolve().parents[2]


def spawned_servers(supervisor: int) -> list[int]:
    """The server processes ``hvcloud server run --processes N`` started under ``supervisor``, oldest
    first (not multiprocessing's resource tracker, also its child)."""
    path = Path(f"/proc/{supervisor}/task/{supervisor}/children")
    found = [int(p) for p in path.read_text().split()] if path.exists() else []
    return sorted(p for p in found if b"spawn_main" in _cmdline(p))


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class ServerProcess:
    def __init__(self, data_dir: Path, db_url: str | None, extra_args: list[str] | None = None,
                 log_level: str = "warning", tls: tuple[Path, Path] | None = None) -> None:
        """``tls``: (certificate, key) to serve HTTPS with; the endpoint is then ``https://``."""
        self.data_dir = data_dir
        self.port = free_port()
        self.endpoint = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/client/api"
        cmd = [sys.executable, "-m", "hvcloud.cli.main", "server", "run", "--listen",
                f"127.0.0.1:{self.port}",
               "--data-dir", str(data_dir), "--log-level", log_level]
        if db_url:
            cmd += ["--db", db_url]
        cmd += extra_args or []
        if tls:
            cmd += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        # the repository root, so ``--plugin tests.integration.server.job_test_plugin`` imports
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH"))
                                                           if p)}
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,  # noqa: S603
                                     env=env)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                httpx.get(self.endpoint, timeout=1, verify=False)  # readiness only
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        admin_cmd = [sys.executable, "-m", "hvcloud.cli.main", "server", "admin-keys", "--data-dir",
                     str(data_dir)]
        keys = subprocess.check_output(admin_cmd)  # noqa: S603
        self.keys = json.loads(keys)

    @property
    def server_id(self) -> str:
        return (self.data_dir / "server-id").read_text().strip()

    def kill(self) -> None:
        """SIGKILL the server process (by its PID): no shutdown code runs."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def stop(self) -> None:
        terminate(self.proc)
        self.log.close()
