"""Resource tags on PostgreSQL: migration ``0018_tags`` builds exactly the models on both backends and
goes down and up again, and the tag API (create, filters, duplicates, delete, cleanup on expunge)
behaves on PostgreSQL as on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select

from hvcloud.server.config import ServerConfig
from hvcloud.server.db import migrate
from hvcloud.server.db.models import Base, ResourceTag
from hvcloud.server.state import ServerState
from tests.support.migrations import BACKENDS, alembic, empty_engine
from tests.support.postgres import fresh_pg_database
from tests.support.server_api import Caller, build_zone, ready_template
from tests.support.server_in_process import in_process_server
from tests.unit.server.test_tags_api import _create, _pairs, _tags, _vm


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with empty_engine(request.param, tmp_path) as eng:
        yield eng


def test_tags_migration_down_and_up(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    alembic(engine, "downgrade", "0017_roles")
    assert "resource_tag" not in inspect(engine).get_table_names()
    alembic(engine, "upgrade", "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


@pytest.fixture
def pg_admin(tmp_path: Path) -> Iterator[tuple[ServerState, Caller]]:
    with fresh_pg_database() as url:
        config = ServerConfig.build(tmp_path / "data", url, settings={"api.throttling.enabled": "false"})
        with in_process_server(replace(config, manage_agents=False)) as server:
            yield server


def test_the_tag_api_on_postgresql(pg_admin: tuple[ServerState, Caller]) -> None:
    state, admin = pg_admin
    ids = build_zone(admin)
    with state.sessions.begin() as db:
        template = ready_template(db, ids["zoneid"]).id
    offering = admin.ok("listServiceOfferings", name="Small Instance")["serviceoffering"][0]["id"]
    cloud: dict[str, Any] = {**ids, "template": template, "offering": offering}
    web, other = _vm(admin, cloud, "web"), _vm(admin, cloud, "other")
    assert _create(admin, "UserVm", [web, other], env="prod")["jobstatus"] == 1
    assert _create(admin, "UserVm", [web], role="front")["jobstatus"] == 1
    found = admin.ok("listVirtualMachines", **_tags(env="prod", role="front"))["virtualmachine"]
    assert [v["id"] for v in found] == [web] and _pairs(found[0]) == [("env", "prod"), ("role", "front")]
    status, body = admin.call("createTags", resourcetype="UserVm", resourceids=other, **_tags(env="x"))
    assert status == 530 and "already on UserVm" in body["errortext"]
    assert admin.job("deleteTags", resourcetype="UserVm", resourceids=web, **{"tags[0].key": "ENV"})[
        "jobstatus"] == 1
    assert admin.job("destroyVirtualMachine", id=other, expunge="true")["jobstatus"] == 1
    with state.sessions() as db:
        assert [(r.resource_id, r.key) for r in db.scalars(select(ResourceTag))] == [(web, "role")]
