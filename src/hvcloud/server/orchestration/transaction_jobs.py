"""Job handlers whose whole effect is one database transaction, run as the user who submitted them.

The effect commits atomically or not at all, so running the handler again after a crash is safe:
these handlers are resumable. They get the job's parameters as the command passed them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from hvcloud.server import errors
from hvcloud.server.db.models import User
from hvcloud.server.jobs.handlers import JobContext, register

TransactionFn = Callable[[Session, User, dict[str, Any]], dict[str, Any]]


def transaction_job(name: str) -> Callable[[TransactionFn], TransactionFn]:
    """Register ``fn(db, submitter, params)`` as the job handler ``name``; it returns the job's result."""

    def decorate(fn: TransactionFn) -> TransactionFn:
        async def run(jctx: JobContext) -> dict[str, Any]:
            return await asyncio.to_thread(_run_in_transaction, jctx, fn)

        register(name, run, resumable=True)
        return fn

    return decorate


def _run_in_transaction(jctx: JobContext, fn: TransactionFn) -> dict[str, Any]:
    with jctx.sessions.begin() as db:
        user = db.get(User, jctx.user_id)
        if user is None:
            raise errors.internal("The user who submitted this job no longer exists")
        return fn(db, user, dict(jctx.params))
