"""Migration ``0019_affinity`` on SQLite and PostgreSQL: the VMs' group names become instance groups
(one per account and name) that the VMs point at, it builds exactly the models, and it goes down to
``0018_tags`` (the names back on the VMs) and up again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, inspect, text

from hvcloud.server.db.models import Base
from tests.support.migrations import BACKENDS, alembic, empty_engine


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with empty_engine(request.param, tmp_path) as eng:
        yield eng


def _rows(conn: Connection) -> None:
    """Two accounts with VMs in groups named alike, and a VM in none: written at ``0018_tags``."""
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
    alembic(engine, "upgrade", "0018_tags")
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

    alembic(engine, "downgrade", "0018_tags")
    names = set(inspect(engine).get_table_names())
    assert not names & {"instance_group", "affinity_group", "affinity_group_vm_map"}
    with engine.connect() as conn:
        assert dict(conn.execute(text("SELECT id, group_name FROM vm_instance")).all()) == {
            "vm0": "web", "vm1": "web", "vm2": "web", "vm3": None}
    alembic(engine, "upgrade", "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert conn.execute(text("SELECT count(*) FROM instance_group")).scalar() == 2
