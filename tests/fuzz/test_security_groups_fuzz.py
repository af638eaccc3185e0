"""The API fuzzer aimed at the security group commands only: every answer is a CloudStack envelope,
nothing leaks a traceback, and every refusal writes nothing."""

from __future__ import annotations

import warnings

from hvcloud.server.api.commands import security_groups
from hvcloud.server.state import ServerState
from tests.fuzz import api_fuzz
from tests.support.server_api import keys_of

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

URL = "/client/api"
COMMANDS = sorted(c.name for c in api_fuzz.REGISTRY.all() if c.handler.__module__ == security_groups.__name__)


def test_security_group_commands_under_fuzz(server: tuple[ServerState, TestClient]) -> None:
    state, client = server
    assert len(COMMANDS) == 7
    keys, fx = api_fuzz.set_up(client, URL, keys_of(state, "admin"))
    tally = api_fuzz.run(state.engine, client, URL, keys, api_fuzz.cases(20261207, 300, fx, only=COMMANDS))
    assert tally.failures == []
    assert tally.total == 300
    assert tally.counts.get("ok", 0) > 0 and tally.counts.get("error-431", 0) > 0
