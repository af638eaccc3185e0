"""Migration ``0023_usage`` on SQLite and PostgreSQL: it builds exactly the models, its seeding queries
run on both (a template never stored opens no usage), and it goes down to ``0022_projects`` and up again."""

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


def test_usage_migration_builds_the_models_both_ways(engine: Engine) -> None:
    alembic(engine, "upgrade", "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    alembic(engine, "downgrade", "0022_projects")
    assert not {"usage_event", "usage_record", "usage_job"} & set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO domain (id, name, path, level, created) VALUES "
                          "('r', 'ROOT', 'ROOT', 0, CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO account (id, name, domain_id, account_type, state, created) "
                          "VALUES ('a', 'a', 'r', 0, 'enabled', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO vm_template (id, name, display_text, is_iso, format, account_id, is_public, "
                          "is_featured, is_extractable, password_enabled, sshkey_enabled, bootable, requires_hvm, "
                          "bits, template_type, cross_zones, created) VALUES ('t', 't', 't', false, 'QCOW2', 'a', "
                          "false, false, false, false, false, true, true, 64, 'USER', false, CURRENT_TIMESTAMP)"))
    alembic(engine, "upgrade", "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert conn.execute(text("SELECT count(*) FROM usage_event")).scalar_one() == 0  # nothing stored yet
