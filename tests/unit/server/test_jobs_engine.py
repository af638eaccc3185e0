"""The job engine in-process on SQLite: per-object order, parallelism, progress, results, recovery."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update

from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import AsyncJob, ManagementServer, User
from hvcloud.server.jobs import leases, store
from hvcloud.server.jobs.engine import INTERNAL_ERROR_TEXT, ROLLED_BACK_TEXT, EngineSettings, JobEngine
from hvcloud.server.jobs.handlers import HANDLERS, JobContext, JobFailure, job_handler, register
from hvcloud.server.state import ServerState

EVENTS: list[tuple[str, Any]] = []
GATES: dict[str, asyncio.Event] = {}


def _gate(name: str) -> asyncio.Event:
    return GATES.setdefault(name, asyncio.Event())


async def _record(ctx: JobContext) -> dict[str, Any]:
    key = ctx.params["key"]
    EVENTS.append(("start", key))
    for name in ctx.params.get("open", []):
        _gate(name).set()
    for wait_for in ctx.params.get("wait", []):
        await asyncio.wait_for(_gate(wait_for).wait(), 20)
    await asyncio.sleep(ctx.params.get("sleep", 0))
    EVENTS.append(("end", key))
    return {"key": key}


async def _rollback_record(ctx: JobContext) -> None:
    EVENTS.append(("rollback", ctx.params["key"]))


register("test.record", _record, resumable=True, replace=True)
register("test.undoable", _record, rollback=_rollback_record, replace=True)


async def _progress(ctx: JobContext) -> dict[str, Any]:
    await ctx.progress(40, "copying")
    _gate("progress-written").set()
    await asyncio.wait_for(_gate("progress-seen").wait(), 20)
    return {"success": True}


async def _fails(ctx: JobContext) -> dict[str, Any]:
    if ctx.params.get("kind") == "api":
        raise JobFailure(431, "bad thing")
    if ctx.params.get("kind") == "db":
        with ctx.sessions.begin() as db:
            db.execute(text("INSERT INTO no_such_table (secret_column) VALUES ('s3cret-value')"))
    raise RuntimeError("boom")


register("test.progress", _progress, resumable=True, replace=True)
register("test.fails", _fails, rollback=_rollback_record, replace=True)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[ServerState]:
    EVENTS.clear()
    GATES.clear()
    st = ServerState.open(ServerConfig.build(tmp_path / "data"))
    yield st
    st.close()


def _admin(state: ServerState) -> tuple[str, str]:
    with state.sessions() as db:
        user = db.scalars(select(User).where(User.username == "admin")).one()
        return user.account_id, user.id


def submit(state: ServerState, handler: str, object_key: str | None = None, **params: Any) -> str:
    account_id, user_id = _admin(state)
    with state.sessions.begin() as db:
        return store.submit(db, account_id=account_id, user_id=user_id, command="test", handler=handler,
                            params=params, object_key=object_key).id


def job_row(state: ServerState, job_id: str) -> AsyncJob:
    with state.sessions() as db:
        job = db.get(AsyncJob, job_id)
        assert job is not None
        return job


async def wait_done(state: ServerState, *job_ids: str) -> list[AsyncJob]:
    for _ in range(2000):
        rows = [await asyncio.to_thread(job_row, state, j) for j in job_ids]
        if all(r.status != store.IN_PROGRESS for r in rows):
            return rows
        await asyncio.sleep(0.01)
    raise AssertionError(f"jobs still running: {[(r.id, r.phase) for r in rows]}")


def run(state: ServerState, body: Callable[[JobEngine], Awaitable[None]], *,
        server_id: str = "00000000-0000-4000-8000-000000000001", **settings: Any) -> None:
    async def main() -> None:
        engine = JobEngine(state, server_id, EngineSettings(poll_seconds=0.02, **settings))
        await engine.start()
        try:
            await body(engine)
        finally:
            await engine.stop()

    asyncio.run(main())


def test_jobs_on_one_object_run_in_submission_order(state: ServerState) -> None:
    ids = [submit(state, "test.record", "VirtualMachine:a", key=f"a{i}", sleep=0.01) for i in range(5)]

    async def body(engine: JobEngine) -> None:
        await wait_done(state, *ids)

    run(state, body)
    assert [(kind, f"a{i}") for i in range(5) for kind in ("start", "end")] == EVENTS
    assert [json.loads(job_row(state, j).result_json or "")["key"] for j in ids] == [f"a{i}" for i in range(5)]


def test_jobs_on_different_objects_run_in_parallel(state: ServerState) -> None:
    # a1 waits for b1 and b1 waits for a1: this only completes when both run at the same time
    a = submit(state, "test.record", "Volume:a", key="a1", wait=["b"], open=["a"])
    b = submit(state, "test.record", "Volume:b", key="b1", wait=["a"], open=["b"])
    a2 = submit(state, "test.record", "Volume:a", key="a2")

    async def body(engine: JobEngine) -> None:
        rows = await wait_done(state, a, b, a2)
        assert [r.status for r in rows] == [store.SUCCEEDED] * 3

    run(state, body)
    assert EVENTS.index(("end", "a1")) < EVENTS.index(("start", "a2"))


def test_worker_limit_is_respected(state: ServerState) -> None:
    ids = [submit(state, "test.record", None, key=f"k{i}", sleep=0.05) for i in range(6)]
    seen: list[int] = []

    async def body(engine: JobEngine) -> None:
        for _ in range(200):
            seen.append(engine.running)
            await asyncio.sleep(0.005)
        await wait_done(state, *ids)

    run(state, body, workers=2)
    assert max(seen) == 2


def test_progress_is_visible_while_running(state: ServerState) -> None:
    job_id = submit(state, "test.progress")

    async def body(engine: JobEngine) -> None:
        await asyncio.wait_for(_gate("progress-written").wait(), 20)
        row = await asyncio.to_thread(job_row, state, job_id)
        assert (row.status, row.phase, row.proc_percent, row.proc_text) == (0, "running", 40, "copying")
        _gate("progress-seen").set()
        (done,) = await wait_done(state, job_id)
        assert done.status == store.SUCCEEDED and done.proc_percent == 100

    run(state, body)


def test_failures_become_cloudstack_results_and_roll_back(state: ServerState) -> None:
    api = submit(state, "test.fails", key="f1", kind="api")
    crash = submit(state, "test.fails", key="f2", kind="bug")
    db_error = submit(state, "test.fails", key="f3", kind="db")
    unknown = submit(state, "test.no-such-handler")

    async def body(engine: JobEngine) -> None:
        await wait_done(state, api, crash, db_error, unknown)

    run(state, body)
    rows = {j: job_row(state, j) for j in (api, crash, db_error, unknown)}
    assert (rows[api].status, rows[api].result_code) == (2, 431)
    assert json.loads(rows[api].result_json or "") == {"errorcode": 431, "errortext": "bad thing"}
    for unexpected in (crash, db_error):
        # an unexpected exception is logged in full on the server; the answer never quotes it (a
        # database error's text carries its SQL statement and parameters)
        assert rows[unexpected].result_code == 530
        assert json.loads(rows[unexpected].result_json or "") == {"errorcode": 530, "errortext": INTERNAL_ERROR_TEXT}
    assert rows[unknown].result_code == 530
    assert ("rollback", "f1") in EVENTS and ("rollback", "f2") in EVENTS and ("rollback", "f3") in EVENTS


def test_handlers_must_be_resumable_or_undoable() -> None:
    async def nothing(ctx: JobContext) -> dict[str, Any]:
        return {}

    with pytest.raises(ValueError, match="resumable or provide a rollback"):
        register("test.neither", nothing)
    with pytest.raises(ValueError, match="twice"):
        job_handler("test.record", resumable=True)(nothing)
    assert "test.neither" not in HANDLERS


def _leave_running(state: ServerState, job_id: str, owner: str) -> None:
    """What a server that died mid-job leaves in the table."""
    with state.sessions.begin() as db:
        db.execute(update(AsyncJob).where(AsyncJob.id == job_id)
                   .values(phase=store.PHASE_RUNNING, owner_server_id=owner, attempts=1))


def test_restart_resumes_resumable_and_rolls_back_the_rest(state: ServerState) -> None:
    me = "00000000-0000-4000-8000-0000000000aa"
    resumable = submit(state, "test.record", "Template:t", key="r")
    undoable = submit(state, "test.undoable", "VirtualMachine:v", key="u")
    later = submit(state, "test.record", "VirtualMachine:v", key="after-u")
    for job_id in (resumable, undoable):
        _leave_running(state, job_id, me)

    async def body(engine: JobEngine) -> None:
        await wait_done(state, resumable, undoable, later)

    run(state, body, server_id=me)
    r, u, after = (job_row(state, j) for j in (resumable, undoable, later))
    assert r.status == store.SUCCEEDED and r.attempts == 2 and ("end", "r") in EVENTS
    assert u.status == store.FAILED and u.result_code == 530
    assert json.loads(u.result_json or "")["errortext"] == ROLLED_BACK_TEXT
    assert ("rollback", "u") in EVENTS and ("start", "u") not in EVENTS
    assert after.status == store.SUCCEEDED
    assert EVENTS.index(("rollback", "u")) < EVENTS.index(("start", "after-u"))


def test_a_job_interrupted_too_often_is_abandoned(state: ServerState) -> None:
    me = "00000000-0000-4000-8000-0000000000ab"
    job_id = submit(state, "test.record", key="loop")
    _leave_running(state, job_id, me)
    with state.sessions.begin() as db:
        db.execute(update(AsyncJob).where(AsyncJob.id == job_id).values(attempts=3))

    async def body(engine: JobEngine) -> None:
        await wait_done(state, job_id)

    run(state, body, server_id=me, max_attempts=3)
    row = job_row(state, job_id)
    assert row.status == store.FAILED and "abandoned after 3 interrupted attempts" in (row.result_json or "")


def test_a_dead_servers_jobs_are_taken_over(state: ServerState) -> None:
    dead = "00000000-0000-4000-8000-0000000000de"
    with state.sessions.begin() as db:
        leases.register(db, dead)
    job_id = submit(state, "test.record", "VirtualMachine:x", key="orphan")
    _leave_running(state, job_id, dead)

    async def body(engine: JobEngine) -> None:
        (row,) = await wait_done(state, job_id)
        assert row.status == store.SUCCEEDED and row.owner_server_id == engine.server_id

    run(state, body, lease_seconds=0.3)
    with state.sessions() as db:
        assert db.get(ManagementServer, dead).state == "Down"  # type: ignore[union-attr]


def test_a_live_server_keeps_its_jobs(state: ServerState) -> None:
    other = "00000000-0000-4000-8000-0000000000ef"
    job_id = submit(state, "test.record", key="kept")
    _leave_running(state, job_id, other)

    async def body(engine: JobEngine) -> None:
        # the other server heartbeats every 0.1 s while this one's lease upkeep runs five times
        # (over 0.6 s: a missed lease would have been taken over by then)
        target = engine.lease_passes + 5
        for _ in range(3000):
            if engine.lease_passes >= target:
                break
            with state.sessions.begin() as db:
                leases.register(db, other)
            await asyncio.sleep(0.1)
        assert engine.lease_passes >= target, "the lease upkeep did not run"
        assert job_row(state, job_id).phase == store.PHASE_RUNNING

    run(state, body, lease_seconds=0.6)
    assert job_row(state, job_id).owner_server_id == other


def test_late_results_of_a_taken_over_job_are_discarded(state: ServerState) -> None:
    job_id = submit(state, "test.record", key="fenced")
    _leave_running(state, job_id, "old-owner")
    with state.sessions.begin() as db:
        db.execute(update(AsyncJob).where(AsyncJob.id == job_id).values(owner_server_id="new-owner"))
        assert not store.finish(db, job_id, "old-owner", {"late": True}, None)
        assert not store.write_progress(db, job_id, "old-owner", 50, "late")
        assert store.finish(db, job_id, "new-owner", {"ok": True}, None)
    assert json.loads(job_row(state, job_id).result_json or "") == {"ok": True}


def test_graceful_stop_releases_running_jobs(state: ServerState) -> None:
    job_id = submit(state, "test.record", key="long", wait=["never"])

    async def body(engine: JobEngine) -> None:
        for _ in range(3000):
            if engine.running:
                break
            await asyncio.sleep(0.01)
        assert engine.running == 1

    run(state, body)
    row = job_row(state, job_id)
    assert (row.status, row.phase, row.owner_server_id) == (0, store.PHASE_RECOVER, None)


def test_finished_jobs_expire_and_running_ones_never_do(state: ServerState) -> None:
    old_done, new_done = submit(state, "test.record", key="old"), submit(state, "test.record", key="new")
    old_running = submit(state, "test.record", key="stuck")
    long_ago = store.precise_now() - timedelta(days=3)

    async def finish_two(engine: JobEngine) -> None:
        await wait_done(state, old_done, new_done)

    with state.sessions.begin() as db:
        db.execute(update(AsyncJob).where(AsyncJob.id == old_running)
                   .values(phase=store.PHASE_RUNNING, owner_server_id="elsewhere", queued_us=0))
    run(state, finish_two)
    with state.sessions.begin() as db:
        db.execute(update(AsyncJob).where(AsyncJob.id.in_([old_done, old_running])).values(completed=long_ago))

    async def idle(engine: JobEngine) -> None:
        for _ in range(500):
            if await asyncio.to_thread(_exists, state, old_done):
                await asyncio.sleep(0.01)
        assert not await asyncio.to_thread(_exists, state, old_done)

    run(state, idle, lease_seconds=0.15, expire_seconds=86400.0)
    assert _exists(state, new_done) and _exists(state, old_running)
    assert job_row(state, old_running).status == store.IN_PROGRESS


def _exists(state: ServerState, job_id: str) -> bool:
    with state.sessions() as db:
        return db.get(AsyncJob, job_id) is not None
