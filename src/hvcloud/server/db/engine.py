"""Engine and session factory for SQLite (WAL) and PostgreSQL.

SQLite lets one connection write at a time; a writer that finds the database locked polls with
SQLite's busy handler, sleeping up to 100 ms between tries, so under a few dozen concurrent writers
the lock sat idle while waiters slept and request latency grew long tails. This process therefore
queues its own writers on a Python lock per database file before they reach SQLite
(:class:`SerialisedWrites`): a writer takes it at its first write statement and gives it back when its
transaction commits or rolls back, and the next one starts at once. The lock also holds an ``flock``
on a file beside the database (:class:`WriteLock`), so that several server processes on one host can
share the file (to use more than one core) and queue the same way; reads (WAL) never wait.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: the thread lock only
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_FILE_NAME = "hvcloud.db"
SQLITE_BUSY_SECONDS = 10.0
#: SQLite connections are cheap; enough for every API and job worker thread to hold one
SQLITE_POOL_SIZE = 16
SQLITE_POOL_OVERFLOW = 48
_READ_PREFIXES = ("SELECT", "PRAGMA", "EXPLAIN")
_write_locks: dict[str, WriteLock] = {}
#: beside the database file: the lock file that queues writers of several processes
LOCK_FILE_SUFFIX = "-writelock"
_write_locks_guard = threading.Lock()


def default_sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / SQLITE_FILE_NAME).resolve()}"


def normalise_url(url: str) -> str:
    """Let ``postgresql://`` URLs use psycopg 3, the driver we ship."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://"):]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_SECONDS * 1000)}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class WriteLock:
    """A database file's write lock. A thread lock queues this process's writers; an ``flock`` on
    ``<database>-writelock`` then queues them with the writers of other server processes on the same
    host sharing the file, waiting at most a few milliseconds past a release instead of sleeping in
    SQLite's busy handler (up to 100 ms a try). In-memory databases, and systems without ``flock``,
    have the thread lock only."""

    def __init__(self, database: str) -> None:
        private = database in ("", ":memory:") or database.startswith("file:") or fcntl is None
        self.path = None if private else database + LOCK_FILE_SUFFIX
        self._thread = threading.Lock()
        self._fd: int | None = None

    def locked(self) -> bool:
        return self._thread.locked()

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self._thread.acquire(timeout=timeout):
            return False
        if self.path is None:
            return True
        try:
            if self._across_processes(deadline):
                return True
        except BaseException:
            self._thread.release()
            raise
        self._thread.release()
        return False

    def _across_processes(self, deadline: float) -> bool:
        assert fcntl is not None and self.path is not None
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        pause = 0.0002
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, 0.002)

    def release(self) -> None:
        try:
            if self._fd is not None and fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread.release()


def write_lock_for(database: str) -> WriteLock:
    """The lock the writers of ``database`` queue on (one per database file and process)."""
    with _write_locks_guard:
        lock = _write_locks.get(database)
        if lock is None:
            lock = _write_locks[database] = WriteLock(database)
        return lock


def is_write(sql: str) -> bool:
    return not sql.lstrip().upper().startswith(_READ_PREFIXES)


class SerialisedWrites(sqlite3.Connection):
    """A SQLite connection that holds its database's process-wide write lock from its first write
    statement until its transaction ends. Waiting longer than the busy timeout raises "database is
    locked", as SQLite would."""

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._write_lock = write_lock_for(str(database))
        self._writing = False

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or WriteAwareCursor)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any:
        return self.cursor().executemany(sql, seq_of_parameters)

    def executescript(self, sql_script: str, /) -> Any:
        return self.cursor().executescript(sql_script)

    def before_statement(self, sql: str) -> None:
        if self._writing or not is_write(sql):
            return
        if not self._write_lock.acquire(SQLITE_BUSY_SECONDS):
            raise sqlite3.OperationalError("database is locked")
        self._writing = True

    def _end(self) -> None:
        if self._writing:
            self._writing = False
            self._write_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._end()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._end()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._end()


class WriteAwareCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        self.connection.before_statement(sql)  # type: ignore[attr-defined]
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any:
        self.connection.before_statement(sql)  # type: ignore[attr-defined]
        return super().executemany(sql, seq_of_parameters)

    def executescript(self, sql_script: str, /) -> Any:
        self.connection.before_statement("SCRIPT")  # type: ignore[attr-defined]
        return super().executescript(sql_script)


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        in_memory = make_url(url).database in (None, "", ":memory:")
        pool: dict[str, Any] = {} if in_memory else {"pool_size": SQLITE_POOL_SIZE,
                                                      "max_overflow": SQLITE_POOL_OVERFLOW}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS,
                                                  "factory": SerialisedWrites}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
