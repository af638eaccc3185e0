"""The SQLite engine: this process's writers queue on one lock per database file (no busy polling),
nothing is lost under concurrent writers, every way a transaction ends gives the lock back, a writer
stuck behind another still gets SQLite's "database is locked" after the busy timeout, and reads never
wait. Also: the migrated schema is exactly what the models declare (indexes included)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from hvcloud.server.db import engine as db_engine
from hvcloud.server.db import migrate
from hvcloud.server.db.models import Base
from tests.support.counter_db import counter_engine, counter_value


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return counter_engine(tmp_path / "x.db")


def test_concurrent_writers_all_land_without_lock_errors(engine: Engine) -> None:
    errors: list[BaseException] = []

    def writer(who: int) -> None:
        try:
            for _ in range(40):
                with engine.begin() as conn:
                    before = conn.execute(text("SELECT value FROM counter WHERE id = 1")).scalar_one()
                    conn.execute(text("UPDATE counter SET value = value + 1 WHERE id = 1"))
                    conn.execute(text("INSERT INTO log (who) VALUES (:w)"), {"w": f"{who}:{before}"})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert counter_value(engine) == 16 * 40
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM log")).scalar_one() == 16 * 40


@pytest.mark.parametrize("ending", ["commit", "rollback", "error", "close"])
def test_every_end_of_a_transaction_gives_the_lock_back(engine: Engine, ending: str) -> None:
    conn = engine.connect()
    trans = conn.begin()
    conn.execute(text("UPDATE counter SET value = value + 1 WHERE id = 1"))
    if ending == "commit":
        trans.commit()
    elif ending == "rollback":
        trans.rollback()
    elif ending == "error":
        with pytest.raises(OperationalError):
            conn.execute(text("UPDATE no_such_table SET x = 1"))
        trans.rollback()
    conn.close()
    started = time.monotonic()
    with engine.begin() as other:
        other.execute(text("UPDATE counter SET value = value + 10 WHERE id = 1"))
    assert time.monotonic() - started < 5, "the second writer waited for a lock nobody held"
    assert counter_value(engine) == (11 if ending == "commit" else 10)


def test_a_writer_behind_a_stuck_one_gets_database_is_locked(engine: Engine,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_engine, "SQLITE_BUSY_SECONDS", 0.3)
    holder = engine.connect()
    holder.begin()
    holder.execute(text("UPDATE counter SET value = 100 WHERE id = 1"))
    try:
        with pytest.raises(OperationalError, match="database is locked"), engine.begin() as conn:
            conn.execute(text("UPDATE counter SET value = 200 WHERE id = 1"))
        with engine.connect() as reader:  # reads never queue behind the writer (WAL)
            assert reader.execute(text("SELECT value FROM counter WHERE id = 1")).scalar_one() == 0
    finally:
        holder.rollback()
        holder.close()
    assert counter_value(engine) == 0


def test_statement_kinds() -> None:
    for sql in ("SELECT 1", "  select * from x", "PRAGMA journal_mode", "\nEXPLAIN QUERY PLAN SELECT 1"):
        assert not db_engine.is_write(sql), sql
    for sql in ("INSERT INTO t VALUES (1)", " update t set a = 1", "DELETE FROM t", "SAVEPOINT s",
                "CREATE TABLE t (a)", "WITH x AS (SELECT 1) DELETE FROM t", "REPLACE INTO t VALUES (1)", ""):
        assert db_engine.is_write(sql), sql


def test_the_lock_is_per_database_file(tmp_path: Path) -> None:
    a = db_engine.write_lock_for(str(tmp_path / "a.db"))
    assert a is db_engine.write_lock_for(str(tmp_path / "a.db"))
    assert a is not db_engine.write_lock_for(str(tmp_path / "b.db"))
    conn = sqlite3.connect(str(tmp_path / "a.db"), factory=db_engine.SerialisedWrites)
    try:
        conn.execute("CREATE TABLE t (a)")
        assert a.locked()
        conn.commit()
        assert not a.locked()
    finally:
        conn.close()


def test_in_memory_databases_still_work() -> None:
    eng = db_engine.make_engine("sqlite://")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (a INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 1


def test_migrations_build_exactly_the_models(tmp_path: Path) -> None:
    eng = db_engine.make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    migrate.upgrade(eng)
    with eng.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_a_write_transaction_holds_the_lock_file_until_it_ends(engine: Engine, tmp_path: Path) -> None:
    """What another process's writer sees: the flock is taken at the first write and given back at
    the end, so it queues there instead of in SQLite's busy handler."""
    import fcntl
    import os

    fd = os.open(str(tmp_path / "x.db") + db_engine.LOCK_FILE_SUFFIX, os.O_RDWR)

    def free() -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True

    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT value FROM counter"))
            assert free(), "reads take no lock"
            conn.execute(text("UPDATE counter SET value = 5 WHERE id = 1"))
            assert not free()
        assert free()
    finally:
        os.close(fd)


def test_a_writer_of_another_process_holding_the_file_lock_times_out_cleanly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl
    import os

    monkeypatch.setattr(db_engine, "SQLITE_BUSY_SECONDS", 0.3)
    database = str(tmp_path / "held.db")
    eng = db_engine.make_engine(f"sqlite:///{database}")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (a INTEGER)"))
    fd = os.open(database + db_engine.LOCK_FILE_SUFFIX, os.O_RDWR)  # another process's hold, as flock sees it
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(OperationalError, match="database is locked"), eng.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        assert not db_engine.write_lock_for(database).locked(), "the thread lock was given back"
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    with eng.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
        assert conn.execute(text("SELECT a FROM t")).scalars().all() == [2]
