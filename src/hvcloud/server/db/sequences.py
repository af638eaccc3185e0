"""Named counters (``id_sequence``) handed out from blocks reserved in one transaction each.

A deploy needs a VM number; bumping the row for every deploy cost a write transaction of its own per
request (on SQLite, a turn at the database's single write lock). A server instead reserves ``block``
numbers at a time and hands them out from memory. Numbers stay unique across servers and restarts
(each block is a committed bump of the row); a restart leaves the rest of its block unused, and with
several servers numbers interleave. Gaps were always allowed: a failed deploy also leaves one.
"""

from __future__ import annotations

import threading

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from hvcloud.server.db.models import IdSequence

#: numbers reserved per transaction, by sequence name (others: one at a time)
BLOCK_SIZES = {"vm": 32}


class SequenceMissing(Exception):
    pass


class Sequences:
    def __init__(self, sessions: sessionmaker[Session], block_sizes: dict[str, int] | None = None) -> None:
        self._sessions = sessions
        self._sizes = BLOCK_SIZES if block_sizes is None else block_sizes
        self._free: dict[str, range] = {}
        self._lock = threading.Lock()

    def next(self, name: str) -> int:
        with self._lock:
            free = self._free.get(name)
            if free:
                self._free[name] = free[1:]
                return free[0]
        # reserved outside the lock: the caller may hold a pooled connection of its own and the
        # reservation needs another, so no thread may wait on this lock while holding one
        block = self._reserve(name, max(self._sizes.get(name, 1), 1))
        with self._lock:
            if not self._free.get(name):
                self._free[name] = block[1:]
            # else another thread refilled meanwhile: the rest of this block is left as a gap
        return block[0]

    def _reserve(self, name: str, count: int) -> range:
        with self._sessions.begin() as db:
            db.execute(update(IdSequence).where(IdSequence.name == name).values(value=IdSequence.value + count)
                       .execution_options(synchronize_session=False))
            top = db.scalar(select(IdSequence.value).where(IdSequence.name == name))
        if top is None:
            raise SequenceMissing(f"the {name} sequence is missing")
        return range(int(top) - count + 1, int(top) + 1)
