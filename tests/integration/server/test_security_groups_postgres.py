"""Security groups on PostgreSQL, the database several management servers share: the unit suite's
scenarios against it, and many transactions making one account's ``default`` group at once (the
unique (account, name) index lets one row in; every maker gets that row)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import Account, SecurityGroup
from hvcloud.server.orchestration.networks import security_groups as SG
from hvcloud.server.state import ServerState
from tests.support.postgres import fresh_pg_database
from tests.unit.server.conftest import admin, http, user_caller  # noqa: F401  (fixtures, on PostgreSQL here)
from tests.unit.server.test_security_groups_api import (  # noqa: F401
    cloud,
    hosts,
    test_deploy_joins_groups_and_shows_them,
    test_duplicates_unknown_groups_and_foreign_groups_are_refused,
    test_group_refusals_change_nothing,
    test_rule_changes_reach_every_running_member,
)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[ServerState]:
    with fresh_pg_database() as url:
        config = ServerConfig.build(tmp_path / "data", url, settings={"api.throttling.enabled": "false"})
        st = ServerState.open(replace(config, manage_agents=False))
        yield st
        st.close()


def test_one_default_group_per_account_whoever_makes_it(state: ServerState) -> None:
    threads, start = 6, threading.Barrier(6)
    made: list[str] = []

    def make() -> None:
        start.wait(30)
        with state.sessions.begin() as db:
            account = db.scalars(select(Account).where(Account.name == "admin")).one()
            made.append(SG.default_group(db, account).id)

    workers = [threading.Thread(target=make) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert len(made) == threads and len(set(made)) == 1
    with state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(SecurityGroup)
                         .where(SecurityGroup.name == SG.DEFAULT_GROUP)) == 1
