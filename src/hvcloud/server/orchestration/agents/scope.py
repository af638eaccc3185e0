"""What every part of one AgentManager shares: settings, database, secrets, identity and counters."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from hvcloud.server.config import ServerConfig
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.orchestration.agents.stats import ManagerStats


@dataclass(frozen=True)
class Scope:
    config: ServerConfig
    sessions: sessionmaker[Session]
    box: SecretBox
    #: this server's id in ``management_server``; None drives every host (no leases)
    server_id: str | None
    stats: ManagerStats


class Part:
    """Base of the manager's parts: the scope's fields as attributes."""

    def __init__(self, scope: Scope) -> None:
        self.config = scope.config
        self.sessions = scope.sessions
        self.box = scope.box
        self.server_id = scope.server_id
        self.stats = scope.stats
