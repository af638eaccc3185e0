"""``hvcloud server run --processes N``: N server processes behind one listening socket.

One Python process uses at most one core (the GIL), so a server on a machine with several cores runs
one process per core. Each process is a whole management server with its own identity
(``server-id`` for the first, ``server-id.<i>`` for the others, kept in the data directory so that a
restarted process recognises its jobs): they share the database, split the hosts and the jobs through
the same leases as servers on different machines, and accept connections from one socket the parent
binds, so clients see one address and the kernel spreads connections over the processes.

The parent migrates and seeds the database once before the children start (they then find it
current), restarts a child that dies (after a pause that grows while it keeps dying), and on SIGTERM
or SIGINT stops the children gracefully.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from types import FrameType

from hvcloud import logs
from hvcloud.server.config import ServerConfig

log = logs.get(__name__)

STOP_GRACE_SECONDS = 30.0
#: a child that ran this long before dying is restarted at once; sooner, the pause doubles
HEALTHY_SECONDS = 60.0
MAX_RESTART_PAUSE = 30.0

#: the interpreter's thread switch interval in a server process (seconds; CPython's default is
#: 0.005). A thread holding the database's write lock gives up the GIL inside every SQLite statement
#: and then waits for it until the running thread's interval ends: with API and job threads busy,
#: a transaction of six writes held the lock (and every other writer, of every server process) for
#: tens of milliseconds instead of one. ``HVCLOUD_SWITCH_INTERVAL`` overrides it (benchmarks compare).
SWITCH_INTERVAL = 0.0005


def switch_interval() -> float:
    raw = os.environ.get("HVCLOUD_SWITCH_INTERVAL", "")
    try:
        value = float(raw) if raw else SWITCH_INTERVAL
    except ValueError:
        raise ValueError(f"HVCLOUD_SWITCH_INTERVAL must be a number of seconds, got {raw!r}") from None
    if not 0.0001 <= value <= 0.1:
        raise ValueError(f"HVCLOUD_SWITCH_INTERVAL must be between 0.0001 and 0.1 s, got {raw!r}")
    return value


def check_shareable(config: ServerConfig) -> None:
    """Several processes need one database they can all open: not an in-memory SQLite database."""
    url = config.db_url
    if url.startswith("sqlite") and (":memory:" in url or url.rstrip("/") == "sqlite:"):
        raise ValueError("--processes above 1 needs a database file or server, not an in-memory database")


def bind(config: ServerConfig) -> socket.socket:
    """The listening socket. It is created with ``IPPROTO_TCP`` as asyncio's own ``create_server``
    does: asyncio turns Nagle's algorithm off only on connections accepted from such a socket, and
    without that every response waits out the client's delayed ACK (deploys ran at half speed)."""
    family = socket.AF_INET6 if ":" in config.listen_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.listen_host, config.listen_port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(config: ServerConfig, worker: int, log_level: str, sock: socket.socket | None = None) -> None:
    """Run one management server until it is told to stop (on ``sock``, else on its listen address)."""
    import uvicorn

    from hvcloud import http_guard, logs
    from hvcloud.server.app import create_app
    from hvcloud.server.state import ServerState

    logs.configure(log_level)  # structured lines at the operator's level, as the agent's
    sys.setswitchinterval(switch_interval())
    state = ServerState.open(config, worker=worker)
    if sock is not None:
        threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), name="orphan-watch", daemon=True).start()
    guard = http_guard.uvicorn_options(config.connection_limits)
    try:
        if sock is None:
            uvicorn.run(create_app(state), host=config.listen_host, port=config.listen_port, log_level=log_level,
                        ssl_certfile=config.tls_cert, ssl_keyfile=config.tls_key, **guard)
        else:
            server = uvicorn.Server(uvicorn.Config(create_app(state), log_level=log_level,
                                                   ssl_certfile=config.tls_cert, ssl_keyfile=config.tls_key,
                                                   **guard))
            server.run(sockets=[sock])
    finally:
        state.close()


def _stop_when_orphaned(parent: int) -> None:
    """A child whose supervisor died (SIGKILL) stops too: it would otherwise keep the socket bound and
    the restarted supervisor could not listen."""
    while os.getppid() == parent:
        time.sleep(1.0)
    log.warning("the supervising process is gone; stopping", parent=parent)
    os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class _Child:
    process: BaseProcess
    started: float
    #: the pause before this child was started (it doubles while children keep dying young)
    pause: float = 0.0
    died_at: float | None = None


@dataclass
class Supervisor:
    config: ServerConfig
    count: int
    log_level: str
    sock: socket.socket
    children: dict[int, _Child] = field(default_factory=dict)
    _stopping: bool = False

    def _start(self, worker: int, pause: float = 0.0) -> None:
        context = multiprocessing.get_context("spawn")
        process = context.Process(target=serve, args=(self.config, worker, self.log_level, self.sock),
                                  name=f"hvcloud-server-{worker}")
        process.start()
        self.children[worker] = _Child(process, time.monotonic(), pause)

    def stop(self, signum: int, _frame: FrameType | None = None) -> None:
        self._stopping = True

    def run(self) -> int:
        previous = {s: signal.signal(s, self.stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for worker in range(self.count):
                self._start(worker)
            while not self._stopping:
                time.sleep(0.2)
                self._revive(time.monotonic())
        finally:
            self._stop_children()
            for s, handler in previous.items():
                signal.signal(s, handler)
        return 0

    def _revive(self, now: float) -> None:
        for worker, child in list(self.children.items()):
            if child.process.is_alive():
                continue
            lived = (child.died_at or now) - child.started
            pause = 0.0 if lived >= HEALTHY_SECONDS else min(max(child.pause * 2, 1.0), MAX_RESTART_PAUSE)
            if child.died_at is None:
                child.died_at = now
                log.warning("server process exited; restarting it", worker=worker, pid=child.process.pid,
                            exitcode=child.process.exitcode, lived_seconds=round(lived),
                            restart_in_seconds=round(pause))
            if now - child.died_at >= pause:
                self._start(worker, pause)

    def _stop_children(self) -> None:
        for child in self.children.values():
            if child.process.is_alive() and child.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in self.children.values():
            child.process.join(max(deadline - time.monotonic(), 0.1))
            if child.process.is_alive():
                child.process.kill()
                child.process.join(5)
