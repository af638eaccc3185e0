"""The API fuzzer aimed at the network infrastructure, offering and network commands (in-process):
every answer is an envelope without a traceback, and every rejection writes nothing."""

from __future__ import annotations

import warnings

from hvcloud.server.api.commands import networks, physical_networks
from hvcloud.server.state import ServerState
from tests.fuzz import api_fuzz
from tests.support.server_api import keys_of

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

URL = "/client/api"
NETWORK_COMMANDS = sorted(c.name for c in api_fuzz.REGISTRY.all()
                          if c.handler.__module__ in (networks.__name__, physical_networks.__name__))


def test_network_commands_under_fuzz(server: tuple[ServerState, TestClient]) -> None:
    state, client = server
    assert len(NETWORK_COMMANDS) == 23
    keys, fx = api_fuzz.set_up(client, URL, keys_of(state, "admin"))
    tally = api_fuzz.run(state.engine, client, URL, keys, api_fuzz.cases(20261207, 400, fx, only=NETWORK_COMMANDS))
    assert tally.failures == []
    assert tally.total == 400
    assert tally.counts.get("ok", 0) > 0 and tally.counts.get("error-431", 0) > 0
