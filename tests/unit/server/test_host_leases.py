"""Host ownership rules (``host_leases``) on a real, migrated SQLite database: claiming, releasing,
rebalancing, dead owners, explicit takes and the write fence. Concurrency on PostgreSQL is in
``tests/integration/server/test_host_leases_postgres.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from hvcloud.server.db.models import Host
from hvcloud.server.jobs import leases
from hvcloud.server.orchestration import host_leases
from hvcloud.server.orchestration.host_leases import ClaimOutcome, fair_share
from tests.support.host_lease_db import add_hosts, open_db, owned_by, owners, start_server

LEASE = 30.0


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine, factory = open_db(f"sqlite:///{tmp_path / 'leases.db'}")
    yield factory
    engine.dispose()


def run_pass(sessions: sessionmaker[Session], server_id: str) -> ClaimOutcome:
    with sessions.begin() as db:
        return host_leases.claim_pass(db, server_id, LEASE)


@pytest.mark.parametrize(("hosts", "servers", "share"), [
    (0, 1, 0), (1, 1, 1), (6, 1, 6), (6, 2, 3), (7, 2, 4), (7, 3, 3), (2, 3, 1), (1000, 3, 334), (5, 0, 5)])
def test_fair_share(hosts: int, servers: int, share: int) -> None:
    assert fair_share(hosts, servers) == share


def test_a_single_server_claims_every_host(sessions: sessionmaker[Session]) -> None:
    hosts = add_hosts(sessions, 5)
    me = start_server(sessions)
    outcome = run_pass(sessions, me)
    assert outcome.claimed == tuple(hosts) and outcome.released == ()
    assert outcome.owned == frozenset(hosts) and outcome.share == 5 and outcome.live_servers == 1
    assert owned_by(sessions, me) == hosts
    again = run_pass(sessions, me)
    assert again.claimed == () and again.released == () and again.owned == frozenset(hosts)


def test_a_server_counts_itself_live_before_its_first_heartbeat(sessions: sessionmaker[Session]) -> None:
    hosts = add_hosts(sessions, 3)
    outcome = run_pass(sessions, "11111111-1111-4111-8111-111111111111")
    assert outcome.live_servers == 1 and outcome.owned == frozenset(hosts)


def test_a_joining_server_gets_half_by_rebalance(sessions: sessionmaker[Session]) -> None:
    hosts = add_hosts(sessions, 6)
    a = start_server(sessions)
    run_pass(sessions, a)
    b = start_server(sessions)
    early = run_pass(sessions, b)  # all six are owned by a live server: nothing to take yet
    assert early.claimed == () and early.share == 3
    shed = run_pass(sessions, a)
    assert shed.released == tuple(hosts[3:]) and shed.owned == frozenset(hosts[:3])
    assert owners(sessions)[hosts[5]] is None
    joined = run_pass(sessions, b)
    assert joined.claimed == tuple(hosts[3:])
    assert owned_by(sessions, a) == hosts[:3] and owned_by(sessions, b) == hosts[3:]
    for server in (a, b, a, b):  # balanced: further passes change nothing
        outcome = run_pass(sessions, server)
        assert outcome.claimed == () and outcome.released == ()


def test_three_servers_converge_and_every_host_has_exactly_one_owner(sessions: sessionmaker[Session]) -> None:
    hosts = add_hosts(sessions, 7)
    servers = [start_server(sessions) for _ in range(3)]
    for _ in range(3):
        for server in servers:
            run_pass(sessions, server)
    counts = sorted(len(owned_by(sessions, s)) for s in servers)
    assert counts == [1, 3, 3]
    assert set(owners(sessions)) == set(hosts) and None not in owners(sessions).values()


def test_a_dead_servers_hosts_move_to_the_survivor(sessions: sessionmaker[Session]) -> None:
    hosts = add_hosts(sessions, 6)
    a, b = start_server(sessions), start_server(sessions)
    for server in (a, b, a, b):
        run_pass(sessions, server)
    victim = owned_by(sessions, b)
    assert len(victim) == 3
    start_server(sessions, b, age=LEASE + 1)  # b's heartbeat is now older than the lease
    outcome = run_pass(sessions, a)
    assert outcome.live_servers == 1 and outcome.share == 6
    assert outcome.claimed == tuple(victim)
    assert owned_by(sessions, a) == hosts
    with sessions() as db:
        assert all(db.get(Host, h).owner_since is not None for h in hosts)  # type: ignore[union-attr]


def test_a_signed_off_server_is_dead_at_once(sessions: sessionmaker[Session]) -> None:
    hosts = add_hosts(sessions, 4)
    a, b = start_server(sessions), start_server(sessions)
    for server in (a, b, a, b):
        run_pass(sessions, server)
    with sessions.begin() as db:
        leases.sign_off(db, b)  # heartbeat still fresh, but Down
        assert b not in leases.live_server_ids(db, LEASE)
    assert run_pass(sessions, a).owned == frozenset(hosts)


def test_a_server_past_its_lease_is_dead_even_before_it_is_marked_down(sessions: sessionmaker[Session]) -> None:
    add_hosts(sessions, 2)
    a = start_server(sessions)
    b = start_server(sessions, age=LEASE + 5)
    with sessions() as db:
        live = leases.live_server_ids(db, LEASE)
        row = db.get(leases.ManagementServer, b)
        assert row is not None and row.state == leases.STATE_UP
    assert live == {a}
    assert run_pass(sessions, b).live_servers == 2  # b itself still counts itself


def test_release_take_and_the_write_fence(sessions: sessionmaker[Session]) -> None:
    hosts = add_hosts(sessions, 3)
    a = start_server(sessions)
    assert run_pass(sessions, a).owned == frozenset(hosts)
    b = start_server(sessions)
    with sessions.begin() as db:
        assert host_leases.take(db, hosts[0], b)
        assert not host_leases.take(db, "00000000-0000-4000-8000-000000000000", b)
    with sessions.begin() as db:
        host = db.get(Host, hosts[0])
        assert host is not None and host_leases.owns(host, b) and not host_leases.owns(host, a)
        assert host_leases.owner_if_alive(db, hosts[0], LEASE) == b
        assert host_leases.release(db, a, (hosts[0],)) == 0  # a no longer owns it: nothing changes
        assert host_leases.release(db, a, ()) == 0
        assert host_leases.release(db, a) == 2
    assert owners(sessions) == {hosts[0]: b, hosts[1]: None, hosts[2]: None}
    start_server(sessions, b, age=LEASE + 1)
    with sessions() as db:
        assert host_leases.owner_if_alive(db, hosts[0], LEASE) is None
        assert host_leases.owner_if_alive(db, hosts[1], LEASE) is None


def test_rules_are_deterministic(tmp_path: Path) -> None:
    """The same rows and the same live servers give the same owners, run after run."""
    results = []
    for run in range(2):
        engine, factory = open_db(f"sqlite:///{tmp_path / f'run{run}.db'}")
        try:
            hosts = add_hosts(factory, 9)
            servers = [start_server(factory, f"{i}0000000-0000-4000-8000-000000000000") for i in range(1, 4)]
            for _ in range(2):
                for server in servers:
                    run_pass(factory, server)
            results.append([sorted(hosts.index(h) for h in owned_by(factory, s)) for s in servers])
        finally:
            engine.dispose()
    assert results[0] == results[1]
    assert sorted(len(r) for r in results[0]) == [3, 3, 3]
