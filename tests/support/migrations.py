"""Migration tests on both databases: a throw-away engine per backend and Alembic steps to a revision."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from hvcloud.server.db import engine as db_engine
from hvcloud.server.db import migrate
from tests.support.postgres import fresh_pg_database

BACKENDS = ("sqlite", "postgresql")


@contextmanager
def empty_engine(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database: a SQLite file under ``tmp_path`` or a fresh PostgreSQL
    database (the test skips when PostgreSQL is absent)."""
    if backend == "sqlite":
        eng = db_engine.make_engine(f"sqlite:///{tmp_path / 'migrations.db'}")
        try:
            yield eng
        finally:
            eng.dispose()
        return
    with fresh_pg_database() as url:
        eng = db_engine.make_engine(url)
        try:
            yield eng
        finally:
            eng.dispose()


def alembic(engine: Engine, action: str, revision: str) -> None:
    """``alembic upgrade|downgrade REVISION`` on ``engine``, with the package's migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, revision)
