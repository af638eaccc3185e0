"""Process-wide server state: configuration, database, secret box."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hvcloud.server.api.ratelimit import ApiRateLimiter
from hvcloud.server.config import DB_URL_FILE, ServerConfig
from hvcloud.server.db import migrate
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.engine import make_engine, make_session_factory
from hvcloud.server.db.seed import seed
from hvcloud.server.db.sequences import Sequences
from hvcloud.server.orchestration import configuration
from hvcloud.server.orchestration.role_rules import RoleRules

if TYPE_CHECKING:
    from hvcloud.server.jobs.engine import JobEngine
    from hvcloud.server.orchestration.agents.protocol import AgentService

SERVER_ID_FILE = "server-id"


@dataclass
class ServerState:
    config: ServerConfig
    engine: Engine
    sessions: sessionmaker[Session]
    box: SecretBox
    server_id: str = ""
    #: VM and account numbers (reserved in blocks)
    sequences: Sequences = field(init=False)
    #: the per-account API rate limit (``api.throttling.*``), counted in this process
    rate_limiter: ApiRateLimiter = field(init=False)
    #: the custom roles' rules as this process compiled them (``orchestration.role_rules``)
    roles: RoleRules = field(init=False)
    jobs: JobEngine | None = None
    #: set while the app runs (its lifespan starts and stops the manager)
    agents: AgentService | None = None
    #: the settings as given (command line and built-in defaults), before stored values apply
    base_config: ServerConfig = field(init=False)
    #: the stored settings when this server started (static settings keep these) and now
    settings_at_start: configuration.Snapshot = field(init=False)
    settings: configuration.Snapshot = field(init=False)
    #: called with the new config after a dynamic setting changed (the AgentManager subscribes)
    on_settings_change: list[Callable[[ServerConfig], None]] = field(init=False)

    @classmethod
    def open(cls, config: ServerConfig, worker: int = 0) -> ServerState:
        """Create the data directory, migrate the database to head and seed it. ``worker`` numbers the
        processes of ``server run --processes N``: each has its own server id."""
        config.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(config.data_dir, 0o700)
        box = SecretBox.from_data_dir(config.data_dir)
        engine = make_engine(config.db_url)
        migrate.upgrade(engine)
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            seed(session, box, config.data_dir)
        url_file = config.data_dir / DB_URL_FILE
        fd = os.open(url_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(config.db_url + "\n")
        state = cls(config=config, engine=engine, sessions=sessions, box=box,
                    server_id=_server_id(config.data_dir, worker))
        with sessions() as session:
            state.settings_at_start = configuration.load(session)
        state.refresh_settings(force=True)
        return state

    def __post_init__(self) -> None:
        self.sequences = Sequences(self.sessions)
        self.base_config = self.config
        self.settings_at_start = self.settings = configuration.Snapshot(version=-1)
        self.on_settings_change = []
        self._settings_lock = threading.Lock()
        self.roles = RoleRules()
        cfg = self.config
        self.rate_limiter = ApiRateLimiter(enabled=cfg.api_throttling_enabled, interval=cfg.api_throttling_interval,
                                           maximum=cfg.api_throttling_max, cache_size=cfg.api_throttling_cachesize)

    def refresh_settings(self, *, force: bool = False) -> bool:
        """Re-read the stored settings if ``configuration_version`` moved (one small query; the rows
        only then) and apply the dynamic ones; True when something was reloaded."""
        with self._settings_lock:
            with self.sessions() as session:
                if not force and configuration.read_version(session) == self.settings.version:
                    return False
                snapshot = configuration.load(session)
            self.settings = snapshot
            new = configuration.effective(self.base_config, self.settings_at_start, snapshot)
            self.config = new
            self.rate_limiter.reconfigure(enabled=new.api_throttling_enabled, interval=new.api_throttling_interval,
                                          maximum=new.api_throttling_max, cache_size=new.api_throttling_cachesize)
            listeners = list(self.on_settings_change)
        for listener in listeners:
            listener(new)
        return True

    def notify_jobs(self) -> None:
        if self.jobs is not None:
            self.jobs.notify()

    def close(self) -> None:
        self.engine.dispose()


def _server_id(data_dir: Path, worker: int = 0) -> str:
    """This server's stable identity (kept in the data directory), so that after a restart it
    recognises the jobs it owned."""
    path = data_dir / (SERVER_ID_FILE if worker == 0 else f"{SERVER_ID_FILE}.{worker}")
    if path.exists():
        return str(uuid.UUID(path.read_text().strip()))
    server_id = str(uuid.uuid4())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(server_id + "\n")
    return server_id
