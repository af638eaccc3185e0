"""Job handlers whose whole effect is one database transaction, run as the user who submitted them.

The effect commits atomically or not at all, so running the handler again after a crash is safe:
these handlers are resumable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from hvcloud.server import errors
from hvcloud.server.db.models import User
from hvcloud.server.jobs.handlers import JobContext, register

#: ``work(jctx, db, submitter)``: the job's effect and result, inside its transaction
WorkFn = Callable[[JobContext, Session, User], dict[str, Any]]
#: ``fn(db, submitter, params)``: params are the values the command passed when it queued the job
TransactionFn = Callable[[Session, User, dict[str, Any]], dict[str, Any]]


def register_transaction(name: str, work: WorkFn) -> None:
    """Register ``work`` as the resumable job handler ``name``."""

    async def run(jctx: JobContext) -> dict[str, Any]:
        return await asyncio.to_thread(_run_in_transaction, jctx, work)

    register(name, run, resumable=True)


def transaction_job(name: str) -> Callable[[TransactionFn], TransactionFn]:
    """Register ``fn(db, submitter, params)`` as the job handler ``name``; it returns the job's result."""

    def decorate(fn: TransactionFn) -> TransactionFn:
        register_transaction(name, lambda jctx, db, submitter: fn(db, submitter, dict(jctx.params)))
        return fn

    return decorate


def _run_in_transaction(jctx: JobContext, work: WorkFn) -> dict[str, Any]:
    with jctx.sessions.begin() as db:
        user = db.get(User, jctx.user_id)
        if user is None:
            raise errors.internal("The user who submitted this job no longer exists")
        return work(jctx, db, user)
