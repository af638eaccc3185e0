"""The per-account API rate limit (CloudStack's API rate-limit plugin) over real HTTP, against a real
``hvcloud server run`` process: plain users get 429 in CloudStack's error envelope past
``api.throttling.max`` calls in a window, root admins are never throttled, ``getApiLimit`` /
``resetApiLimit`` work, and ``listCapabilities`` advertises what is enforced."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from hvcloud.server.api.signature import compute_signature
from hvcloud.server.config import ServerConfig, parse_settings
from tests.support.server_process import ServerProcess

MAX = 5
Keys = tuple[str, str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("ratelimit") / "data"
    data_dir.mkdir()
    proc = ServerProcess(data_dir, None, ["--setting", f"api.throttling.max={MAX}",
                                          "--setting", "api.throttling.interval=1"])
    yield proc
    proc.stop()


def call(server: ServerProcess, keys: Keys, command: str, **params: str) -> httpx.Response:
    pairs = [("apiKey", keys[0]), ("command", command), ("response", "json"), *params.items()]
    pairs.append(("signature", compute_signature(pairs, keys[1])))
    return httpx.get(f"{server.endpoint}?{urlencode(pairs)}", timeout=30)


def body(resp: httpx.Response) -> dict[str, Any]:
    value: dict[str, Any] = next(iter(resp.json().values()))
    return value


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> Keys:
    return server.keys["apikey"], server.keys["secretkey"]


@pytest.fixture(scope="module")
def user(server: ServerProcess, admin: Keys) -> Keys:
    account = body(call(server, admin, "createAccount", username="rl-user", password="rl-user-pw-1",
                        firstname="R", lastname="L", accounttype="0"))["account"]
    keys = body(call(server, admin, "registerUserKeys", id=account["user"][0]["id"]))["userkeys"]
    return keys["apikey"], keys["secretkey"]


def burst(server: ServerProcess, keys: Keys, count: int) -> list[httpx.Response]:
    with httpx.Client(timeout=30) as client:
        out = []
        for _ in range(count):
            pairs = [("apiKey", keys[0]), ("command", "listZones"), ("response", "json")]
            pairs.append(("signature", compute_signature(pairs, keys[1])))
            out.append(client.get(f"{server.endpoint}?{urlencode(pairs)}"))
        return out


def settle_window() -> None:
    """Let the current one-second window of the account run out (the interval is 1 s)."""
    time.sleep(1.1)


def test_a_user_past_the_limit_gets_429_in_cloudstacks_envelope(server: ServerProcess, user: Keys) -> None:
    settle_window()
    answers = burst(server, user, 4 * MAX)
    refused = [r for r in answers if r.status_code == 429]
    assert answers[0].status_code == 200
    assert refused, [r.status_code for r in answers]
    assert {r.status_code for r in answers} <= {200, 429}
    err = refused[0].json()
    assert list(err) == ["listzonesresponse"]
    assert err["listzonesresponse"]["errorcode"] == 429
    assert err["listzonesresponse"]["cserrorcode"] == 9999
    text = err["listzonesresponse"]["errortext"]
    assert text.startswith("The given user has reached his/her account api limit, please retry after ")
    assert text.endswith(" ms.")
    assert refused[0].headers["X-Description"] == text
    settle_window()
    assert call(server, user, "listZones").status_code == 200


def test_root_admin_is_never_throttled(server: ServerProcess, admin: Keys) -> None:
    answers = burst(server, admin, 6 * MAX)
    assert [r.status_code for r in answers] == [200] * len(answers)


def test_capabilities_advertise_the_enforced_limit(server: ServerProcess, user: Keys) -> None:
    settle_window()
    capability = body(call(server, user, "listCapabilities"))["capability"]
    assert capability["apilimitmax"] == MAX and capability["apilimitinterval"] == 1


def test_get_and_reset_api_limit(server: ServerProcess, admin: Keys, user: Keys) -> None:
    settle_window()
    limit = body(call(server, user, "getApiLimit"))["apilimit"]
    assert limit["account"] == "rl-user" and limit["apiIssued"] >= 1
    assert limit["apiAllowed"] == MAX - limit["apiIssued"]
    assert 0 <= limit["expireAfter"] <= 1000
    assert any(r.status_code == 429 for r in burst(server, user, 4 * MAX))
    account_id = limit["accountid"]
    assert body(call(server, admin, "resetApiLimit", account=account_id))["success"] == "true"
    assert call(server, user, "listZones").status_code == 200
    # a user may not reset its own count
    settle_window()
    denied = call(server, user, "resetApiLimit", account=account_id)
    assert denied.status_code == 401


def test_settings_are_checked() -> None:
    assert parse_settings({"api.throttling.enabled": "false"}) == {"api_throttling_enabled": False}
    for bad in ({"api.throttling.enabled": "maybe"}, {"api.throttling.max": "0"},
                {"api.throttling.interval": "-1"}, {"api.throttling.cachesize": "x"}):
        with pytest.raises(ValueError):
            parse_settings(bad)
    assert ServerConfig.build(Path("/nonexistent")).api_throttling_enabled is True


def test_disabled_throttling_is_not_advertised(tmp_path: Path) -> None:
    """``api.throttling.enabled=false``: nothing is enforced, so nothing is advertised (as CloudStack)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    server = ServerProcess(data_dir, None, ["--setting", "api.throttling.enabled=false",
                                            "--setting", "api.throttling.max=1"])
    try:
        keys = server.keys["apikey"], server.keys["secretkey"]
        account = body(call(server, keys, "createAccount", username="free", password="free-pw-123",
                            firstname="F", lastname="F", accounttype="0"))["account"]
        new = body(call(server, keys, "registerUserKeys", id=account["user"][0]["id"]))["userkeys"]
        user = new["apikey"], new["secretkey"]
        assert [r.status_code for r in burst(server, user, 10)] == [200] * 10
        capability = body(call(server, user, "listCapabilities"))["capability"]
        assert "apilimitmax" not in capability and "apilimitinterval" not in capability
        off = call(server, user, "getApiLimit")
        assert off.status_code == 432
        assert body(off)["errortext"] == "This api is only available when api.throttling.enabled = true."
    finally:
        server.stop()
