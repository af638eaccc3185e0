"""The API fuzzer aimed at the SSH key pair, user data and VM password commands only: every answer
is a CloudStack envelope, nothing leaks a traceback, and every refusal writes nothing."""

from __future__ import annotations

import itertools
import warnings

from hvcloud.server.state import ServerState
from tests.fuzz import api_fuzz
from tests.support.server_api import keys_of

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

URL = "/client/api"
COMMANDS = {"createSSHKeyPair", "registerSSHKeyPair", "listSSHKeyPairs", "deleteSSHKeyPair",
            "resetSSHKeyForVirtualMachine", "resetPasswordForVirtualMachine", "getVMPassword",
            "registerUserData", "listUserData", "deleteUserData", "getVirtualMachineUserData"}


def test_fuzz_the_key_and_user_data_commands(server: tuple[ServerState, TestClient]) -> None:
    state, client = server
    assert {c.name for c in api_fuzz.REGISTRY.all()} >= COMMANDS
    keys, fx = api_fuzz.set_up(client, URL, keys_of(state, "admin"))
    chosen = itertools.islice((c for c in api_fuzz.cases(20261207, 40_000, fx) if c.command in COMMANDS), 200)
    tally = api_fuzz.run(state.engine, client, URL, keys, chosen)
    assert tally.failures == []
    assert tally.total == 200
    assert tally.counts.get("ok", 0) > 0 and "error-431" in tally.counts
