"""A server in this process: its state on ``config`` and its app under Starlette's TestClient.

The in-process counterpart of :class:`tests.support.server_process.ServerProcess`. Entering the
TestClient runs the app's lifespan, so the AgentManager pings hosts when ``config.manage_agents``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from hvcloud.server.app import create_app
from hvcloud.server.config import ServerConfig
from hvcloud.server.state import ServerState
from tests.support.server_api import Caller, keys_of

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@contextmanager
def in_process_server(config: ServerConfig) -> Iterator[tuple[ServerState, Caller]]:
    """The open state and a Caller signing as ``admin``; the state is closed on the way out."""
    state = ServerState.open(config)
    try:
        with TestClient(create_app(state)) as http:
            yield state, Caller(http, *keys_of(state, "admin"))
    finally:
        state.close()
