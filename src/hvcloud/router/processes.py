"""The router's service processes: started detached, found again by pid file AND command line.

A pid file alone is not proof: after a crash the pid may belong to another process. A service is
alive when its pid file names a process whose ``/proc/<pid>/cmdline`` holds the marker argument the
runtime started it with (dnsmasq's ``--conf-file=…``, the metadata service's directory).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from hvcloud.router.api import RouterError

_LOG_TAIL = 2000


def read_pid(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return int(text) if text.isdigit() and 0 < int(text) < 1 << 22 else None


def cmdline(pid: int) -> list[str]:
    """The process's arguments; empty for a zombie or a process that is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def running(pid_file: Path, marker: str) -> int | None:
    """The pid of the live process ``pid_file`` names, if its command line carries ``marker``."""
    pid = read_pid(pid_file)
    if pid is None:
        return None
    return pid if marker in cmdline(pid) else None


def log_tail(log: Path) -> str:
    try:
        with log.open("rb") as fh:
            fh.seek(max(0, log.stat().st_size - _LOG_TAIL))
            return fh.read().decode("utf-8", "replace").strip()
    except FileNotFoundError:
        return ""


def spawn(argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, stdin closed, output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - a fixed argument list built by the runtime
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )


def wait_started(pid_file: Path, marker: str, proc: subprocess.Popen[bytes], log: Path, what: str,
                 timeout: float = 20.0, daemonizes: bool = False) -> int:
    """Wait until the service wrote its pid file and runs; raise with its log when it died."""
    deadline = time.monotonic() + timeout
    while True:
        pid = running(pid_file, marker)
        if pid is not None:
            return pid
        code = proc.poll()
        if code is not None and (code != 0 or not daemonizes):
            raise RouterError(f"{what} did not start (exit {code}): {log_tail(log)}")
        if time.monotonic() > deadline:
            raise RouterError(f"{what} did not start within {timeout:.0f} s: {log_tail(log)}")
        time.sleep(0.01)


def stop(pid_file: Path, marker: str, grace: float = 5.0) -> bool:
    """SIGTERM the service ``pid_file`` names (if it is ours), SIGKILL after ``grace`` s; True
    when one was stopped. The pid file is removed."""
    pid = running(pid_file, marker)
    stopped = False
    if pid is not None:
        stopped = True
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while marker in cmdline(pid):
            _reap(pid)
            if time.monotonic() > deadline:
                _signal(pid, signal.SIGKILL)
                deadline = time.monotonic() + grace
            time.sleep(0.01)
        _reap(pid)
    pid_file.unlink(missing_ok=True)
    return stopped


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child (the metadata service started by this
    process); other processes are reaped by their parent."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def reload(pid: int) -> None:
    """SIGHUP: dnsmasq re-reads its hosts files."""
    _signal(pid, signal.SIGHUP)
