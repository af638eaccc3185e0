"""The in-process server the API fuzz slices aim at, with throttling off (the fuzzer's user would
mostly meet the API rate limit, 429, instead of the code under test)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvcloud.server.config import ServerConfig
from hvcloud.server.state import ServerState
from tests.support.server_in_process import in_process_server

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServerState, TestClient]]:
    with in_process_server(ServerConfig.build(tmp_path / "data", settings={"api.throttling.enabled": "false"})) \
            as (state, admin):
        yield state, admin.http
