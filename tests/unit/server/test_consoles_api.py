"""createConsoleEndpoint and getVirtualMachineThumbnail: the endpoint's shape, the token and its
``console_session`` row, who may ask, the states and hosts that refuse, proxy choice, the extra
validation token, Hyper-V's RDP consoles, and hostile input. The agent is a stand-in for the
AgentManager's protocol (``tests.support.console_api.FakeAgents``); no process starts here."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from hvcloud.console_proxy.tokens import TOKEN_PURPOSE, TokenSigner
from hvcloud.server.config import parse_settings
from hvcloud.server.db.models import Account, ConsoleSession, Host, VMInstance, utcnow
from hvcloud.server.orchestration.agents import HostNotConnected
from hvcloud.server.state import ServerState
from hvcloud.wire.answers import GetVmThumbnailAnswer, GetVncPortAnswer
from hvcloud.wire.commands import GetVmThumbnailCommand, GetVncPortCommand
from tests.support.console_api import HOST_IP, VNC_PORT, FakeAgents, add_proxy, make_cloud, png_of, running_vm
from tests.support.server_api import Caller

PROXY = "https://proxy1.example.test:8443"


@pytest.fixture
def cloud(state: ServerState, admin: Caller, agents: FakeAgents) -> dict[str, Any]:
    return make_cloud(state, admin)


def _other_user(admin: Caller, name: str = "bob") -> Caller:
    account = admin.ok("createAccount", username=name, password="s3cret-pw", firstname=name, lastname="B",
                       accounttype=0)["account"]
    keys = admin.ok("registerUserKeys", id=account["user"][0]["id"])["userkeys"]
    return Caller(admin.http, keys["apikey"], keys["secretkey"])


def _endpoint(caller: Caller, vm_id: str, **kw: str) -> dict[str, Any]:
    status, body = caller.call("createConsoleEndpoint", virtualmachineid=vm_id, **kw)
    assert status == 200, body
    assert list(body) == ["consoleendpoint"]
    return body["consoleendpoint"]  # type: ignore[no-any-return]


def _sessions(state: ServerState) -> list[ConsoleSession]:
    with state.sessions() as db:
        return list(db.scalars(select(ConsoleSession).order_by(ConsoleSession.created)))


def _token_of(url: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(url).query)["token"][0]


def test_endpoint_shape_token_and_session_row(state: ServerState, user_caller: Caller, cloud: dict[str, Any],
                                              agents: FakeAgents) -> None:
    add_proxy(state, PROXY + "/")
    vm_id = running_vm(user_caller, state, cloud)
    endpoint = _endpoint(user_caller, vm_id)
    assert set(endpoint) == {"success", "url", "websocket"} and endpoint["success"] is True
    websocket = endpoint["websocket"]
    assert set(websocket) == {"token", "host", "port", "path"}
    assert websocket == {"token": websocket["token"], "host": "proxy1.example.test", "port": "8443",
                         "path": "/websockify"}
    assert endpoint["url"].startswith(PROXY + "/console?token=")
    assert _token_of(endpoint["url"]) == websocket["token"]

    grant = TokenSigner(state.box.derive_key(TOKEN_PURPOSE)).open(websocket["token"])
    with state.sessions() as db:
        vm = db.get(VMInstance, vm_id)
        assert vm is not None and vm.vnc_password_enc
        password, instance_name, account_id = state.box.decrypt(vm.vnc_password_enc), vm.instance_name, vm.account_id
    assert (grant.vm_id, grant.protocol, grant.host, grant.port) == (vm_id, "vnc", HOST_IP, VNC_PORT)
    assert grant.vnc_password == password and grant.account_id == account_id and grant.extra is None
    assert 0 < grant.expires - grant.issued <= state.config.console_token_ttl_seconds
    host_id, command = agents.sent[-1]
    assert host_id == cloud["host"] and isinstance(command, GetVncPortCommand) and command.name == instance_name

    [row] = _sessions(state)
    assert (row.token_id, row.vm_id, row.account_id, row.protocol) == (grant.token_id, vm_id, account_id, "vnc")
    assert row.user_id is not None and row.used is None and row.proxy_id is None
    assert row.client_address == "testclient"
    # the VNC password never reaches the client: only the opaque token does
    assert password not in str(endpoint)
    # a second call is a second token and a second session
    assert _endpoint(user_caller, vm_id)["websocket"]["token"] != websocket["token"]
    assert len(_sessions(state)) == 2


def test_vnc_address_reported_by_the_host_is_kept(state: ServerState, admin: Caller, cloud: dict[str, Any],
                                                  agents: FakeAgents) -> None:
    add_proxy(state, PROXY)
    vm_id = running_vm(admin, state, cloud)
    signer = TokenSigner(state.box.derive_key(TOKEN_PURPOSE))
    for address, expected in (("192.0.2.7", "192.0.2.7"), ("::", HOST_IP), ("", HOST_IP), ("0.0.0.0", HOST_IP)):
        agents.vnc = GetVncPortAnswer(address=address, port=5999)
        grant = signer.open(_endpoint(admin, vm_id)["websocket"]["token"])
        assert (grant.host, grant.port) == (expected, 5999)


def test_only_the_owner_and_admins_get_a_console(state: ServerState, admin: Caller, user_caller: Caller,
                                                 cloud: dict[str, Any], agents: FakeAgents) -> None:
    add_proxy(state, PROXY)
    vm_id = running_vm(user_caller, state, cloud)
    bob = _other_user(admin)
    status, body = bob.call("createConsoleEndpoint", virtualmachineid=vm_id)
    assert status == 431 and "entity does not exist" in body["errortext"], body
    # the same answer as for a VM that does not exist at all
    missing = "0b7e3c3e-0000-4000-8000-000000000000"
    status2, body2 = bob.call("createConsoleEndpoint", virtualmachineid=missing)
    assert status2 == 431 and body2["errortext"] == body["errortext"].replace(vm_id, missing)
    assert agents.sent == [] and _sessions(state) == []
    assert _endpoint(admin, vm_id)["success"] is True
    assert _endpoint(user_caller, vm_id)["success"] is True


@pytest.mark.parametrize("vm_state", ["Stopped", "Destroyed", "Starting", "Error"])
def test_a_vm_not_running_gets_no_console(state: ServerState, user_caller: Caller, cloud: dict[str, Any],
                                          agents: FakeAgents, vm_state: str) -> None:
    add_proxy(state, PROXY)
    vm_id = running_vm(user_caller, state, cloud, vm_state)
    endpoint = _endpoint(user_caller, vm_id)
    assert endpoint == {"success": False, "details": endpoint["details"]}
    assert "must be running" in endpoint["details"] and vm_state in endpoint["details"]
    assert agents.sent == [] and _sessions(state) == []


def test_an_expunged_vm_is_not_found(state: ServerState, user_caller: Caller, cloud: dict[str, Any]) -> None:
    vm_id = running_vm(user_caller, state, cloud)
    with state.sessions.begin() as db:
        vm = db.get(VMInstance, vm_id)
        assert vm is not None
        vm.state, vm.removed = "Expunging", utcnow()
    assert user_caller.call("createConsoleEndpoint", virtualmachineid=vm_id)[0] == 431
    assert user_caller.call("getVirtualMachineThumbnail", virtualmachineid=vm_id)[0] == 431


def test_host_down_unreachable_or_refusing(state: ServerState, user_caller: Caller, cloud: dict[str, Any],
                                           agents: FakeAgents) -> None:
    add_proxy(state, PROXY)
    vm_id = running_vm(user_caller, state, cloud)
    with state.sessions.begin() as db:
        host = db.get(Host, cloud["host"])
        assert host is not None
        host.status = "Down"
    endpoint = _endpoint(user_caller, vm_id)
    assert endpoint["success"] is False and "is Down" in endpoint["details"]
    assert agents.sent == []
    with state.sessions.begin() as db:
        host = db.get(Host, cloud["host"])
        assert host is not None
        host.status = "Up"
    agents.vnc = HostNotConnected("host is not connected")
    endpoint = _endpoint(user_caller, vm_id)
    assert endpoint["success"] is False and "did not answer" in endpoint["details"]
    agents.vnc = GetVncPortAnswer(result=False, details="VM i-2-1-VM not found", port=-1)
    endpoint = _endpoint(user_caller, vm_id)
    assert endpoint["success"] is False and "not found" in endpoint["details"]
    agents.vnc = GetVncPortAnswer(address="10.0.0.1", port=70000)
    assert _endpoint(user_caller, vm_id)["success"] is False
    assert _sessions(state) == []


def test_no_agent_manager(state: ServerState, user_caller: Caller, cloud: dict[str, Any]) -> None:
    add_proxy(state, PROXY)
    vm_id = running_vm(user_caller, state, cloud)
    state.agents = None
    endpoint = _endpoint(user_caller, vm_id)
    assert endpoint["success"] is False and "agent manager" in endpoint["details"]


def test_proxy_choice_stale_proxies_and_none(state: ServerState, user_caller: Caller, cloud: dict[str, Any],
                                             agents: FakeAgents) -> None:
    vm_id = running_vm(user_caller, state, cloud)
    endpoint = _endpoint(user_caller, vm_id)
    assert endpoint["success"] is False and "No console proxy is running" in endpoint["details"]
    heartbeat = state.config.console_proxy_heartbeat_seconds
    add_proxy(state, "http://stale.example.test:8000", sessions=0, age_seconds=3 * heartbeat + 30)
    assert _endpoint(user_caller, vm_id)["success"] is False
    add_proxy(state, "http://busy.example.test:8000", sessions=7)
    add_proxy(state, "http://idle.example.test:8001", sessions=2, age_seconds=heartbeat)
    endpoint = _endpoint(user_caller, vm_id)
    assert endpoint["url"].startswith("http://idle.example.test:8001/console?token=")
    assert endpoint["websocket"]["host"] == "idle.example.test" and endpoint["websocket"]["port"] == "8001"
    assert len(_sessions(state)) == 1


def test_fixed_proxy_url_setting(state: ServerState, user_caller: Caller, cloud: dict[str, Any],
                                 agents: FakeAgents) -> None:
    state.config = replace(state.config, **parse_settings({"consoleproxy.url": "https://consoles.example.test/"}))
    vm_id = running_vm(user_caller, state, cloud)
    endpoint = _endpoint(user_caller, vm_id)  # no proxy row is needed
    assert endpoint["url"].startswith("https://consoles.example.test/console?token=")
    assert endpoint["websocket"]["port"] == "443"


@pytest.mark.parametrize("value", ["ftp://x", "https://a b", "https://x/?q=1", "https://x/\"", "https://"])
def test_bad_console_settings_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_settings({"consoleproxy.url": value})
    with pytest.raises(ValueError):
        parse_settings({"consoleproxy.token.ttl": "7200"})
    with pytest.raises(ValueError):
        parse_settings({"consoleproxy.extra.security.validation.enabled": "yes"})


def test_an_empty_console_url_unsets_it() -> None:
    """(so that ``updateConfiguration name=consoleproxy.url value=`` goes back to the proxy rows)"""
    assert parse_settings({"consoleproxy.url": ""}) == {"console_proxy_url": None}


def test_extra_validation_token(state: ServerState, user_caller: Caller, cloud: dict[str, Any],
                                agents: FakeAgents) -> None:
    add_proxy(state, PROXY)
    vm_id = running_vm(user_caller, state, cloud)
    # off: the token parameter is accepted and not used
    endpoint = _endpoint(user_caller, vm_id, token="abc")
    assert "extra" not in endpoint["websocket"] and "extra=" not in endpoint["url"]
    state.config = replace(state.config, console_extra_validation=True)
    status, body = user_caller.call("createConsoleEndpoint", virtualmachineid=vm_id)
    assert status == 431 and "token" in body["errortext"]
    for bad in ("x" * 256, "a\u00e9b", "   "):
        assert user_caller.call("createConsoleEndpoint", virtualmachineid=vm_id, token=bad)[0] == 431
    endpoint = _endpoint(user_caller, vm_id, token="s3cr&t=1")
    assert endpoint["websocket"]["extra"] == "s3cr&t=1"
    assert endpoint["url"].endswith("&extra=s3cr%26t%3D1")
    grant = TokenSigner(state.box.derive_key(TOKEN_PURPOSE)).open(endpoint["websocket"]["token"])
    assert grant.extra == "s3cr&t=1"
    assert len(_sessions(state)) == 2


def test_hyperv_console_is_an_rdp_url(state: ServerState, user_caller: Caller, cloud: dict[str, Any],
                                      agents: FakeAgents) -> None:
    add_proxy(state, PROXY)
    vm_id = running_vm(user_caller, state, cloud)
    guid = "6f0c1b2e-3d4a-4b5c-8d9e-0a1b2c3d4e5f"
    agents.vnc = GetVncPortAnswer(address=f"instanceId={guid}", port=-9)
    endpoint = _endpoint(user_caller, vm_id)
    assert set(endpoint) == {"success", "url"} and endpoint["url"].startswith(PROXY + "/rdp?token=")
    grant = TokenSigner(state.box.derive_key(TOKEN_PURPOSE)).open(_token_of(endpoint["url"]))
    assert (grant.protocol, grant.host, grant.port, grant.instance_id) == ("rdp", HOST_IP, 2179, guid)
    assert grant.vnc_password is None
    assert _sessions(state)[0].protocol == "rdp"
    agents.vnc = GetVncPortAnswer(address="instanceId=", port=-9)
    assert _endpoint(user_caller, vm_id)["success"] is False
    # a host that reported its VMConnect port (rdp.server.port at connect) gets consoles there
    with state.sessions.begin() as db:
        db.get(Host, db.get(VMInstance, vm_id).host_id).console_port = 12179
    agents.vnc = GetVncPortAnswer(address=f"instanceId={guid}", port=-9)
    grant = TokenSigner(state.box.derive_key(TOKEN_PURPOSE)).open(_token_of(_endpoint(user_caller, vm_id)["url"]))
    assert grant.port == 12179


def test_old_unused_sessions_are_pruned(state: ServerState, user_caller: Caller, cloud: dict[str, Any],
                                        agents: FakeAgents) -> None:
    add_proxy(state, PROXY)
    vm_id = running_vm(user_caller, state, cloud)
    now = utcnow()
    with state.sessions.begin() as db:
        account = db.scalars(select(Account).where(Account.name == "alice")).one()
        for i in range(5):
            db.add(ConsoleSession(token_id=f"old-{i}", vm_id=vm_id, account_id=account.id, protocol="vnc",
                                  expires=now - timedelta(hours=2)))
        db.add(ConsoleSession(token_id="old-used", vm_id=vm_id, account_id=account.id, protocol="vnc",
                              expires=now - timedelta(hours=2), used=now - timedelta(hours=2, minutes=1)))
        db.add(ConsoleSession(token_id="recent", vm_id=vm_id, account_id=account.id, protocol="vnc",
                              expires=now - timedelta(seconds=5)))
    _endpoint(user_caller, vm_id)
    left = {row.token_id for row in _sessions(state)}
    assert {"old-used", "recent"} <= left and not any(t.startswith("old-") and t != "old-used" for t in left)
    assert len(left) == 3


@pytest.mark.parametrize("bad", [{"virtualmachineid": "nope"}, {"virtualmachineid": ""},
                                 {"virtualmachineid": "0b7e3c3e-0000-4000-8000-000000000000"},
                                 {"token": "x" * 300}])
def test_hostile_endpoint_parameters(state: ServerState, user_caller: Caller, cloud: dict[str, Any],
                                     agents: FakeAgents, bad: dict[str, str]) -> None:
    vm_id = running_vm(user_caller, state, cloud)
    status, body = user_caller.call("createConsoleEndpoint", **{"virtualmachineid": vm_id, **bad})
    assert status == 431, body
    assert agents.sent == []


# ---------------------------------------------------------------------- thumbnails


def test_thumbnail_shape_and_size_bounds(state: ServerState, user_caller: Caller, admin: Caller,
                                         cloud: dict[str, Any], agents: FakeAgents) -> None:
    vm_id = running_vm(user_caller, state, cloud)
    body = user_caller.ok("getVirtualMachineThumbnail", virtualmachineid=vm_id)["thumbnail"]
    assert set(body) == {"virtualmachineid", "width", "height", "mimetype", "image"}
    assert (body["virtualmachineid"], body["width"], body["height"], body["mimetype"]) == (vm_id, 320, 240,
                                                                                          "image/png")
    assert base64.b64decode(body["image"]) == png_of(320, 240)
    _, command = agents.sent[-1]
    assert isinstance(command, GetVmThumbnailCommand) and (command.width, command.height) == (320, 240)
    small = user_caller.ok("getVirtualMachineThumbnail", virtualmachineid=vm_id, width=64, height=64)["thumbnail"]
    assert (small["width"], small["height"]) == (64, 48)
    assert admin.ok("getVirtualMachineThumbnail", virtualmachineid=vm_id)["thumbnail"]["width"] == 320
    sent = len(agents.sent)
    for bad in ({"width": 15}, {"height": 1921}, {"width": 0}, {"width": -4}, {"width": "wide"},
                {"height": "99999999999999999999"}):
        status, resp = user_caller.call("getVirtualMachineThumbnail", virtualmachineid=vm_id, **bad)
        assert status == 431, (bad, resp)
    assert len(agents.sent) == sent


def test_thumbnail_access_and_states(state: ServerState, user_caller: Caller, admin: Caller,
                                     cloud: dict[str, Any], agents: FakeAgents) -> None:
    vm_id = running_vm(user_caller, state, cloud)
    bob = _other_user(admin)
    assert bob.call("getVirtualMachineThumbnail", virtualmachineid=vm_id)[0] == 431
    stopped = running_vm(user_caller, state, cloud, "Stopped")
    status, body = user_caller.call("getVirtualMachineThumbnail", virtualmachineid=stopped)
    assert status == 431 and "must be running" in body["errortext"]
    with state.sessions.begin() as db:
        host = db.get(Host, cloud["host"])
        assert host is not None
        host.status = "Disconnected"
    status, body = user_caller.call("getVirtualMachineThumbnail", virtualmachineid=vm_id)
    assert status == 534 and "Disconnected" in body["errortext"]
    assert agents.sent == []


@pytest.mark.parametrize("answer", [
    GetVmThumbnailAnswer(result=False, details="screendump failed"),
    GetVmThumbnailAnswer(image="not base64!", width=320, height=240),
    GetVmThumbnailAnswer(image=base64.b64encode(b"GIF89a....").decode(), width=320, height=240),
    GetVmThumbnailAnswer(image=base64.b64encode(png_of(20, 20)).decode(), width=400, height=240),
    GetVmThumbnailAnswer(image=base64.b64encode(png_of(20, 20)).decode(), width=0, height=240),
    GetVmThumbnailAnswer(image=None, width=320, height=240),
    GetVncPortAnswer(address="x", port=1),
])
def test_thumbnail_bad_agent_answers_are_534(state: ServerState, user_caller: Caller, cloud: dict[str, Any],
                                             agents: FakeAgents, answer: Any) -> None:
    vm_id = running_vm(user_caller, state, cloud)
    agents.thumb = lambda _cmd: answer
    status, body = user_caller.call("getVirtualMachineThumbnail", virtualmachineid=vm_id)
    assert status == 534, body


def test_console_requests_write_no_session_on_failure(state: ServerState, user_caller: Caller,
                                                      cloud: dict[str, Any], agents: FakeAgents) -> None:
    vm_id = running_vm(user_caller, state, cloud)
    user_caller.call("getVirtualMachineThumbnail", virtualmachineid=vm_id)
    _endpoint(user_caller, vm_id)  # no proxy
    with state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(ConsoleSession)) == 0
