"""The router orchestration against a real agent process (simulator driver, two hosts, signed
HTTPS): a network implemented on its first VM start runs its router on the simulated host, which
holds every VM's lease and metadata; a router destroyed by hand is recreated on the next deploy with
every entry; an agent killed and restarted keeps it; ``restartNetwork cleanup=true`` replaces it;
the network GC destroys it.

What a simulated host holds is read from its router state files (``hosts/<address>/routers``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hvcloud.server.config import ServerConfig
from hvcloud.server.orchestration.agents import AgentUnavailable
from hvcloud.server.orchestration.networks import network_gc, routing
from hvcloud.server.orchestration.networks import routers as RT
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.state import ServerState
from hvcloud.wire.base import Answer, Command
from tests.support.agent_process import AgentProcess
from tests.support.router_world import World, build_world

pytest.importorskip("hvcloud.router.simulated", reason="the simulated router runtime is not installed")

STOP = "com.cloud.agent.api.StopCommand"


class AgentLinks:
    """An AgentSender over the agent process's HTTPS endpoints, one per simulated host."""

    server_id: str | None = None

    def __init__(self, agent: AgentProcess, hosts: list[str]) -> None:
        self.agent = agent
        self.index = {host_id: i for i, host_id in enumerate(hosts)}
        self.sent: list[str] = []

    def owned_host_ids(self) -> frozenset[str]:
        return frozenset(self.index)

    async def reconnect(self, host_id: str) -> None:
        return None

    async def send(self, host_id: str, command: Command, wait: float | None = None) -> Answer:
        self.sent.append(type(command).__name__)
        try:
            async with self.agent.client(self.index[host_id]) as client:
                return await client.send(command)
        except Exception as exc:  # the transport failed: no answer
            raise AgentUnavailable(f"{type(exc).__name__}: {exc}") from None


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[tuple[World, AgentProcess]]:
    agent = AgentProcess(tmp_path / "agent", hosts=2).start()
    config = ServerConfig.build(tmp_path / "server", settings={"api.throttling.enabled": "false"})
    state = ServerState.open(replace(config, manage_agents=False))
    try:
        world = build_world(state)
        world.agents = AgentLinks(agent, world.hosts)
        yield world, agent
    finally:
        state.close()
        agent.kill()


def held(agent: AgentProcess, index: int) -> dict[str, dict[str, Any]]:
    """The routers a simulated host keeps on disk: name → saved state."""
    rdir = agent.data_dir / "hosts" / agent.addresses[index] / "routers"
    return {p.stem: json.loads(p.read_text()) for p in sorted(rdir.glob("*.json"))} if rdir.exists() else {}


def entries(agent: AgentProcess, index: int, router: str) -> set[tuple[str, str, str]]:
    saved = held(agent, index).get(router, {})
    return {(e["mac"], e["ip"], e["hostname"]) for e in saved.get("entries", [])}


def report(agent: AgentProcess, index: int) -> dict[str, str]:
    async def go() -> dict[str, str]:
        async with agent.client(index) as c:
            return await c.vm_state_report()
    return asyncio.run(go())


def expected(world: World, vm_ids: list[str]) -> set[tuple[str, str, str]]:
    from sqlalchemy import select

    from hvcloud.server.db.models import Nic, VMInstance

    with world.state.sessions() as db:
        rows = db.execute(select(Nic.mac_address, Nic.ip4_address, VMInstance.name)
                          .join(VMInstance, VMInstance.id == Nic.vm_id).where(Nic.vm_id.in_(vm_ids))).all()
    return {(mac, ip or "", name) for mac, ip, name in rows}


def start(world: World, vm: str, host: int) -> None:
    asyncio.run(routing.prepare_vm_start(world.steps(), vm, world.hosts[host]))
    world.set_vm_state(vm, S.RUNNING)


def test_router_life_on_simulated_hosts(cloud: tuple[World, AgentProcess]) -> None:
    world, agent = cloud
    net = world.network()
    vms = [world.vm(net), world.vm(net)]
    start(world, vms[0], 0)
    start(world, vms[1], 1)
    [router] = world.routers(net)
    assert router.host_id == world.hosts[0]
    assert report(agent, 0) == {router.name: "PowerOn"} and report(agent, 1) == {}
    saved = held(agent, 0)[router.name]
    assert saved["spec"]["address"] == "10.1.1.1" and saved["spec"]["segment"]["vxlan"] == 5000
    assert saved["spec"]["segment"]["trunk"] == "cloudbr1"
    assert entries(agent, 0, router.name) == expected(world, vms)
    ips = {ip for _m, ip, _n in expected(world, vms)}
    assert set(saved["vm"]) == ips, "each VM's metadata is on the router"

    # destroyed by hand on its host: the next deploy recreates it with every entry
    assert agent.send_body(0, STOP, {"vmName": router.name, "expungeVM": True})["result"] is True
    assert report(agent, 0) == {}
    vms.append(world.vm(net))
    start(world, vms[2], 1)
    assert report(agent, 0) == {router.name: "PowerOn"}
    assert entries(agent, 0, router.name) == expected(world, vms)

    # the agent dies and comes back: the router is still there, with its entries
    agent.kill()
    agent.start()
    assert report(agent, 0) == {router.name: "PowerOn"}
    assert entries(agent, 0, router.name) == expected(world, vms)

    # reboot, stop and start (stopRouter, startRouter): the entries stay
    asyncio.run(RT.reboot_router(world.steps(), router.id))
    assert report(agent, 0) == {router.name: "PowerOn"}
    asyncio.run(RT.stop_router(world.steps(), router.id, forced=False))
    assert report(agent, 0) == {router.name: "PowerOff"}
    asyncio.run(RT.sync_network(world.steps(), net, None))
    assert report(agent, 0) == {router.name: "PowerOn"}
    assert entries(agent, 0, router.name) == expected(world, vms)

    # withdraw one VM's entries
    asyncio.run(routing.withdraw_vm(world.steps(), vms[2]))
    world.set_vm_state(vms[2], S.DESTROYED)
    assert entries(agent, 0, router.name) == expected(world, vms[:2])

    # restartNetwork cleanup=true: a new router, every live NIC replayed, the old one gone
    asyncio.run(RT.restart_network(world.steps(), net, cleanup=True))
    [new] = world.routers(net)
    assert new.name != router.name
    assert report(agent, 0) == {new.name: "PowerOn"}
    assert entries(agent, 0, new.name) == expected(world, vms[:2])

    # idle: the network GC destroys the router and the segment goes back
    for vm in vms[:2]:
        world.set_vm_state(vm, S.STOPPED)
    asyncio.run(network_gc.collect(world.steps(), 0))
    assert asyncio.run(network_gc.collect(world.steps(), 0)) == [net]
    assert report(agent, 0) == {} and held(agent, 0) == {}
    assert world.vnets() == []
