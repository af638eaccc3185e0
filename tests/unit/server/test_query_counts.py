"""Statements per request stay flat as the cloud grows: a page of VMs or volumes, a placement among
hosts and a deploy submission issue the same number of SQL statements for 2 rows as for 40. These
count statements (an SQLAlchemy event), never time: an N+1 query pattern fails here, on any machine.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from hvcloud.server.api import commands
from hvcloud.server.api.endpoint import process
from hvcloud.server.api.params import RequestParams
from hvcloud.server.api.registry import REGISTRY
from hvcloud.server.api.signature import compute_signature
from hvcloud.server.db.engine import is_write
from hvcloud.server.db.models import (
    Account,
    AsyncJob,
    Cluster,
    DiskOffering,
    Host,
    ImageStore,
    Nic,
    Pod,
    ResourceTag,
    ServiceOffering,
    StoragePool,
    TemplatePoolRef,
    TemplateStoreRef,
    User,
    VMInstance,
    VMTemplate,
    Volume,
    Zone,
)
from hvcloud.server.jobs import store
from hvcloud.server.jobs.handlers import JobContext
from hvcloud.server.orchestration import planner
from hvcloud.server.orchestration.vm import manager as vms
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm import steps as vm_steps
from hvcloud.server.orchestration.vm import wire as vm_wire
from hvcloud.server.state import ServerState
from hvcloud.server.views.vms import vm_view
from tests.support.server_api import keys_of

GiB = 1024**3
#: VM numbers of the rows inserted here, clear of those the API hands out
ROW_NUMBERS = 50_000


@contextmanager
def counted(state: ServerState) -> Iterator[list[str]]:
    """The statements this thread sends to the database inside the block."""
    me = threading.get_ident()
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.get_ident() == me:
            seen.append(statement)

    event.listen(state.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(state.engine, "before_cursor_execute", note)


class Cloud:
    """Rows for a zone with hosts, VMs (on distinct hosts, from distinct templates, some with a data
    disk and an ISO, in two accounts) and their volumes: no agents."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.vms = 0
        with state.sessions.begin() as db:
            self.admin = db.scalars(select(User).where(User.username == "admin")).one()
            self.other = Account(name="other", domain_id=self.admin.account.domain_id, account_type=0)
            zone = Zone(name="z", network_type="Advanced", dns1="8.8.8.8", internal_dns1="10.0.0.1",
                        allocation_state="Enabled")
            db.add_all([self.other, zone])
            db.flush()
            pod = Pod(zone_id=zone.id, name="p")
            db.add(pod)
            db.flush()
            cluster = Cluster(zone_id=zone.id, pod_id=pod.id, name="c", hypervisor="Simulator")
            db.add(cluster)
            db.flush()
            pool = StoragePool(name="pool", zone_id=zone.id, pod_id=pod.id, cluster_id=cluster.id, scope="CLUSTER",
                               pool_type="Filesystem", host_address="localhost", path="/primary",
                               url="file:///primary", capacity_bytes=1 << 50)
            store = ImageStore(name="s", zone_id=zone.id, provider="NFS", protocol="nfs", url="file:///s",
                               scope="ZONE")
            offering = ServiceOffering(name="o", display_text="o", cpu_number=1, cpu_speed=100, memory=128)
            disk = DiskOffering(name="d", display_text="d", disk_size_gb=1)
            db.add_all([pool, store, offering, disk])
            db.flush()
            self.ids = {"zone": zone.id, "pod": pod.id, "cluster": cluster.id, "pool": pool.id, "store": store.id,
                        "offering": offering.id, "disk": disk.id, "domain": self.other.domain_id}
        self.add_hosts(1)
        self.template = self.add_template(iso=False)

    def add_hosts(self, count: int) -> list[str]:
        with self.state.sessions.begin() as db:
            start = db.scalar(select(Host.id).limit(1)) is not None and len(list(db.scalars(select(Host.id))))
            hosts = [Host(name=f"h{start + i}", guid=f"g{start + i}", zone_id=self.ids["zone"], pod_id=self.ids["pod"],
                          cluster_id=self.ids["cluster"], status="Up", hypervisor="Simulator",
                          url=f"http://127.9.{(start + i) // 250}.{(start + i) % 250 + 1}:9", cpu_number=8,
                          cpu_speed=2000, memory_total=64 * GiB) for i in range(count)]
            db.add_all(hosts)
            db.flush()
            return [h.id for h in hosts]

    def add_template(self, *, iso: bool) -> str:
        with self.state.sessions.begin() as db:
            t = VMTemplate(name=f"t{self.vms}", display_text="t", format="ISO" if iso else "QCOW2", is_iso=iso,
                           hypervisor="Simulator", account_id=self.admin.account_id, is_public=True)
            db.add(t)
            db.flush()
            db.add(TemplateStoreRef(template_id=t.id, zone_id=self.ids["zone"], store_id=self.ids["store"],
                                    download_state="DOWNLOADED", install_path=f"template/{t.id}.qcow2", size=GiB))
            return t.id

    def add_vms(self, count: int) -> None:
        """VMs running on hosts of their own, each from a template of its own; every other one with
        a data disk, an ISO and in the second account."""
        hosts = self.add_hosts(count)
        for host_id in hosts:
            template, iso = self.add_template(iso=False), self.add_template(iso=True)
            self.vms += 1
            n = self.vms
            number = ROW_NUMBERS + n
            with self.state.sessions.begin() as db:
                odd = n % 2 == 1
                vm = VMInstance(name=f"vm{n}", display_name=f"vm{n}", instance_name=f"i-2-{number}-VM",
                                vm_number=number,
                                account_id=self.other.id if odd else self.admin.account_id, user_id=self.admin.id,
                                zone_id=self.ids["zone"], host_id=host_id, template_id=template,
                                iso_id=iso if odd else None, service_offering_id=self.ids["offering"], cpu_number=1,
                                cpu_speed=100, memory=128, state=S.RUNNING)
                db.add(vm)
                db.flush()
                db.add(Nic(vm_id=vm.id, mac_address=vm_wire.mac_for(number), network_label="guest"))
                db.add_all([ResourceTag(key=key, value=f"{key}{n}", resource_type="UserVm", resource_id=vm.id,
                                        account_id=vm.account_id, domain_id=self.ids["domain"])
                            for key in ("role", "tier")])
                db.add(Volume(name=f"ROOT-{n}", account_id=vm.account_id, zone_id=self.ids["zone"], vm_id=vm.id,
                              volume_type="ROOT", device_id=0, size=GiB, state="Ready", pool_id=self.ids["pool"],
                              path=f"{n}.qcow2", template_id=template))
                if odd:
                    db.add(Volume(name=f"DATA-{n}", account_id=vm.account_id, zone_id=self.ids["zone"], vm_id=vm.id,
                                  volume_type="DATADISK", device_id=1, size=GiB, state="Ready",
                                  pool_id=self.ids["pool"], path=f"d{n}.qcow2", disk_offering_id=self.ids["disk"]))


@pytest.fixture
def api(state: ServerState) -> Callable[..., dict[str, Any]]:
    commands.load()
    apikey, secret = keys_of(state, "admin")

    def call(command: str, **params: Any) -> dict[str, Any]:
        pairs = {"apiKey": apikey, "command": command, "response": "json", **{k: str(v) for k, v in params.items()}}
        pairs["signature"] = compute_signature(list(pairs.items()), secret)
        outcome = process(state, REGISTRY, "GET", RequestParams.from_pairs(list(pairs.items())), {})
        assert outcome.status == 200, outcome.body
        return outcome.body

    return call


def _statements(state: ServerState, fn: Callable[[], Any]) -> tuple[int, Any]:
    with counted(state) as seen:
        out = fn()
    return len(seen), out


def test_a_page_of_vms_costs_the_same_statements_for_2_or_40(state: ServerState,
                                                               api: Callable[..., dict[str, Any]]) -> None:
    cloud = Cloud(state)
    cloud.add_vms(2)
    small, page = _statements(state, lambda: api("listVirtualMachines", listall="true", page=1, pagesize=500))
    assert page["count"] == 2
    cloud.add_vms(38)
    large, page = _statements(state, lambda: api("listVirtualMachines", listall="true", page=1, pagesize=500))
    assert page["count"] == 40 and len(page["virtualmachine"]) == 40
    assert small == large <= 8, f"(one each for the VMs' security groups and tags) {small} statements for 2 VMs, " \
        f"{large} for 40"
    first, second = page["virtualmachine"][0], page["virtualmachine"][1]
    assert first["name"] == "vm1" and first["hostname"] and first["templatename"] and first["isoname"]
    assert first["diskofferingid"] == cloud.ids["disk"] and first["account"] == "other"
    assert "isoname" not in second and "diskofferingid" not in second and second["account"] == "admin"
    assert first["domain"] == "ROOT" and first["serviceofferingname"] == "o" and first["zonename"] == "z"
    assert [(t["key"], t["value"]) for t in first["tags"]] == [("role", "role1"), ("tier", "tier1")]
    only_mine, page = _statements(state, lambda: api("listVirtualMachines", page=2, pagesize=10))
    assert page["count"] == 20 and [v["account"] for v in page["virtualmachine"]] == ["admin"] * 10
    assert only_mine == large
    tagged, page = _statements(state, lambda: api("listVirtualMachines", listall="true", **{
        "tags[0].key": "role", "tags[0].value": "role7", "tags[1].key": "tier"}))
    assert page["count"] == 1 and page["virtualmachine"][0]["name"] == "vm7" and tagged == large


def test_a_page_of_volumes_costs_the_same_statements_for_2_or_40(state: ServerState,
                                                                   api: Callable[..., dict[str, Any]]) -> None:
    cloud = Cloud(state)
    cloud.add_vms(2)
    small, page = _statements(state, lambda: api("listVolumes", listall="true"))
    assert page["count"] == 3
    cloud.add_vms(38)
    large, page = _statements(state, lambda: api("listVolumes", listall="true"))
    assert page["count"] == 60 and {v["vmname"] for v in page["volume"]} == {f"vm{n}" for n in range(1, 41)}
    assert small == large, f"{small} statements for 3 volumes, {large} for 60"


def test_placement_reads_a_few_hosts_whatever_the_zone_size(state: ServerState) -> None:
    cloud = Cloud(state)

    def place() -> int:
        cloud.vms += 1
        with state.sessions.begin() as db:
            vm = _stopped_vm(db, cloud, cloud.vms)
            count, (host, _pool) = _statements(state, lambda: planner.choose(db, vm))
            assert host.memory_allocated is not None
            return count

    few = place()
    cloud.add_hosts(60)
    many = place()
    assert few == many, f"{few} statements with 1 host, {many} with 61"


def _stopped_vm(db: Session, cloud: Cloud, n: int) -> VMInstance:
    number = 2 * ROW_NUMBERS + n
    vm = VMInstance(name=f"p{n}", display_name=f"p{n}", instance_name=f"i-2-{number}-VM", vm_number=number,
                    account_id=cloud.admin.account_id, user_id=cloud.admin.id, zone_id=cloud.ids["zone"],
                    service_offering_id=cloud.ids["offering"], cpu_number=1, cpu_speed=100, memory=128,
                    state=S.STOPPED)
    db.add(vm)
    db.flush()
    db.add(Nic(vm_id=vm.id, mac_address=vm_wire.mac_for(number), network_label="guest"))
    return vm


def test_deploy_submission_costs_the_same_statements_with_2_or_40_vms(state: ServerState,
                                                                       api: Callable[..., dict[str, Any]]) -> None:
    cloud = Cloud(state)

    def deploy() -> int:
        count, out = _statements(state, lambda: api("deployVirtualMachine", serviceofferingid=cloud.ids["offering"],
                                                    templateid=cloud.template, zoneid=cloud.ids["zone"]))
        assert set(out) == {"id", "jobid"}
        return count

    deploy()  # the first takes the admin's account number and reserves a block of VM numbers
    cloud.add_vms(2)
    small = deploy()
    cloud.add_vms(38)
    large = deploy()
    assert small == large, f"{small} statements with 2 VMs, {large} with 40"


def _writes_last(seen: list[str]) -> list[str]:
    """The statements a transaction ran after its first write: on SQLite, under the write lock."""
    first = next((i for i, sql in enumerate(seen) if is_write(sql)), len(seen))
    return seen[first:]


def test_a_deploys_transactions_read_first_and_write_last(state: ServerState,
                                                          api: Callable[..., dict[str, Any]]) -> None:
    """Every write transaction of a deploy runs its reads before its first write, so that on SQLite
    it holds the database's write lock (which every other writer waits for) only for its writes; and
    what they build from those reads is what the database holds once they commit."""
    cloud = Cloud(state)
    with state.sessions.begin() as db:
        db.add(TemplatePoolRef(template_id=cloud.template, pool_id=cloud.ids["pool"],
                               install_path=f"{cloud.template}.qcow2", size=GiB))
    api("deployVirtualMachine", serviceofferingid=cloud.ids["offering"], templateid=cloud.template,
        zoneid=cloud.ids["zone"])  # the first also takes the account's number and a block of VM numbers
    with counted(state) as seen:
        job = api("deployVirtualMachine", serviceofferingid=cloud.ids["offering"], templateid=cloud.template,
                  zoneid=cloud.ids["zone"])
    # the writes: the resource counts of the account and of its domain, then VM, volume, NIC, job, event and
    # usage event
    assert all(is_write(sql) for sql in _writes_last(seen)) and len(_writes_last(seen)) == 8, seen
    with state.sessions.begin() as db:
        store.claim(db, "s1", 10)
    jctx = JobContext(job_id=job["jobid"], command="deployVirtualMachine", params={}, account_id="", user_id="",
                      instance_id=job["id"], sessions=state.sessions, state=state, agents=None, recovering=False,
                      attempt=1, _write_progress=lambda *_: None, server_id="s1")

    def tx(fn: Callable[..., Any], *args: Any) -> tuple[list[str], Any]:
        with counted(state) as seen, state.sessions.begin() as db:
            out = fn(db, *args)
        return seen, out

    seen, placed = tx(vms._place_and_prepare, state.box, job["id"], [], True, jctx)
    under_lock = _writes_last(seen)
    assert all(is_write(sql) for sql in under_lock) and len(under_lock) == 6, under_lock
    assert placed.first_volume is not None and placed.first_volume.path is None
    assert placed.template is not None and placed.template.in_pool is not None
    with state.sessions() as db:
        vm, root = db.get(VMInstance, job["id"]), db.get(Volume, placed.todo[0])
        assert vm is not None and root is not None
        assert (vm.state, vm.host_id, vm.capacity_host_id) == (S.STARTING, placed.host_id, placed.host_id)
        assert (root.state, root.host_id, root.pool_id, root.allocated_size) == (
            S.VOL_CREATING, placed.host_id, placed.pool_id, root.size)
        assert db.get(AsyncJob, job["jobid"]).proc_percent == 20  # type: ignore[union-attr]

    created = vm_steps.Created(placed.todo[0], "/primary/root.qcow2", 2 * GiB)
    seen, to = tx(vm_steps.start_vm_to, state.box, job["id"], created)
    assert not any(is_write(sql) for sql in seen), seen
    root_to = to.disks[0].data
    assert (root_to.uuid, root_to.path, root_to.size) == (created.volume_id, created.path, 2 * GiB)

    seen, result = tx(vms._started, jctx, job["id"], placed.host_id, created)
    under_lock = _writes_last(seen)  # its VM.START usage event among them
    assert all(is_write(sql) for sql in under_lock) and len(under_lock) == 4, under_lock
    with state.sessions() as db:
        vm = db.get(VMInstance, job["id"])
        root = db.get(Volume, created.volume_id)
        assert vm is not None and root is not None
        assert result == {"virtualmachine": vm_view(db, vm)} and result["virtualmachine"]["state"] == "Running"
        assert (root.state, root.path, root.size) == (S.VOL_READY, created.path, 2 * GiB)
        row = db.get(AsyncJob, job["jobid"])
        assert row is not None and row.status == store.SUCCEEDED and json.loads(row.result_json or "") == result
