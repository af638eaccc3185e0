"""A real ``hvcloud server run`` process on SQLite and on PostgreSQL, driven over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
