"""Migration ``0021_domains`` on SQLite and PostgreSQL: existing domains become Active and keep every
row that references them (no table is rebuilt: some references cascade), it builds exactly the
models, and it goes down to ``0020_affinity`` and up again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from hvcloud.server.db.models import Base
from tests.support.migrations import BACKENDS, alembic, empty_engine


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with empty_engine(request.param, tmp_path) as eng:
        yield eng


def _counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()  # type: ignore[return-value]
                     for t in ("domain", "account", "resource_limit"))


def test_domains_migration_keeps_the_tree(engine: Engine) -> None:
    alembic(engine, "upgrade", "0020_affinity")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO domain (id, name, path, level, created) VALUES "
                          "('r', 'ROOT', 'ROOT', 0, CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO domain (id, name, path, parent_id, level, created) VALUES "
                          "('s', 'sub', 'ROOT/sub', 'r', 1, CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO account (id, name, domain_id, account_type, state, created) "
                          "VALUES ('a', 'a', 's', 0, 'enabled', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO resource_limit (id, domain_id, resource_type, max) VALUES ('l', 's', 0, 5)"))
    alembic(engine, "upgrade", "head")
    assert _counts(engine) == (2, 1, 1)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        rows = conn.execute(text("SELECT id, state, removed, network_domain FROM domain ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [("r", "Active", None, None), ("s", "Active", None, None)]

    alembic(engine, "downgrade", "0020_affinity")
    assert not {"state", "removed", "network_domain"} & {c["name"] for c in inspect(engine).get_columns("domain")}
    assert _counts(engine) == (2, 1, 1)
    alembic(engine, "upgrade", "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    assert _counts(engine) == (2, 1, 1)
