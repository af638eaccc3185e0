"""Migration 0012_vm_nic_columns: the VM's NIC columns go (the nic table holds them since 0010) and
come back from the nic table on downgrade; data survives the round trip."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import inspect, text

from hvcloud.server.db import engine as db_engine
from hvcloud.server.db import migrate
from hvcloud.server.db.models import Account, TemplateStoreRef, VMTemplate
from hvcloud.server.state import ServerState
from tests.support.server_api import Caller, build_zone


def _alembic(state: ServerState, fn: Any, revision: str) -> None:
    eng = db_engine.make_engine(state.config.db_url)
    try:
        cfg = migrate._config()
        with eng.begin() as conn:
            cfg.attributes["connection"] = conn
            fn(cfg, revision)
    finally:
        eng.dispose()


def test_downgrade_restores_the_columns_from_the_nic_table_and_upgrade_drops_them(
        state: ServerState, admin: Caller) -> None:
    ids = build_zone(admin)
    admin.ok("updateZone", id=ids["zoneid"], **{"details[0].key": "guest.network.label",
                                                "details[0].value": "cloudbr-mig"})
    with state.sessions.begin() as db:
        owner = db.query(Account).filter_by(name="admin").one()
        t = VMTemplate(name="t", display_text="t", format="QCOW2", hypervisor="Simulator", account_id=owner.id,
                       is_public=True)
        db.add(t)
        db.flush()
        db.add(TemplateStoreRef(template_id=t.id, zone_id=ids["zoneid"], download_state="DOWNLOADED",
                                install_path="t.qcow2", size=1 << 30))
        template = t.id
    offering = admin.ok("listServiceOfferings", name="Small Instance")["serviceoffering"][0]["id"]
    vms = [admin.job("deployVirtualMachine", serviceofferingid=offering, templateid=template, zoneid=ids["zoneid"],
                     startvm="false")["jobresult"]["virtualmachine"] for _ in range(2)]
    nics = {vm["id"]: vm["nic"][0] for vm in vms}
    _alembic(state, command.downgrade, "0011_keys_userdata")  # below 0012_vm_nic_columns
    eng = db_engine.make_engine(state.config.db_url)
    try:
        with eng.connect() as conn:
            rows = conn.execute(text("SELECT id, mac_address, nic_id, network_label FROM vm_instance")).all()
            assert conn.execute(text("SELECT count(*) FROM nic")).scalar_one() == 2
            assert conn.execute(text("SELECT count(*) FROM volume WHERE vm_id IS NOT NULL")).scalar_one() == 2
        assert {r.id: (r.mac_address, r.nic_id, r.network_label) for r in rows} == {
            vm_id: (nic["macaddress"], nic["id"], "cloudbr-mig") for vm_id, nic in nics.items()}
        _alembic(state, command.upgrade, "head")
        columns = {c["name"] for c in inspect(eng).get_columns("vm_instance")}
        assert not columns & {"mac_address", "nic_id", "network_label"}
        with eng.connect() as conn:
            kept = conn.execute(text("SELECT vm_id, mac_address FROM nic")).all()
            attached = conn.execute(text("SELECT vm_id FROM volume WHERE volume_type = 'ROOT'")).scalars().all()
        assert {r.vm_id: r.mac_address for r in kept} == {k: v["macaddress"] for k, v in nics.items()}, \
            "rebuilding vm_instance on SQLite must not run the ON DELETE actions of its references"
        assert sorted(attached) == sorted(nics), "the volumes stay attached"
    finally:
        eng.dispose()


def test_upgrading_a_sqlite_database_with_vms_keeps_their_nics_and_volumes(state: ServerState,
                                                                            admin: Caller) -> None:
    """Regression: the migrations after 0010 rebuild vm_instance on SQLite (batch mode); with foreign
    keys on, each rebuild's DROP deleted every NIC (ON DELETE CASCADE) and detached every volume (SET
    NULL). ``migrate.upgrade`` runs them with foreign keys off and checks them afterwards."""
    ids = build_zone(admin)
    with state.sessions.begin() as db:
        owner = db.query(Account).filter_by(name="admin").one()
        t = VMTemplate(name="t", display_text="t", format="QCOW2", hypervisor="Simulator", account_id=owner.id,
                       is_public=True)
        db.add(t)
        db.flush()
        db.add(TemplateStoreRef(template_id=t.id, zone_id=ids["zoneid"], download_state="DOWNLOADED",
                                install_path="t.qcow2", size=1 << 30))
        template = t.id
    offering = admin.ok("listServiceOfferings", name="Small Instance")["serviceoffering"][0]["id"]
    vms = [admin.job("deployVirtualMachine", serviceofferingid=offering, templateid=template, zoneid=ids["zoneid"],
                     startvm="false")["jobresult"]["virtualmachine"] for _ in range(2)]
    _alembic(state, command.downgrade, "0010_networks")
    eng = db_engine.make_engine(state.config.db_url)
    try:
        with eng.begin() as conn:  # as a database at 0010 holds them: 0010 copied every VM's NIC
            conn.execute(text("DELETE FROM nic"))
            conn.execute(text(
                "INSERT INTO nic (id, vm_id, network_id, device_id, mac_address, is_default, mode, "
                "reservation_strategy, state, network_label, broadcast_uri, created) SELECT nic_id, id, NULL, 0, "
                "mac_address, 1, 'Dhcp', 'Start', 'Reserved', network_label, 'vlan://untagged', created "
                "FROM vm_instance"))
            conn.execute(text("UPDATE volume SET vm_id = (SELECT v.id FROM vm_instance v WHERE "
                              "'ROOT-' || v.vm_number = volume.name)"))
        migrate.upgrade(eng)
        with eng.connect() as conn:
            nics = dict(conn.execute(text("SELECT vm_id, mac_address FROM nic")).all())
            attached = conn.execute(text("SELECT count(*) FROM volume WHERE vm_id IS NOT NULL")).scalar_one()
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1, "foreign keys are on again"
        assert nics == {vm["id"]: vm["nic"][0]["macaddress"] for vm in vms}
        assert attached == 2
    finally:
        eng.dispose()
