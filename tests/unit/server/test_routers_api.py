"""listRouters, startRouter, stopRouter, rebootRouter, destroyRouter and restartNetwork through the
signed API, their jobs run by the server's job engine against in-memory router hosts
(``tests.support.router_world``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from hvcloud.server.db.models import AsyncJob, DomainRouter
from hvcloud.server.orchestration.networks import routing
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.state import ServerState
from hvcloud.wire import commands as C
from hvcloud.wire import routing as R
from tests.support.router_world import World, build_world
from tests.support.server_api import Caller

ROUTER_COMMANDS = ("startRouter", "stopRouter", "rebootRouter", "destroyRouter")


@pytest.fixture
def world(state: ServerState, http: TestClient) -> World:
    w = build_world(state)
    assert state.jobs is not None
    state.jobs.agents = w.agents  # the engine's jobs talk to the in-memory router hosts
    return w


def _implemented(world: World, vms: int = 2, **network: Any) -> tuple[str, list[str], DomainRouter]:
    net = world.network(**network)
    ids = [world.vm(net) for _ in range(vms)]
    for vm in ids:
        asyncio.run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
        world.set_vm_state(vm, S.RUNNING)
    [router] = world.routers(net)
    return net, ids, router


def _job(caller: Caller, command: str, **params: Any) -> dict[str, Any]:
    job = caller.wait(caller.ok(command, **params)["jobid"])
    return job


def _counts(state: ServerState) -> tuple[int, int]:
    with state.sessions() as db:
        return (db.scalar(select(func.count()).select_from(DomainRouter)) or 0,
                db.scalar(select(func.count()).select_from(AsyncJob)) or 0)


def test_list_routers_shows_cloudstack_fields_and_filters(world: World, admin: Caller) -> None:
    net, _vms, router = _implemented(world)
    other, _o, router2 = _implemented(world, vms=1, name="other", cidr="10.1.2.0/24")
    listed = admin.ok("listRouters", listall=True)
    assert listed["count"] == 2
    view = next(r for r in listed["router"] if r["id"] == router.id)
    assert {k: view[k] for k in ("name", "state", "zoneid", "zonename", "hostid", "hostname", "guestnetworkid",
                                 "guestnetworkname", "guestipaddress", "guestmacaddress", "guestnetmask", "gateway",
                                 "dns1", "dns2", "networkdomain", "account", "role", "isredundantrouter",
                                 "requiresupgrade")} == {
        "name": router.name, "state": "Running", "zoneid": world.zone, "zonename": "zone1",
        "hostid": world.hosts[0], "hostname": "h0", "guestnetworkid": net, "guestnetworkname": "net",
        "guestipaddress": "10.1.1.1", "guestmacaddress": router.guest_mac, "guestnetmask": "255.255.255.0",
        "gateway": "10.1.1.1", "dns1": "192.0.2.53", "dns2": "192.0.2.54", "networkdomain": "tenant.internal",
        "account": "admin", "role": "VIRTUAL_ROUTER", "isredundantrouter": False, "requiresupgrade": False}
    assert view["domainid"] and view["domain"] == "ROOT" and view["created"].endswith("+0000")
    [nic] = view["nic"]
    assert (nic["networkid"], nic["ipaddress"], nic["broadcasturi"], nic["traffictype"], nic["type"]) == \
        (net, "10.1.1.1", "vxlan://5000", "Guest", "Isolated")
    assert [r["id"] for r in admin.ok("listRouters", networkid=other)["router"]] == [router2.id]
    assert admin.ok("listRouters", id=router.id)["count"] == 1
    assert admin.ok("listRouters", name=router2.name)["router"][0]["id"] == router2.id
    assert admin.ok("listRouters", state="Stopped") == {}
    assert admin.ok("listRouters", state="running", hostid=world.hosts[0])["count"] == 2
    assert admin.ok("listRouters", keyword=router.name[:-3])["count"] >= 1
    assert admin.ok("listRouters", keyword="%_") == {}
    page2 = admin.ok("listRouters", listall=True, page=2, pagesize=1)
    assert page2["count"] == 2 and [r["id"] for r in page2["router"]] == [router2.id]
    domain = view["domainid"]
    assert admin.ok("listRouters", account="admin", domainid=domain)["count"] == 2
    assert admin.ok("listRouters", domainid=domain)["count"] == 2


@pytest.mark.parametrize("params", [
    {"account": "admin"},  # account without domainid
    {"account": "nobody", "domainid": "ROOT"},
    {"domainid": "00000000-0000-0000-0000-000000000000"},
    {"zoneid": "not-a-uuid"},
    {"page": "1"},
    {"pagesize": "100000", "page": "1"},
])
def test_list_routers_bad_input_is_431(world: World, admin: Caller, params: dict[str, str]) -> None:
    if params.get("domainid") == "ROOT":
        params = {**params, "domainid": admin.ok("listDomains")["domain"][0]["id"]}
    status, body = admin.call("listRouters", **params)
    assert status == 431, body


def test_router_commands_are_for_administrators(world: World, user_caller: Caller) -> None:
    _net, _vms, router = _implemented(world, vms=1)
    before = _counts(world.state)
    for command in ("listRouters", *ROUTER_COMMANDS):
        status, body = user_caller.call(command, id=router.id)
        assert status == 401, (command, body)
    assert _counts(world.state) == before


@pytest.mark.parametrize("value", ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "-1", "' OR '1'='1",
                                   "x" * 300])
def test_unknown_router_ids_are_431_and_change_nothing(world: World, admin: Caller, value: str) -> None:
    _implemented(world, vms=1)
    before = _counts(world.state)
    for command in ROUTER_COMMANDS:
        status, body = admin.call(command, id=value)
        assert status == 431, (command, body)
    status, _b = admin.call("startRouter")
    assert status == 431
    assert _counts(world.state) == before


def test_stop_start_reboot_destroy_through_jobs(world: World, admin: Caller) -> None:
    net, _vms, router = _implemented(world)
    world.agents.sent.clear()
    job = _job(admin, "stopRouter", id=router.id)
    assert job["jobstatus"] == 1, job
    assert job["jobresult"]["router"]["state"] == "Stopped" and "hostid" not in job["jobresult"]["router"]
    assert [type(c).__name__ for _h, c in world.agents.sent] == ["StopCommand"]

    status, body = admin.call("rebootRouter", id=router.id)
    assert status == 431 and "not in right state" in body["errortext"]

    world.agents.sent.clear()
    job = _job(admin, "startRouter", id=router.id)
    assert job["jobstatus"] == 1, job
    assert job["jobresult"]["router"]["state"] == "Running"
    assert job["jobresult"]["router"]["hostid"] == world.hosts[0], "restarted on its last host"
    assert [type(c).__name__ for _h, c in world.agents.sent] == ["StartCommand"] + \
        ["DhcpEntryCommand", "VmDataCommand"] * 2

    world.agents.sent.clear()
    job = _job(admin, "rebootRouter", id=router.id)
    assert job["jobstatus"] == 1, job
    assert job["jobresult"]["router"] == admin.ok("listRouters", id=router.id)["router"][0], \
        "a job's router is the router listRouters shows"
    assert [type(c).__name__ for _h, c in world.agents.sent] == \
        ["RebootCommand"] + ["DhcpEntryCommand", "VmDataCommand"] * 2

    world.agents.sent.clear()
    job = _job(admin, "destroyRouter", id=router.id)
    assert job["jobstatus"] == 1, job
    assert job["jobresult"]["router"]["state"] == "Destroyed"
    [(_h, stop)] = world.agents.sent
    assert isinstance(stop, C.StopCommand) and stop.expungeVM
    assert admin.ok("listRouters", listall=True) == {}
    status, _b = admin.call("destroyRouter", id=router.id)
    assert status == 431, "a destroyed router is gone"
    # the network keeps running VMs: restartNetwork brings a new router with their entries
    world.agents.sent.clear()
    job = _job(admin, "restartNetwork", id=net)
    assert job["jobstatus"] == 1 and job["jobresult"] == {"success": True}, job
    [new] = admin.ok("listRouters", networkid=net)["router"]
    assert new["id"] != router.id and new["state"] == "Running"
    assert len(world.agents.of_type(R.DhcpEntryCommand)) == 2
    types = {e["type"] for e in admin.ok("listEvents", listall=True, pagesize=500, page=1)["event"]}
    assert {"ROUTER.STOP", "ROUTER.START", "ROUTER.REBOOT", "ROUTER.DESTROY", "NETWORK.RESTART"} <= types


def test_restart_network_cleanup_replaces_the_router(world: World, admin: Caller) -> None:
    net, _vms, router = _implemented(world)
    job = _job(admin, "restartNetwork", id=net, cleanup=True)
    assert job["jobstatus"] == 1 and job["jobresult"] == {"success": True}, job
    [new] = admin.ok("listRouters", networkid=net)["router"]
    assert new["id"] != router.id
    assert len(world.agents.leases(new["hostid"], new["name"])) == 2


def test_restart_network_access_and_state(world: World, admin: Caller, user_caller: Caller) -> None:
    admins_net, _vms, _router = _implemented(world, vms=1)
    alices_net, _avms, _arouter = _implemented(world, vms=1, name="alices", cidr="10.1.3.0/24", owner="alice")
    idle = world.network("idle", "10.1.4.0/24")
    before = _counts(world.state)
    for caller, params, text in (
            (user_caller, {"id": admins_net}, "entity does not exist"),  # another account's network
            (admin, {"id": idle}, "Correct states are: Implemented"),  # never implemented
            (admin, {"id": "00000000-0000-0000-0000-000000000000"}, "entity does not exist"),
            (admin, {}, "missing parameter id")):
        status, body = caller.call("restartNetwork", **params)
        assert status == 431, (params, body)
        assert text in body["errortext"], body
    assert _counts(world.state) == before
    job = user_caller.wait(user_caller.ok("restartNetwork", id=alices_net)["jobid"])
    assert job["jobstatus"] == 1, job
