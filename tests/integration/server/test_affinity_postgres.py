"""Migration ``0020_affinity`` on SQLite and PostgreSQL: the VMs' group names become instance groups
(one per account and name) that the VMs point at, it builds exactly the models, and it goes down to
``0019_vm_stats`` (the names back on the VMs) and up again; and the affinity and instance group API on
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, inspect, text

from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import Base
from hvcloud.server.errors import INSUFFICIENT_CAPACITY
from hvcloud.server.jobs.handlers import JobFailure
from hvcloud.server.orchestration.vm import manager as vms
from hvcloud.server.state import ServerState
from tests.support.migrations import BACKENDS, alembic, empty_engine
from tests.support.postgres import fresh_pg_database
from tests.support.server_api import Caller, build_zone, ready_template
from tests.support.server_in_process import in_process_server
from tests.unit.server.test_affinity_groups_api import _hosts, _place, _vm


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with empty_engine(request.param, tmp_path) as eng:
        yield eng


def _rows(conn: Connection) -> None:
    """Two accounts with VMs in groups named alike, and a VM in none: written at ``0019_vm_stats``."""
    conn.execute(text("INSERT INTO domain (id, name, path, level, created) "
                      "VALUES ('d', 'ROOT', 'ROOT', 0, CURRENT_TIMESTAMP)"))
    for account in ("a1", "a2"):
        conn.execute(text("INSERT INTO account (id, name, domain_id, account_type, state, created) "
                          "VALUES (:id, :id, 'd', 0, 'enabled', CURRENT_TIMESTAMP)"), {"id": account})
        conn.execute(text("INSERT INTO \"user\" (id, account_id, username, password_hash, firstname, lastname, "
                          "state, created) VALUES (:u, :a, :u, 'x', 'f', 'l', 'enabled', CURRENT_TIMESTAMP)"),
                     {"u": f"u-{account}", "a": account})
    conn.execute(text("INSERT INTO zone (id, name, network_type, dns1, internal_dns1, allocation_state, "
                      "local_storage_enabled, security_groups_enabled, created) VALUES ('z', 'z', 'Advanced', "
                      "'8.8.8.8', '10.0.0.1', 'Enabled', false, false, CURRENT_TIMESTAMP)"))
    conn.execute(text("INSERT INTO service_offering (id, name, display_text, storage_type, provisioning_type, "
                      "offer_ha, limit_cpu_use, is_volatile, is_system, state, created) VALUES ('o', 'o', 'o', "
                      "'shared', 'thin', false, false, false, false, 'Active', CURRENT_TIMESTAMP)"))
    for n, (account, group) in enumerate((("a1", "web"), ("a1", "web"), ("a2", "web"), ("a2", None))):
        conn.execute(text("INSERT INTO vm_instance (id, name, display_name, instance_name, vm_number, account_id, "
                          "user_id, zone_id, service_offering_id, cpu_number, cpu_speed, memory, state, "
                          "state_changed, ha_enabled, display_vm, created, group_name) VALUES (:id, :id, :id, :id, "
                          ":n, :a, :u, 'z', 'o', 1, 500, 512, 'Stopped', CURRENT_TIMESTAMP, false, true, "
                          "CURRENT_TIMESTAMP, :g)"),
                     {"id": f"vm{n}", "n": n, "a": account, "u": f"u-{account}", "g": group})


def test_group_names_become_instance_groups_and_back(engine: Engine) -> None:
    alembic(engine, "upgrade", "0019_vm_stats")
    with engine.begin() as conn:
        _rows(conn)
    alembic(engine, "upgrade", "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        groups = {(r[0], r[1]): r[2] for r in conn.execute(text("SELECT account_id, name, id FROM instance_group"))}
        assert set(groups) == {("a1", "web"), ("a2", "web")}
        vms = dict(conn.execute(text("SELECT id, group_id FROM vm_instance")).all())
        assert vms == {"vm0": groups["a1", "web"], "vm1": groups["a1", "web"], "vm2": groups["a2", "web"],
                       "vm3": None}
        assert set(conn.execute(text("SELECT affinity_group_count FROM vm_instance")).scalars()) == {0}

    alembic(engine, "downgrade", "0019_vm_stats")
    names = set(inspect(engine).get_table_names())
    assert not names & {"instance_group", "affinity_group", "affinity_group_vm_map"}
    with engine.connect() as conn:
        assert dict(conn.execute(text("SELECT id, group_name FROM vm_instance")).all()) == {
            "vm0": "web", "vm1": "web", "vm2": "web", "vm3": None}
    alembic(engine, "upgrade", "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert conn.execute(text("SELECT count(*) FROM instance_group")).scalar() == 2


@pytest.fixture
def pg_admin(tmp_path: Path) -> Iterator[tuple[ServerState, Caller]]:
    with fresh_pg_database() as url:
        config = ServerConfig.build(tmp_path / "data", url, settings={"api.throttling.enabled": "false"})
        with in_process_server(replace(config, manage_agents=False)) as server:
            yield server


def test_affinity_and_instance_groups_on_postgresql(pg_admin: tuple[ServerState, Caller]) -> None:
    """The API on PostgreSQL: a group made by a deploy's ``group`` name (INSERT … ON CONFLICT), the
    groups' FOR UPDATE read in placement, membership changes and the deletes."""
    state, admin = pg_admin
    ids = build_zone(admin)
    with state.sessions.begin() as db:
        template = ready_template(db, ids["zoneid"]).id
    offering = admin.ok("listServiceOfferings", name="Small Instance")["serviceoffering"][0]["id"]
    cloud: dict[str, Any] = {**ids, "template": template, "offering": offering}
    hosts = _hosts(state, cloud, 2)
    spread = admin.wait(admin.ok("createAffinityGroup", name="spread", type="host anti-affinity")["jobid"])
    group_id = spread["jobresult"]["affinitygroup"]["id"]
    members = [_vm(admin, cloud, f"s{i}", affinitygroupids=group_id, group="web") for i in range(3)]
    assert {vm["group"] for vm in members} == {"web"} and len({vm["groupid"] for vm in members}) == 1
    assert admin.ok("listInstanceGroups")["count"] == 1
    assert {_place(state, members[0]["id"]), _place(state, members[1]["id"])} == set(hosts)
    with state.sessions.begin() as db, pytest.raises(JobFailure) as failed:
        vms._place_and_prepare(db, state.box, members[2]["id"], [], True)
    assert failed.value.code == INSUFFICIENT_CAPACITY and "anti-affinity group spread" in failed.value.text
    assert admin.job("updateVMAffinityGroup", id=members[2]["id"])["jobstatus"] == 1
    assert _place(state, members[2]["id"]) in hosts
    assert admin.ok("listVirtualMachines", affinitygroupid=group_id)["count"] == 2
    assert admin.job("deleteAffinityGroup", id=group_id)["jobstatus"] == 1
    assert admin.ok("listVirtualMachines", affinitygroupid=group_id) == {}
    assert admin.ok("deleteInstanceGroup", id=members[0]["groupid"])["success"] == "true"
    assert all("groupid" not in vm for vm in admin.ok("listVirtualMachines")["virtualmachine"])
