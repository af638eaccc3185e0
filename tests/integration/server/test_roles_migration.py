"""Migration ``0017_roles`` on SQLite and PostgreSQL: accounts that exist before it get their type's
default role, it builds exactly the models, and it goes down to ``0016_configuration`` and up again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from hvcloud.server.db.default_roles import DEFAULT_ROLES, ROOT_ADMIN_ROLE_ID, USER_ROLE_ID
from hvcloud.server.db.models import Base
from tests.support.migrations import BACKENDS, alembic, empty_engine


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with empty_engine(request.param, tmp_path) as eng:
        yield eng


def test_existing_accounts_get_their_default_role(engine: Engine) -> None:
    alembic(engine, "upgrade", "0016_configuration")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO domain (id, name, path, level, created) "
                          "VALUES ('d', 'ROOT', 'ROOT', 0, CURRENT_TIMESTAMP)"))
        for account_id, account_type in (("a-admin", 1), ("a-user", 0)):
            conn.execute(text("INSERT INTO account (id, name, domain_id, account_type, state, created) "
                              "VALUES (:id, :id, 'd', :t, 'enabled', CURRENT_TIMESTAMP)"),
                         {"id": account_id, "t": account_type})
    alembic(engine, "upgrade", "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert {r[0]: r[1] for r in conn.execute(text("SELECT id, role_id FROM account"))} == {
            "a-admin": ROOT_ADMIN_ROLE_ID, "a-user": USER_ROLE_ID}
        roles = conn.execute(text("SELECT id, name, role_type, is_default FROM role ORDER BY id")).all()
        assert sorted((r[0], r[1], r[2], bool(r[3])) for r in roles) == sorted(
            (i, n, t, True) for i, n, t, _ in DEFAULT_ROLES)

    alembic(engine, "downgrade", "0016_configuration")
    assert not set(inspect(engine).get_table_names()) & {"role", "role_permission"}
    assert "role_id" not in {c["name"] for c in inspect(engine).get_columns("account")}
    alembic(engine, "upgrade", "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert conn.execute(text("SELECT count(*) FROM account WHERE role_id IS NULL")).scalar() == 0
