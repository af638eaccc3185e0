"""Job handlers: plain async functions registered by name, and the context they run in.

A handler declares what the engine may do with a job its server was running when it died:

* ``resumable=True`` — running the handler again from the start is safe (it is idempotent, or it
  checks what an earlier attempt left behind); the job is simply run again.
* ``rollback=...`` — otherwise the rollback function undoes whatever a partial run may have done and
  the job fails with a clear "rolled back" error. Rollbacks must be idempotent: a server may die
  during a rollback too. The rollback also runs when the handler fails on its own.

A handler that declares neither cannot be registered, so no job can be left half-done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from hvcloud.server.errors import CloudError

if TYPE_CHECKING:
    from hvcloud.server.orchestration.agents.protocol import AgentSender
    from hvcloud.server.state import ServerState

HandlerFn = Callable[["JobContext"], Awaitable[dict[str, Any]]]
RollbackFn = Callable[["JobContext"], Awaitable[None]]
ProgressWriter = Callable[[str, int, str | None], None]


class JobFailure(CloudError):
    """A handler's deliberate failure: becomes ``jobstatus`` 2 with this ``errorcode``."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(code, text)


@dataclass(frozen=True)
class JobHandler:
    name: str
    run: HandlerFn
    resumable: bool = False
    rollback: RollbackFn | None = None


HANDLERS: dict[str, JobHandler] = {}


def register(name: str, run: HandlerFn, *, resumable: bool = False, rollback: RollbackFn | None = None,
             replace: bool = False) -> JobHandler:
    if not resumable and rollback is None:
        raise ValueError(f"job handler {name} must be resumable or provide a rollback")
    if name in HANDLERS and not replace:
        raise ValueError(f"job handler {name} registered twice")
    handler = JobHandler(name, run, resumable, rollback)
    HANDLERS[name] = handler
    return handler


def job_handler(name: str, *, resumable: bool = False,
                rollback: RollbackFn | None = None) -> Callable[[HandlerFn], HandlerFn]:
    """Decorator form of :func:`register`."""

    def decorate(fn: HandlerFn) -> HandlerFn:
        register(name, fn, resumable=resumable, rollback=rollback)
        return fn

    return decorate


@dataclass
class JobContext:
    """What a handler gets: its parameters, the database, progress reporting and optional services.

    ``agents`` is the AgentManager when the server runs one (``None`` otherwise); ``recovering`` is
    true when this run resumes a job an earlier server process did not finish.
    """

    job_id: str
    command: str
    params: dict[str, Any]
    account_id: str
    user_id: str
    instance_id: str | None
    sessions: sessionmaker[Session]
    state: ServerState
    agents: AgentSender | None
    recovering: bool
    attempt: int
    _write_progress: ProgressWriter = field(repr=False)
    _last: tuple[int, str | None] = (-1, None)
    #: the server running the job: writes made inside a handler's own transactions are fenced on it
    server_id: str = ""
    #: set by :meth:`finish_in`: None until then, then whether this server still owned the job
    finished_here: bool | None = None

    def progress_sync(self, percent: int, text: str | None = None) -> None:
        """Record progress from a worker thread; unchanged values are not written again."""
        percent = max(0, min(100, int(percent)))
        if (percent, text) == self._last:
            return
        self._last = (percent, text)
        self._write_progress(self.job_id, percent, text)

    async def progress(self, percent: int, text: str | None = None) -> None:
        await asyncio.to_thread(self.progress_sync, percent, text)

    def progress_in(self, db: Session, percent: int, text: str | None = None) -> None:
        """Record progress inside a transaction the handler runs anyway (one commit fewer)."""
        from hvcloud.server.jobs import store

        self._last = (percent, text)
        store.write_progress(db, self.job_id, self.server_id, percent, text)

    def finish_in(self, db: Session, body: dict[str, Any]) -> dict[str, Any]:
        """Record the job's success inside the handler's last transaction, so that its last state
        change and the job's result commit together; the engine then writes nothing more. The
        handler must return right after that transaction commits."""
        from hvcloud.server.jobs import store

        self.finished_here = store.finish(db, self.job_id, self.server_id, body, None)
        return body
