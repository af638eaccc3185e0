"""Placement, capacity accounting, power sync and the VM's wire shape, on a real SQLite database.

Hosts are rows here (no agents); the end-to-end tests drive real agents.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.agent import translate
from hvcloud.server.db.models import (
    Account,
    AsyncJob,
    Cluster,
    Host,
    Nic,
    Pod,
    ServiceOffering,
    StoragePool,
    User,
    VMInstance,
    Volume,
    Zone,
    utcnow,
)
from hvcloud.server.orchestration import planner
from hvcloud.server.orchestration.networks import nics
from hvcloud.server.orchestration.vm import manager as vms
from hvcloud.server.orchestration.vm import power_sync as P
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm import steps as vm_steps
from hvcloud.server.orchestration.vm import wire as vm_wire
from hvcloud.server.state import ServerState
from hvcloud.storage.simulated import SimulatedStorage

GiB = 1024**3


def _cloud(db: Session, hosts: int = 2, *, memory: int = 8 * GiB, cluster_mem: str = "1.0") -> dict[str, str]:
    zone = Zone(name="z", network_type="Advanced", dns1="8.8.8.8", internal_dns1="10.0.0.1",
                allocation_state="Enabled")
    db.add(zone)
    db.flush()
    pod = Pod(zone_id=zone.id, name="p")
    db.add(pod)
    db.flush()
    cluster = Cluster(zone_id=zone.id, pod_id=pod.id, name="c", hypervisor="Simulator", memory_overcommit=cluster_mem)
    db.add(cluster)
    db.flush()
    for i in range(hosts):
        db.add(Host(name=f"h{i}", guid=f"g{i}", zone_id=zone.id, pod_id=pod.id, cluster_id=cluster.id, status="Up",
                    hypervisor="Simulator", url=f"http://10.0.0.{i + 1}", cpu_number=4, cpu_speed=1000,
                    memory_total=memory, host_tags="ssd" if i == 0 else None))
    db.add(StoragePool(name="pool", zone_id=zone.id, pod_id=pod.id, cluster_id=cluster.id, scope="CLUSTER",
                       pool_type="Filesystem", host_address="localhost", path="/primary", url="file:///primary",
                       capacity_bytes=100 * GiB, overprovision_factor="1.0"))
    db.flush()
    return {"zone": zone.id, "cluster": cluster.id}


def _vm(db: Session, zone_id: str, number: int, *, memory_mb: int = 1024, tags: str | None = None) -> VMInstance:
    admin = db.scalars(select(User).where(User.username == "admin")).one()
    offering = ServiceOffering(name=f"o{number}", display_text="o", cpu_number=1, cpu_speed=500, memory=memory_mb,
                               host_tags=tags)
    db.add(offering)
    db.flush()
    vm = VMInstance(name=f"vm{number}", display_name=f"vm{number}", instance_name=f"i-2-{number}-VM",
                    vm_number=number, account_id=admin.account_id, user_id=admin.id, zone_id=zone_id,
                    service_offering_id=offering.id, cpu_number=1, cpu_speed=500, memory=memory_mb,
                    state=S.STOPPED)
    vm.service_offering = offering
    db.add(vm)
    db.flush()
    return vm


@pytest.fixture
def db_state(state: ServerState) -> ServerState:
    return state


def test_concurrent_reservations_never_overbook(state: ServerState) -> None:
    with state.sessions.begin() as db:
        ids = _cloud(db, hosts=1, memory=7 * GiB)
        vm_ids = [_vm(db, ids["zone"], n).id for n in range(1, 21)]
    booked: list[str] = []
    lock = threading.Lock()

    def place(vm_id: str) -> None:
        with state.sessions.begin() as db:
            vm = db.get(VMInstance, vm_id)
            assert vm is not None
            try:
                planner.choose(db, vm)
            except planner.PlacementError:
                return
        with lock:
            booked.append(vm_id)

    threads = [threading.Thread(target=place, args=(v,)) for v in vm_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(booked) == 7, "7 GiB of memory holds exactly seven 1 GiB VMs"
    with state.sessions.begin() as db:
        host = db.scalars(select(Host)).one()
        hosts, _ = planner.recount(db)
        assert (host.cpu_allocated, host.memory_allocated) == hosts[host.id] == (7 * 500, 7 * GiB)
        for vm_id in booked:
            vm = db.get(VMInstance, vm_id)
            assert vm is not None
            planner.release_host(db, vm)
            planner.release_host(db, vm)  # idempotent
    with state.sessions() as db:
        assert db.scalars(select(Host)).one().memory_allocated == 0


def test_overcommit_tags_and_state_filters(state: ServerState) -> None:
    with state.sessions.begin() as db:
        ids = _cloud(db, hosts=2, memory=4 * GiB, cluster_mem="2.0")
        big = [_vm(db, ids["zone"], n, memory_mb=3072) for n in range(1, 6)]
        placed = [planner.choose(db, vm)[0].name for vm in big[:4]]
        assert sorted(placed) == ["h0", "h0", "h1", "h1"], "2.0 overcommit: 8 GiB per 4 GiB host"
        with pytest.raises(planner.PlacementError):
            planner.choose(db, big[4])
        tagged = _vm(db, ids["zone"], 10, memory_mb=64, tags="ssd")
        assert planner.choose(db, tagged)[0].name == "h0"
        for host in db.scalars(select(Host)):
            host.resource_state = "Maintenance"
        with pytest.raises(planner.PlacementError) as exc:
            planner.choose(db, _vm(db, ids["zone"], 11, memory_mb=64))
        assert "no host" in exc.value.text


def test_zone_factor_applies_when_the_cluster_keeps_the_default() -> None:
    zone = Zone(name="z", network_type="Advanced", dns1="1.1.1.1", internal_dns1="1.1.1.1",
                details_json=json.dumps({"cpu.overprovisioning.factor": "3", "mem.overprovisioning.factor": "oops"}))
    cluster = Cluster(name="c", hypervisor="KVM", cpu_overcommit="1.0", memory_overcommit="1.5")
    assert planner.factors(cluster, zone) == (3.0, 1.5)
    assert planner.factors(None, zone) == (3.0, 1.0)


def test_pool_capacity_and_release(state: ServerState) -> None:
    with state.sessions.begin() as db:
        ids = _cloud(db, hosts=1)
        pool = db.scalars(select(StoragePool)).one()
        admin = db.scalars(select(Account).where(Account.name == "admin")).one()
        volumes = [Volume(name=f"v{i}", account_id=admin.id, zone_id=ids["zone"], volume_type="DATADISK",
                          size=40 * GiB) for i in range(3)]
        db.add_all(volumes)
        db.flush()
        assert [planner.reserve_pool(db, v, pool) for v in volumes] == [True, True, False]
        db.refresh(pool)
        assert pool.allocated_bytes == 80 * GiB == planner.recount(db)[1][pool.id]
        planner.release_pool(db, volumes[0])
        db.flush()
        db.refresh(pool)
        assert pool.allocated_bytes == 40 * GiB


def test_state_rules() -> None:
    S.check("start", S.STOPPED, "vm")
    for op, state in (("start", S.RUNNING), ("reboot", S.STOPPED), ("recover", S.RUNNING), ("scale", S.RUNNING)):
        with pytest.raises(S.InvalidState):
            S.check(op, state, "vm")


def test_power_changes_move_vms(state: ServerState) -> None:
    with state.sessions.begin() as db:
        ids = _cloud(db, hosts=1)
        host = db.scalars(select(Host)).one()
        running, stopped, busy = (_vm(db, ids["zone"], n) for n in (1, 2, 3))
        for vm in (running, busy):
            assert planner.reserve_host(db, vm, host, planner.Need.of(vm))
            vm.host_id, vm.state = host.id, S.RUNNING
            vm.state_changed = utcnow() - timedelta(seconds=60)
        stopped.state_changed = utcnow() - timedelta(seconds=60)
        admin = db.scalars(select(User).where(User.username == "admin")).one()
        db.add(AsyncJob(account_id=admin.account_id, user_id=admin.id, command="stopVirtualMachine", status=0,
                        object_key=f"VirtualMachine:{busy.id}", phase="running"))
        db.flush()
        changes = [P.PowerChange(host.id, running.instance_name, P.POWER_ON, P.POWER_OFF),
                   P.PowerChange(host.id, busy.instance_name, P.POWER_ON, P.POWER_REPORT_MISSING),
                   P.PowerChange(host.id, stopped.instance_name, None, P.POWER_ON),
                   P.PowerChange(host.id, "i-9-9-VM", None, P.POWER_ON)]
        assert vms.apply_power_changes(db, changes, 1.0) == 2
        assert running.state == S.STOPPED and running.capacity_host_id is None and running.state_reason
        assert busy.state == S.RUNNING, "a VM with a job in flight is left to its job"
        assert stopped.state == S.RUNNING and stopped.capacity_host_id == host.id
        db.flush()
        hosts, _ = planner.recount(db)
        db.refresh(host)
        assert (host.cpu_allocated, host.memory_allocated) == hosts[host.id]


def test_a_report_requested_before_a_state_change_does_not_undo_it(state: ServerState) -> None:
    """Regression (fault scenario: server SIGKILLed during 100 deploys): a ping whose VM report was
    requested before a resumed start finished, but written later than the grace period under load,
    stopped the freshly started VM as "powered off behind the cloud"."""
    with state.sessions.begin() as db:
        ids = _cloud(db, hosts=1)
        host = db.scalars(select(Host)).one()
        vm = _vm(db, ids["zone"], 1)
        assert planner.reserve_host(db, vm, host, planner.Need.of(vm))
        vm.host_id, vm.state = host.id, S.RUNNING
        vm.state_changed = utcnow() - timedelta(seconds=30)
        db.flush()
        stale = [P.PowerChange(host.id, vm.instance_name, None, P.POWER_OFF, utcnow() - timedelta(seconds=40))]
        assert vms.apply_power_changes(db, stale, 1.0) == 0
        assert vm.state == S.RUNNING and vm.host_id == host.id
        fresh = [P.PowerChange(host.id, vm.instance_name, None, P.POWER_OFF, utcnow())]
        assert vms.apply_power_changes(db, fresh, 1.0) == 1
        assert vm.state == S.STOPPED


def test_vm_to_is_what_the_agent_reads(state: ServerState, tmp_path: Path) -> None:
    """The server's StartCommand VM translates on the agent side into the intended VM spec."""
    with state.sessions.begin() as db:
        ids = _cloud(db, hosts=1)
        vm = _vm(db, ids["zone"], 7, memory_mb=512)
        db.add(Nic(vm_id=vm.id, mac_address=vm_wire.mac_for(7), network_label="cloudbr-guest",
                   broadcast_uri="vlan://untagged"))
        pool = db.scalars(select(StoragePool)).one()
        root = Volume(name="ROOT-7", account_id=vm.account_id, zone_id=ids["zone"], vm_id=vm.id, volume_type="ROOT",
                      device_id=0, size=GiB, state=S.VOL_READY, pool_id=pool.id, path="root-7.qcow2")
        data = Volume(name="DATA-7", account_id=vm.account_id, zone_id=ids["zone"], vm_id=vm.id,
                      volume_type="DATADISK", device_id=1, size=GiB, state=S.VOL_READY, pool_id=pool.id,
                      path="data-7.qcow2")
        db.add_all([root, data])
        db.flush()
        to = vm_wire.vm_to(vm, vm_steps.vm_disks(db, vm, state.box), "secret1", nics.nic_tos(db, vm, "Simulator"))
    wire = json.loads(json.dumps(to.to_json_obj()))
    spec = translate.vm_spec(type(to).model_validate(wire), SimulatedStorage(tmp_path))
    assert spec.name == "i-2-7-VM" and spec.memory_mib == 512 and spec.vcpus == 1
    assert [d.path for d in spec.disks if d.device == "disk"] == ["/primary/root-7.qcow2", "/primary/data-7.qcow2"]
    assert [d.slot for d in spec.disks] == [0, 1, 3] and spec.disks[0].boot
    assert spec.nics[0].network == "cloudbr-guest" and spec.nics[0].mac == "02:00:00:00:00:07"


def test_template_checksum_and_resize_command_are_what_the_agent_reads(state: ServerState) -> None:
    """The agent verifies a template copy against the checksum it was registered with, and finds a
    volume to resize in the pool the server names."""
    from hvcloud.server.db.models import ImageStore, VMTemplate
    from hvcloud.wire import commands as C

    with state.sessions.begin() as db:
        ids = _cloud(db, hosts=1)
        admin = db.scalars(select(Account).where(Account.name == "admin")).one()
        template = VMTemplate(name="t", display_text="t", format="QCOW2", account_id=admin.id,
                              checksum="{SHA-256}" + "ab" * 32)
        store = ImageStore(name="s", zone_id=ids["zone"], provider="NFS", protocol="nfs", url="file:///images",
                           scope="ZONE")
        db.add_all([template, store])
        db.flush()
        to = vm_wire.template_on_store_to(template, store, "template/tmpl/2/1/t.qcow2", state.box)
        pool = db.scalars(select(StoragePool)).one()
        cmd = C.ResizeVolumeCommand(path="data-7.qcow2", pool=vm_wire.filer_to(pool), newSize=2 * GiB)
    image = translate.template_on_store(type(to).model_validate(json.loads(json.dumps(to.to_json_obj()))))
    assert image.checksum == "{SHA-256}" + "ab" * 32 and image.store.kind == "local"
    wire = C.ResizeVolumeCommand.model_validate(json.loads(json.dumps(cmd.to_json_obj())))
    volume = translate.volume_at(wire.pool, wire.path)
    assert (volume.pool.uuid, volume.pool.path, volume.pool.pool_type) == (pool.id, "/primary", "Filesystem")
    assert (volume.path, volume.format) == ("data-7.qcow2", "qcow2")


def test_macs_are_unique_and_locally_administered() -> None:
    macs = {vm_wire.mac_for(n) for n in range(1, 5000)} | {vm_wire.mac_for(1, attempt) for attempt in (1, 2)}
    assert len(macs) == 5001
    assert all(int(m.split(":")[0], 16) & 0b10 and not int(m.split(":")[0], 16) & 1 for m in macs)
