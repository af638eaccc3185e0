"""VM numbers come from blocks reserved in one transaction each: unique across threads and across
instances sharing a database (two servers, or one restarted), never reused."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from hvcloud.server.db.models import IdSequence
from hvcloud.server.db.sequences import BLOCK_SIZES, SequenceMissing, Sequences
from hvcloud.server.state import ServerState


def test_numbers_are_unique_across_threads_and_instances(state: ServerState) -> None:
    first, second = Sequences(state.sessions), Sequences(state.sessions)
    taken: list[int] = []
    lock = threading.Lock()

    def take(seq: Sequences) -> None:
        for _ in range(50):
            n = seq.next("vm")
            with lock:
                taken.append(n)

    threads = [threading.Thread(target=take, args=(s,)) for s in (first, second) * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == len(set(taken)) == 400 and min(taken) >= 1
    with state.sessions() as db:
        top = db.scalar(select(IdSequence.value).where(IdSequence.name == "vm"))
    assert top is not None and max(taken) <= top
    restarted = Sequences(state.sessions)
    assert restarted.next("vm") == top + 1, "a new instance starts past every block reserved before"


def test_blocks_cost_one_bump_each(state: ServerState) -> None:
    seq = Sequences(state.sessions)
    numbers = [seq.next("vm") for _ in range(BLOCK_SIZES["vm"])]
    assert numbers == list(range(1, BLOCK_SIZES["vm"] + 1))
    with state.sessions() as db:
        assert db.scalar(select(IdSequence.value).where(IdSequence.name == "vm")) == BLOCK_SIZES["vm"]
    account = [seq.next("account") for _ in range(3)]
    assert account == [account[0], account[0] + 1, account[0] + 2], "other sequences go one at a time"


def test_a_missing_sequence_is_an_error(state: ServerState) -> None:
    with pytest.raises(SequenceMissing):
        Sequences(state.sessions).next("no-such-sequence")
