"""listManagementServers and the owner shown by listHosts, through the API (in-process, SQLite)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from hvcloud import __version__
from hvcloud.server.db.models import Host, ManagementServer
from hvcloud.server.jobs import leases, store
from hvcloud.server.state import ServerState
from tests.support.host_lease_db import add_hosts, start_server
from tests.support.server_api import Caller


def test_this_server_is_listed_up(state: ServerState, admin: Caller) -> None:
    listed = admin.ok("listManagementServers")
    assert listed["count"] == 1
    me = listed["managementserver"][0]
    assert me["id"] == state.server_id and me["state"] == "Up" and me["version"] == __version__
    assert me["agentscount"] == 0 and me["pendingjobscount"] == 0
    assert me["lastserverstart"].endswith("+0000") and "lastserverstop" not in me
    assert admin.ok("listManagementServers", id=state.server_id)["count"] == 1
    assert admin.ok("listManagementServers", name=me["name"])["count"] == 1
    assert admin.ok("listManagementServers", id="00000000-0000-4000-8000-000000000000") == {}
    assert admin.ok("listManagementServers", keyword="no-such-server-name") == {}


def test_dead_and_signed_off_servers_are_down_and_own_hosts_are_counted(state: ServerState, admin: Caller) -> None:
    hosts = add_hosts(state.sessions, 3)
    stale = start_server(state.sessions, age=state.config.lease_seconds + 5)  # past its lease, still "Up" in its row
    gone = start_server(state.sessions)
    with state.sessions.begin() as db:
        leases.sign_off(db, gone)
        db.execute(update(Host).where(Host.id.in_(hosts[:2])).values(owner_server_id=stale))
        db.execute(update(Host).where(Host.id == hosts[2]).values(owner_server_id=state.server_id))
    servers = {m["id"]: m for m in admin.ok("listManagementServers", pagesize=-1)["managementserver"]}
    assert servers[stale]["state"] == "Down" and servers[stale]["agentscount"] == 2
    assert servers[gone]["state"] == "Down" and servers[gone]["lastserverstop"].endswith("+0000")
    assert servers[state.server_id]["state"] == "Up" and servers[state.server_id]["agentscount"] == 1
    owners = {h["id"]: h.get("managementserverid") for h in admin.ok("listHosts")["host"]}
    assert owners == {hosts[0]: stale, hosts[1]: stale, hosts[2]: state.server_id}
    with state.sessions.begin() as db:
        db.execute(update(ManagementServer).where(ManagementServer.id == stale)
                   .values(heartbeat=store.precise_now() + timedelta(seconds=1)))
    assert admin.ok("listManagementServers", id=stale)["managementserver"][0]["state"] == "Up"


def test_bad_input_and_users_are_refused(admin: Caller, user_caller: Caller) -> None:
    status, body = user_caller.call("listManagementServers")
    assert status == 401, body
    status, body = admin.call("listManagementServers", id="not-a-uuid")
    assert status == 431 and "id" in body["errortext"]
    status, body = admin.call("listManagementServers", name="x" * 300)
    assert status == 431, body
    status, body = admin.call("listManagementServers", page=1)
    assert status == 431, body
