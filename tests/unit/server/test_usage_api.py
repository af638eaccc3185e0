"""Usage records: exact hours from usage events written by the real state changes (their timestamps
set by the test, no sleeping), the periodic job's progress across a restart, the API's validation and
visibility (admins and domain admins; users are refused, as CloudStack's default roles)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from hvcloud.server.db.models import (
    Account,
    TemplateStoreRef,
    UsageEvent,
    UsageJob,
    UsageRecord,
    VMInstance,
    VMTemplate,
    Volume,
)
from hvcloud.server.orchestration import usage
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm.manager import set_state
from hvcloud.server.state import ServerState
from tests.support.server_api import Caller, build_zone

DAY = datetime(2026, 11, 2, tzinfo=UTC)


def at(hour: int, minute: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


@pytest.fixture
def cloud(state: ServerState, admin: Caller) -> dict[str, Any]:
    ids = build_zone(admin)
    with state.sessions.begin() as db:
        owner = db.query(Account).filter_by(name="admin").one()
        template = VMTemplate(name="ready", display_text="ready", format="QCOW2", hypervisor="Simulator",
                              account_id=owner.id, is_public=True)
        db.add(template)
        db.flush()
        db.add(TemplateStoreRef(template_id=template.id, zone_id=ids["zoneid"], download_state="DOWNLOADED",
                                install_path="template/tmpl/2/1/t.qcow2", size=1 << 30))
        template_id = template.id
    offering = admin.ok("listServiceOfferings", name="Small Instance")["serviceoffering"][0]["id"]
    return {**ids, "template": template_id, "offering": offering}


def _deploy(caller: Caller, cloud: dict[str, Any]) -> str:
    vm = caller.ok("deployVirtualMachine", serviceofferingid=cloud["offering"], templateid=cloud["template"],
                   zoneid=cloud["zoneid"], startvm="false")
    return str(vm.get("id") or vm["virtualmachine"]["id"])


def _change(state: ServerState, vm_id: str, *states: str) -> None:
    for new in states:
        with state.sessions.begin() as db:
            vm = db.get(VMInstance, vm_id)
            assert vm is not None
            set_state(vm, new)


def _date(state: ServerState, vm_id: str, times: list[datetime]) -> None:
    """Give the VM's usage events, in the order they were written, these times."""
    with state.sessions.begin() as db:
        events = list(db.scalars(select(UsageEvent).where(UsageEvent.resource_id == vm_id)
                                 .order_by(UsageEvent.seq)))
        assert len(events) == len(times), [e.event_type for e in events]
        for event, when in zip(events, times, strict=True):
            event.created = when
        db.execute(update(Volume).where(Volume.vm_id == vm_id).values(created=at(2)))


def _ran_3h_stopped_1h_ran_2h(state: ServerState, admin: Caller, cloud: dict[str, Any]) -> str:
    """A VM created at 02:00, running 02:00-05:00, stopped 05:00-06:00, running 06:00-08:00, then
    destroyed (the destroy stops it) at 08:00."""
    vm_id = _deploy(admin, cloud)
    _change(state, vm_id, S.STARTING, S.RUNNING, S.STOPPING, S.STOPPED, S.STARTING, S.RUNNING, S.DESTROYED)
    with state.sessions() as db:
        kinds = [e.event_type for e in db.scalars(select(UsageEvent).where(UsageEvent.resource_id == vm_id)
                                                  .order_by(UsageEvent.seq))]
    assert kinds == ["VM.CREATE", "VM.START", "VM.STOP", "VM.START", "VM.STOP", "VM.DESTROY"]
    _date(state, vm_id, [at(2), at(2), at(5), at(6), at(8), at(8)])
    return vm_id


def _by_type(records: list[dict[str, Any]], usage_id: str) -> dict[int, dict[str, Any]]:
    return {r["usagetype"]: r for r in records if r["usageid"] == usage_id}


def test_vm_that_ran_3h_stopped_1h_and_ran_2h(state: ServerState, admin: Caller, cloud: dict[str, Any]) -> None:
    vm_id = _ran_3h_stopped_1h_ran_2h(state, admin, cloud)
    assert admin.ok("generateUsageRecords", startdate="2026-11-02", enddate="2026-11-02") == {"success": "true"}
    records = admin.ok("listUsageRecords", startdate="2026-11-02", enddate="2026-11-02")["usagerecord"]
    vm = _by_type(records, vm_id)
    assert vm[usage.RUNNING_VM]["rawusage"] == "5" and vm[usage.RUNNING_VM]["usage"] == "5 Hrs"
    assert vm[usage.ALLOCATED_VM]["rawusage"] == "6"
    running = vm[usage.RUNNING_VM]
    assert running["virtualmachineid"] == vm_id and running["offeringid"] == cloud["offering"]
    assert running["templateid"] == cloud["template"] and running["account"] == "admin"
    assert running["startdate"] == "2026-11-02T00:00:00+0000" and running["enddate"] == "2026-11-02T23:59:59+0000"
    with state.sessions() as db:
        root = db.scalar(select(Volume).where(Volume.vm_id == vm_id))
        assert root is not None
        root_id, size = root.id, root.size
    volume = _by_type(records, root_id)[usage.VOLUME]
    assert volume["rawusage"] == "22" and volume["size"] == size
    # the same period again replaces its records: no double count
    admin.ok("generateUsageRecords", startdate="2026-11-02", enddate="2026-11-02 23:00:00")
    again = admin.ok("listUsageRecords", startdate="2026-11-02", enddate="2026-11-02")["usagerecord"]
    assert sorted((r["usagetype"], r["usageid"], r["rawusage"]) for r in again) == \
        sorted((r["usagetype"], r["usageid"], r["rawusage"]) for r in records)
    # the day after: the VM is gone, only its volume is charged (24 h)
    admin.ok("generateUsageRecords", startdate="2026-11-03", enddate="2026-11-03")
    next_day = admin.ok("listUsageRecords", startdate="2026-11-03", enddate="2026-11-03")["usagerecord"]
    assert {r["usagetype"] for r in next_day if r["usageid"] in (vm_id, root_id)} == {usage.VOLUME}
    assert _by_type(next_day, root_id)[usage.VOLUME]["rawusage"] == "24"
    # filters: type, usageid (with type), account
    only = admin.ok("listUsageRecords", startdate="2026-11-02", enddate="2026-11-02", type=1, usageid=vm_id)
    assert [r["rawusage"] for r in only["usagerecord"]] == ["5"]
    assert admin.ok("listUsageRecords", startdate="2026-11-02", enddate="2026-11-02", type=3) == {}


def test_hourly_periods_and_progress_survive_a_restart(state: ServerState, admin: Caller,
                                                       cloud: dict[str, Any]) -> None:
    vm_id = _ran_3h_stopped_1h_ran_2h(state, admin, cloud)
    with state.sessions.begin() as db:
        assert usage.aggregate_due(db, 60, now=at(0)) == 0  # the first run only sets the mark
    with state.sessions.begin() as db:
        usage.aggregate_due(db, 60, now=at(4, 30))  # 00:00-04:00 closed
        assert db.get(UsageJob, 1).aggregated_until == at(4)  # type: ignore[union-attr]
    reopened = ServerState.open(replace(state.config, manage_agents=False))
    try:
        with reopened.sessions.begin() as db:
            usage.aggregate_due(db, 60, now=at(23, 59))  # 04:00-23:00 closed, after the restart
            usage.aggregate_due(db, 60, now=at(23, 59))  # nothing new: no double count
        with reopened.sessions() as db:
            rows = list(db.scalars(select(UsageRecord).where(UsageRecord.usage_id == vm_id)))
            assert db.get(UsageJob, 1).aggregated_until == at(23)  # type: ignore[union-attr]
    finally:
        reopened.close()
    running = sorted((r.start_date.hour, r.raw_usage) for r in rows if r.usage_type == usage.RUNNING_VM)
    assert running == [(2, 1.0), (3, 1.0), (4, 1.0), (6, 1.0), (7, 1.0)]
    assert sum(r.raw_usage for r in rows if r.usage_type == usage.ALLOCATED_VM) == 6.0
    listed = admin.ok("listUsageRecords", startdate="2026-11-02 02:00:00", enddate="2026-11-02 04:59:59",
                      type=1, usageid=vm_id)
    assert listed["count"] == 3 and listed["usagerecord"][0]["enddate"] == "2026-11-02T02:59:59+0000"


def test_partial_hours_and_running_events_of_every_state(state: ServerState, admin: Caller,
                                                         cloud: dict[str, Any]) -> None:
    vm_id = _deploy(admin, cloud)
    _change(state, vm_id, S.STARTING, S.RUNNING, S.STOPPING, S.RUNNING, S.ERROR)  # Stopping still runs
    _date(state, vm_id, [at(1), at(1, 20), at(1, 40)])
    admin.ok("generateUsageRecords", startdate="2026-11-02", enddate="2026-11-02")
    vm = _by_type(admin.ok("listUsageRecords", startdate="2026-11-02", enddate="2026-11-02")["usagerecord"], vm_id)
    assert vm[usage.RUNNING_VM]["rawusage"] == "0.333333"
    assert vm[usage.ALLOCATED_VM]["rawusage"] == "23"  # an Error VM is still allocated


def test_list_usage_types(admin: Caller) -> None:
    types = admin.ok("listUsageTypes")["usagetype"]
    assert {"usagetypeid": 1, "name": "RUNNING_VM", "description": "Running Vm Usage"} in types
    assert [t["usagetypeid"] for t in types][:8] == [1, 2, 3, 4, 5, 6, 7, 8]


@pytest.mark.parametrize("params", [
    {}, {"startdate": "2026-11-02"}, {"enddate": "2026-11-02"},
    {"startdate": "2026-11-03", "enddate": "2026-11-02"},
    {"startdate": "yesterday", "enddate": "2026-11-02"},
    {"startdate": "2026-11-02'; DROP TABLE usage_record;--", "enddate": "2026-11-02"},
    {"startdate": "2026-11-02", "enddate": "2026-11-02", "type": "999"},
    {"startdate": "2026-11-02", "enddate": "2026-11-02", "type": "x"},
    {"startdate": "2026-11-02", "enddate": "2026-11-02", "usageid": "0b7e3c3e-0000-4000-8000-000000000000"},
    {"startdate": "2026-11-02", "enddate": "2026-11-02", "usageid": "\u00e9" * 40, "type": "1"},
    {"startdate": "2026-11-02", "enddate": "2026-11-02", "accountid": "0b7e3c3e-0000-4000-8000-000000000000"},
])
def test_list_usage_records_refuses_bad_input(admin: Caller, params: dict[str, str]) -> None:
    status, body = admin.call("listUsageRecords", **params)
    assert status == 431, body


def test_generate_refuses_bad_ranges(admin: Caller) -> None:
    assert admin.call("generateUsageRecords", startdate="2026-11-03", enddate="2026-11-02")[0] == 431
    assert admin.call("generateUsageRecords", startdate="1990-01-01", enddate="2026-11-02")[0] == 431
    assert admin.call("generateUsageRecords", startdate="2026-11-02")[0] == 431
    # a range in the future has no closed period: nothing to do, no error
    assert admin.ok("generateUsageRecords", startdate="2099-01-01", enddate="2099-01-01") == {"success": "true"}


def test_users_are_refused_and_domain_admins_see_their_subtree(state: ServerState, admin: Caller,
                                                             user_caller: Caller, cloud: dict[str, Any]) -> None:
    vm_id = _ran_3h_stopped_1h_ran_2h(state, admin, cloud)
    admin.ok("generateUsageRecords", startdate="2026-11-02", enddate="2026-11-02")
    for name, params in (("listUsageRecords", {"startdate": "2026-11-02", "enddate": "2026-11-02"}),
                         ("listUsageTypes", {}),
                         ("generateUsageRecords", {"startdate": "2026-11-02", "enddate": "2026-11-02"})):
        assert user_caller.call(name, **params)[0] in (401, 432), name
    sub = admin.ok("createDomain", name="sub")["domain"]
    account = admin.ok("createAccount", username="dadmin", password="s3cret-pw", firstname="D", lastname="A",
                       accounttype=2, domainid=sub["id"])["account"]
    keys = admin.ok("registerUserKeys", id=account["user"][0]["id"])["userkeys"]
    dadmin = Caller(admin.http, keys["apikey"], keys["secretkey"])
    seen = dadmin.ok("listUsageRecords", startdate="2026-11-02", enddate="2026-11-02")
    assert seen == {}  # the admin account's VM is outside its subtree
    with state.sessions() as db:
        root_account = db.scalar(select(Account.id).where(Account.name == "admin"))
    status, _ = dadmin.call("listUsageRecords", startdate="2026-11-02", enddate="2026-11-02", accountid=root_account)
    assert status == 531
    assert dadmin.call("generateUsageRecords", startdate="2026-11-02", enddate="2026-11-02")[0] in (401, 432)
    mine = admin.ok("listUsageRecords", startdate="2026-11-02", enddate="2026-11-02", accountid=root_account)
    assert vm_id in {r["usageid"] for r in mine["usagerecord"]}
