"""Fixtures: a real server state on a temporary SQLite database and a signing API caller.

The AgentManager is off here (hosts are inserted directly); ``tests/integration/server/test_server_hosts*`` run it."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hvcloud.server.app import create_app
from hvcloud.server.config import ServerConfig
from hvcloud.server.state import ServerState
from tests.support.console_api import FakeAgents
from tests.support.server_api import Caller, build_zone, keys_of, ready_template

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture
def state(tmp_path: Path) -> Iterator[ServerState]:
    # the API rate limit has its own tests (tests/security/test_api_rate_limit.py); here users call freely
    config = ServerConfig.build(tmp_path / "data", settings={"api.throttling.enabled": "false"})
    st = ServerState.open(replace(config, manage_agents=False))
    yield st
    st.close()


@pytest.fixture
def http(state: ServerState) -> Iterator[TestClient]:
    with TestClient(create_app(state)) as client:
        yield client


@pytest.fixture
def admin(state: ServerState, http: TestClient) -> Caller:
    apikey, secret = keys_of(state, "admin")
    return Caller(http, apikey, secret)


@pytest.fixture
def user_caller(admin: Caller) -> Caller:
    """A plain user in its own account, with freshly registered keys."""
    account = admin.ok("createAccount", username="alice", password="s3cret-pw", firstname="Alice",
                       lastname="A", accounttype=0)["account"]
    keys = admin.ok("registerUserKeys", id=account["user"][0]["id"])["userkeys"]
    return Caller(admin.http, keys["apikey"], keys["secretkey"])


@pytest.fixture
def agents(state: ServerState, http: TestClient) -> Iterator[FakeAgents]:
    """The server's agents replaced by a stand-in that answers console and thumbnail commands."""
    fake = FakeAgents(state.config)
    state.agents = fake  # type: ignore[assignment]
    yield fake
    state.agents = None


@pytest.fixture
def cloud(state: ServerState, admin: Caller) -> dict[str, Any]:
    """A zone (``build_zone``) with a ready public template and the "Small Instance" offering: what a
    deploy needs. Modules that need more define a ``cloud`` fixture of their own."""
    ids = build_zone(admin)
    with state.sessions.begin() as db:
        template = ready_template(db, ids["zoneid"]).id
    offering = admin.ok("listServiceOfferings", name="Small Instance")["serviceoffering"][0]["id"]
    return {**ids, "template": template, "offering": offering}
