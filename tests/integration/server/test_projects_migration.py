"""Migration ``0022_projects`` on SQLite and PostgreSQL: it adds ``project`` and ``project_account``
beside existing rows, builds exactly the models (a live project name is unique per domain, a removed
one may be taken again), and goes down to ``0021_domains`` and up again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from hvcloud.server.db.models import Base
from tests.support.migrations import BACKENDS, alembic, empty_engine


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with empty_engine(request.param, tmp_path) as eng:
        yield eng


def _project(conn: object, pid: str, account: str, removed: str = "NULL") -> None:
    conn.execute(text(  # type: ignore[attr-defined]
        "INSERT INTO project (id, name, display_text, domain_id, project_account_id, state, created, removed) "
        f"VALUES ('{pid}', 'p', 'p', 'r', '{account}', 'Active', CURRENT_TIMESTAMP, {removed})"))


def test_projects_migration(engine: Engine) -> None:
    alembic(engine, "upgrade", "0021_domains")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO domain (id, name, path, level, created, state) VALUES "
                          "('r', 'ROOT', 'ROOT', 0, CURRENT_TIMESTAMP, 'Active')"))
        for account, kind in (("a", 0), ("pa1", 5), ("pa2", 5), ("pa3", 5)):
            conn.execute(text("INSERT INTO account (id, name, domain_id, account_type, state, created) "
                              f"VALUES ('{account}', '{account}', 'r', {kind}, 'enabled', CURRENT_TIMESTAMP)"))
    alembic(engine, "upgrade", "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    with engine.begin() as conn:
        _project(conn, "p1", "pa1", removed="CURRENT_TIMESTAMP")
        _project(conn, "p2", "pa2")
        conn.execute(text("INSERT INTO project_account (id, project_id, account_id, role, created) "
                          "VALUES ('m', 'p2', 'a', 'Admin', CURRENT_TIMESTAMP)"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _project(conn, "p3", "pa3")  # a second live "p" in ROOT

    alembic(engine, "downgrade", "0021_domains")
    assert not {"project", "project_account"} & set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM account")).scalar_one() == 4
    alembic(engine, "upgrade", "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
