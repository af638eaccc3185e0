"""``api_threads`` (``hvcloud server run --api-threads``): how many API requests a server process
handles at once, in force on the loop the app runs on."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import anyio.to_thread
import pytest

from hvcloud.server.app import create_app
from hvcloud.server.config import ServerConfig
from hvcloud.server.state import ServerState

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


async def _limit() -> float:
    return anyio.to_thread.current_default_thread_limiter().total_tokens


@pytest.mark.parametrize("threads", [3, 40])
def test_the_api_runs_on_as_many_threads_as_configured(tmp_path: Path, threads: int) -> None:
    config = replace(ServerConfig.build(tmp_path / "data"), manage_agents=False, api_threads=threads)
    state = ServerState.open(config)
    try:
        with TestClient(create_app(state, run_jobs=False)) as client:
            assert client.portal is not None
            assert client.portal.call(_limit) == threads
            assert client.get("/client/api", params={"command": "listZones"}).status_code == 401
    finally:
        state.close()
