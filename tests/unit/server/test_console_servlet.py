"""``GET /client/console`` (CloudStack's old console servlet entry): session authentication, the
302 to a fresh console URL, thumbnails as image/png, and refusals that do not tell whether a VM
exists."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from hvcloud.console_proxy.tokens import TOKEN_PURPOSE, TokenSigner
from hvcloud.server.db.models import ConsoleProxy, ConsoleSession
from hvcloud.server.state import ServerState
from tests.support.console_api import HOST_IP, FakeAgents, add_proxy, make_cloud, png_of, running_vm
from tests.support.server_api import Caller

PROXY = "http://proxy.example.test:8443"
URL = "/client/console"


@pytest.fixture
def cloud(state: ServerState, admin: Caller, agents: FakeAgents) -> dict[str, Any]:
    add_proxy(state, PROXY)
    return make_cloud(state, admin)


def _login(http: Any, username: str, password: str = "s3cret-pw") -> str:
    resp = http.post("/client/api", data={"command": "login", "username": username, "password": password,
                                          "response": "json"})
    assert resp.status_code == 200, resp.text
    return resp.json()["loginresponse"]["sessionkey"]  # type: ignore[no-any-return]


def _get(http: Any, **params: str) -> Any:
    return http.get(URL, params=params, follow_redirects=False)


def test_access_redirects_to_a_fresh_console(state: ServerState, http: Any, user_caller: Caller,
                                             cloud: dict[str, Any]) -> None:
    vm_id = running_vm(user_caller, state, cloud)
    key = _login(http, "alice")
    resp = _get(http, cmd="access", vm=vm_id, sessionkey=key)
    assert resp.status_code == 302, resp.text
    location = resp.headers["location"]
    assert location.startswith(PROXY + "/console?token=") and resp.headers["cache-control"] == "no-store"
    from urllib.parse import parse_qs, urlsplit

    token = parse_qs(urlsplit(location).query)["token"][0]
    grant = TokenSigner(state.box.derive_key(TOKEN_PURPOSE)).open(token)
    assert grant.vm_id == vm_id and grant.host == HOST_IP
    with state.sessions() as db:
        [row] = db.scalars(select(ConsoleSession)).all()
        assert row.token_id == grant.token_id and row.client_address == "testclient"
    again = _get(http, cmd="access", vm=vm_id, sessionkey=key).headers["location"]
    assert again != location


def test_thumbnail_is_a_png(state: ServerState, http: Any, user_caller: Caller, cloud: dict[str, Any]) -> None:
    vm_id = running_vm(user_caller, state, cloud)
    key = _login(http, "alice")
    resp = _get(http, cmd="thumbnail", vm=vm_id, sessionkey=key)
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/png"
    assert resp.content == png_of(320, 240)
    resp = _get(http, cmd="thumbnail", vm=vm_id, sessionkey=key, w="160", h="160")
    assert resp.content == png_of(160, 120)
    for w in ("8", "5000", "-1", "1e3", "0x10", "\u0661\u0662\u0663"):
        assert _get(http, cmd="thumbnail", vm=vm_id, sessionkey=key, w=w).status_code == 400, w


def test_unauthenticated_requests_are_401(state: ServerState, http: Any, user_caller: Caller,
                                          cloud: dict[str, Any], agents: FakeAgents) -> None:
    vm_id = running_vm(user_caller, state, cloud)
    assert _get(http, cmd="access", vm=vm_id).status_code == 401
    assert _get(http, cmd="access", vm=vm_id, sessionkey="forged").status_code == 401
    key = _login(http, "alice")
    # the cookie alone (a cross-site link) is not enough: the sessionkey parameter must match it
    assert _get(http, cmd="access", vm=vm_id).status_code == 401
    assert _get(http, cmd="thumbnail", vm=vm_id).status_code == 401
    # a signed API request is not a session either
    assert http.get(URL, params={"cmd": "access", "vm": vm_id, "apikey": user_caller.apikey},
                    follow_redirects=False).status_code == 401
    http.post("/client/api", data={"command": "logout", "sessionkey": key, "response": "json"})
    assert _get(http, cmd="access", vm=vm_id, sessionkey=key).status_code == 401
    assert agents.sent == []


def test_other_accounts_vm_and_missing_vm_look_the_same(state: ServerState, http: Any, admin: Caller,
                                                        user_caller: Caller, cloud: dict[str, Any],
                                                        agents: FakeAgents) -> None:
    vm_id = running_vm(user_caller, state, cloud)
    admin.ok("createAccount", username="bob", password="s3cret-pw", firstname="B", lastname="B", accounttype=0)
    key = _login(http, "bob")
    for cmd in ("access", "thumbnail"):
        other = _get(http, cmd=cmd, vm=vm_id, sessionkey=key)
        missing = _get(http, cmd=cmd, vm="0b7e3c3e-0000-4000-8000-000000000000", sessionkey=key)
        hostile = _get(http, cmd=cmd, vm="x" * 500, sessionkey=key)
        assert other.status_code == missing.status_code == hostile.status_code == 404
        assert other.text == missing.text == hostile.text
    assert agents.sent == []


def test_states_and_bad_commands(state: ServerState, http: Any, user_caller: Caller, cloud: dict[str, Any],
                                 agents: FakeAgents) -> None:
    stopped = running_vm(user_caller, state, cloud, "Stopped")
    running = running_vm(user_caller, state, cloud)
    key = _login(http, "alice")
    assert _get(http, cmd="access", vm=stopped, sessionkey=key).status_code == 409
    assert _get(http, cmd="thumbnail", vm=stopped, sessionkey=key).status_code == 409
    assert _get(http, cmd="delete", vm=running, sessionkey=key).status_code == 400
    assert _get(http, vm=running, sessionkey=key).status_code == 400
    assert _get(http, cmd="access", sessionkey=key).status_code == 400
    assert http.get(URL + "?" + "a=" + "b" * 3000).status_code == 414
    assert http.post(URL, params={"cmd": "access", "vm": running, "sessionkey": key}).status_code == 405
    state.agents = None
    resp = _get(http, cmd="access", vm=running, sessionkey=key)
    assert resp.status_code == 503 and "agent manager" in resp.text
    with state.sessions.begin() as db:
        for row in db.scalars(select(ConsoleSession)):
            db.delete(row)
    state.agents = agents  # type: ignore[assignment]

    with state.sessions.begin() as db:
        for proxy in db.scalars(select(ConsoleProxy)):
            db.delete(proxy)
    resp = _get(http, cmd="access", vm=running, sessionkey=key)
    assert resp.status_code == 503 and "No console proxy" in resp.text
