"""Router orchestration on a real SQLite database against hosts that keep routers in memory
(``tests.support.router_world.RouterHosts``: what was sent, in which order, with which accessDetails)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import (
    DomainRouter,
    Network,
    NetworkOffering,
    Nic,
    ServiceOffering,
    User,
    VMInstance,
    utcnow,
)
from hvcloud.server.errors import INSUFFICIENT_CAPACITY
from hvcloud.server.jobs.handlers import JobFailure
from hvcloud.server.orchestration.networks import implement as N
from hvcloud.server.orchestration.networks import network_gc, routing
from hvcloud.server.orchestration.networks import routers as RT
from hvcloud.server.orchestration.networks import validation as V
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm.steps import StepFailed
from hvcloud.server.state import ServerState
from hvcloud.wire import commands as C
from hvcloud.wire import routing as R
from tests.support.router_world import VR_SERVICES, World, build_world


@pytest.fixture
def world(state: ServerState) -> World:
    return build_world(state)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# ---------------------------------------------------------------------- implementing


def test_first_start_implements_the_network_and_publishes_the_vm(world: World) -> None:
    net = world.network()
    vm = world.vm(net)
    run(routing.prepare_vm_start(world.steps(), vm, world.hosts[1]))

    kinds = [type(c).__name__ for _h, c in world.agents.sent]
    assert kinds == ["StartCommand", "DhcpEntryCommand", "VmDataCommand"]
    assert {h for h, _c in world.agents.sent} == {world.hosts[1]}, "the router runs where the VM starts"
    [router] = world.routers(net)
    assert (router.state, router.host_id, router.guest_ip) == (RT.RUNNING, world.hosts[1], "10.1.1.1")
    assert router.name == f"r-{router.vm_number}-VM"
    row = world.net_row(net)
    assert (row.state, row.vnet, row.broadcast_uri, row.broadcast_domain_type) == \
        (N.IMPLEMENTED, 5000, "vxlan://5000", "Vxlan")
    assert world.vnets() == [(5000, net)]

    start = world.agents.sent[0][1]
    assert isinstance(start, C.StartCommand)
    to = start.vm
    assert (to.type, to.name) == ("DomainRouter", router.name)
    assert to.bootArgs == (f"name={router.name} type=router eth0ip=10.1.1.1 eth0mask=255.255.255.0 "
                           "domain=tenant.internal dns1=192.0.2.53 dns2=192.0.2.54")
    [nic] = to.nics or []
    assert (nic.mac, nic.ip, nic.netmask, nic.broadcastUri, nic.name) == \
        (router.guest_mac, "10.1.1.1", "255.255.255.0", "vxlan://5000", "cloudbr1")

    access = {R.ROUTER_NAME: router.name, R.ROUTER_IP: "10.1.1.1", R.ROUTER_GUEST_IP: "10.1.1.1",
              R.GUEST_NETWORK_CIDR: "10.1.1.0/24", R.ZONE_NETWORK_TYPE: "Advanced"}
    dhcp = world.agents.sent[1][1]
    assert isinstance(dhcp, R.DhcpEntryCommand)
    with world.state.sessions() as db:
        vm_row = db.get(VMInstance, vm)
        nic_row = db.scalars(select(Nic).where(Nic.vm_id == vm)).one()
        assert vm_row is not None
        assert (dhcp.vmMac, dhcp.vmIpAddress, dhcp.vmName, dhcp.defaultRouter, dhcp.isDefault, dhcp.remove) == \
            (nic_row.mac_address, nic_row.ip4_address, vm_row.name, "10.1.1.1", True, None)
    assert dhcp.accessDetails == access
    data = world.agents.sent[2][1]
    assert isinstance(data, R.VmDataCommand)
    assert data.accessDetails == access
    triples = {(f, n): v for f, n, v in (data.vmData or [])}  # type: ignore[misc]
    assert triples[("userdata", "user-data")] == "I2Nsb3VkLWNvbmZpZw=="
    assert triples[("metadata", "local-ipv4")] == nic_row.ip4_address
    assert triples[("metadata", "local-hostname")] == vm_row.name
    assert triples[("metadata", "availability-zone")] == "zone1"
    with world.state.sessions() as db:
        offering = db.get(ServiceOffering, vm_row.service_offering_id)
        assert offering is not None
        assert triples[("metadata", "service-offering")] == offering.display_text
    assert triples[("metadata", "vm-id")] == vm
    assert not world.agents.of_type(R.SavePasswordCommand), "no password pending: none sent"


def test_a_second_vm_only_adds_its_entries(world: World) -> None:
    net = world.network()
    first, second = world.vm(net), world.vm(net)
    run(routing.prepare_vm_start(world.steps(), first, world.hosts[0]))
    world.set_vm_state(first, S.RUNNING)
    world.agents.sent.clear()
    run(routing.prepare_vm_start(world.steps(), second, world.hosts[1]))
    assert [type(c).__name__ for _h, c in world.agents.sent] == ["DhcpEntryCommand", "VmDataCommand"]
    assert {h for h, _c in world.agents.sent} == {world.hosts[0]}, "later VMs reach the router over the segment"
    [router] = world.routers(net)
    assert len(world.agents.leases(world.hosts[0], router.name)) == 2


def test_networks_without_a_router_and_legacy_nics_send_nothing(world: World) -> None:
    with world.state.sessions.begin() as db:
        shared_plain = NetworkOffering(name="SharedNoServices", display_text="s", guest_ip_type="Shared",
                                       services_json=json.dumps({"Dhcp": ["ExternalDhcp"]}))
        l2 = NetworkOffering(name="L2", display_text="l2", guest_ip_type="L2", services_json="{}")
        db.add_all([shared_plain, l2])
        db.flush()
        ids = shared_plain.id, l2.id
    shared = world.network("shared", "10.9.9.0/24", N.SHARED, ids[0])
    layer2 = world.network("l2", "10.8.8.0/24", N.L2, ids[1])
    for net in (shared, layer2, None):
        run(routing.prepare_vm_start(world.steps(), world.vm(net), world.hosts[0]))
    assert world.agents.sent == []
    assert world.vnets() == []


def test_a_shared_network_with_router_services_keeps_its_admin_segment(world: World) -> None:
    with world.state.sessions.begin() as db:
        offering = NetworkOffering(name="DefaultShared", display_text="s", guest_ip_type="Shared",
                                   services_json=VR_SERVICES)
        db.add(offering)
        db.flush()
        offering_id = offering.id
    net = world.network("shared", "10.9.9.0/24", N.SHARED, offering_id)
    run(routing.prepare_vm_start(world.steps(), world.vm(net), world.hosts[0]))
    start = world.agents.of_type(C.StartCommand)[0][1]
    assert start.vm.nics[0].broadcastUri == "vlan://500"
    assert world.vnets() == [], "a shared network's segment is its admin's"
    run(routing.shutdown_network(world.steps(), net, destroy=True))
    assert world.net_row(net).broadcast_uri == "vlan://500"


def test_concurrent_first_starts_make_one_router_and_take_one_segment(world: World) -> None:
    net = world.network()
    vms = [world.vm(net) for _ in range(4)]

    async def all_at_once() -> None:
        await asyncio.gather(*(routing.prepare_vm_start(world.steps(), vm, world.hosts[i % 2])
                               for i, vm in enumerate(vms)))
    run(all_at_once())
    routers = world.routers(net, live=False)
    assert len(routers) == 1
    assert world.vnets() == [(5000, net)]
    starts = world.agents.of_type(C.StartCommand)
    assert {c.vm.name for _h, c in starts} == {routers[0].name}
    assert {h for h, _c in starts} == {routers[0].host_id}
    assert len(world.agents.leases(routers[0].host_id or "", routers[0].name)) == 4


def test_segment_ids_are_the_lowest_free_and_exhaustion_is_533_naming_the_physical_network(state: ServerState) -> None:
    world = build_world(state, vnet_range="7000-7001")
    nets = [world.network(f"n{i}", f"10.1.{i}.0/24") for i in range(3)]
    run(routing.prepare_vm_start(world.steps(), world.vm(nets[0]), world.hosts[0]))
    run(routing.prepare_vm_start(world.steps(), world.vm(nets[1]), world.hosts[0]))
    assert world.vnets() == [(7000, nets[0]), (7001, nets[1])]
    sent_before = len(world.agents.sent)
    with pytest.raises(JobFailure) as failure:
        run(routing.prepare_vm_start(world.steps(), world.vm(nets[2]), world.hosts[0]))
    assert failure.value.code == INSUFFICIENT_CAPACITY
    assert "phys-vx" in failure.value.text and "7000-7001" in failure.value.text
    assert len(world.agents.sent) == sent_before, "nothing was sent for the refused network"
    row = world.net_row(nets[2])
    assert (row.state, row.vnet, row.broadcast_uri) == (N.ALLOCATED, None, None)
    assert world.routers(nets[2], live=False) == []
    # a shut-down network gives its id back, and the next network takes the lowest free one
    run(routing.shutdown_network(world.steps(), nets[0], destroy=True))
    run(routing.prepare_vm_start(world.steps(), world.vm(nets[2]), world.hosts[0]))
    assert world.vnets() == [(7000, nets[2]), (7001, nets[1])]


# ---------------------------------------------------------------------- recovery


def test_a_router_destroyed_by_hand_is_recreated_on_the_next_deploy_with_every_entry(world: World) -> None:
    net = world.network()
    first = world.vm(net)
    run(routing.prepare_vm_start(world.steps(), first, world.hosts[0]))
    world.set_vm_state(first, S.RUNNING)
    [router] = world.routers(net)
    world.agents.routers[world.hosts[0]].clear()  # destroyed on the host behind the cloud's back
    world.agents.sent.clear()
    second = world.vm(net)
    run(routing.prepare_vm_start(world.steps(), second, world.hosts[1]))
    kinds = [type(c).__name__ for _h, c in world.agents.sent]
    assert kinds == ["DhcpEntryCommand",  # refused: the router does not exist
                     "StartCommand", "DhcpEntryCommand", "VmDataCommand",  # restarted, the first VM replayed
                     "DhcpEntryCommand", "VmDataCommand"]  # then the new VM
    [again] = world.routers(net)
    assert (again.id, again.state, again.host_id) == (router.id, RT.RUNNING, world.hosts[0])
    assert len(world.agents.leases(world.hosts[0], router.name)) == 2


def test_a_router_on_a_down_host_moves_to_an_up_host(world: World) -> None:
    net = world.network()
    first = world.vm(net)
    run(routing.prepare_vm_start(world.steps(), first, world.hosts[0]))
    world.set_vm_state(first, S.RUNNING)
    world.set_host_status(world.hosts[0], "Down")
    world.agents.down.add(world.hosts[0])
    world.agents.sent.clear()
    run(routing.prepare_vm_start(world.steps(), world.vm(net), world.hosts[1]))
    assert {h for h, _c in world.agents.sent} == {world.hosts[1]}
    [router] = world.routers(net)
    assert (router.host_id, router.last_host_id, router.state) == (world.hosts[1], world.hosts[1], RT.RUNNING)
    assert len(world.agents.leases(world.hosts[1], router.name)) == 2


def test_a_host_that_refuses_the_router_is_avoided(world: World) -> None:
    net = world.network()
    world.agents.down.add(world.hosts[0])  # the VM's host cannot take the router: another one does
    run(routing.prepare_vm_start(world.steps(), world.vm(net), world.hosts[0]))
    [router] = world.routers(net)
    assert (router.host_id, router.state) == (world.hosts[1], RT.RUNNING)


def test_no_host_for_the_router_fails_the_step_and_keeps_the_row_for_a_rerun(world: World) -> None:
    net = world.network()
    vm = world.vm(net)
    world.agents.down.update(world.hosts)
    with pytest.raises(StepFailed):
        run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
    [router] = world.routers(net)
    assert router.state == RT.STOPPED
    world.agents.down.clear()
    run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))  # the job's rerun converges
    assert [r.id for r in world.routers(net)] == [router.id]
    assert world.routers(net)[0].state == RT.RUNNING
    assert world.vnets() == [(5000, net)]


# ---------------------------------------------------------------------- withdraw, refresh, restart


def test_withdraw_removes_the_lease_and_the_metadata(world: World) -> None:
    net = world.network()
    vm = world.vm(net)
    run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
    world.agents.sent.clear()
    run(routing.withdraw_vm(world.steps(), vm))
    dhcp, data = (c for _h, c in world.agents.sent)
    assert isinstance(dhcp, R.DhcpEntryCommand) and dhcp.remove is True
    assert isinstance(data, R.VmDataCommand) and data.vmData == []
    [router] = world.routers(net)
    assert world.agents.leases(world.hosts[0], router.name) == {}
    world.agents.down.add(world.hosts[0])
    run(routing.withdraw_vm(world.steps(), vm))  # best effort: no error when the router's host is gone


def test_refresh_resends_metadata_to_running_routers_only(world: World) -> None:
    net = world.network()
    vm = world.vm(net)
    run(routing.refresh_vm_data(world.steps(), vm))
    assert world.agents.sent == [], "no router yet: nothing to refresh"
    run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
    world.agents.sent.clear()
    run(routing.refresh_vm_data(world.steps(), vm))
    assert [type(c).__name__ for _h, c in world.agents.sent] == ["VmDataCommand"]


def test_restart_with_cleanup_replaces_the_router_and_replays_every_entry(world: World) -> None:
    net = world.network()
    vms = [world.vm(net) for _ in range(3)]
    for vm in vms:
        run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
        world.set_vm_state(vm, S.RUNNING)
    world.set_vm_state(vms[1], S.STOPPED)  # a stopped VM keeps its entries
    world.set_vm_state(vms[2], S.DESTROYED)  # a destroyed one's are not replayed
    [old] = world.routers(net)
    world.agents.sent.clear()
    run(RT.restart_network(world.steps(), net, cleanup=True))
    kinds = [type(c).__name__ for _h, c in world.agents.sent]
    assert kinds == ["StopCommand", "StartCommand"] + ["DhcpEntryCommand", "VmDataCommand"] * 2
    stop = world.agents.sent[0][1]
    assert isinstance(stop, C.StopCommand) and stop.expungeVM and stop.vmName == old.name
    [new] = world.routers(net)
    assert new.id != old.id and new.name != old.name and new.state == RT.RUNNING
    assert [r.state for r in world.routers(net, live=False)] == [RT.DESTROYED, RT.RUNNING]
    assert world.net_row(net).vnet == 5000, "a restart keeps the segment"
    assert len(world.agents.leases(new.host_id or "", new.name)) == 2


def test_restart_without_cleanup_pushes_every_entry_to_the_same_router(world: World) -> None:
    net = world.network()
    vm = world.vm(net)
    run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
    world.set_vm_state(vm, S.RUNNING)
    world.agents.sent.clear()
    run(RT.restart_network(world.steps(), net, cleanup=False))
    assert [type(c).__name__ for _h, c in world.agents.sent] == ["DhcpEntryCommand", "VmDataCommand"]
    # a stopped router is started first
    [router] = world.routers(net)
    run(RT.stop_router(world.steps(), router.id, forced=False))
    assert world.routers(net)[0].state == RT.STOPPED
    world.agents.sent.clear()
    run(RT.restart_network(world.steps(), net, cleanup=False))
    assert [type(c).__name__ for _h, c in world.agents.sent] == ["StartCommand", "DhcpEntryCommand", "VmDataCommand"]
    assert world.routers(net)[0].state == RT.RUNNING


def test_destroying_a_router_of_a_busy_network_then_deploying_recreates_it(world: World) -> None:
    net = world.network()
    first = world.vm(net)
    run(routing.prepare_vm_start(world.steps(), first, world.hosts[0]))
    world.set_vm_state(first, S.RUNNING)
    [router] = world.routers(net)
    run(RT.stop_router(world.steps(), router.id, forced=True, destroy=True))
    run(RT.stop_router(world.steps(), router.id, forced=True, destroy=True))  # a rerun of the job: no error
    assert world.routers(net) == []
    run(routing.prepare_vm_start(world.steps(), world.vm(net), world.hosts[1]))
    [new] = world.routers(net)
    assert new.id != router.id
    assert len(world.agents.leases(new.host_id or "", new.name)) == 2


def test_reboot_replays_entries(world: World) -> None:
    net = world.network()
    vm = world.vm(net)
    run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
    world.set_vm_state(vm, S.RUNNING)
    [router] = world.routers(net)
    world.agents.sent.clear()
    run(RT.reboot_router(world.steps(), router.id))
    assert [type(c).__name__ for _h, c in world.agents.sent] == ["RebootCommand", "DhcpEntryCommand", "VmDataCommand"]


def test_jobs_interrupted_by_a_crash_converge_when_run_again(world: World) -> None:
    net = world.network()
    vm = world.vm(net)
    run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
    world.set_vm_state(vm, S.RUNNING)
    [router] = world.routers(net)
    # stopRouter cut short after its first transaction: the router is left Stopping
    world.tx(RT._begin_stop, router.id, False)
    run(RT.stop_router(world.steps(), router.id, forced=False))
    assert world.routers(net)[0].state == RT.STOPPED
    # restartNetwork cleanup=true cut short after the old router was destroyed: the rerun starts one
    run(RT.stop_router(world.steps(), router.id, forced=True, destroy=True))
    assert world.routers(net) == []
    run(RT.restart_network(world.steps(), net, cleanup=True))
    [new] = world.routers(net)
    assert new.state == RT.RUNNING and len(world.agents.leases(new.host_id or "", new.name)) == 1
    # a start cut short after its StartCommand: the router is Starting; the rerun sends it again
    def starting(db: Any) -> None:
        row = db.get(DomainRouter, new.id)
        row.state = RT.STARTING
    world.tx(starting)
    world.agents.sent.clear()
    run(RT.sync_network(world.steps(), net, None))
    assert [type(c).__name__ for _h, c in world.agents.sent] == ["StartCommand", "DhcpEntryCommand", "VmDataCommand"]
    assert world.routers(net)[0].state == RT.RUNNING and len(world.routers(net, live=False)) == 2


def test_a_stop_in_progress_makes_a_deploy_wait_then_start_the_router_again(world: World) -> None:
    net = world.network()
    first = world.vm(net)
    run(routing.prepare_vm_start(world.steps(), first, world.hosts[0]))
    [router] = world.routers(net)
    world.tx(RT._begin_stop, router.id, False)  # stopRouter's job is between its first step and its stop

    async def both() -> None:
        deploy = asyncio.create_task(routing.prepare_vm_start(world.steps(), world.vm(net), world.hosts[0]))
        await asyncio.sleep(RT.STOPPING_POLL_SECONDS * 2)
        assert not deploy.done(), "the deploy waits for the stop to finish"
        await RT.stop_router(world.steps(), router.id, forced=False)
        await deploy
    world.agents.sent.clear()
    run(both())
    kinds = [type(c).__name__ for _h, c in world.agents.sent]
    assert kinds[:2] == ["StopCommand", "StartCommand"], kinds
    assert world.routers(net)[0].state == RT.RUNNING


def test_shutdown_without_destroy_keeps_a_stopped_router_for_the_next_implement(world: World) -> None:
    net = world.network()
    vm = world.vm(net)
    run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
    [router] = world.routers(net)
    run(routing.shutdown_network(world.steps(), net, destroy=False))
    [stopped] = world.routers(net)
    assert (stopped.id, stopped.state, stopped.host_id) == (router.id, RT.STOPPED, None)
    row = world.net_row(net)
    assert (row.state, row.vnet, row.broadcast_uri) == (N.ALLOCATED, None, None) and world.vnets() == []
    run(routing.shutdown_network(world.steps(), net, destroy=False))  # again: nothing to do
    world.agents.sent.clear()
    run(routing.prepare_vm_start(world.steps(), vm, world.hosts[1]))
    [again] = world.routers(net)
    assert (again.id, again.state, again.host_id) == (router.id, RT.RUNNING, world.hosts[1])
    assert world.net_row(net).state == N.IMPLEMENTED and world.vnets() == [(5000, net)]
    start = world.agents.of_type(C.StartCommand)[0][1]
    assert start.vm.nics[0].broadcastUri == "vxlan://5000"


# ---------------------------------------------------------------------- garbage collection


def test_gc_shuts_down_an_idle_network_and_the_next_deploy_implements_it_again(world: World) -> None:
    busy, idle = world.network("busy", "10.1.1.0/24"), world.network("idle", "10.1.2.0/24")
    busy_vm, idle_vm = world.vm(busy), world.vm(idle)
    for vm in (busy_vm, idle_vm):
        run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
        world.set_vm_state(vm, S.RUNNING)
    world.set_vm_state(idle_vm, S.STOPPED)
    [old] = world.routers(idle)
    now = utcnow()
    assert run(network_gc.collect(world.steps(), 600, now)) == []  # starts the idle clock
    assert world.net_row(idle).idle_since == now and world.net_row(busy).idle_since is None
    assert run(network_gc.collect(world.steps(), 600, now + timedelta(seconds=599))) == []
    world.agents.sent.clear()
    assert run(network_gc.collect(world.steps(), 600, now + timedelta(seconds=600))) == [idle]
    [(_h, stop)] = world.agents.sent
    assert isinstance(stop, C.StopCommand) and stop.expungeVM and stop.vmName == old.name
    row = world.net_row(idle)
    assert (row.state, row.vnet, row.broadcast_uri, row.idle_since) == (N.ALLOCATED, None, None, None)
    assert world.routers(idle) == []
    assert world.vnets() == [(5000, busy)]
    assert world.net_row(busy).state == N.IMPLEMENTED
    # the next deploy implements it again, with a new router
    world.set_vm_state(idle_vm, S.STARTING)
    run(routing.prepare_vm_start(world.steps(), idle_vm, world.hosts[1]))
    [new] = world.routers(idle)
    assert new.id != old.id and world.net_row(idle).state == N.IMPLEMENTED
    assert world.vnets() == [(5000, busy), (5001, idle)]


def test_gc_finishes_a_shutdown_a_crash_interrupted(world: World) -> None:
    net = world.network()
    vm = world.vm(net)
    run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
    world.set_vm_state(vm, S.STOPPED)
    # a crash right after the shutdown began: the network is Shutdown, its router Stopping
    world.tx(RT._begin_shutdown, net, True)
    world.tx(RT._begin_stop, world.routers(net)[0].id, True)
    assert world.net_row(net).state == N.SHUTDOWN
    assert run(network_gc.collect(world.steps(), 600)) == [net]
    assert world.net_row(net).state == N.ALLOCATED and world.vnets() == [] and world.routers(net) == []


def test_gc_leaves_a_network_a_vm_started_on_meanwhile(world: World) -> None:
    net = world.network()
    vm = world.vm(net)
    run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
    world.set_vm_state(vm, S.STOPPED)
    now = utcnow()
    run(network_gc.collect(world.steps(), 0, now))
    world.set_vm_state(vm, S.STARTING)  # a start began between the rounds
    assert run(RT.shutdown(world.steps(), net, destroy=True, only_if_idle=True)) is False
    assert world.net_row(net).state == N.IMPLEMENTED and len(world.routers(net)) == 1


def test_routers_and_segments_add_up_after_many_starts(world: World) -> None:
    nets = [world.network(f"n{i}", f"10.2.{i}.0/24") for i in range(5)]

    async def deploy() -> None:
        await asyncio.gather(*(routing.prepare_vm_start(world.steps(), world.vm(nets[i % 5]), world.hosts[i % 2])
                               for i in range(15)))
    run(deploy())
    with world.state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(DomainRouter)) == 5
        assert sorted(v for v, _n in world.vnets()) == list(range(5000, 5005))
        assert db.scalar(select(func.count(func.distinct(DomainRouter.guest_mac)))) == 5


def test_the_gc_loop_runs_rounds_until_cancelled(world: World) -> None:
    net = world.network()
    vm = world.vm(net)
    run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
    world.set_vm_state(vm, S.STOPPED)

    async def loop_until_shut_down() -> None:
        task = asyncio.create_task(network_gc.gc_loop(world.state.sessions, world.agents, world.state.box, 0.05, 0))
        try:
            while world.net_row(net).state != N.ALLOCATED:
                assert not task.done(), task
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    asyncio.run(asyncio.wait_for(loop_until_shut_down(), 60))
    assert world.routers(net) == [] and world.vnets() == []


@pytest.mark.parametrize(("settings", "expected"), [
    ({}, (600.0, 600.0)),
    ({"network.gc.interval": "30", "network.gc.wait": "0"}, (30.0, 0.0)),
])
def test_gc_settings(settings: dict[str, str], expected: tuple[float, float], tmp_path: Any) -> None:
    config = ServerConfig.build(tmp_path, db_url="sqlite://", settings=settings)
    assert (config.network_gc_interval_seconds, config.network_gc_wait_seconds) == expected


@pytest.mark.parametrize("settings", [{"network.gc.interval": "0"}, {"network.gc.interval": "-5"},
                                      {"network.gc.wait": "-1"}, {"network.gc.wait": "nan"},
                                      {"network.gc.wait": "1e999"}, {"network.gc.interval": "ten"}])
def test_bad_gc_settings_are_refused(settings: dict[str, str], tmp_path: Any) -> None:
    with pytest.raises(ValueError, match=r"network\.gc\."):
        ServerConfig.build(tmp_path, db_url="sqlite://", settings=settings)


# ---------------------------------------------------------------------- parsers


@pytest.mark.parametrize(("text", "ranges"), [
    ("100-199", [(100, 199)]),
    ("300, 100-101 ,5", [(5, 5), (100, 101), (300, 300)]),
    ("", []),
    (None, []),
    ("199-100", []),
    ("abc,1-2", [(1, 2)]),
    ("-5-3", []),
    ("1-16777216", []),
    ("0-16777215", [(0, 16_777_215)]),
    ("1-2-3", []),
    ("1;DROP TABLE network", []),
    ("9" * 40, []),
    (",".join(["1"] * 65), []),
    ("\x00,7", [(7, 7)]),
    ("\u0661\u0662", []),  # Arabic-Indic digits are not ids
])
def test_vnet_range_parser(text: str | None, ranges: list[tuple[int, int]]) -> None:
    assert V.stored_ranges(text) == ranges


def test_free_ids_skip_taken_and_overlaps() -> None:
    assert list(N.free_ids([(1, 3), (2, 5)], {1, 4})) == [2, 3, 5]
    assert next(N.free_ids([(0, 16_777_215)], set(range(0, 1000))), None) == 1000


@pytest.mark.parametrize(("services", "expected"), [
    ("{}", True), ("not json", True), ("[1,2]", True), (json.dumps({"Dhcp": "VirtualRouter"}), True),
    (json.dumps({"Dhcp": ["ExternalDhcp"]}), False), (json.dumps({"Dhcp": [1, None]}), False),
])
def test_isolated_networks_need_a_router_unless_no_service_is_the_virtual_routers(
        world: World, services: str, expected: bool) -> None:
    with world.state.sessions.begin() as db:
        offering = NetworkOffering(name="o", display_text="o", guest_ip_type="Isolated", services_json=services)
        db.add(offering)
        db.flush()
        net = Network(name="x", display_text="x", zone_id=world.zone, network_offering_id=offering.id,
                      account_id=db.scalars(select(User)).first().account_id,  # type: ignore[union-attr]
                      domain_id=db.scalars(select(User)).first().account.domain_id,  # type: ignore[union-attr]
                      guest_type=N.ISOLATED)
        db.add(net)
        db.flush()
        assert N.needs_router(net) is expected
