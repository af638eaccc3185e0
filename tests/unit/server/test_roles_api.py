"""Dynamic roles through the API: CRUD of roles and rules, CloudStack's refusals, and the per-call
check (first matching rule wins, none denies; admin commands stay root-admin only)."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select

from hvcloud.server.api.endpoint import process
from hvcloud.server.api.params import RequestParams
from hvcloud.server.api.registry import REGISTRY
from hvcloud.server.api.signature import compute_signature
from hvcloud.server.app import create_app
from hvcloud.server.db.default_roles import (
    DOMAIN_ADMIN_ROLE_ID,
    RESOURCE_ADMIN_ROLE_ID,
    ROOT_ADMIN_ROLE_ID,
    USER_ROLE_ID,
)
from hvcloud.server.db.models import Account, Role, RolePermission
from hvcloud.server.orchestration import roles
from hvcloud.server.orchestration.role_rules import matches
from hvcloud.server.state import ServerState
from tests.support.server_api import Caller

NOT_ADMIN = "The given command does not exist or it is not available for user"


def _user_commands() -> list[str]:
    return sorted(c.name for c in REGISTRY.all() if not c.admin_only)


def _role(admin: Caller, **params: Any) -> dict[str, Any]:
    return admin.ok("createRole", **params)["role"]


def _rule(admin: Caller, role_id: str, rule: str, permission: str = "allow") -> dict[str, Any]:
    return admin.ok("createRolePermission", roleid=role_id, rule=rule, permission=permission)["rolepermission"]


def _rules(admin: Caller, role_id: str) -> list[tuple[str, str]]:
    return [(r["rule"], r["permission"]) for r in
            admin.ok("listRolePermissions", roleid=role_id).get("rolepermission", [])]


def _caller_with_role(admin: Caller, role_id: str, name: str = "bob") -> Caller:
    account = admin.ok("createAccount", username=name, password="pw-Roles-1", firstname="B", lastname="R",
                       roleid=role_id)["account"]
    keys = admin.ok("registerUserKeys", id=account["user"][0]["id"])["userkeys"]
    return Caller(admin.http, keys["apikey"], keys["secretkey"])


def _snapshot(state: ServerState) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with state.sessions() as db:
        role_rows = [(r.id, r.name, r.role_type, r.description, r.version, r.removed)
                     for r in db.scalars(select(Role).order_by(Role.id))]
        rule_rows = [(p.id, p.role_id, p.rule, p.permission, p.sort_order)
                     for p in db.scalars(select(RolePermission).order_by(RolePermission.id))]
    return role_rows, rule_rows


# -- the default roles -------------------------------------------------------------------------------

def test_the_four_default_roles_and_their_rules(admin: Caller, user_caller: Caller) -> None:
    listed = admin.ok("listRoles")
    assert listed["count"] == 4
    assert {(r["id"], r["name"], r["type"], r["isdefault"]) for r in listed["role"]} == {
        (ROOT_ADMIN_ROLE_ID, "Root Admin", "Admin", True),
        (RESOURCE_ADMIN_ROLE_ID, "Resource Admin", "ResourceAdmin", True),
        (DOMAIN_ADMIN_ROLE_ID, "Domain Admin", "DomainAdmin", True), (USER_ROLE_ID, "User", "User", True)}
    assert _rules(admin, ROOT_ADMIN_ROLE_ID) == [("*", "allow")]
    # the default User role allows exactly the commands that are not admin-only
    assert _rules(admin, USER_ROLE_ID) == [(name, "allow") for name in _user_commands()]
    assert "createZone" not in dict(_rules(admin, USER_ROLE_ID)) and "listZones" in dict(_rules(admin, USER_ROLE_ID))
    # accounts show their role; a user sees every command that is not admin-only in listApis
    accounts = {a["name"]: a for a in admin.ok("listAccounts", listall=True)["account"]}
    assert (accounts["admin"]["roleid"], accounts["admin"]["rolename"], accounts["admin"]["roletype"]) == (
        ROOT_ADMIN_ROLE_ID, "Root Admin", "Admin")
    assert (accounts["alice"]["roleid"], accounts["alice"]["rolename"], accounts["alice"]["roletype"]) == (
        USER_ROLE_ID, "User", "User")
    assert sorted(a["name"] for a in user_caller.ok("listApis")["api"]) == _user_commands()
    assert len(admin.ok("listApis")["api"]) == len(REGISTRY.all())
    assert user_caller.ok("listCapabilities")["capability"]["dynamicrolesenabled"] is True


def test_default_roles_cannot_change(admin: Caller, state: ServerState) -> None:
    before = _snapshot(state)
    user_rule = admin.ok("listRolePermissions", roleid=USER_ROLE_ID)["rolepermission"][0]
    for command, params, text in (
        ("updateRole", {"id": USER_ROLE_ID, "name": "x"}, "Default roles cannot be updated"),
        ("deleteRole", {"id": ROOT_ADMIN_ROLE_ID}, "Default roles cannot be deleted"),
        ("deleteRole", {"id": DOMAIN_ADMIN_ROLE_ID}, "Default roles cannot be deleted"),
        ("createRolePermission", {"roleid": USER_ROLE_ID, "rule": "createZone", "permission": "allow"},
         "Role permission cannot be added for Default roles"),
        ("updateRolePermission", {"roleid": USER_ROLE_ID, "ruleid": user_rule["id"], "permission": "deny"},
         "Role permission cannot be updated for Default roles"),
        ("deleteRolePermission", {"id": user_rule["id"]}, "Role permission cannot be deleted for Default roles"),
    ):
        status, body = admin.call(command, **params)
        assert (status, body["errortext"], body["cserrorcode"]) == (531, text, 4365), (command, body)
    assert _snapshot(state) == before


def test_default_rules_follow_the_commands_and_are_written_once(state: ServerState, admin: Caller) -> None:
    with state.sessions.begin() as db:
        assert roles.sync_default_rules(db, _user_commands()) is False  # create_app wrote them already
        version = db.get(Role, USER_ROLE_ID).version  # type: ignore[union-attr]
    with state.sessions.begin() as db:
        assert roles.sync_default_rules(db, ["listZones", "listApis"]) is True
    with state.sessions() as db:
        assert [(p.rule, p.sort_order) for p in roles.rules_of(db, USER_ROLE_ID)] == [("listApis", 0), ("listZones", 1)]
        assert [p.rule for p in roles.rules_of(db, ROOT_ADMIN_ROLE_ID)] == ["*"]
        assert db.get(Role, USER_ROLE_ID).version > version  # type: ignore[union-attr]
    roles.write_default_rules(state.sessions, _user_commands())
    with state.sessions() as db:
        assert [p.rule for p in roles.rules_of(db, USER_ROLE_ID)] == _user_commands()


# -- CRUD --------------------------------------------------------------------------------------------

def test_create_clone_update_list_and_delete_a_role(admin: Caller, state: ServerState) -> None:
    ops = _role(admin, name="Operators", type="user", description="read only")
    assert (ops["name"], ops["type"], ops["description"], ops["isdefault"]) == ("Operators", "User", "read only", False)
    first = _rule(admin, ops["id"], "list*")
    second = _rule(admin, ops["id"], "deployVirtualMachine", "deny")
    assert (first["roleid"], first["rolename"], first["rule"], first["permission"]) == (
        ops["id"], "Operators", "list*", "allow")
    clone = _role(admin, name="Operators 2", roleid=ops["id"])
    assert clone["type"] == "User" and clone["id"] != ops["id"]
    assert _rules(admin, clone["id"]) == [("list*", "allow"), ("deployVirtualMachine", "deny")]
    # the clone is its own: changing it leaves the source alone
    admin.ok("deleteRolePermission", id=admin.ok("listRolePermissions", roleid=clone["id"])["rolepermission"][0]["id"])
    assert _rules(admin, ops["id"]) == [("list*", "allow"), ("deployVirtualMachine", "deny")]
    assert _rules(admin, clone["id"]) == [("deployVirtualMachine", "deny")]

    updated = admin.ok("updateRole", id=ops["id"], name="Ops", type="Admin", description="d2")["role"]
    assert (updated["name"], updated["type"], updated["description"]) == ("Ops", "Admin", "d2")
    assert admin.ok("listRoles", id=ops["id"])["role"][0]["name"] == "Ops"
    assert {r["name"] for r in admin.ok("listRoles", type="Admin")["role"]} == {"Root Admin", "Ops"}
    assert {r["name"] for r in admin.ok("listRoles", keyword="operators")["role"]} == {"Operators 2"}
    assert admin.ok("listRoles", name="Ops")["count"] == 1
    all_rules = admin.ok("listRolePermissions")["rolepermission"]
    assert {r["roleid"] for r in all_rules} >= {ops["id"], clone["id"], USER_ROLE_ID, ROOT_ADMIN_ROLE_ID}

    admin.ok("updateRolePermission", roleid=ops["id"], ruleid=second["id"], permission="ALLOW")
    assert _rules(admin, ops["id"]) == [("list*", "allow"), ("deployVirtualMachine", "allow")]
    admin.ok("updateRolePermission", roleid=ops["id"], ruleorder=f"{second['id']},{first['id']}")
    assert _rules(admin, ops["id"]) == [("deployVirtualMachine", "allow"), ("list*", "allow")]

    admin.ok("deleteRole", id=ops["id"])
    assert admin.ok("listRoles", id=ops["id"]).get("role", []) == []
    assert admin.call("listRolePermissions", roleid=ops["id"])[0] == 431
    with state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(RolePermission)
                         .where(RolePermission.role_id == ops["id"])) == 0
    assert admin.call("deleteRole", id=ops["id"])[0] == 431


def test_role_in_use_cannot_be_deleted_nor_change_type(admin: Caller, state: ServerState) -> None:
    role = _role(admin, name="Used", type="User")
    _rule(admin, role["id"], "listZones")
    bob = _caller_with_role(admin, role["id"])
    before = _snapshot(state)
    status, body = admin.call("deleteRole", id=role["id"])
    assert (status, body["errortext"]) == (531, "Found accounts that have role in use, won't allow to delete role")
    status, body = admin.call("updateRole", id=role["id"], type="Admin")
    assert (status, body["errortext"]) == (531, "Found accounts that have role in use, won't allow to change role type")
    assert _snapshot(state) == before
    assert bob.ok("listZones") is not None
    # once the account is gone the role may go
    account = admin.ok("listAccounts", name="bob")["account"][0]
    admin.job("deleteAccount", id=account["id"])
    admin.ok("deleteRole", id=role["id"])


@pytest.mark.parametrize(("params", "text"), [
    ({"name": "r"}, "Neither role type nor role ID is provided"),
    ({"name": "r", "type": "User", "roleid": USER_ROLE_ID}, "Both role type and role ID should not be specified"),
    ({"name": "r", "type": "Superuser"}, "Invalid role type provided"),
    ({"name": "r", "type": ""}, "Invalid role type provided"),
    ({"name": "   ", "type": "User"}, "missing parameter name"),
    ({"name": "r", "roleid": "not-a-uuid"}, "roleid"),
    ({"name": "r", "roleid": "8f1c7c4e-0000-4000-8000-000000000000"}, "roleid"),
    ({"name": "x" * 256, "type": "User"}, "max allowed length"),
    ({"name": "r", "type": "User", "description": "d" * 5000}, "max allowed length"),
])
def test_malformed_create_role_is_refused(admin: Caller, state: ServerState, params: dict[str, str],
                                          text: str) -> None:
    before = _snapshot(state)
    status, body = admin.call("createRole", **params)
    assert status == 431 and text in body["errortext"], body
    assert _snapshot(state) == before


@pytest.mark.parametrize("rule", [
    "", "list Zones", "list*;drop table role", "list_zones", "listZones\u00e9", "../admin", "%", "list?", "a" * 256,
    "<script>", "list*\n", "'*'",
])
def test_hostile_rules_are_refused(admin: Caller, state: ServerState, rule: str) -> None:
    role = _role(admin, name="R", type="User")
    before = _snapshot(state)
    status, body = admin.call("createRolePermission", roleid=role["id"], rule=rule, permission="allow")
    assert status == 431, body
    assert _snapshot(state) == before


def test_rule_errors_name_the_problem(admin: Caller, state: ServerState) -> None:
    role = _role(admin, name="R", type="User")
    other = _role(admin, name="Other", type="User")
    rule = _rule(admin, role["id"], "listZones")
    foreign = _rule(admin, other["id"], "listHosts")
    before = _snapshot(state)
    checks: list[tuple[str, dict[str, str], int, str]] = [
        ("createRolePermission", {"roleid": role["id"], "rule": "list-zones", "permission": "allow"}, 431,
         "Only API names and wildcards are allowed, invalid rule provided: list-zones"),
        ("createRolePermission", {"roleid": role["id"], "rule": "listVolumes", "permission": "maybe"}, 431,
         "Values for permission parameter should be: allow or deny"),
        ("createRolePermission", {"roleid": role["id"], "rule": "LISTZONES", "permission": "deny"}, 531,
         "Rule already exists for the role: R"),
        ("createRolePermission", {"roleid": "8f1c7c4e-0000-4000-8000-000000000000", "rule": "x", "permission": "allow"},
         431, "roleid"),
        ("updateRolePermission", {"roleid": role["id"], "ruleid": rule["id"], "permission": "sometimes"}, 431,
         "Values for permission parameter should be: allow or deny"),
        ("updateRolePermission", {"roleid": role["id"], "ruleid": foreign["id"], "permission": "deny"}, 431,
         "Invalid rule id provided"),
        ("updateRolePermission", {"roleid": role["id"], "ruleorder": rule["id"], "ruleid": rule["id"]}, 431,
         "Parameters permission and ruleid must be mutually exclusive with ruleorder"),
        ("updateRolePermission", {"roleid": role["id"]}, 431, "ruleorder"),
        ("updateRolePermission", {"roleid": role["id"], "ruleid": rule["id"]}, 431, "ruleorder"),
        ("updateRolePermission", {"roleid": role["id"], "ruleorder": "junk,'; drop table role"}, 431,
         "Provided role permission(s) do not exist"),
        # out of order: the list no longer names exactly the role's rules (CloudStack's 530)
        ("updateRolePermission", {"roleid": role["id"], "ruleorder": f"{rule['id']},{foreign['id']}"}, 530,
         "The role's rule permissions list has changed"),
        ("updateRolePermission", {"roleid": role["id"], "ruleorder": ",".join([rule["id"]] * 10_001)}, 431,
         "ruleorder"),
        ("deleteRolePermission", {"id": "8f1c7c4e-0000-4000-8000-000000000000"}, 431, "id"),
        ("updateRole", {"id": role["id"], "type": "God"}, 431, "Invalid role type provided"),
        ("updateRole", {"id": "8f1c7c4e-0000-4000-8000-000000000000"}, 431, "id"),
    ]
    for command, params, code, text in checks:
        status, body = admin.call(command, **params) if len(str(params)) < 4000 else _post(admin, command, params)
        assert status == code and text in body["errortext"], (command, params, body)
    assert _snapshot(state) == before


def _post(admin: Caller, command: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
    resp = admin.raw({"command": command, "response": "json", **params}, method="POST")
    return resp.status_code, next(iter(resp.json().values()))


def test_users_and_custom_admins_without_the_rule_cannot_manage_roles(admin: Caller, user_caller: Caller,
                                                                      state: ServerState) -> None:
    role = _role(admin, name="R", type="User")
    before = _snapshot(state)
    for command, params in (("listRoles", {}), ("createRole", {"name": "x", "type": "Admin"}),
                            ("deleteRole", {"id": role["id"]}), ("listRolePermissions", {"roleid": role["id"]}),
                            ("createRolePermission", {"roleid": role["id"], "rule": "*", "permission": "allow"}),
                            ("updateRole", {"id": role["id"], "type": "Admin"})):
        status, body = user_caller.call(command, **params)
        assert status == 401 and body["errortext"] == NOT_ADMIN, (command, body)
    assert _snapshot(state) == before
    limited = _role(admin, name="Limited admin", type="Admin")
    _rule(admin, limited["id"], "createRole", "deny")
    _rule(admin, limited["id"], "*")
    other_admin = _caller_with_role(admin, limited["id"], "carol")
    assert other_admin.ok("listAccounts", name="carol")["account"][0]["accounttype"] == 1
    status, body = other_admin.call("createRole", name="x", type="Admin")
    assert (status, body["errortext"]) == (432, "The API [createRole] does not exist or is not available for the "
                                                "account carol.")
    assert other_admin.ok("listRoles")["count"] == 6


# -- the check ---------------------------------------------------------------------------------------

def test_a_role_without_the_rule_is_refused_the_api_and_does_not_see_it(admin: Caller) -> None:
    role = _role(admin, name="Zones only", type="User")
    _rule(admin, role["id"], "listZones")
    _rule(admin, role["id"], "listApis")
    bob = _caller_with_role(admin, role["id"])
    assert bob.call("listZones")[0] == 200
    status, body = bob.call("listVirtualMachines")
    assert (status, body["errorcode"], body["errortext"]) == (
        432, 432, "The API [listVirtualMachines] does not exist or is not available for the account bob.")
    assert sorted(a["name"] for a in bob.ok("listApis")["api"]) == ["listApis", "listZones"]
    assert bob.call("listApis", name="listVirtualMachines")[0] == 431
    # without listApis in its rules, listApis itself is refused
    rules = {r["rule"]: r["id"] for r in admin.ok("listRolePermissions", roleid=role["id"])["rolepermission"]}
    admin.ok("deleteRolePermission", id=rules["listApis"])
    assert bob.call("listApis")[0] == 432


def test_wildcards_and_deny_before_allow(admin: Caller) -> None:
    role = _role(admin, name="Readers", type="User")
    deny = _rule(admin, role["id"], "listVirtualMachines", "deny")
    allow = _rule(admin, role["id"], "list*")
    bob = _caller_with_role(admin, role["id"])
    assert bob.call("listZones")[0] == 200 and bob.call("listTemplates", templatefilter="all")[0] == 200
    assert bob.call("listVirtualMachines")[0] == 432  # the deny comes first
    assert bob.call("createSSHKeyPair", name="k")[0] == 432  # no rule matches: denied
    # the allow moved first: it now wins for listVirtualMachines
    admin.ok("updateRolePermission", roleid=role["id"], ruleorder=f"{allow['id']},{deny['id']}")
    assert bob.call("listVirtualMachines")[0] == 200
    # a rule matches whole names, case-insensitively; '*' anywhere
    _rule(admin, role["id"], "*SSH*pair")
    assert bob.call("createSSHKeyPair", name="k")[0] == 200
    assert bob.call("deleteSSHKeyPair", name="k")[0] == 200
    assert bob.call("registerUserData", name="u", userdata="aGk=")[0] == 432


def test_a_user_role_cannot_reach_admin_commands_whatever_its_rules(admin: Caller) -> None:
    role = _role(admin, name="Greedy", type="User")
    _rule(admin, role["id"], "*")
    bob = _caller_with_role(admin, role["id"])
    assert bob.ok("listAccounts")["account"][0]["accounttype"] == 0
    status, body = bob.call("createZone", name="z", networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.1")
    assert (status, body["errortext"]) == (401, NOT_ADMIN)
    assert bob.call("listHosts")[0] == 401
    assert "createZone" not in {a["name"] for a in bob.ok("listApis")["api"]}
    assert sorted(a["name"] for a in bob.ok("listApis")["api"]) == _user_commands()


def test_create_account_with_a_role(admin: Caller, state: ServerState) -> None:
    admin_role = _role(admin, name="Admins", type="Admin")
    domain_role = _role(admin, name="Domain", type="DomainAdmin")
    base = {"password": "pw-Roles-1", "firstname": "F", "lastname": "L"}
    made = admin.ok("createAccount", username="dave", roleid=admin_role["id"], **base)["account"]
    assert (made["accounttype"], made["roleid"], made["rolename"], made["roletype"]) == (1, admin_role["id"], "Admins",
                                                                                         "Admin")
    assert admin.ok("createAccount", username="erin", accounttype=1, **base)["account"]["roleid"] == ROOT_ADMIN_ROLE_ID
    assert admin.ok("createAccount", username="fred", **base)["account"]["roleid"] == USER_ROLE_ID
    made = admin.ok("createAccount", username="hank", roleid=domain_role["id"], **base)["account"]
    assert (made["accounttype"], made["roletype"]) == (2, "DomainAdmin")
    made = admin.ok("createAccount", username="ivan", accounttype=2, **base)["account"]
    assert (made["accounttype"], made["roleid"]) == (2, DOMAIN_ADMIN_ROLE_ID)
    with state.sessions() as db:
        accounts = db.scalar(select(func.count()).select_from(Account))
    for params, text in (({"roleid": admin_role["id"], "accounttype": 0}, "does not match accounttype"),
                         ({"roleid": RESOURCE_ADMIN_ROLE_ID}, "not supported"),
                         ({"roleid": "8f1c7c4e-0000-4000-8000-000000000000"}, "roleid"),
                         ({"roleid": "1"}, "roleid"),
                         ({"roleid": domain_role["id"], "accounttype": 0}, "does not match accounttype"),
                         ({"accounttype": 3}, "accounttype")):
        status, body = admin.call("createAccount", username="gina", **base, **params)
        assert status == 431 and text in body["errortext"], (params, body)
    with state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(Account)) == accounts


# -- many processes, no query per call ---------------------------------------------------------------

@pytest.fixture
def second_server(state: ServerState) -> Iterator[Any]:
    """Another server process on the same database (its own compiled-role cache)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    other = ServerState.open(state.config)
    with TestClient(create_app(other, run_jobs=False)) as client:
        yield client
    other.close()


def test_a_change_through_one_server_applies_at_once_on_another(admin: Caller, second_server: Any) -> None:
    role = _role(admin, name="Shared", type="User")
    rule = _rule(admin, role["id"], "listZones")
    bob = _caller_with_role(admin, role["id"])
    bob_there = Caller(second_server, bob.apikey, bob.secretkey)
    assert bob.call("listZones")[0] == 200 and bob_there.call("listZones")[0] == 200  # both compiled it
    admin.ok("updateRolePermission", roleid=role["id"], ruleid=rule["id"], permission="deny")
    assert bob_there.call("listZones")[0] == 432
    assert bob.call("listZones")[0] == 432
    admin_there = Caller(second_server, admin.apikey, admin.secretkey)
    admin_there.ok("updateRolePermission", roleid=role["id"], ruleid=rule["id"], permission="allow")
    assert bob.call("listZones")[0] == 200


def _statements_of_call(state: ServerState, caller: Caller, command: str) -> int:
    me = threading.get_ident()
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.get_ident() == me:
            seen.append(statement)

    pairs = {"apiKey": caller.apikey, "command": command, "response": "json"}
    pairs["signature"] = compute_signature(list(pairs.items()), caller.secretkey)
    event.listen(state.engine, "before_cursor_execute", note)
    try:
        outcome = process(state, REGISTRY, "GET", RequestParams.from_pairs(list(pairs.items())), {})
    finally:
        event.remove(state.engine, "before_cursor_execute", note)
    assert outcome.status == 200, outcome.body
    return len(seen)


def test_the_check_costs_no_query_once_compiled(admin: Caller, user_caller: Caller, state: ServerState) -> None:
    role = _role(admin, name="Counted", type="User")
    _rule(admin, role["id"], "listZones")
    bob = _caller_with_role(admin, role["id"])
    default_user = _statements_of_call(state, user_caller, "listZones")
    first = _statements_of_call(state, bob, "listZones")
    assert first == default_user + 1  # compiling the role: its rules, once
    assert _statements_of_call(state, bob, "listZones") == default_user
    _rule(admin, role["id"], "listTemplates")  # a new version: compiled again on the next call, once
    assert _statements_of_call(state, bob, "listZones") == default_user + 1
    assert _statements_of_call(state, bob, "listZones") == default_user


def test_glob_matching_is_linear_on_hostile_patterns() -> None:
    assert matches("list*", "listzones") and matches("*", "x") and matches("l*s*s", "listzones")
    assert not matches("list*", "deletezones") and not matches("listzone", "listzones")
    hostile = "*a" * 120 + "*b"
    assert not matches(hostile.lower(), "a" * 200)  # returns at once (a backtracking regex would not)
