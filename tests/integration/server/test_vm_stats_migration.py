"""Migration ``0019_vm_stats`` on SQLite and PostgreSQL: it builds exactly the models, goes down to
``0018_tags`` (the table gone) and up again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from hvcloud.server.db import migrate
from hvcloud.server.db.models import Base
from tests.support.migrations import BACKENDS, alembic, empty_engine


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with empty_engine(request.param, tmp_path) as eng:
        yield eng


def test_vm_stats_migration_down_and_up(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    columns = {c["name"] for c in inspect(engine).get_columns("vm_stats")}
    assert {"vm_id", "host_id", "cpu_used_percent", "network_read_kbs", "disk_read_ios", "collected"} <= columns
    foreign = inspect(engine).get_foreign_keys("vm_stats")
    assert [(f["referred_table"], (f.get("options") or {}).get("ondelete")) for f in foreign] == \
        [("vm_instance", "CASCADE")]
    alembic(engine, "downgrade", "0018_tags")
    assert "vm_stats" not in inspect(engine).get_table_names()
    alembic(engine, "upgrade", "head")
    assert "vm_stats" in inspect(engine).get_table_names()
    assert migrate.current_revision(engine) == migrate.head_revision()
