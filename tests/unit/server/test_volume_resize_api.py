"""resizeVolume through the API without agents: CloudStack's rules, hostile input, other accounts'
volumes, wrong states, and the pool booking (taken in the request, given back when the job fails)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from hvcloud.server.db.models import Account, DiskOffering, StoragePool, User, VMInstance, Volume
from hvcloud.server.orchestration import planner
from hvcloud.server.state import ServerState
from tests.support.server_api import Caller, build_zone

GiB = 1 << 30


@pytest.fixture
def cloud(state: ServerState, admin: Caller) -> dict[str, Any]:
    """A zone with a 100 GiB pool (no overprovisioning) holding a Ready 10 GiB volume of a customized
    offering and a Ready 5 GiB volume of the fixed "Small" offering, both detached."""
    ids = build_zone(admin)
    custom = admin.ok("listDiskOfferings", name="Custom")["diskoffering"][0]["id"]
    small = admin.ok("listDiskOfferings", name="Small")["diskoffering"][0]
    with state.sessions.begin() as db:
        owner = db.scalars(select(Account).where(Account.name == "admin")).one()
        pool = StoragePool(name="primary", zone_id=ids["zoneid"], pod_id=ids["podid"], cluster_id=ids["clusterid"],
                           scope="CLUSTER", pool_type="Filesystem", host_address="localhost", path="/p",
                           url="file:///p", capacity_bytes=100 * GiB, overprovision_factor="1.0")
        db.add(pool)
        db.flush()
        ready = {}
        for name, size, offering in (("data-custom", 10 * GiB, custom), ("data-small", small["disksize"] * GiB,
                                                                         small["id"])):
            volume = Volume(name=name, account_id=owner.id, zone_id=ids["zoneid"], volume_type="DATADISK",
                            size=size, state="Ready", path=f"{name}.qcow2", disk_offering_id=offering)
            db.add(volume)
            db.flush()
            assert planner.reserve_pool(db, volume, pool)
            ready[name] = volume.id
        pool_id = pool.id
    return {**ids, "custom": custom, "small": small["id"], "pool": pool_id, **ready}


def _volume(state: ServerState, volume_id: str) -> Volume:
    with state.sessions() as db:
        volume = db.get(Volume, volume_id)
        assert volume is not None
        return volume


def _booked_matches_recount(state: ServerState, pool_id: str) -> int:
    with state.sessions() as db:
        pool = db.get(StoragePool, pool_id)
        assert pool is not None
        assert pool.allocated_bytes == planner.recount(db)[1].get(pool_id, 0)
        return pool.allocated_bytes


@pytest.mark.parametrize("params,needle", [
    ({"size": "-1"}, "between 1 and"),
    ({"size": "0"}, "between 1 and"),
    ({"size": "99999999"}, "between 1 and"),
    ({"size": "12abc"}, "size"),
    ({"size": str(2**64)}, "size"),
    ({"size": "1.5"}, "size"),
    ({}, "Give size"),
    ({"size": "4"}, "shrinkok=true"),
    ({"size": "4", "shrinkok": "maybe"}, "shrinkok"),
    ({"diskofferingid": "0b7e3c3e-0000-4000-8000-000000000000"}, "diskofferingid"),
    ({"diskofferingid": "not-a-uuid"}, "diskofferingid"),
])
def test_resize_refuses_hostile_input(state: ServerState, admin: Caller, cloud: dict[str, Any],
                                      params: dict[str, str], needle: str) -> None:
    before = _booked_matches_recount(state, cloud["pool"])
    status, body = admin.call("resizeVolume", id=cloud["data-custom"], **params)
    assert status == 431 and needle in body["errortext"], body
    assert _volume(state, cloud["data-custom"]).state == "Ready"
    assert _volume(state, cloud["data-custom"]).size == 10 * GiB
    assert _booked_matches_recount(state, cloud["pool"]) == before


def test_cloudstack_offering_rules(state: ServerState, admin: Caller, cloud: dict[str, Any]) -> None:
    status, body = admin.call("resizeVolume", id=cloud["data-small"], size="20")
    assert status == 431 and "fixed size" in body["errortext"]
    status, body = admin.call("resizeVolume", id=cloud["data-small"], diskofferingid=cloud["small"], size="20")
    assert status == 431 and "fixed size" in body["errortext"]
    status, body = admin.call("resizeVolume", id=cloud["data-small"], diskofferingid=cloud["custom"])
    assert status == 431 and "customized" in body["errortext"]
    with state.sessions.begin() as db:
        gone = DiskOffering(name="gone", display_text="gone", disk_size_gb=50, state="Inactive")
        db.add(gone)
        db.flush()
        gone_id = gone.id
    status, body = admin.call("resizeVolume", id=cloud["data-small"], diskofferingid=gone_id)
    assert status == 431 and gone_id in body["errortext"]
    bigger = admin.ok("createDiskOffering", name="bigger", displaytext="bigger", disksize=8)["diskoffering"]
    changed = admin.job("resizeVolume", id=cloud["data-small"], diskofferingid=bigger["id"])
    assert changed["jobstatus"] == 2 and "no connected host" in changed["jobresult"]["errortext"]
    assert _volume(state, cloud["data-small"]).disk_offering_id == cloud["small"], "a failed resize keeps the offering"
    with state.sessions.begin() as db:
        root = Volume(name="ROOT-9", account_id=db.scalars(select(Account).where(Account.name == "admin")).one().id,
                      zone_id=cloud["zoneid"], volume_type="ROOT", size=GiB, state="Allocated")
        db.add(root)
        db.flush()
        root_id = root.id
    status, body = admin.call("resizeVolume", id=root_id, diskofferingid=cloud["custom"], size="3")
    assert status == 431 and "ROOT" in body["errortext"]
    grown = admin.job("resizeVolume", id=root_id, size="3")
    assert grown["jobstatus"] == 1 and grown["jobresult"]["volume"]["size"] == 3 * GiB


def test_another_accounts_volume_is_not_found(state: ServerState, admin: Caller, user_caller: Caller,
                                              cloud: dict[str, Any]) -> None:
    status, body = user_caller.call("resizeVolume", id=cloud["data-custom"], size="20")
    assert status == 431 and "entity does not exist" in body["errortext"]
    assert _volume(state, cloud["data-custom"]).size == 10 * GiB


def test_wrong_states_are_refused(state: ServerState, admin: Caller, cloud: dict[str, Any]) -> None:
    with state.sessions.begin() as db:
        volume = db.get(Volume, cloud["data-custom"])
        assert volume is not None
        volume.state = "Destroy"
    status, body = admin.call("resizeVolume", id=cloud["data-custom"], size="20")
    assert status == 431 and "it is Destroy" in body["errortext"]
    with state.sessions.begin() as db:
        volume = db.get(Volume, cloud["data-custom"])
        assert volume is not None
        volume.state = "Ready"
    offering = admin.ok("listServiceOfferings", name="Small Instance")["serviceoffering"][0]
    with state.sessions.begin() as db:
        owner = db.scalars(select(Account).where(Account.name == "admin")).one()
        user = db.scalars(select(User).where(User.username == "admin")).one()
        vm = VMInstance(name="vm1", display_name="vm1", instance_name="i-2-99-VM", vm_number=99,
                        account_id=owner.id, user_id=user.id,
                        zone_id=cloud["zoneid"], service_offering_id=offering["id"], cpu_number=1, cpu_speed=500,
                        memory=512, state="Starting")
        db.add(vm)
        db.flush()
        volume = db.get(Volume, cloud["data-custom"])
        assert volume is not None
        volume.vm_id, volume.device_id = vm.id, 1
        vm_id = vm.id
    status, body = admin.call("resizeVolume", id=cloud["data-custom"], size="20")
    assert status == 431 and "is Starting" in body["errortext"]
    with state.sessions.begin() as db:
        row = db.get(VMInstance, vm_id)
        assert row is not None
        row.state = "Running"
    status, body = admin.call("resizeVolume", id=cloud["data-custom"], size="5", shrinkok="true")
    assert status == 431 and "running; stop it first" in body["errortext"]


def test_growth_is_booked_and_given_back_when_the_job_fails(state: ServerState, admin: Caller,
                                                            cloud: dict[str, Any]) -> None:
    """No host reaches the pool here: the job fails with the reason, the volume is Ready with its
    old size, and the pool holds what a recount says."""
    before = _booked_matches_recount(state, cloud["pool"])
    job = admin.job("resizeVolume", id=cloud["data-custom"], size="30")
    assert job["jobstatus"] == 2 and job["jobresult"]["errorcode"] == 534
    assert "no connected host can reach storage pool primary" in job["jobresult"]["errortext"]
    volume = _volume(state, cloud["data-custom"])
    assert (volume.state, volume.size, volume.allocated_size) == ("Ready", 10 * GiB, 10 * GiB)
    assert _booked_matches_recount(state, cloud["pool"]) == before


def test_growth_beyond_the_pool_is_refused_at_once(state: ServerState, admin: Caller, cloud: dict[str, Any]) -> None:
    before = _booked_matches_recount(state, cloud["pool"])
    status, body = admin.call("resizeVolume", id=cloud["data-custom"], size="96")
    assert status == 533 and body["cserrorcode"] == 4325 and "no room to grow" in body["errortext"]
    volume = _volume(state, cloud["data-custom"])
    assert (volume.state, volume.size) == ("Ready", 10 * GiB)
    assert _booked_matches_recount(state, cloud["pool"]) == before


def test_a_resizing_volume_takes_no_other_operation(state: ServerState, admin: Caller, cloud: dict[str, Any]) -> None:
    with state.sessions.begin() as db:
        volume = db.get(Volume, cloud["data-custom"])
        assert volume is not None
        volume.state = "Resizing"
    for command, params in (("resizeVolume", {"size": "20"}), ("deleteVolume", {}),
                            ("attachVolume", {"virtualmachineid": "0b7e3c3e-0000-4000-8000-000000000000"})):
        status, body = admin.call(command, id=cloud["data-custom"], **params)
        assert status == 431, (command, body)
    assert _volume(state, cloud["data-custom"]).state == "Resizing"


def test_the_job_steps_are_idempotent(state: ServerState, cloud: dict[str, Any]) -> None:
    """What a resumed or rolled-back job runs again changes nothing the second time."""
    from hvcloud.server.orchestration import volumes

    def mark(size: int) -> None:
        with state.sessions.begin() as db:
            volume = db.get(Volume, cloud["data-custom"])
            assert volume is not None
            volume.state = "Resizing"
            assert planner.rebook_pool(db, volume, size)

    before = _booked_matches_recount(state, cloud["pool"])
    mark(30 * GiB)
    for _ in range(2):
        with state.sessions.begin() as db:
            volumes._resized(db, cloud["data-custom"], 30 * GiB, cloud["custom"])
        volume = _volume(state, cloud["data-custom"])
        assert (volume.state, volume.size, volume.allocated_size) == ("Ready", 30 * GiB, 30 * GiB)
    assert _booked_matches_recount(state, cloud["pool"]) == before + 20 * GiB
    mark(40 * GiB)
    for _ in range(2):
        with state.sessions.begin() as db:
            volumes._resize_undone(db, cloud["data-custom"], 30 * GiB)
        volume = _volume(state, cloud["data-custom"])
        assert (volume.state, volume.size, volume.allocated_size) == ("Ready", 30 * GiB, 30 * GiB)
    assert _booked_matches_recount(state, cloud["pool"]) == before + 20 * GiB
