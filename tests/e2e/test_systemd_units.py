"""The server's systemd unit starts what it says: its ExecStart line, run by ``/bin/sh`` as systemd
would (with the venv's hvcloud, a temporary data directory and a free loopback port in place of the
installed paths), serves the API with the configured number of processes and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.ports import free_port

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "hvcloud-server.service"


def unit_values(key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in UNIT.read_text().splitlines() if line.startswith(f"{key}=")]


def test_the_server_unit_serves_the_api_with_its_processes(tmp_path: Path) -> None:
    (exec_start,) = unit_values("ExecStart")
    port = free_port("127.0.0.1")
    command = (exec_start.replace("/opt/hvcloud/bin/hvcloud", f"{sys.executable} -m hvcloud.cli.main")
               .replace("0.0.0.0:8080", f"127.0.0.1:{port}")
               .replace("/var/lib/hvcloud/server", str(tmp_path / "data")))
    assert command != exec_start and "--processes" in command
    env = dict(os.environ)
    for value in unit_values("Environment"):
        name, _, setting = value.partition("=")
        env[name] = setting
    assert env.get("HVCLOUD_SERVER_PROCESSES") == "2"
    env.pop("HVCLOUD_SERVER_DB", None)
    assert command.startswith("/bin/sh -c '") and command.endswith("'")
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(["/bin/sh", "-c", command[len("/bin/sh -c '"):-1]], env=env,  # noqa: S603
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/client/api", params={"command": "listZones"}, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.2)
        assert answer.status_code == 401, answer.text  # the API, refusing an unsigned call
        while (ids := sorted(p.name for p in (tmp_path / "data").glob("server-id*"))) != ["server-id", "server-id.1"]:
            assert time.monotonic() < deadline, ids
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        log.close()
    assert code == 0, (tmp_path / "server.log").read_text()
