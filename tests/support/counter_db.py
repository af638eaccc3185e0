"""A small SQLite database of one counter row and a log table, for the concurrent-writer tests of the
server's SQLite engine (threads in tests/unit/server, processes in tests/integration/server)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

from hvcloud.server.db import engine as db_engine


def counter_engine(path: Path) -> Engine:
    """The server's engine on a new database at ``path``: ``counter`` (id 1, value 0) and ``log``."""
    eng = db_engine.make_engine(f"sqlite:///{path}")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)"))
        conn.execute(text("CREATE TABLE log (id INTEGER PRIMARY KEY, who TEXT NOT NULL)"))
        conn.execute(text("INSERT INTO counter VALUES (1, 0)"))
    return eng


def counter_value(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT value FROM counter WHERE id = 1")).scalar_one())
