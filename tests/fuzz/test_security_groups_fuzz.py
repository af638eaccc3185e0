"""The API fuzzer aimed at the security group commands only: every answer is a CloudStack envelope,
nothing leaks a traceback, and every refusal writes nothing."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvcloud.server.api.commands import security_groups
from hvcloud.server.config import ServerConfig
from hvcloud.server.state import ServerState
from tests.fuzz import api_fuzz
from tests.support.server_api import keys_of
from tests.support.server_in_process import in_process_server

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

URL = "/client/api"
COMMANDS = sorted(c.name for c in api_fuzz.REGISTRY.all() if c.handler.__module__ == security_groups.__name__)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServerState, TestClient]]:
    with in_process_server(ServerConfig.build(tmp_path / "data", settings={"api.throttling.enabled": "false"})) \
            as (state, admin):
        yield state, admin.http


def test_security_group_commands_under_fuzz(server: tuple[ServerState, TestClient]) -> None:
    state, client = server
    assert len(COMMANDS) == 7
    keys, fx = api_fuzz.set_up(client, URL, keys_of(state, "admin"))
    tally = api_fuzz.Tally()
    for case in api_fuzz.cases(20261207, 300, fx, only=COMMANDS):
        api_fuzz.settle(state.engine)
        before = api_fuzz.db_fingerprint(state.engine)
        r = api_fuzz.send(client, URL, case, keys)
        api_fuzz.judge(case, r.status_code, r.headers.get("content-type", ""), r.content, before,
                       api_fuzz.db_fingerprint(state.engine), tally)
    assert tally.failures == []
    assert tally.total == 300
    assert tally.counts.get("ok", 0) > 0 and tally.counts.get("error-431", 0) > 0
