"""The failed-login count on PostgreSQL, the database several servers share: failures arriving at
once through separate connections are all counted, and the user is disabled exactly at the threshold."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from hvcloud.server.api import auth, errors
from hvcloud.server.config import ServerConfig
from hvcloud.server.db.crypto import hash_password
from hvcloud.server.db.models import Account, Domain, User
from hvcloud.server.state import ServerState
from tests.support.postgres import fresh_pg_database


@pytest.fixture
def state(tmp_path: Path) -> Iterator[ServerState]:
    # a database of its own: the session's pg_database holds the secrets of the module-scoped
    # server processes, sealed with their data directories' keys, not this one's
    with fresh_pg_database() as url:
        st = ServerState.open(replace(ServerConfig.build(tmp_path / "data", url), manage_agents=False))
        yield st
        st.close()


def new_user(state: ServerState) -> str:
    name = f"u-{uuid.uuid4().hex[:8]}"
    with state.sessions.begin() as db:
        root = db.scalar(select(Domain).where(Domain.path == "ROOT"))
        assert root is not None
        account = Account(name=name, domain_id=root.id, account_type=0)
        db.add(account)
        db.flush()
        db.add(User(account_id=account.id, username=name, password_hash=hash_password("right"), firstname="F",
                    lastname="L"))
    return name


def fail_at_once(state: ServerState, username: str, threads: int, each: int, allowed: int) -> tuple[str, int]:
    start = threading.Barrier(threads)

    def fail() -> None:
        start.wait(30)
        for _ in range(each):
            with state.sessions() as db:
                with pytest.raises(errors.ApiError):
                    auth.login(db, username, "wrong", None, None, allowed)
                db.commit()

    workers = [threading.Thread(target=fail) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    with state.sessions() as db:
        user = db.scalar(select(User).where(User.username == username))
        assert user is not None
        return user.state, user.login_attempts


def test_concurrent_failures_are_all_counted(state: ServerState) -> None:
    assert fail_at_once(state, new_user(state), threads=4, each=4, allowed=1000) == ("enabled", 16)


def test_concurrent_failures_disable_exactly_at_the_threshold(state: ServerState) -> None:
    username = new_user(state)
    assert fail_at_once(state, username, threads=4, each=3, allowed=5) == ("disabled", 5)
    with state.sessions() as db, pytest.raises(errors.ApiError):
        auth.login(db, username, "right", None, None, 5)
