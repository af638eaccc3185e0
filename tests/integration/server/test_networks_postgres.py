"""The network API on PostgreSQL, the database several management servers share: the unit suite's
network scenarios against it, and two servers giving the same segment id at once (the ``guest_vnet``
primary key lets exactly one network have it)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import GuestVnet, Network, NetworkOffering, PhysicalNetwork, User, Zone
from hvcloud.server.errors import CloudError
from hvcloud.server.orchestration.networks import networks
from hvcloud.server.state import ServerState
from tests.support.postgres import fresh_pg_database
from tests.support.server_api import Caller
from tests.unit.server.conftest import admin, http, user_caller  # noqa: F401  (fixtures, on PostgreSQL here)
from tests.unit.server.test_network_offerings_api import test_create_update_delete  # noqa: F401
from tests.unit.server.test_networks_api import (  # noqa: F401
    cloud,
    test_delete_network,
    test_list_filters,
    test_shared_network,
    test_visibility_and_ownership,
)
from tests.unit.server.test_physical_networks_api import (  # noqa: F401
    pn,
    test_shared_network_ranges,
    test_update_physical_network_range_keeps_segments_in_use,
    zone,
)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[ServerState]:
    with fresh_pg_database() as url:
        config = ServerConfig.build(tmp_path / "data", url, settings={"api.throttling.enabled": "false"})
        st = ServerState.open(replace(config, manage_agents=False))
        yield st
        st.close()


def test_one_segment_id_goes_to_one_network(state: ServerState, admin: Caller,  # noqa: F811
                                            cloud: dict[str, str]) -> None:  # noqa: F811
    """Several requests giving vlan 5060 at once, each in its own transaction: one network gets it, the
    others are refused with 431 and leave no network behind."""
    threads, start = 6, threading.Barrier(6)
    outcomes: list[str] = []

    def create(i: int) -> None:
        start.wait(30)
        try:
            with state.sessions.begin() as db:
                actor = db.scalars(select(User).where(User.username == "admin")).one()
                offering = db.scalars(select(NetworkOffering).where(
                    NetworkOffering.name == "DefaultSharedNetworkOffering")).one()
                zone_row = db.get(Zone, cloud["zoneid"])
                assert zone_row is not None
                req = networks.NetworkRequest(
                    name=f"race-{i}", display_text="race", offering=offering, zone=zone_row, owner=actor.account,
                    caller_is_admin=True, domain_id=actor.account.domain_id, vlan="5060",
                    gateway=f"192.168.{100 + i}.1", netmask="255.255.255.0", start_ip=f"192.168.{100 + i}.10",
                    physical_network=db.get(PhysicalNetwork, cloud["pn"]))
                networks.create_network(db, actor, req)
            outcomes.append("created")
        except CloudError as exc:
            assert exc.code == 431, exc.text
            outcomes.append("refused")

    workers = [threading.Thread(target=create, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert sorted(outcomes) == ["created"] + ["refused"] * (threads - 1)
    with state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(Network).where(Network.name.like("race-%"))) == 1
        vnet = db.get(GuestVnet, (cloud["pn"], 5060))
        assert vnet is not None and vnet.network_id is not None
