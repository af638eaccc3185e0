"""Implementing networks under concurrency on PostgreSQL (row locks, not SQLite's one writer): first
deploys racing on one network start one router and take one segment id; networks racing for the
same lowest free id each get a different one (the ``guest_vnet`` primary key and a retry)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import DomainRouter, GuestVnet
from hvcloud.server.orchestration.networks import routing
from hvcloud.server.state import ServerState
from tests.support.postgres import fresh_pg_database
from tests.support.router_world import World, build_world

pytestmark = pytest.mark.postgres


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with fresh_pg_database() as url:
        config = ServerConfig.build(tmp_path / "data", db_url=url)
        state = ServerState.open(replace(config, manage_agents=False))
        try:
            yield build_world(state, vnet_range="9000-9099")
        finally:
            state.close()


def test_racing_first_deploys_on_many_networks(world: World) -> None:
    nets = [world.network(f"n{i}", f"10.3.{i}.0/24") for i in range(6)]
    vms = [(nets[i % 6], world.vm(nets[i % 6])) for i in range(24)]

    async def deploy() -> None:
        await asyncio.gather(*(routing.prepare_vm_start(world.steps(), vm, world.hosts[i % 2])
                               for i, (_net, vm) in enumerate(vms)))
    asyncio.run(deploy())

    with world.state.sessions() as db:
        per_network = dict(db.execute(select(DomainRouter.network_id, func.count()).group_by(DomainRouter.network_id))
                           .all())
        assert per_network == {n: 1 for n in nets}, "one router per network"
        taken = db.execute(select(GuestVnet.vnet, GuestVnet.network_id)).all()
    assert sorted(v for v, _n in taken) == list(range(9000, 9006)), "the lowest ids, each once"
    assert sorted(n for _v, n in taken) == sorted(nets)
    for net in nets:
        [router] = world.routers(net)
        hosted = world.agents.leases(router.host_id or "", router.name)
        assert len(hosted) == 4, f"network {net}: every VM's lease on its one router"
