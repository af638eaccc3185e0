"""The agent's username and password for ``--auth password``."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

ENV_USER = "HVCLOUD_AGENT_USERNAME"
ENV_PASSWORD = "HVCLOUD_AGENT_PASSWORD"
FILE_NAME = "agent-credentials.json"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***)"


def load_or_create(data_dir: Path) -> tuple[Credentials, bool]:
    """From the environment, else from the data directory, else newly generated and saved
    (mode 0600). Returns the credentials and whether they were generated now."""
    user, password = os.environ.get(ENV_USER), os.environ.get(ENV_PASSWORD)
    if user and password:
        return Credentials(user, password), False
    path = data_dir / FILE_NAME
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        return Credentials(str(data["username"]), str(data["password"])), False
    creds = Credentials(user or "hvcloud", secrets.token_urlsafe(24))
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"username": creds.username, "password": creds.password}, fh)
    return creds, True
