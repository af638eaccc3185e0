"""The API fuzzer aimed at the SSH key pair, user data and VM password commands only: every answer
is a CloudStack envelope, nothing leaks a traceback, and every refusal writes nothing."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvcloud.server.config import ServerConfig
from hvcloud.server.state import ServerState
from tests.fuzz import api_fuzz
from tests.support.server_api import keys_of
from tests.support.server_in_process import in_process_server

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

URL = "/client/api"
COMMANDS = {"createSSHKeyPair", "registerSSHKeyPair", "listSSHKeyPairs", "deleteSSHKeyPair",
            "resetSSHKeyForVirtualMachine", "resetPasswordForVirtualMachine", "getVMPassword",
            "registerUserData", "listUserData", "deleteUserData", "getVirtualMachineUserData"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServerState, TestClient]]:
    with in_process_server(ServerConfig.build(tmp_path / "data", settings={"api.throttling.enabled": "false"})) \
            as (state, admin):
        yield state, admin.http


def test_fuzz_the_key_and_user_data_commands(server: tuple[ServerState, TestClient]) -> None:
    state, client = server
    assert {c.name for c in api_fuzz.REGISTRY.all()} >= COMMANDS
    keys, fx = api_fuzz.set_up(client, URL, keys_of(state, "admin"))
    tally = api_fuzz.Tally()
    chosen = itertools.islice((c for c in api_fuzz.cases(20261207, 40_000, fx) if c.command in COMMANDS), 200)
    for case in chosen:
        api_fuzz.settle(state.engine)
        before = api_fuzz.db_fingerprint(state.engine)
        r = api_fuzz.send(client, URL, case, keys)
        api_fuzz.judge(case, r.status_code, r.headers.get("content-type", ""), r.content, before,
                       api_fuzz.db_fingerprint(state.engine), tally)
    assert tally.failures == []
    assert tally.total == 200
    assert tally.counts.get("ok", 0) > 0 and "error-431" in tally.counts
