"""The agent refuses unauthenticated, tampered, stale and replayed requests."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hvcloud.agent.config import AgentConfig, ConfigError, parse_networks
from hvcloud.agent.credentials import load_or_create
from hvcloud.wire import signing
from tests.support.agent_harness import PASSWORD, USER, AgentHarness

READY = "com.cloud.agent.api.ReadyCommand"
PATH = f"/api/HypervResource/{READY}"
BODY = b'{"contextMap":{},"wait":0}'


def test_unsigned_request_is_refused(agent: AgentHarness) -> None:
    r = agent.post(READY, BODY, sign=False)
    assert r.status_code == 401 and "authentication required" in r.text


def test_signed_request_is_accepted(agent: AgentHarness) -> None:
    assert agent.post(READY, BODY).status_code == 200


def test_tampered_body_is_refused(agent: AgentHarness) -> None:
    headers = signing.sign_headers(USER, PASSWORD, "POST", PATH, BODY)
    r = agent.post(READY, b'{"contextMap":{},"wait":1}', sign=False, headers=headers)
    assert r.status_code == 401 and "bad signature" in r.text


def test_signature_for_another_command_is_refused(agent: AgentHarness) -> None:
    headers = signing.sign_headers(USER, PASSWORD, "POST", "/api/HypervResource/com.cloud.agent.api.PingCommand", BODY)
    assert agent.post(READY, BODY, sign=False, headers=headers).status_code == 401


def test_replayed_request_is_refused(agent: AgentHarness) -> None:
    headers = signing.sign_headers(USER, PASSWORD, "POST", PATH, BODY)
    assert agent.post(READY, BODY, sign=False, headers=headers).status_code == 200
    r = agent.post(READY, BODY, sign=False, headers=headers)
    assert r.status_code == 401 and "replayed" in r.text


def test_stale_request_is_refused(agent: AgentHarness) -> None:
    headers = signing.sign_headers(USER, PASSWORD, "POST", PATH, BODY, now=time.time() - 3600)
    r = agent.post(READY, BODY, sign=False, headers=headers)
    assert r.status_code == 401 and "clock skew" in r.text


@pytest.mark.parametrize("user,password", [(USER, "wrong"), ("someone", PASSWORD)])
def test_wrong_credentials_are_refused(agent: AgentHarness, user: str, password: str) -> None:
    headers = signing.sign_headers(user, password, "POST", PATH, BODY)
    assert agent.post(READY, BODY, sign=False, headers=headers).status_code == 401


@pytest.mark.parametrize("header,value", [(signing.HEADER_TIMESTAMP, "yesterday"), (signing.HEADER_NONCE, "n" * 500)])
def test_malformed_auth_headers_are_refused(agent: AgentHarness, header: str, value: str) -> None:
    headers = signing.sign_headers(USER, PASSWORD, "POST", PATH, BODY)
    headers[header] = value
    assert agent.post(READY, BODY, sign=False, headers=headers).status_code == 401


def test_refused_request_changes_nothing(agent: AgentHarness) -> None:
    from tests.unit.agent.test_commands import start_body

    r = agent.post("com.cloud.agent.api.StartCommand", start_body(), sign=False)
    assert r.status_code == 401
    assert agent.host.driver.list_vms() == []


def test_compat_mode_accepts_unsigned_from_allowed_networks(tmp_path: Path) -> None:
    ok = AgentHarness(tmp_path / "a", auth="cloudstack-compat", allow_from=["10.0.0.0/8", "127.0.0.1"])
    assert ok.post(READY, BODY).status_code == 200


def test_compat_mode_refuses_other_addresses(tmp_path: Path) -> None:
    other = AgentHarness(tmp_path / "b", auth="cloudstack-compat", allow_from=["10.0.0.0/8"], client_ip="192.0.2.7")
    r = other.post(READY, BODY)
    assert r.status_code == 403 and "192.0.2.7" in r.text


def test_compat_mode_without_allow_list_does_not_start() -> None:
    with pytest.raises(ConfigError, match="--allow-from"):
        AgentConfig(auth="cloudstack-compat").validate()


def test_mtls_needs_a_ca(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="client-ca"):
        AgentConfig(auth="mtls").validate()
    with pytest.raises(ConfigError, match="does not exist"):
        AgentConfig(auth="mtls", client_ca=tmp_path / "missing.pem").validate()


@pytest.mark.parametrize("value", ["10.0.0.0/33", "not-an-ip", "10.0.0.1/8/2"])
def test_bad_allow_from_is_refused(value: str) -> None:
    with pytest.raises(ConfigError):
        parse_networks([value])


def test_credentials_generated_once_and_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HVCLOUD_AGENT_USERNAME", raising=False)
    monkeypatch.delenv("HVCLOUD_AGENT_PASSWORD", raising=False)
    first, created = load_or_create(tmp_path)
    again, created_again = load_or_create(tmp_path)
    assert created and not created_again and first == again
    assert (tmp_path / "agent-credentials.json").stat().st_mode & 0o777 == 0o600
    assert first.password not in repr(first)
    monkeypatch.setenv("HVCLOUD_AGENT_USERNAME", "ops")
    monkeypatch.setenv("HVCLOUD_AGENT_PASSWORD", "from-env")
    env, _ = load_or_create(tmp_path)
    assert (env.username, env.password) == ("ops", "from-env")
