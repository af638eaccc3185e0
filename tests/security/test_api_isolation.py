"""A user never sees or touches another account's resources, across every command in the registry.

The checks are generated from the registry, so a command added later is covered the day it is
registered: admin-only commands must refuse a plain user whatever the parameters; user-visible
``list*`` commands must not mention anything private to another account, whatever filter or
``listall`` the user sends; every other user-visible command must refuse another account's ids
and change nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest

from hvcloud.server.api.registry import REGISTRY, ApiCommand, Param
from hvcloud.server.api.signature import compute_signature
from hvcloud.server.app import create_app
from hvcloud.server.config import ServerConfig
from hvcloud.server.state import ServerState
from tests.fuzz.api_fuzz import db_fingerprint, settle
from tests.support.network_setup import add_physical_network, add_public_range
from tests.support.server_api import Caller, keys_of

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

URL = "/client/api"


@dataclass
class Who:
    apikey: str
    secret: str


@dataclass
class World:
    state: ServerState
    http: TestClient
    admin: Who
    alice: Who
    #: ids, names and keys that belong to accounts other than alice's
    foreign_private: dict[str, str]
    #: uuids of objects alice must not act on, by what they are
    foreign_ids: dict[str, str]

    def call(self, who: Who, command: str, params: list[tuple[str, str]]) -> tuple[int, str, dict[str, Any]]:
        pairs = [("apiKey", who.apikey), ("command", command), ("response", "json"), *params]
        pairs.append(("signature", compute_signature(pairs, who.secret)))
        r = self.http.get(f"{URL}?{urlencode(pairs)}")
        body = r.json()
        return r.status_code, r.text, next(iter(body.values()))

    def ok(self, who: Who, command: str, **params: str) -> dict[str, Any]:
        status, text, body = self.call(who, command, list(params.items()))
        assert status == 200, text
        return body


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    state = ServerState.open(ServerConfig.build(tmp_path_factory.mktemp("iso") / "data",
                                                settings={"api.throttling.enabled": "false"}))
    with TestClient(create_app(state)) as http:
        admin = Who(*keys_of(state, "admin"))
        w = World(state, http, admin, admin, {}, {})
        zone = w.ok(admin, "createZone", name="z", networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.1")
        pod = w.ok(admin, "createPod", name="p", zoneid=zone["zone"]["id"], gateway="10.1.0.1",
                   netmask="255.255.255.0", startip="10.1.0.10", endip="10.1.0.50")["pod"]
        w.ok(admin, "addImageStore", provider="NFS", url="nfs://10.0.0.6/export/secondary", zoneid=zone["zone"]["id"])
        w.ok(admin, "addCluster", clustername="c", clustertype="CloudManaged", hypervisor="Simulator",
             podid=pod["id"], zoneid=zone["zone"]["id"])

        def account(name: str) -> tuple[dict[str, Any], Who]:
            acc = w.ok(admin, "createAccount", username=name, password=f"{name}-pw-123", firstname=name,
                       lastname=name, accounttype="0")["account"]
            keys = w.ok(admin, "registerUserKeys", id=acc["user"][0]["id"])["userkeys"]
            return acc, Who(keys["apikey"], keys["secretkey"])

        _, w.alice = account("alice")
        bob_acc, bob = account("bobby")
        bob_user = bob_acc["user"][0]["id"]
        w.ok(bob, "updateUser", id=bob_user, firstname="Bobby-the-private")
        job = w.ok(admin, "disableUser", id=bob_user)["jobid"]
        assert settle(state.engine)
        w.ok(admin, "enableUser", id=bob_user)
        template = w.ok(bob, "registerTemplate", name="bobs-private-template", displaytext="private",
                        url="http://images.example.test/bob.qcow2", format="QCOW2", hypervisor="Simulator",
                        zoneid=zone["zone"]["id"])["template"][0]
        assert settle(state.engine)
        add_physical_network(Caller(http, admin.apikey, admin.secret), zone["zone"]["id"])
        root = w.ok(admin, "listDomains")["domain"][0]["id"]
        snat = w.ok(admin, "listNetworkOfferings", name="DefaultIsolatedNetworkOfferingWithSourceNatService")[
            "networkoffering"][0]["id"]
        bob_network = w.ok(admin, "createNetwork", name="bobs-private-net", zoneid=zone["zone"]["id"],
                           networkofferingid=snat, account="bobby", domainid=root)["network"]
        pn = w.ok(admin, "listPhysicalNetworks", zoneid=zone["zone"]["id"])["physicalnetwork"][0]
        add_public_range(Caller(http, admin.apikey, admin.secret), zone["zone"]["id"], pn["id"])
        bob_ip = w.ok(admin, "associateIpAddress", networkid=bob_network["id"])
        assert settle(state.engine)
        bob_rule = w.ok(bob, "createFirewallRule", ipaddressid=bob_ip["id"], protocol="tcp", startport="22")
        assert settle(state.engine)
        bob_address = w.ok(bob, "listPublicIpAddresses", id=bob_ip["id"])["publicipaddress"][0]["ipaddress"]
        admin_me = w.ok(admin, "listUsers", username="admin")["user"][0]
        bob_events = [e["id"] for e in w.ok(bob, "listEvents").get("event", [])]
        admin_events = [e["id"] for e in w.ok(admin, "listEvents").get("event", [])]
        assert bob_events and admin_events
        w.foreign_ids = {"bob-account": bob_acc["id"], "bob-user": bob_user, "admin-account": admin_me["accountid"],
                         "admin-user": admin_me["id"], "admin-job": job, "bob-event": bob_events[0],
                         "bob-template": template["id"], "bob-network": bob_network["id"],
                         "admin-event": admin_events[0], "bob-public-ip": bob_ip["id"],
                         "bob-firewall-rule": bob_rule["id"]}
        w.foreign_private = {**w.foreign_ids, "bob-apikey": bob.apikey, "bob-secret": bob.secret,
                             "admin-apikey": admin.apikey, "admin-secret": admin.secret,
                             "bob-name": "bobby", "bob-firstname": "Bobby-the-private",
                             "bob-template-name": "bobs-private-template", "bob-network-name": "bobs-private-net",
                             "bob-public-address": bob_address}
        yield w
    state.close()


def _fill(params: tuple[Param, ...], override: dict[str, str]) -> list[tuple[str, str]]:
    """Every required parameter with a plausible value, then the overrides."""
    plausible = {"uuid": "00000000-0000-4000-8000-000000000001", "boolean": "true", "integer": "1", "long": "1",
                 "short": "0", "list": "a", "date": "2026-01-01", "string": "x"}
    out: list[tuple[str, str]] = []
    for p in params:
        if p.name in override:
            continue
        if p.required:
            if p.type == "map":
                out += [(f"{p.name}[0].key", "k"), (f"{p.name}[0].value", "v")]
            else:
                out.append((p.name, plausible[p.type]))
    return out + list(override.items())


def _leaks(world: World, text: str, sent: dict[str, str] | None = None) -> list[str]:
    """Private values of other accounts in ``text``, except those the request itself sent (echoed in an
    error message, which discloses nothing)."""
    echoed = set((sent or {}).values())
    return [what for what, value in world.foreign_private.items() if value in text and value not in echoed]


#: user commands that take no id and act on the caller's own account only
CALLER_ONLY = ("getApiLimit",)
#: user commands that name their objects in a list of ids (the resource tags), and the resource type
#: of each foreign object (others are tried as the type they are not: still refused)
ID_LIST_COMMANDS = {"createTags": "resourceids", "deleteTags": "resourceids"}
TAG_TYPES = {"bob-template": "Template", "bob-network": "Network", "bob-public-ip": "PublicIpAddress",
             "bob-firewall-rule": "FirewallRule"}


def classify(cmd: ApiCommand) -> str:
    if cmd.admin_only:
        return "admin-only"
    return "user-list" if cmd.name.startswith("list") else "user-action"


def test_every_registered_command_is_classified() -> None:
    kinds = {cmd.name: classify(cmd) for cmd in REGISTRY.all()}
    assert set(kinds.values()) == {"admin-only", "user-list", "user-action"}
    assert kinds["listZones"] == "user-list" and kinds["getUserKeys"] == "user-action"
    assert kinds["createZone"] == "admin-only"


def test_the_detector_sees_what_the_admin_may_see(world: World) -> None:
    """Without this, a leak check that never matches would pass vacuously."""
    _, text, _ = world.call(world.admin, "listUsers", [("listall", "true")])
    assert {"bob-user", "admin-user", "bob-name", "bob-firstname"} <= set(_leaks(world, text))
    _, text, _ = world.call(world.admin, "listEvents", [("listall", "true")])
    assert "bob-event" in _leaks(world, text)
    _, text, _ = world.call(world.admin, "listTemplates", [("templatefilter", "all"), ("listall", "true")])
    assert {"bob-template", "bob-template-name"} <= set(_leaks(world, text))


@pytest.mark.parametrize("name", [c.name for c in REGISTRY.all() if c.admin_only])
def test_admin_only_commands_refuse_a_user(world: World, name: str) -> None:
    cmd = REGISTRY.get(name)
    assert cmd is not None
    for override in ({}, {p.name: world.foreign_ids["bob-user"] for p in cmd.params if p.type == "uuid"}):
        settle(world.state.engine)
        before = db_fingerprint(world.state.engine)
        status, text, body = world.call(world.alice, name, _fill(cmd.params, override))
        assert status == 401 and "not available" in body["errortext"], text
        assert db_fingerprint(world.state.engine) == before
        assert _leaks(world, text) == []


def _list_variants(world: World, cmd: ApiCommand) -> Iterator[dict[str, str]]:
    names = {p.name: p for p in cmd.params}
    yield {}
    if "listall" in names:
        yield {"listall": "true"}
    for p in cmd.params:
        if p.type == "uuid":
            for value in world.foreign_ids.values():
                yield {p.name: value, **({"listall": "true"} if "listall" in names else {})}
        elif p.name == "templatefilter":
            for value in ("self", "all", "featured", "community", "executable", "selfexecutable",
                          "sharedexecutable", "shared"):
                yield {p.name: value, **({"listall": "true"} if "listall" in names else {})}
        elif p.type == "string" and p.name in ("name", "username", "account", "keyword"):
            yield {p.name: "bobby"}
            yield {p.name: "admin"}


@pytest.mark.parametrize("name", [c.name for c in REGISTRY.all() if classify(c) == "user-list"])
def test_user_lists_never_show_another_accounts_resources(world: World, name: str) -> None:
    cmd = REGISTRY.get(name)
    assert cmd is not None
    tried = 0
    for override in _list_variants(world, cmd):
        settle(world.state.engine)
        before = db_fingerprint(world.state.engine)
        status, text, _ = world.call(world.alice, name, _fill(cmd.params, override))
        # 531: CloudStack's refusal of a user naming another account (listSSHKeyPairs account=bobby)
        assert status in (200, 431, 531), text
        assert _leaks(world, text, override) == [], f"{name} {override} shows {_leaks(world, text, override)}"
        assert db_fingerprint(world.state.engine) == before
        tried += 1
    assert tried >= 1


@pytest.mark.parametrize("name", [c.name for c in REGISTRY.all() if classify(c) == "user-action"])
def test_user_actions_refuse_another_accounts_ids(world: World, name: str) -> None:
    cmd = REGISTRY.get(name)
    assert cmd is not None
    uuid_params = [p for p in cmd.params if p.type == "uuid"]
    if name in CALLER_ONLY:
        settle(world.state.engine)
        before = db_fingerprint(world.state.engine)
        _, text, _ = world.call(world.alice, name, _fill(cmd.params, {}))
        assert _leaks(world, text) == [] and db_fingerprint(world.state.engine) == before
        return
    if name in ID_LIST_COMMANDS:
        _refuses_foreign_id_lists(world, name, ID_LIST_COMMANDS[name])
        return
    assert uuid_params, f"{name} takes no id; decide how to test its isolation"
    for p in uuid_params:
        for what, value in world.foreign_ids.items():
            settle(world.state.engine)
            before = db_fingerprint(world.state.engine)
            status, text, _ = world.call(world.alice, name, _fill(cmd.params, {p.name: value}))
            assert status != 200, f"{name} {p.name}={what} was accepted: {text[:300]}"
            assert _leaks(world, text, {p.name: value}) == [], f"{name} shows {_leaks(world, text)}"
            assert db_fingerprint(world.state.engine) == before, f"{name} {p.name}={what} changed the database"


def _refuses_foreign_id_lists(world: World, name: str, param: str) -> None:
    """createTags/deleteTags naming another account's objects (tagged by the admin, so that deleting
    has something to find): refused, nothing leaked or changed; listTags does not show those tags."""
    for what, type_name in TAG_TYPES.items():
        world.ok(world.admin, "createTags", resourcetype=type_name, resourceids=world.foreign_ids[what],
                 **{"tags[0].key": f"owner-{name}", "tags[0].value": "bob-private-tag"})
    for what, value in world.foreign_ids.items():
        settle(world.state.engine)
        before = db_fingerprint(world.state.engine)
        params = [(param, value), ("resourcetype", TAG_TYPES.get(what, "UserVm")), ("tags[0].key", "k"),
                  ("tags[0].value", "v")]
        status, text, _ = world.call(world.alice, name, params if name == "createTags" else params[:2])
        assert status != 200, f"{name} {param}={what} was accepted: {text[:300]}"
        assert _leaks(world, text, {param: value}) == [] and "bob-private-tag" not in text, text
        assert db_fingerprint(world.state.engine) == before, f"{name} {param}={what} changed the database"
    _, text, _ = world.call(world.alice, "listTags", [("listall", "true")])
    assert "bob-private-tag" not in text and _leaks(world, text) == []


def test_user_can_still_act_on_its_own_resources(world: World) -> None:
    """The refusals above are about ownership, not a user who can do nothing."""
    me = world.ok(world.alice, "listUsers")["user"][0]
    assert world.ok(world.alice, "getUserKeys", id=me["id"])["userkeys"]["apikey"] == world.alice.apikey
    assert world.ok(world.alice, "updateUser", id=me["id"], lastname="Liddell")["user"]["id"] == me["id"]
