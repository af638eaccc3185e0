"""A real ``hvcloud server run`` process on SQLite and on PostgreSQL, driven over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hvcloud.server.db.engine import default_sqlite_url
from tests.support.postgres import fresh_pg_database
from tests.support.server_process import ServerProcess


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database for this test session."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(scope="module")
def module_pg_database() -> Iterator[str]:
    """A PostgreSQL database of its own for one test module (its server has its own secret key)."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db_url = None
    if request.param == "postgresql":
        db_url = request.getfixturevalue("pg_database")
    data_dir = tmp_path_factory.mktemp(f"server-{request.param}") / "data"
    data_dir.mkdir()
    proc = ServerProcess(data_dir, db_url)
    yield proc
    proc.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def two_servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    """``server run --processes 2`` (API throttling off) on a fresh SQLite file or PostgreSQL
    database, and that database's URL: for the tests of what holds under concurrent calls."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    args = ["--processes", "2", "--setting", "api.throttling.enabled=false"]
    if request.param == "sqlite":
        proc = ServerProcess(data_dir, None, args)
        yield proc, default_sqlite_url(data_dir)
        proc.stop()
        return
    with fresh_pg_database() as url:
        proc = ServerProcess(data_dir, url, args)
        yield proc, url
        proc.stop()
