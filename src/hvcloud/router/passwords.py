"""CloudStack's password server protocol and where the passwords wait for their VM.

A guest's password script asks ``GET /`` on port 8080 with the header ``DomU_Request:
send_my_password`` and gets its password, or ``saved_password`` when there is none (or it was
already delivered); it then confirms with ``DomU_Request: saved_password``, after which the router
forgets the password. Any other request gets ``bad_request``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from hvcloud.atomic_file import load_json, save_json

SEND_MY_PASSWORD = "send_my_password"
SAVED_PASSWORD = "saved_password"
BAD_REQUEST = "bad_request"
HEADER = "DomU_Request"


class PasswordStore(Protocol):
    def save(self, ip: str, password: str) -> None: ...

    def pending(self, ip: str) -> str | None:
        """The password not yet delivered to ``ip``, if any."""

    def delivered(self, ip: str) -> None:
        """``ip`` confirmed it has its password: forget it."""


def answer(store: PasswordStore, ip: str, request: str | None) -> str:
    """The password server's reply to ``ip`` for the ``DomU_Request`` header value ``request``."""
    if request == SEND_MY_PASSWORD:
        return store.pending(ip) or SAVED_PASSWORD
    if request == SAVED_PASSWORD:
        store.delivered(ip)
        return SAVED_PASSWORD
    return BAD_REQUEST


class MemoryPasswords:
    def __init__(self) -> None:
        self.by_ip: dict[str, str] = {}

    def save(self, ip: str, password: str) -> None:
        self.by_ip[ip] = password

    def pending(self, ip: str) -> str | None:
        return self.by_ip.get(ip)

    def delivered(self, ip: str) -> None:
        self.by_ip.pop(ip, None)


class FilePasswords:
    """One owner-only JSON file per address under ``directory``, shared by the agent (which saves)
    and the router's password service (which delivers), under one ``flock``. A delivered password
    is erased from disk; the file stays as the record that it was delivered."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _path(self, ip: str) -> Path:
        # ``ip`` is a canonical address (validated by the caller, or the socket's peer address)
        return self.dir / f"{ip}.json"

    def save(self, ip: str, password: str) -> None:
        with self._locked():
            save_json(self._path(ip), {"password": password, "delivered": False})

    def pending(self, ip: str) -> str | None:
        try:
            data = load_json(self._path(ip), {})
        except ValueError:
            # a torn or edited file: nothing to hand out (the agent's next save replaces it)
            return None
        value = data.get("password") if isinstance(data, dict) and not data.get("delivered") else None
        return value if isinstance(value, str) and value else None

    def delivered(self, ip: str) -> None:
        with self._locked():
            if self._path(ip).exists():
                save_json(self._path(ip), {"password": None, "delivered": True})

    def forget(self, ip: str) -> None:
        with self._locked():
            self._path(ip).unlink(missing_ok=True)
