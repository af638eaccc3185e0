"""listConfigurations, updateConfiguration, resetConfiguration: settings stored in the database,
their scopes, validation, who may call them, and dynamic settings applied without a restart (also
by a second server on the same database)."""

from __future__ import annotations

import base64
import ipaddress
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hvcloud.server.app import create_app
from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import ConfigurationValue, ConfigurationVersion, Domain
from hvcloud.server.orchestration import configuration
from hvcloud.server.orchestration.agent_manager import AgentManager
from hvcloud.server.setting_catalog import CATALOG
from hvcloud.server.state import ServerState
from hvcloud.storage.errors import UnsafeUrl
from hvcloud.storage.url_rules import check_address
from tests.support.postgres import fresh_pg_database
from tests.support.server_api import Caller, build_zone
from tests.support.wait import wait_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def _one(caller: Caller, name: str, **scope: str) -> dict[str, Any]:
    found = [c for c in caller.ok("listConfigurations", name=name, **scope)["configuration"] if c["name"] == name]
    assert len(found) == 1
    return found[0]


def _rows(state: ServerState) -> list[tuple[str, str, str, str]]:
    with state.sessions() as db:
        rows = db.execute(select(ConfigurationValue.name, ConfigurationValue.scope, ConfigurationValue.scope_id,
                                 ConfigurationValue.value))
        return sorted((r[0], r[1], r[2], r[3]) for r in rows)


def _version(state: ServerState) -> int:
    with state.sessions() as db:
        return db.scalar(select(ConfigurationVersion.version)) or 0


def _b64(size: int) -> str:
    return base64.b64encode(b"x" * size).decode()


def _account_id(caller: Caller) -> str:
    return str(caller.ok("listAccounts")["account"][0]["id"])


# ------------------------------------------------------------------------------------------------ listing

def test_every_setting_is_listed_with_its_description_and_default(admin: Caller) -> None:
    body = admin.ok("listConfigurations", pagesize=-1)
    names = {c["name"] for c in body["configuration"]}
    assert names == set(CATALOG) and body["count"] == len(CATALOG)
    ping = _one(admin, "ping.interval")
    assert ping == {"category": "Advanced", "name": "ping.interval", "value": "60", "defaultvalue": "60",
                    "description": CATALOG["ping.interval"].description, "scope": "global", "isdynamic": True,
                    "type": "Decimal", "component": "AgentManager", "displaytext": "Ping Interval"}
    assert _one(admin, "agent.concurrency")["isdynamic"] is False
    # the conftest starts the server with --setting api.throttling.enabled=false: that is its default
    assert _one(admin, "api.throttling.enabled")["value"] == "false"
    assert _one(admin, "api.throttling.enabled")["defaultvalue"] == "false"
    assert _one(admin, "max.account.user.vms")["scope"] == "account"
    assert _one(admin, "max.domain.cpus")["scope"] == "domain"


def test_list_filters_by_name_keyword_category_and_pages(admin: Caller) -> None:
    throttling = admin.ok("listConfigurations", name="api.throttling")["configuration"]
    assert {c["name"] for c in throttling} == {n for n in CATALOG if n.startswith("api.throttling")}
    assert {c["name"] for c in admin.ok("listConfigurations", keyword="consoleproxy.url")["configuration"]} == {
        "consoleproxy.url"}
    defaults = admin.ok("listConfigurations", category="account defaults", pagesize=-1)["configuration"]
    assert {c["name"] for c in defaults} == {n for n in CATALOG if n.startswith("max.account.")}
    page = admin.ok("listConfigurations", page=2, pagesize=5)
    assert len(page["configuration"]) == 5 and page["count"] == len(CATALOG)
    assert admin.ok("listConfigurations", name="no.such.thing") == {}
    assert admin.call("listConfigurations", page=1)[0] == 431


# ------------------------------------------------------------------------------------------------ update

def test_update_and_reset_a_global_setting(admin: Caller, state: ServerState) -> None:
    version = _version(state)
    body = admin.ok("updateConfiguration", name="vm.userdata.max.length", value="2048")["configuration"]
    assert body["name"] == "vm.userdata.max.length" and body["value"] == "2048" and body["defaultvalue"] == "32768"
    assert _rows(state) == [("vm.userdata.max.length", "global", "", "2048")]
    assert _version(state) == version + 1
    assert state.config.vm_userdata_max_length == 2048
    assert _one(admin, "vm.userdata.max.length")["value"] == "2048"
    again = admin.ok("updateConfiguration", name="vm.userdata.max.length", value="4096")["configuration"]
    assert again["value"] == "4096" and len(_rows(state)) == 1
    reset = admin.ok("resetConfiguration", name="vm.userdata.max.length")["configuration"]
    assert reset["value"] == "32768" and _rows(state) == []
    assert state.config.vm_userdata_max_length == 32768
    events = admin.ok("listEvents", type="CONFIGURATION.VALUE.EDIT")["event"]
    assert len(events) == 3


def test_values_are_stored_in_a_normal_form(admin: Caller, state: ServerState) -> None:
    assert admin.ok("updateConfiguration", name="ping.interval", value="30.0")["configuration"]["value"] == "30"
    assert admin.ok("updateConfiguration", name="api.throttling.enabled", value="TRUE")["configuration"][
        "value"] == "true"
    assert ("ping.interval", "global", "", "30") in _rows(state)


def test_a_static_setting_is_stored_but_applies_on_restart(admin: Caller, state: ServerState) -> None:
    body = admin.ok("updateConfiguration", name="agent.concurrency", value="7")["configuration"]
    assert body["value"] == "7" and body["isdynamic"] is False
    assert state.config.agent_concurrency == 64
    restarted = ServerState.open(state.base_config)
    try:
        assert restarted.config.agent_concurrency == 7
    finally:
        restarted.close()


def test_an_optional_text_setting_is_unset_with_an_empty_value(admin: Caller, state: ServerState) -> None:
    admin.ok("updateConfiguration", name="consoleproxy.url", value="https://consoles.example.test/")
    assert state.config.console_proxy_url == "https://consoles.example.test/"
    assert admin.ok("updateConfiguration", name="consoleproxy.url", value="")["configuration"]["value"] == ""
    assert state.config.console_proxy_url is None


BAD_VALUES = [
    ("ping.interval", "abc", "must be a number"),
    ("ping.interval", "0", "must be a finite number >= 0.05"),
    ("ping.interval", "nan", "finite"),
    ("ping.interval", "inf", "finite"),
    ("api.throttling.max", "1.5", "must be a number"),
    ("api.throttling.max", "0", ">= 1"),
    ("vm.userdata.max.length", "1048577", "at most 1048576"),
    ("vm.userdata.max.length", "99999999999999999999999", "at most"),
    ("api.throttling.enabled", "yes", "true or false"),
    ("max.account.user.vms", "-2", "-1 (unlimited)"),
    ("max.account.user.vms", "1e3", "-1 (unlimited)"),
    ("host.maintenance.local.storage.strategy", "Migrate", "must match"),
    ("consoleproxy.url", "javascript:alert(1)", "must match"),
    ("consoleproxy.url", "https://x.test/\"><script>", "must match"),
    ("instance.name", "VM'; DROP TABLE configuration_value; --", "must match"),
    ("secstorage.allowed.internal.sites", "10.0.0.0/8,bad", "not a CIDR"),
    ("secstorage.allowed.internal.sites", "0.0.0.0/0", "every address"),
    ("secstorage.allowed.internal.sites", "10.0.0.0/33", "not a CIDR"),
    ("ping.interval", "", "must be a number"),
]


@pytest.mark.parametrize(("name", "value", "why"), BAD_VALUES)
def test_bad_values_are_refused_naming_the_setting(admin: Caller, state: ServerState, name: str, value: str,
                                                   why: str) -> None:
    before, config = _rows(state), state.config
    status, body = admin.call("updateConfiguration", name=name, value=value)
    assert status == 431 and body["cserrorcode"] == 4350
    assert name in body["errortext"] and why in body["errortext"]
    assert _rows(state) == before and state.config == config


def test_unknown_oversized_and_missing_names_are_refused(admin: Caller, state: ServerState) -> None:
    for params in ({"name": "no.such.setting", "value": "1"}, {"name": "x" * 256, "value": "1"},
                   {"name": "ping.interval'; DELETE FROM configuration_value; --", "value": "1"},
                   {"value": "1"}, {"name": "", "value": "1"}):
        status, body = admin.call("updateConfiguration", **params)
        assert status == 431, params
        if params.get("name") == "no.such.setting":
            assert "no.such.setting" in body["errortext"]
    assert admin.call("resetConfiguration", name="no.such.setting")[0] == 431
    status, body = admin.call("updateConfiguration", name="instance.name", value="a" * 5000)
    assert status == 431 and "value" in body["errortext"]
    assert _rows(state) == []


def test_control_characters_in_a_value_are_refused(admin: Caller, state: ServerState) -> None:
    status, _ = admin.call("updateConfiguration", name="instance.name", value="VM\r\nX")
    assert status == 431 and _rows(state) == []


# ------------------------------------------------------------------------------------------------ scopes

def test_account_and_domain_scoped_limit_defaults(admin: Caller, user_caller: Caller, state: ServerState) -> None:
    alice = _account_id(user_caller)
    bob = admin.ok("createAccount", username="bob", password="s3cret-pw", firstname="B", lastname="B",
                   accounttype=0)["account"]
    with state.sessions.begin() as db:
        root = db.scalars(select(Domain).where(Domain.path == "ROOT")).one()
        child = Domain(name="sales", path="ROOT/sales", parent_id=root.id, level=1)
        db.add(child)
        db.flush()
        domain = {"id": child.id}
    carol = admin.ok("createAccount", username="carol", password="s3cret-pw", firstname="C", lastname="C",
                     accounttype=0, domainid=domain["id"])["account"]

    def volumes(account: dict[str, Any]) -> int:
        found = admin.ok("listResourceLimits", resourcetype=2, account=account["name"],
                         domainid=account["domainid"])["resourcelimit"]
        return int(found[0]["max"])

    named = {"name": "alice", "domainid": bob["domainid"]}
    body = admin.ok("updateConfiguration", name="max.account.volumes", value="3", accountid=alice)["configuration"]
    assert body["scope"] == "account" and body["id"] == alice and body["value"] == "3"
    admin.ok("updateConfiguration", name="max.account.volumes", value="5", domainid=domain["id"])
    assert (volumes(named), volumes(bob), volumes(carol)) == (3, 20, 5)
    listed = _one(admin, "max.account.volumes", accountid=alice)
    assert listed["value"] == "3" and listed["scope"] == "account" and listed["id"] == alice
    assert _one(admin, "max.account.volumes", accountid=carol["id"])["value"] == "5"
    assert _one(admin, "max.account.volumes", accountid=bob["id"])["value"] == "20"
    # only settings that allow the scope are listed there
    assert all(c["name"].startswith("max.") for c in admin.ok("listConfigurations", domainid=domain["id"],
                                                               pagesize=-1)["configuration"])
    admin.ok("updateConfiguration", name="max.account.volumes", value="7")
    assert (volumes(named), volumes(bob)) == (3, 7)
    admin.ok("resetConfiguration", name="max.account.volumes", accountid=alice)
    assert volumes(named) == 7
    # an explicit limit (updateResourceLimit) still wins over every default
    admin.ok("updateResourceLimit", resourcetype=2, max=1, account="carol", domainid=domain["id"])
    assert volumes(carol) == 1


def test_a_scope_the_setting_does_not_allow_is_refused(admin: Caller, state: ServerState) -> None:
    zone = build_zone(admin)
    for params in ({"zoneid": zone["zoneid"]}, {"clusterid": zone["clusterid"]},
                   {"domainid": admin.ok("listDomains")["domain"][0]["id"]}):
        status, body = admin.call("updateConfiguration", name="vm.userdata.max.length", value="10", **params)
        assert status == 431
        assert body["errortext"] == "Invalid scope id provided for the parameter vm.userdata.max.length"
    status, body = admin.call("updateConfiguration", name="max.domain.cpus", value="10",
                              accountid=_account_id(admin))
    assert status == 431 and "Invalid scope id" in body["errortext"]
    assert admin.ok("listConfigurations", zoneid=zone["zoneid"]) == {}
    assert _rows(state) == []


def test_storage_scope_and_several_scope_ids_are_refused(admin: Caller, state: ServerState) -> None:
    domain = admin.ok("listDomains")["domain"][0]["id"]
    status, body = admin.call("updateConfiguration", name="max.account.volumes", value="1", domainid=domain,
                              accountid=_account_id(admin))
    assert status == 431 and "multiple IDs" in body["errortext"]
    status, _ = admin.call("updateConfiguration", name="max.account.volumes", value="1",
                           storageid="00000000-0000-0000-0000-000000000001")
    assert status == 431
    for bad in ({"accountid": "00000000-0000-0000-0000-000000000001"}, {"zoneid": "not-a-uuid"},
                {"domainid": "-1"}):
        assert admin.call("updateConfiguration", name="max.account.volumes", value="1", **bad)[0] == 431
        assert admin.call("listConfigurations", **bad)[0] == 431
    assert _rows(state) == []


def test_reset_of_a_value_never_set_is_harmless(admin: Caller, state: ServerState) -> None:
    assert admin.ok("resetConfiguration", name="ping.interval")["configuration"]["value"] == "60"
    assert _rows(state) == []


# ------------------------------------------------------------------------------------------------ access

def test_users_may_not_read_or_change_settings(admin: Caller, user_caller: Caller, state: ServerState) -> None:
    alice = _account_id(user_caller)
    for command, params in (("listConfigurations", {}),
                            ("updateConfiguration", {"name": "vm.userdata.max.length", "value": "1"}),
                            ("updateConfiguration", {"name": "max.account.user.vms", "value": "999",
                                                     "accountid": alice}),
                            ("resetConfiguration", {"name": "vm.userdata.max.length"})):
        status, body = user_caller.call(command, **params)
        # the registry's answer to a user calling an admin command (as CloudStack: 401, not listed in listApis)
        assert status == 401 and "not available for user" in body["errortext"], (command, body)
    assert _rows(state) == []
    assert "listConfigurations" not in {a["name"] for a in user_caller.ok("listApis")["api"]}


# ------------------------------------------------------------------------------------------------ live effect

def test_lowering_the_user_data_limit_takes_effect_at_once(admin: Caller, user_caller: Caller) -> None:
    user_caller.ok("registerUserData", name="a", userdata=_b64(600))
    admin.ok("updateConfiguration", name="vm.userdata.max.length", value="100")
    status, body = user_caller.call("registerUserData", name="b", userdata=_b64(600))
    assert status == 431 and "max length : 100" in body["errortext"]
    admin.ok("resetConfiguration", name="vm.userdata.max.length")
    user_caller.ok("registerUserData", name="b", userdata=_b64(601))


def test_api_throttling_can_be_switched_on_live(admin: Caller, user_caller: Caller, state: ServerState) -> None:
    admin.ok("updateConfiguration", name="api.throttling.max", value="2")
    admin.ok("updateConfiguration", name="api.throttling.interval", value="3600")
    admin.ok("updateConfiguration", name="api.throttling.enabled", value="true")
    assert state.rate_limiter.enabled and state.rate_limiter.maximum == 2
    statuses = [user_caller.call("listZones")[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    admin.ok("updateConfiguration", name="api.throttling.enabled", value="false")
    assert user_caller.call("listZones")[0] == 200


def test_allowed_internal_sites_open_internal_template_sources(admin: Caller, state: ServerState,
                                                               tmp_path: Path) -> None:
    zone = admin.ok("createZone", name="z1", networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.1")
    (tmp_path / "store").mkdir()
    admin.ok("addImageStore", provider="NFS", url=f"file://{tmp_path / 'store'}", zoneid=zone["zone"]["id"])
    # port 9 on loopback: the download job (if it runs) fails at once
    params = {"name": "t", "displaytext": "t", "format": "QCOW2", "hypervisor": "KVM",
              "zoneid": zone["zone"]["id"], "url": "http://127.0.0.1:9/t.qcow2"}
    status, body = admin.call("registerTemplate", **params)
    assert status == 431 and "loopback" in body["errortext"]
    admin.ok("updateConfiguration", name="secstorage.allowed.internal.sites", value="10.20.0.0/16, 127.0.0.0/8")
    assert admin.call("registerTemplate", **params)[0] == 200
    policy = state.config.download_policy
    check_address(ipaddress.ip_address("10.20.30.40"), policy)
    for refused in ("10.21.0.1", "169.254.169.254", "::ffff:10.99.0.1"):
        with pytest.raises(UnsafeUrl):
            check_address(ipaddress.ip_address(refused), policy)
    check_address(ipaddress.ip_address("::ffff:10.20.0.1"), policy)
    admin.ok("resetConfiguration", name="secstorage.allowed.internal.sites")
    assert admin.call("registerTemplate", **{**params, "name": "u"})[0] == 431


# ------------------------------------------------------------------------------------------------ precedence

def test_command_line_values_are_the_default_and_stored_values_win(tmp_path: Path) -> None:
    base = replace(ServerConfig.build(tmp_path / "data", settings={"vm.password.length": "10"}),
                   manage_agents=False)
    first = ServerState.open(base)
    try:
        assert first.config.vm_password_length == 10
        with first.sessions.begin() as db:
            configuration.store(db, "vm.password.length", "14", "global", "")
        first.refresh_settings()
        assert first.config.vm_password_length == 14
    finally:
        first.close()
    again = ServerState.open(replace(base, data_dir=tmp_path / "data"))
    try:
        assert again.config.vm_password_length == 14
        assert again.base_config.vm_password_length == 10
    finally:
        again.close()


def test_a_second_server_on_the_same_database_sees_the_change(admin: Caller, state: ServerState) -> None:
    other = ServerState.open(state.base_config)
    try:
        assert other.refresh_settings() is False  # nothing changed: one read, no reload
        admin.ok("updateConfiguration", name="vm.userdata.max.length", value="1234")
        admin.ok("updateConfiguration", name="max.account.cpus", value="3", accountid=_account_id(admin))
        assert other.config.vm_userdata_max_length == 32768  # until its next poll
        assert other.refresh_settings() is True
        assert other.config.vm_userdata_max_length == 1234
        assert other.config.scoped_value("max.account.cpus", "account", _account_id(admin)) == "3"
        admin.ok("resetConfiguration", name="vm.userdata.max.length")
        assert other.refresh_settings() is True
        assert other.config.vm_userdata_max_length == 32768
    finally:
        other.close()


def test_a_stored_value_a_newer_rule_refuses_is_skipped(admin: Caller, state: ServerState) -> None:
    with state.sessions.begin() as db:
        db.add(ConfigurationValue(name="vm.password.length", scope="global", scope_id="", value="3"))
        db.add(ConfigurationValue(name="retired.setting", scope="global", scope_id="", value="1"))
        db.execute(ConfigurationVersion.__table__.update().values(version=ConfigurationVersion.version + 1))
    assert state.refresh_settings() is True
    assert state.config.vm_password_length == 6
    assert "retired.setting" not in {c["name"] for c in admin.ok("listConfigurations", pagesize=-1)["configuration"]}
    with state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(ConfigurationValue)) == 2


# ------------------------------------------------------------------------------------------------ reload

def test_a_running_server_picks_up_a_change_within_its_poll(tmp_path: Path) -> None:
    """The background watch (``settings_poll_seconds``) applies what another server stored."""
    base = replace(ServerConfig.build(tmp_path / "data", settings={"api.throttling.enabled": "false"}),
                   manage_agents=False, settings_poll_seconds=0.05)
    running, writer = ServerState.open(base), ServerState.open(base)
    try:
        with TestClient(create_app(running, run_jobs=False)):
            with writer.sessions.begin() as db:
                configuration.store(db, "consoleproxy.url", "https://consoles.example.test", "global", "")
            wait_for("the running server to apply consoleproxy.url",
                     lambda: running.config.console_proxy_url == "https://consoles.example.test" or None, timeout=30)
    finally:
        running.close()
        writer.close()


def test_the_agent_manager_follows_dynamic_settings(state: ServerState) -> None:
    manager = AgentManager(state.config, state.sessions, state.box)
    state.on_settings_change.append(manager.reconfigure)
    with state.sessions.begin() as db:
        configuration.store(db, "ping.interval", "2", "global", "")
        configuration.store(db, "ping.timeout", "4", "global", "")
        configuration.store(db, "agent.concurrency", "3", "global", "")
    assert state.refresh_settings() is True
    pinger, writer = manager._pinger, manager._writer
    assert manager.config.ping_interval_seconds == pinger.config.ping_interval_seconds == 2
    assert writer.timings.down_after_seconds == 8
    assert pinger.config.agent_concurrency == 64  # static: applies on restart


@pytest.mark.postgres
def test_two_servers_on_postgresql_share_settings(tmp_path: Path) -> None:
    with fresh_pg_database() as url:
        base = replace(ServerConfig.build(tmp_path / "data", db_url=url), manage_agents=False)
        first, second = ServerState.open(base), ServerState.open(replace(base, data_dir=tmp_path / "other"))
        try:
            with first.sessions.begin() as db:
                configuration.store(db, "max.account.cpus", "9", "account", "acc-1")
                configuration.store(db, "vm.password.length", "20", "global", "")
            assert second.refresh_settings() is True
            assert second.config.vm_password_length == 20
            assert second.config.scoped_value("max.account.cpus", "account", "acc-1") == "9"
            with first.sessions.begin() as db:
                configuration.remove(db, "vm.password.length", "global", "")
            assert second.refresh_settings() is True and second.config.vm_password_length == 6
        finally:
            first.close()
            second.close()
