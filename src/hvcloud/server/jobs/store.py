"""Job-table operations. Every function takes a session; callers own the transaction.

Claiming takes ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two servers never claim one
job; on SQLite (one writer at a time) a conditional ``UPDATE … WHERE phase = <seen phase>`` does the
same, and a lost race simply claims nothing. Every write a worker makes afterwards is fenced on
``owner_server_id``: once a job was taken over, the old owner's late writes change nothing.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, delete, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from hvcloud.server.db.models import AsyncJob, new_id, utcnow
from hvcloud.server.errors import INTERNAL_ERROR as INTERNAL_ERROR

IN_PROGRESS = 0
SUCCEEDED = 1
FAILED = 2

PHASE_QUEUED = "queued"
PHASE_RUNNING = "running"
PHASE_RECOVER = "recover"
PHASE_DONE = "done"
CLAIMABLE = (PHASE_QUEUED, PHASE_RECOVER)
#: the order claims take the phases in: interrupted jobs before new ones
CLAIMABLE_ORDER = (PHASE_RECOVER, PHASE_QUEUED)


def now_us() -> int:
    return time.time_ns() // 1000


def precise_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    handler: str
    command: str
    params: dict[str, Any]
    account_id: str
    user_id: str
    instance_id: str | None
    recovering: bool
    attempt: int


def submit(db: Session, *, account_id: str, user_id: str, command: str, handler: str,
           params: dict[str, Any] | None = None, instance_type: str | None = None,
           instance_id: str | None = None, object_key: str | None = None) -> AsyncJob:
    """Queue a job in the caller's transaction; it becomes visible to workers when that commits.
    Written with the caller's other changes (its id is known at once), so that a request's writes
    all go out at its end."""
    job = AsyncJob(id=new_id(), account_id=account_id, user_id=user_id, command=command, handler=handler,
                   params_json=json.dumps(params or {}), instance_type=instance_type,
                   instance_id=instance_id, object_key=object_key, phase=PHASE_QUEUED,
                   status=IN_PROGRESS, result_code=0, queued_us=now_us())
    db.add(job)
    return job


def record_finished(db: Session, *, account_id: str, user_id: str, command: str, body: dict[str, Any],
                    error_code: int | None = None, instance_type: str | None = None,
                    instance_id: str | None = None) -> AsyncJob:
    """A job whose work was done inside the request: written already finished."""
    job = AsyncJob(account_id=account_id, user_id=user_id, command=command, instance_type=instance_type,
                   instance_id=instance_id, phase=PHASE_DONE, queued_us=now_us(), completed=utcnow(),
                   status=SUCCEEDED if error_code is None else FAILED, result_code=error_code or 0,
                   result_json=json.dumps(body), proc_percent=100)
    db.add(job)
    db.flush()
    return job


@functools.lru_cache(maxsize=512)
def _claimable_query(phase: str, limit: int, for_update: bool) -> Any:
    """Runnable jobs of one phase in queue order: one phase per query, so that the database walks
    the (phase, queued_us, id) index and stops after ``limit`` rows instead of sorting the queue.
    Built once per shape (the dispatcher claims after every job) and as plain columns."""
    earlier = aliased(AsyncJob)
    blocked = exists().where(
        earlier.object_key == AsyncJob.object_key, earlier.status == IN_PROGRESS, earlier.id != AsyncJob.id,
        or_(earlier.queued_us < AsyncJob.queued_us,
            and_(earlier.queued_us == AsyncJob.queued_us, earlier.id < AsyncJob.id)))
    stmt = (select(AsyncJob.id, AsyncJob.handler, AsyncJob.command, AsyncJob.params_json, AsyncJob.account_id,
                   AsyncJob.user_id, AsyncJob.instance_id, AsyncJob.attempts)
            .where(AsyncJob.phase == phase, AsyncJob.handler.is_not(None),
                   or_(AsyncJob.object_key.is_(None), ~blocked))
            .order_by(AsyncJob.queued_us, AsyncJob.id)
            .limit(limit))
    return stmt.with_for_update(skip_locked=True, of=AsyncJob) if for_update else stmt


def claim(db: Session, server_id: str, limit: int) -> list[ClaimedJob]:
    """Take up to ``limit`` runnable jobs for ``server_id`` (the caller commits): jobs to recover
    first, then queued ones, each in queue order."""
    postgres = db.get_bind().dialect.name == "postgresql"
    claimed: list[ClaimedJob] = []
    for phase in CLAIMABLE_ORDER:
        if len(claimed) >= limit:
            break
        rows = db.execute(_claimable_query(phase, limit - len(claimed), postgres)).all()
        claimed.extend(_take(db, server_id, phase, rows))
    return claimed


def _take(db: Session, server_id: str, phase: str, rows: Sequence[Row[Any]]) -> list[ClaimedJob]:
    claimed: list[ClaimedJob] = []
    for job in rows:
        result = db.execute(update(AsyncJob)
                            .where(AsyncJob.id == job.id, AsyncJob.phase == phase)
                            .values(phase=PHASE_RUNNING, owner_server_id=server_id,
                                    attempts=AsyncJob.attempts + 1, started=utcnow())
                            .execution_options(synchronize_session=False))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            continue
        claimed.append(ClaimedJob(id=job.id, handler=job.handler or "", command=job.command,
                                  params=json.loads(job.params_json or "{}"), account_id=job.account_id,
                                  user_id=job.user_id, instance_id=job.instance_id,
                                  recovering=phase == PHASE_RECOVER, attempt=job.attempts + 1))
    return claimed


def write_progress(db: Session, job_id: str, server_id: str, percent: int, text: str | None) -> bool:
    result = db.execute(update(AsyncJob)
                        .where(AsyncJob.id == job_id, AsyncJob.owner_server_id == server_id,
                               AsyncJob.phase == PHASE_RUNNING)
                        .values(proc_percent=percent, proc_text=text[:255] if text else None))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def finish(db: Session, job_id: str, server_id: str, body: dict[str, Any], error_code: int | None) -> bool:
    """Record a job's result; False when this server no longer owns the job (it was taken over)."""
    values: dict[str, Any] = {"phase": PHASE_DONE, "completed": utcnow(), "result_json": json.dumps(body)}
    if error_code is None:
        values.update(status=SUCCEEDED, result_code=0, proc_percent=100)
    else:
        values.update(status=FAILED, result_code=error_code)
    result = db.execute(update(AsyncJob)
                        .where(AsyncJob.id == job_id, AsyncJob.owner_server_id == server_id,
                               AsyncJob.phase == PHASE_RUNNING)
                        .values(**values))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def release_for_recovery(db: Session, server_id: str) -> int:
    """Hand every job ``server_id`` was running back to the queue as ``recover``."""
    result = db.execute(update(AsyncJob)
                        .where(AsyncJob.owner_server_id == server_id, AsyncJob.phase == PHASE_RUNNING)
                        .values(phase=PHASE_RECOVER, owner_server_id=None))
    return int(result.rowcount)  # type: ignore[attr-defined]


def purge_finished(db: Session, older_than_seconds: float, limit: int = 1000) -> int:
    """Delete up to ``limit`` jobs that finished more than ``older_than_seconds`` ago (CloudStack's
    ``job.expire.minutes``); jobs in progress are never touched, whatever their age."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    expired = (select(AsyncJob.id)
               .where(AsyncJob.phase == PHASE_DONE, AsyncJob.status != IN_PROGRESS, AsyncJob.completed < cutoff)
               .order_by(AsyncJob.completed).limit(limit))
    ids = list(db.scalars(expired))
    if not ids:
        return 0
    result = db.execute(delete(AsyncJob).where(AsyncJob.id.in_(ids), AsyncJob.phase == PHASE_DONE)
                        .execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def error_body(code: int, text: str) -> dict[str, Any]:
    return {"errorcode": code, "errortext": text}
