"""``hvcloud console-proxy run`` as a real process: beside a server (``--data-dir``), on its own
(``server console-key`` → ``--key-file`` + ``--db-url``) with TLS, and its graceful stop."""

from __future__ import annotations

import asyncio
import re
import ssl
import stat
import subprocess
import sys
from pathlib import Path

from hvcloud.agent.tls import ensure_self_signed
from tests.support import rfb_client
from tests.support.console_proxy import REPO_ROOT, ProxyProcess
from tests.support.console_world import ConsoleWorld
from tests.support.vnc_servers import VncServer
from tests.support.wait import wait_for


def hvcloud(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hvcloud.cli.main", *args], capture_output=True,  # noqa: S603
                          text=True, timeout=60, check=False, cwd=REPO_ROOT,
                          env={"PYTHONPATH": f"{REPO_ROOT / 'src'}:{REPO_ROOT}", "PATH": "/usr/bin:/bin"})


def said(done: subprocess.CompletedProcess[str]) -> str:
    """stderr without typer's box drawing and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", done.stderr).split())


def test_a_proxy_on_its_own_machine_serves_wss_with_the_exported_key(world: ConsoleWorld, vnc: VncServer,
                                                                      tmp_path: Path) -> None:
    key_file = tmp_path / "console.key"
    done = hvcloud("server", "console-key", "--data-dir", str(world.data_dir), "--out", str(key_file))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().strip() == world.key.hex()
    cert, key = ensure_self_signed(tmp_path / "tls", ["127.0.0.1"])
    proc = ProxyProcess(tmp_path / "p", key_file=key_file, db_url=world.db_url, tls=(cert, key),
                        extra_args=["--name", "standalone", "--heartbeat", "0.5"])
    try:
        assert any(p["name"] == "standalone" and p["url"] == proc.base for p in world.proxies())
        vm = world.add_vm()
        token, _ = world.grant(vm, vnc.host, vnc.port, vnc.password)
        trust = ssl.create_default_context(cafile=str(cert))
        url = proc.urls(token)["websockify"]
        assert url.startswith("wss://")
        init, update = asyncio.run(rfb_client.first_update(url, trust))
        assert (init.width, init.height) == (640, 480) and update.covered == 640 * 480
        assert token not in proc.log()
    finally:
        assert proc.stop() == 0
    assert "standalone" not in {p["name"] for p in world.proxies()}


def test_sigterm_closes_open_consoles_with_a_reason(world: ConsoleWorld, vnc: VncServer, tmp_path: Path) -> None:
    proc = ProxyProcess(tmp_path / "p", data_dir=world.data_dir, extra_args=["--name", "beside"])
    vm = world.add_vm()
    token, grant = world.grant(vm, vnc.host, vnc.port, vnc.password)

    async def scenario() -> rfb_client.ConsoleClosed:
        client = await rfb_client.open_ws(proc.urls(token)["websockify"])
        proc.proc.terminate()
        return await rfb_client.until_closed(client)

    try:
        closed = asyncio.run(scenario())
    finally:
        code = proc.stop()
    assert (closed.close_code, closed.close_reason) == (1001, "proxy shutting down")
    assert code == 0
    wait_for("the close recorded", lambda: (world.session(grant.token_id) or {}).get("closed"))
    assert (world.session(grant.token_id) or {})["close_reason"] == "proxy shutting down"
    assert "beside" not in {p["name"] for p in world.proxies()}


def test_the_cli_refuses_a_missing_or_bad_key(world: ConsoleWorld, tmp_path: Path) -> None:
    neither = hvcloud("console-proxy", "run", "--listen", "127.0.0.1:0")
    assert neither.returncode == 2 and "give either --data-dir, or --key-file with --db-url" in said(neither)
    bad = tmp_path / "bad.key"
    bad.write_text("zz")
    short = hvcloud("console-proxy", "run", "--key-file", str(bad), "--db-url", world.db_url)
    assert short.returncode == 2 and "cannot read a console key" in said(short)
    no_dir = hvcloud("console-proxy", "run", "--data-dir", str(tmp_path / "nothing"))
    assert no_dir.returncode == 2 and "holds no secret.key" in said(no_dir)
    assert not (tmp_path / "nothing" / "secret.key").exists(), "a proxy never creates a server key"
