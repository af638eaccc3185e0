"""Host ownership on PostgreSQL under concurrency: sessions racing for the same hosts each get
different ones (``FOR UPDATE SKIP LOCKED`` + a conditional update), and no host ends up with two
owners or none."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from hvcloud.server.orchestration import host_leases
from hvcloud.server.orchestration.host_leases import ClaimOutcome
from tests.support.host_lease_db import add_hosts, open_db, owned_by, owners, start_server
from tests.support.postgres import fresh_pg_database

LEASE = 30.0

pytestmark = pytest.mark.postgres


@pytest.fixture
def sessions(pg_database: str) -> Iterator[sessionmaker[Session]]:
    """A database of its own (``pg_database`` skips the test when PostgreSQL is absent)."""
    with fresh_pg_database() as url:
        engine, factory = open_db(url)
        try:
            yield factory
        finally:
            engine.dispose()


def race(sessions: sessionmaker[Session], servers: list[str]) -> dict[str, ClaimOutcome]:
    """Every server runs one pass at the same instant, each in its own thread and session."""
    barrier = threading.Barrier(len(servers))
    results: dict[str, ClaimOutcome] = {}
    errors: list[BaseException] = []

    def one(server: str) -> None:
        try:
            barrier.wait(10)
            with sessions.begin() as db:
                results[server] = host_leases.claim_pass(db, server, LEASE)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def test_a_held_claim_is_skipped_not_waited_for(sessions: sessionmaker[Session]) -> None:
    hosts = add_hosts(sessions, 40)
    a, b = start_server(sessions), start_server(sessions)
    with sessions.begin() as first:
        mine = host_leases.claim_pass(first, a, LEASE)  # rows locked until this transaction ends
        assert mine.claimed == tuple(hosts[:20])
        with sessions.begin() as second:
            theirs = host_leases.claim_pass(second, b, LEASE)  # would block without SKIP LOCKED
        assert theirs.claimed == tuple(hosts[20:])
    assert owned_by(sessions, a) == hosts[:20] and owned_by(sessions, b) == hosts[20:]


@pytest.mark.parametrize("servers", [2, 4])
def test_racing_servers_claim_each_host_once(sessions: sessionmaker[Session], servers: int) -> None:
    hosts = add_hosts(sessions, 60)
    ids = [start_server(sessions) for _ in range(servers)]
    results = race(sessions, ids)
    claimed = [h for r in results.values() for h in r.claimed]
    assert len(claimed) == len(set(claimed)), "a host was claimed twice"
    assert all(len(r.owned) <= 60 // servers for r in results.values())
    for _ in range(3):
        race(sessions, ids)
    final = owners(sessions)
    assert set(final) == set(hosts) and None not in final.values()
    assert sorted(len(owned_by(sessions, s)) for s in ids) == [60 // servers] * servers


def test_survivors_race_for_a_dead_servers_hosts(sessions: sessionmaker[Session]) -> None:
    hosts = add_hosts(sessions, 30)
    a, b, c = (start_server(sessions) for _ in range(3))
    for _ in range(2):
        race(sessions, [a, b, c])
    dead = owned_by(sessions, c)
    assert len(dead) == 10
    start_server(sessions, c, age=LEASE + 1)
    results = race(sessions, [a, b])
    taken = [h for r in results.values() for h in r.claimed]
    assert sorted(taken) == dead, "each of the dead server's hosts goes to exactly one survivor"
    assert sorted(owned_by(sessions, a) + owned_by(sessions, b)) == hosts
    assert sorted(len(owned_by(sessions, s)) for s in (a, b)) == [15, 15]
