"""What every part of one AgentManager shares: settings, database, secrets, identity and counters."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from hvcloud.server.config import ServerConfig
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.orchestration.agents.stats import ManagerStats


class LiveConfig:
    """The settings the parts read: replaced as a whole when a dynamic setting changes
    (``AgentManager.reconfigure``), so every part sees the new values from its next read."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config


@dataclass(frozen=True)
class Scope:
    live: LiveConfig
    sessions: sessionmaker[Session]
    box: SecretBox
    #: this server's id in ``management_server``; None drives every host (no leases)
    server_id: str | None
    stats: ManagerStats

    @property
    def config(self) -> ServerConfig:
        return self.live.config


class Part:
    """Base of the manager's parts: the scope's fields as attributes."""

    def __init__(self, scope: Scope) -> None:
        self._live = scope.live
        self.sessions = scope.sessions
        self.box = scope.box
        self.server_id = scope.server_id
        self.stats = scope.stats

    @property
    def config(self) -> ServerConfig:
        """The current settings (dynamic ones change while the manager runs)."""
        return self._live.config
