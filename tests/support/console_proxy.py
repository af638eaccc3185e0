"""Console proxies for tests and benches: one in a thread of this process (``ProxyThread``: tests
can read its counters), or a real ``hvcloud console-proxy run`` process (``ProxyProcess``)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx

from hvcloud.console_proxy.config import ProxyConfig
from hvcloud.console_proxy.service import ProxyService
from tests.support.ports import free_port
from tests.support.processes import terminate
from tests.support.wait import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def urls(base: str, token: str, extra: str | None = None) -> dict[str, str]:
    """The page, WebSocket and RDP URLs of ``token`` on the proxy at ``base``."""
    query = urlencode({"token": token, **({"extra": extra} if extra is not None else {})})
    ws_base = "ws" + base[len("http"):]
    return {"console": f"{base}/console?{query}", "websockify": f"{ws_base}/websockify?{query}",
            "rdp": f"{base}/rdp?{query}"}


def proxy_config(key: bytes, db_url: str, **changes: Any) -> ProxyConfig:
    """A proxy on a free port of 127.0.0.1 with a short heartbeat, and ``changes``."""
    base = ProxyConfig(token_key=key, db_url=db_url, listen_port=0, name="test-proxy", heartbeat_seconds=0.5)
    return dataclasses.replace(base, **changes)


class ProxyThread:
    """A :class:`ProxyService` on its own event loop in a thread, started and stopped by ``with``."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.service: ProxyService | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="console-proxy", daemon=True)

    def __enter__(self) -> ProxyThread:
        self._thread.start()
        self.service = ProxyService(self.config)
        self.call(self.service.start())
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.service is not None:
            self.call(self.service.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def base(self) -> str:
        assert self.service is not None
        return self.service.url

    def urls(self, token: str, extra: str | None = None) -> dict[str, str]:
        return urls(self.base, token, extra)

    @property
    def active(self) -> int:
        assert self.service is not None
        return self.service.state.active

    def tasks(self) -> int:
        """Tasks alive on the proxy's loop (the relays of live consoles, the heartbeat, servers)."""
        async def count() -> int:
            return len(asyncio.all_tasks()) - 1
        return self.call(count())


class ProxyProcess:
    """``hvcloud console-proxy run`` in a child process, on a free port of 127.0.0.1."""

    def __init__(self, workdir: Path, data_dir: Path | None = None, key_file: Path | None = None,
                 db_url: str | None = None, tls: tuple[Path, Path] | None = None,
                 extra_args: list[str] | None = None, log_level: str = "info") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "hvcloud.cli.main", "console-proxy", "run", "--listen",
               f"127.0.0.1:{self.port}", "--public-url", self.base, "--log-level", log_level]
        if data_dir is not None:
            cmd += ["--data-dir", str(data_dir)]
        if key_file is not None:
            cmd += ["--key-file", str(key_file)]
        if db_url is not None:
            cmd += ["--db-url", db_url]
        if tls is not None:
            cmd += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        cmd += extra_args or []
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT / "src"), str(REPO_ROOT),
                                                                       os.environ.get("PYTHONPATH")) if p)}
        self.log_path = workdir / f"console-proxy-{self.port}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)  # noqa: S603
        verify: ssl.SSLContext | bool = not tls

        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"console proxy exited {self.proc.returncode}: {self.log_path.read_text()}")
            try:
                return httpx.get(f"{self.base}/healthz", timeout=2, verify=verify).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the console proxy to serve /healthz", healthy, timeout=60)

    def urls(self, token: str, extra: str | None = None) -> dict[str, str]:
        return urls(self.base, token, extra)

    def cpu_seconds(self) -> float:
        """User + system CPU of the process so far (from /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int:
        terminate(self.proc)
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
