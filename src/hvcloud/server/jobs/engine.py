"""The worker pool that runs jobs inside a server process.

One dispatcher task claims runnable jobs (up to ``workers`` at a time) and runs each in its own
asyncio task; one lease task heartbeats this server and takes over dead servers' jobs. Handlers are
async and push blocking work to threads. The database is the only shared state, so any number of
server processes can run engines on one PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from hvcloud import logs
from hvcloud.server.errors import CloudError
from hvcloud.server.jobs import leases, store
from hvcloud.server.jobs.handlers import HANDLERS, JobContext, JobFailure, JobHandler

if TYPE_CHECKING:
    from hvcloud.server.orchestration.agents.protocol import AgentSender
    from hvcloud.server.state import ServerState

log = logs.get(__name__)

ROLLED_BACK_TEXT = ("The job was interrupted by a management server failure and has been rolled back; "
                    "submit it again")


@dataclass(frozen=True)
class EngineSettings:
    workers: int = 8
    poll_seconds: float = 0.5
    lease_seconds: float = 30.0
    max_attempts: int = 5
    #: finished jobs are deleted this long after they complete (CloudStack's ``job.expire.minutes``)
    expire_seconds: float = 86400.0


INTERNAL_ERROR_TEXT = "Internal error executing the job, please contact your system administrator"


def _failure_of(exc: BaseException) -> tuple[int, str]:
    """CloudStack code and text of a failure: a :class:`CloudError` (JobFailure, the API's ApiError),
    else a generic internal error. An unexpected exception's own text (a
    database error quotes its SQL and values) goes to the server log only, never to the answer."""
    if isinstance(exc, CloudError):
        return exc.code, exc.text
    return store.INTERNAL_ERROR, INTERNAL_ERROR_TEXT


class JobEngine:
    STOP_GRACE_SECONDS = 30.0

    def __init__(self, state: ServerState, server_id: str, settings: EngineSettings | None = None,
                 agents: AgentSender | None = None) -> None:
        self.state = state
        self.server_id = server_id
        self.settings = settings or EngineSettings()
        self.agents = agents
        self._sessions: sessionmaker[Session] = state.sessions
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: asyncio.Event | None = None
        self._stopped: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False
        #: lease upkeep passes done (heartbeat, take-over of dead servers' jobs, purge); tests wait on
        #: it to show that a pass ran and took nothing over
        self.lease_passes = 0

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Register this server, hand back whatever it was running before a crash, start working."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False
        released = await asyncio.to_thread(self._tx, self._start_tx)
        if released:
            log.warning("recovering jobs left running by the previous run of this server",
                        jobs=released, server=self.server_id)
        self._loops = [asyncio.create_task(self._dispatch_loop(), name="jobs-dispatch"),
                       asyncio.create_task(self._lease_loop(), name="jobs-lease")]

    def _start_tx(self, db: Session) -> int:
        leases.register(db, self.server_id)
        return store.release_for_recovery(db, self.server_id)

    async def stop(self) -> None:
        """Stop working; jobs still running are released for recovery (here or on another server).

        The loops are asked to finish rather than cancelled: cancelling one while its claim runs in
        a worker thread would let that claim commit after the release below, leaving a job marked
        running by a server that has stopped."""
        self._stopping = True
        for event in (self._wake, self._stopped):
            if event is not None:
                event.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.STOP_GRACE_SECONDS):
                await asyncio.gather(*self._loops, return_exceptions=True)
        for group in (self._loops, list(self._tasks.values())):
            for task in group:
                task.cancel()
            for task in group:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._loops = []
        await asyncio.to_thread(self._tx, self._stop_tx)

    def _stop_tx(self, db: Session) -> None:
        store.release_for_recovery(db, self.server_id)
        leases.sign_off(db, self.server_id)

    def notify(self) -> None:
        """Wake the dispatcher (thread-safe); called after a transaction that queued jobs commits."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(wake.set)

    @property
    def running(self) -> int:
        return len(self._tasks)

    # -- loops -----------------------------------------------------------------------------------

    def _tx(self, fn: Any, *args: Any) -> Any:
        with self._sessions.begin() as db:
            return fn(db, *args)

    async def _dispatch_loop(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            self._wake.clear()
            free = self.settings.workers - len(self._tasks)
            try:
                claimed = await asyncio.to_thread(self._tx, store.claim, self.server_id, free) if free > 0 else []
            except Exception:
                log.exception("claiming jobs failed")
                claimed = []
            for job in claimed:
                self._tasks[job.id] = asyncio.create_task(self._run(job), name=f"job-{job.id}")
            if claimed and len(self._tasks) < self.settings.workers:
                continue
            await self._idle(self._wake, self.settings.poll_seconds)

    @staticmethod
    async def _idle(event: asyncio.Event, seconds: float) -> None:
        """Wait for a wake-up or the poll interval. Not ``asyncio.wait_for``: on Python 3.11 it
        swallows a cancellation that arrives as the wake-up fires, and ``stop()`` then waits forever."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()

    async def _lease_loop(self) -> None:
        assert self._stopped is not None
        interval = max(self.settings.lease_seconds / 3, 0.05)
        while not self._stopping:
            await self._idle(self._stopped, interval)
            if self._stopping:
                return
            try:
                alive = await asyncio.to_thread(self._tx, leases.heartbeat, self.server_id)
                if not alive:
                    await self._declared_dead()
                taken = await asyncio.to_thread(self._tx, leases.take_over_dead, self.server_id,
                                                self.settings.lease_seconds)
                for dead_id, count in taken:
                    log.warning("a management server missed its lease; its jobs are released for recovery",
                                server=dead_id, jobs=count)
                if taken:
                    self.notify()
                purged = await asyncio.to_thread(self._tx, store.purge_finished, self.settings.expire_seconds)
                if purged:
                    log.info("purged finished jobs", jobs=purged, older_than_seconds=self.settings.expire_seconds)
                self.lease_passes += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lease upkeep failed")

    async def _declared_dead(self) -> None:
        """Another server took our jobs over (we missed the lease): stop ours, then rejoin."""
        log.error("this server was declared dead by another server; abandoning its running jobs",
                  server=self.server_id, jobs=len(self._tasks))
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.to_thread(self._tx, leases.register, self.server_id)

    # -- one job ---------------------------------------------------------------------------------

    def _context(self, job: store.ClaimedJob) -> JobContext:
        def write(job_id: str, percent: int, text: str | None) -> None:
            self._tx(store.write_progress, job_id, self.server_id, percent, text)

        return JobContext(job_id=job.id, command=job.command, params=job.params, account_id=job.account_id,
                          user_id=job.user_id, instance_id=job.instance_id, sessions=self._sessions,
                          state=self.state, agents=self.agents, recovering=job.recovering,
                          attempt=job.attempt, _write_progress=write, server_id=self.server_id)

    async def _run(self, job: store.ClaimedJob) -> None:
        try:
            ctx = self._context(job)
            body, code = await self._execute(job, ctx)
            if code is None and ctx.finished_here is not None:
                done = ctx.finished_here
            else:
                done = await asyncio.to_thread(self._tx, store.finish, job.id, self.server_id, body, code)
            if not done:
                log.warning("job finished here but was taken over meanwhile; result discarded", job=job.id)
        except asyncio.CancelledError:
            log.info("job interrupted; it stays for recovery", job=job.id)
        except Exception:
            log.exception("recording the result of a job failed; it stays for recovery", job=job.id)
        finally:
            self._tasks.pop(job.id, None)
            self.notify()

    async def _execute(self, job: store.ClaimedJob, ctx: JobContext) -> tuple[dict[str, Any], int | None]:
        handler = HANDLERS.get(job.handler)
        if handler is None:
            return store.error_body(store.INTERNAL_ERROR, f"No job handler named {job.handler}"), \
                store.INTERNAL_ERROR
        if job.attempt > self.settings.max_attempts:
            await self._rollback(handler, ctx)
            text = f"The job was abandoned after {job.attempt - 1} interrupted attempts"
            return store.error_body(store.INTERNAL_ERROR, text), store.INTERNAL_ERROR
        if job.recovering and not handler.resumable:
            await self._rollback(handler, ctx)
            return store.error_body(store.INTERNAL_ERROR, ROLLED_BACK_TEXT), store.INTERNAL_ERROR
        try:
            body = await handler.run(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            code, text = _failure_of(exc)
            if not isinstance(exc, JobFailure) and code == store.INTERNAL_ERROR:
                log.exception("job failed", job=job.id, handler=job.handler)
            await self._rollback(handler, ctx)
            return store.error_body(code, text), code
        return body, None

    async def _rollback(self, handler: JobHandler, ctx: JobContext) -> None:
        if handler.rollback is None:
            return
        try:
            await handler.rollback(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job rollback failed", job=ctx.job_id, handler=handler.name)
