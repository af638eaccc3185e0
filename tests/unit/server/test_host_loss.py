"""What a lost host does to its VMs and to unfinished cleanups, on a real SQLite database: VMs listed
Unknown (power state PowerUnknown) while their host is away, their real state back from its first
report, disks a rollback could not delete retired (``Expunging``) and planned for the storage cleanup
only on hosts that answer.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server.db.models import AsyncJob, Host, StoragePool, VMInstance, VmPowerReport, Volume, utcnow
from hvcloud.server.orchestration import host_updates, planner, storage_cleanup
from hvcloud.server.orchestration.vm import manager as vms
from hvcloud.server.orchestration.vm import power_sync as P
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm import steps as vm_steps
from hvcloud.server.state import ServerState
from tests.support.server_api import Caller
from tests.unit.server.test_vm_placement import _cloud, _vm

GiB = 1024**3


def _running_on(state: ServerState, host_name: str, number: int, reported: bool = True) -> tuple[str, str]:
    """A VM Running on the named host, with its host's PowerOn report unless not ``reported`` yet;
    (VM id, host id)."""
    with state.sessions.begin() as db:
        host = db.scalars(select(Host).where(Host.name == host_name)).one()
        vm = _vm(db, host.zone_id, number)
        planner.hold_host(db, vm, host)
        vm.host_id = vm.last_host_id = host.id
        vms.set_state(vm, S.RUNNING)
        if reported:
            P.apply_report(db, host.id, {vm.instance_name: P.POWER_ON}, utcnow(), 1.0)
        return vm.id, host.id


def _set_host(state: ServerState, host_id: str, status: str) -> None:
    with state.sessions.begin() as db:
        host = db.get(Host, host_id)
        assert host is not None
        host_updates.set_status(db, host, status, None if status == "Up" else "no answer", utcnow())


def _listed(admin: Caller, **filters: str) -> dict[str, str]:
    return {v["name"]: v["state"] for v in admin.ok("listVirtualMachines", **filters).get("virtualmachine", [])}


def test_vms_on_a_lost_host_are_unknown_until_its_report(state: ServerState, admin: Caller) -> None:
    with state.sessions.begin() as db:
        _cloud(db, hosts=2)
    lost, lost_host = _running_on(state, "h0", 1)
    _kept, _ = _running_on(state, "h1", 2)
    _running_on(state, "h0", 3, reported=False)  # started moments before the host was lost
    assert _listed(admin) == {"vm1": "Running", "vm2": "Running", "vm3": "Running"}

    _set_host(state, lost_host, "Disconnected")
    assert _listed(admin) == {"vm1": "Unknown", "vm2": "Running", "vm3": "Unknown"}
    assert _listed(admin, state="Unknown") == {"vm1": "Unknown", "vm3": "Unknown"}
    assert _listed(admin, state="running") == {"vm2": "Running"}
    assert _listed(admin, id=lost) == {"vm1": "Unknown"}
    with state.sessions() as db:
        assert P.power_state_of(db, "i-2-1-VM") == (lost_host, P.POWER_UNKNOWN)
        assert P.power_state_of(db, "i-2-3-VM") == (lost_host, P.POWER_UNKNOWN)
        stored = db.get(VMInstance, lost)
        assert stored is not None and stored.state == S.RUNNING, "the last real state is kept"
    _set_host(state, lost_host, "Down")
    assert _listed(admin, state="Unknown") == {"vm1": "Unknown", "vm3": "Unknown"}

    _set_host(state, lost_host, "Up")
    assert _listed(admin) == {"vm1": "Running", "vm2": "Running", "vm3": "Running"}
    with state.sessions.begin() as db:  # back: vm1 is reported off, vm3 not at all
        result = P.apply_report(db, lost_host, {"i-2-1-VM": P.POWER_OFF}, utcnow(), 0.0)
        assert [(c.old, c.new) for c in result.changes] == [(P.POWER_UNKNOWN, P.POWER_OFF)]
        assert vms.apply_power_changes(db, result.changes, 0.0) == 1
        again = P.apply_report(db, lost_host, {"i-2-1-VM": P.POWER_OFF}, utcnow(), 0.0)
        assert [(c.instance_name, c.new) for c in again.changes] == [("i-2-3-VM", P.POWER_REPORT_MISSING)]
        assert vms.apply_power_changes(db, again.changes, 0.0) == 1
    assert _listed(admin) == {"vm1": "Stopped", "vm2": "Running", "vm3": "Stopped"}


@pytest.mark.parametrize("hostile", ["%", "_", "Unknown' OR '1'='1", "x" * 5000, "Unk%nown", ""])
def test_state_filter_takes_hostile_values(state: ServerState, admin: Caller, hostile: str) -> None:
    with state.sessions.begin() as db:
        _cloud(db, hosts=1)
    _running_on(state, "h0", 1)
    status, body = admin.call("listVirtualMachines", state=hostile)
    assert status in (200, 431), body
    if status == 200:
        assert all(v["name"] == "vm1" for v in body.get("virtualmachine", []))


def _volume(db: Session, vm_id: str | None, state_: str, pool: StoragePool, host_id: str | None) -> str:
    """A volume of the VM (or, detached, of the VM's account) booked on ``pool`` unless Allocated."""
    account = db.scalars(select(VMInstance.account_id)).first()
    volume = Volume(name="ROOT", account_id=account, zone_id=pool.zone_id, vm_id=vm_id, volume_type="ROOT",
                    device_id=0, size=GiB, state=state_, host_id=host_id)
    db.add(volume)
    db.flush()
    if state_ != S.VOL_ALLOCATED:
        assert planner.reserve_pool(db, volume, pool)
    return str(volume.id)


def test_retired_volumes_keep_their_space_until_deleted(state: ServerState) -> None:
    with state.sessions.begin() as db:
        _cloud(db, hosts=1)
    vm_id, host_id = _running_on(state, "h0", 1)
    with state.sessions.begin() as db:
        pool = db.scalars(select(StoragePool)).one()
        ready = _volume(db, vm_id, S.VOL_READY, pool, host_id)
        never = _volume(db, vm_id, S.VOL_ALLOCATED, pool, None)
    with state.sessions.begin() as db:
        vm_steps.retire_volume(db, ready)
        vm_steps.retire_volume(db, never)
        vm_steps.retire_volume(db, ready)  # twice: a rollback may run again
        vm_steps.retire_volume(db, "no-such-volume")
    with state.sessions() as db:
        r, n = db.get(Volume, ready), db.get(Volume, never)
        assert r is not None and (r.state, r.vm_id, r.device_id, r.allocated_size) == (S.VOL_EXPUNGING, None, None, GiB)
        assert n is not None and (n.state, n.vm_id) == (S.VOL_ALLOCATED, vm_id), "nothing to delete for it"
        _hosts, pools = planner.recount(db)
        booked = db.scalars(select(StoragePool.allocated_bytes)).one()
        assert pools[str(r.pool_id)] == booked == GiB


def test_cleanup_plans_only_for_hosts_that_answer(state: ServerState) -> None:
    with state.sessions.begin() as db:
        _cloud(db, hosts=3)
    running, up = _running_on(state, "h0", 1)
    _, away = _running_on(state, "h1", 2)
    with state.sessions.begin() as db:
        pool = db.scalars(select(StoragePool)).one()
        late = _vm(db, pool.zone_id, 4)
        late.state = S.ERROR  # its start ran after the job gave up: the host reports it on
        P.apply_report(db, up, {"i-2-1-VM": P.POWER_ON, late.instance_name: P.POWER_ON}, utcnow(), 1.0)
        unconfirmed = _vm(db, pool.zone_id, 3)
        unconfirmed.state = S.ERROR  # then a rollback's stop went unanswered
        P.note_unknown(db, up, unconfirmed.instance_name, utcnow())
        busy = _vm(db, pool.zone_id, 5)
        busy.state = S.ERROR
        P.note_unknown(db, up, busy.instance_name, utcnow())
        db.add(AsyncJob(command="deployVirtualMachine", handler="vm.start", params_json="{}",
                        account_id=busy.account_id, user_id=busy.user_id, object_key=f"VirtualMachine:{busy.id}",
                        status=0))
        on_up = _volume(db, None, S.VOL_EXPUNGING, pool, up)
        on_away = _volume(db, None, S.VOL_EXPUNGING, pool, away)
        hostless = _volume(db, None, S.VOL_EXPUNGING, pool, None)
        _volume(db, running, S.VOL_READY, pool, up)
        ids = {"unconfirmed": unconfirmed.instance_name, "late": late.instance_name}
    _set_host(state, away, "Disconnected")
    with state.sessions() as db:
        work = storage_cleanup.plan(db, None)
        owned_elsewhere = storage_cleanup.plan(db, frozenset({away}))
    assert set(work) == {up, None}
    assert sorted(work[up].stops) == sorted([ids["unconfirmed"], ids["late"]])
    assert work[up].volumes == [on_up] and work[None].volumes == [hostless]
    assert on_away not in [v for w in work.values() for v in w.volumes]
    assert set(owned_elsewhere) == {None}, "a server plans for the hosts it drives only"
    with state.sessions() as db:
        assert not db.scalars(select(VmPowerReport).where(VmPowerReport.host_id == away,
                                                          VmPowerReport.power_state == P.POWER_ON)).first()
    with state.sessions.begin() as db:  # a confirmed stop: nothing left to stop there
        for name in work[up].stops:
            P.note_stopped(db, up, name, utcnow())
    with state.sessions() as db:
        assert storage_cleanup.plan(db, None)[up].stops == []


def test_two_deletes_of_one_disk_free_its_space_once(state: ServerState) -> None:
    """A rollback and the storage cleanup may finish the same delete at once; each read the volume
    before the other wrote (SQLite takes no row lock), yet the pool gets the space back once."""
    with state.sessions.begin() as db:
        _cloud(db, hosts=1)
    vm_id, host_id = _running_on(state, "h0", 1)
    with state.sessions.begin() as db:
        pool = db.scalars(select(StoragePool)).one()
        volume_id = _volume(db, None, S.VOL_EXPUNGING, pool, host_id)
        _volume(db, vm_id, S.VOL_READY, pool, host_id)
    first, second = state.sessions(), state.sessions()
    stale = [s.get(Volume, volume_id) for s in (first, second)]
    for session, volume in zip((first, second), stale, strict=True):
        assert volume is not None and volume.allocated_size == GiB
        planner.release_pool(session, volume)
        session.commit()
        session.close()
    with state.sessions() as db:
        _hosts, pools = planner.recount(db)
        assert db.scalars(select(StoragePool.allocated_bytes)).one() == pools[str(pool.id)] == GiB


def test_volumes_on_hosts_away_or_resting_do_not_starve_the_others(state: ServerState) -> None:
    """The cleanup takes the oldest volumes it can work on now: a host that is away with many retired
    disks, or disks whose deletes keep failing, must not keep it from the newer ones of an Up host."""
    with state.sessions.begin() as db:
        _cloud(db, hosts=3)
    _, up = _running_on(state, "h0", 1)
    _, away = _running_on(state, "h1", 2)
    _, other = _running_on(state, "h2", 3)
    with state.sessions.begin() as db:
        pool = db.scalars(select(StoragePool)).one()
        stuck = [_volume(db, None, S.VOL_EXPUNGING, pool, away) for _ in range(5)]
        refused = [_volume(db, None, S.VOL_EXPUNGING, pool, up) for _ in range(3)]
        newer = _volume(db, None, S.VOL_EXPUNGING, pool, up)
        elsewhere = _volume(db, None, S.VOL_EXPUNGING, pool, other)
    _set_host(state, away, "Down")
    with state.sessions() as db:
        assert storage_cleanup.plan(db, None, limit=3)[up].volumes == refused
        work = storage_cleanup.plan(db, None, limit=3, resting=frozenset(refused))
        assert work[up].volumes == [newer] and work[other].volumes == [elsewhere]
        mine = storage_cleanup.plan(db, frozenset({other}), limit=1, resting=frozenset(refused))
        assert set(mine) == {other} and mine[other].volumes == [elsewhere]
    assert not set(stuck) & {v for w in work.values() for v in w.volumes}


def test_a_refused_delete_rests_longer_each_time_and_is_forgotten_once_done() -> None:
    backoff = storage_cleanup.Backoff(interval=60.0)
    assert backoff.failed("v", 0.0) == 1 and backoff.resting(59.0) == {"v"} and backoff.resting(60.0) == set()
    assert backoff.failed("v", 60.0) == 2 and backoff.resting(179.0) == {"v"} and backoff.resting(180.0) == set()
    for _ in range(20):
        backoff.failed("v", 1000.0)
    assert backoff.resting(1000.0 + storage_cleanup.MAX_REST_SECONDS - 1) == {"v"}
    assert backoff.resting(1000.0 + storage_cleanup.MAX_REST_SECONDS) == set()
    backoff.done("v")
    assert backoff.failed("v", 5000.0) == 1, "a volume deleted and failing again starts over"
