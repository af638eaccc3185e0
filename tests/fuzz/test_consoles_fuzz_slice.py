"""The API fuzzer aimed at createConsoleEndpoint and getVirtualMachineThumbnail (in-process, the
agent a stand-in): every answer is an envelope without a traceback, and every refusal writes
nothing (a granted console writes its ``console_session`` row only)."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvcloud.server.api.commands import consoles
from hvcloud.server.config import ServerConfig
from hvcloud.server.state import ServerState
from tests.fuzz import api_fuzz
from tests.support.console_api import FakeAgents, add_proxy, make_cloud, running_vm
from tests.support.server_api import Caller, keys_of
from tests.support.server_in_process import in_process_server

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

URL = "/client/api"
CONSOLE_COMMANDS = sorted(c.name for c in api_fuzz.REGISTRY.all() if c.handler.__module__ == consoles.__name__)


@pytest.fixture
def console_server(tmp_path: Path) -> Iterator[tuple[ServerState, TestClient]]:
    """The fuzz server without an AgentManager (its pings would write the stand-in host's row)."""
    config = ServerConfig.build(tmp_path / "data", settings={"api.throttling.enabled": "false"},
                                manage_agents=False)
    with in_process_server(config) as (state, admin):
        state.agents = FakeAgents(state.config)  # type: ignore[assignment]
        yield state, admin.http
        state.agents = None


def test_console_commands_under_fuzz(console_server: tuple[ServerState, TestClient]) -> None:
    state, client = console_server
    assert CONSOLE_COMMANDS == ["createConsoleEndpoint", "getVirtualMachineThumbnail"]
    keys, fx = api_fuzz.set_up(client, URL, keys_of(state, "admin"))
    admin, user = Caller(client, *keys["admin"]), Caller(client, *keys["user"])
    cloud = make_cloud(state, admin)
    add_proxy(state, "http://proxy.example.test:8443")
    fx.ids += [running_vm(user, state, cloud), running_vm(user, state, cloud, "Stopped"),
               running_vm(admin, state, cloud), cloud["host"]]
    chosen = list(itertools.islice(api_fuzz.cases(20261217, 400, fx, only=CONSOLE_COMMANDS), 250))
    tally = api_fuzz.run(state.engine, client, URL, keys, chosen)
    assert tally.failures == []
    assert tally.total == 250
    assert tally.counts.get("ok", 0) > 0 and tally.counts.get("error-431", 0) > 0
