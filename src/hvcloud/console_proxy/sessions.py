"""The proxy's side of the database: its ``console_proxy`` row and the ``console_session`` claims.

A token opens one console whichever proxy sees it first: :meth:`SessionStore.claim` sets ``used``
in one conditional UPDATE (``used IS NULL AND expires > now``), and only the proxy whose UPDATE
changed the row goes on. Every call runs in a worker thread (``asyncio.to_thread``) so the event
loop never waits on the database, and a database that does not answer gives a refusal, not a crash.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hvcloud import logs
from hvcloud.console_proxy.tokens import ConsoleGrant
from hvcloud.server.db.engine import make_engine, make_session_factory
from hvcloud.server.db.models import ConsoleProxy, ConsoleSession, VMInstance

log = logs.get(__name__)

USED_OR_UNKNOWN = "token already used or unknown"
VM_NOT_RUNNING = "the VM is not running"
DB_UNAVAILABLE = "the console database is unavailable"
#: close reasons are stored in a 255-character column
_REASON_CHARS = 255


class SessionStore:
    """One proxy's registration and its claims, on the management server's database."""

    def __init__(self, db_url: str, name: str, url: str, engine: Engine | None = None) -> None:
        self.engine = engine if engine is not None else make_engine(db_url)
        self._sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.name = name
        self.url = url
        self.proxy_id: str | None = None

    # -- registration --------------------------------------------------------------------------------
    async def register(self) -> str:
        return await asyncio.to_thread(self._register)

    def _register(self) -> str:
        with self._sessions.begin() as db:
            row = ConsoleProxy(name=self.name, url=self.url, active_sessions=0, last_seen=_now())
            db.add(row)
            db.flush()
            self.proxy_id = row.id
        log.info("console_proxy.registered", proxy=self.proxy_id, name=self.name, url=self.url)
        return row.id

    async def beat(self, active_sessions: int) -> bool:
        """Refresh ``last_seen`` and ``active_sessions`` (re-registering if the row went away);
        False when the database did not answer."""
        try:
            await asyncio.to_thread(self._beat, active_sessions)
        except SQLAlchemyError as exc:
            log.warning("console_proxy.beat_failed", error=type(exc).__name__)
            return False
        return True

    def _beat(self, active_sessions: int) -> None:
        with self._sessions.begin() as db:
            changed = db.execute(update(ConsoleProxy).where(ConsoleProxy.id == self.proxy_id)
                                 .values(last_seen=_now(), active_sessions=active_sessions)
                                 ).rowcount  # type: ignore[attr-defined]
            if not changed:
                row = ConsoleProxy(name=self.name, url=self.url, active_sessions=active_sessions,
                                   last_seen=_now())
                if self.proxy_id is not None:
                    row.id = self.proxy_id
                db.add(row)
                db.flush()
                self.proxy_id = row.id

    async def unregister(self) -> None:
        try:
            await asyncio.to_thread(self._unregister)
        except SQLAlchemyError as exc:
            log.warning("console_proxy.unregister_failed", error=type(exc).__name__)

    def _unregister(self) -> None:
        if self.proxy_id is None:
            return
        with self._sessions.begin() as db:
            db.execute(delete(ConsoleProxy).where(ConsoleProxy.id == self.proxy_id))
        log.info("console_proxy.unregistered", proxy=self.proxy_id)

    # -- sessions ------------------------------------------------------------------------------------
    async def claim(self, grant: ConsoleGrant, client_address: str) -> str | None:
        """None when this proxy now owns the grant's console, else the reason to refuse it."""
        try:
            return await asyncio.to_thread(self._claim, grant, client_address)
        except SQLAlchemyError as exc:
            log.warning("console_proxy.claim_failed", error=type(exc).__name__)
            return DB_UNAVAILABLE

    def _claim(self, grant: ConsoleGrant, client_address: str) -> str | None:
        now = datetime.now(UTC)
        with self._sessions.begin() as db:
            vm = db.execute(select(VMInstance.state, VMInstance.removed)
                            .where(VMInstance.id == grant.vm_id)).one_or_none()
            if vm is None or vm.removed is not None or vm.state != "Running":
                return VM_NOT_RUNNING
            claimed = db.execute(
                update(ConsoleSession)
                .where(ConsoleSession.token_id == grant.token_id, ConsoleSession.vm_id == grant.vm_id,
                       ConsoleSession.used.is_(None), ConsoleSession.expires > now)
                .values(used=now, proxy_id=self.proxy_id, proxy_client_address=client_address[:64])
                .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
            return None if claimed == 1 else USED_OR_UNKNOWN

    async def close(self, token_id: str, reason: str, bytes_to_client: int, bytes_from_client: int) -> None:
        try:
            await asyncio.to_thread(self._close, token_id, reason, bytes_to_client, bytes_from_client)
        except SQLAlchemyError as exc:
            log.warning("console_proxy.close_not_recorded", error=type(exc).__name__)

    def _close(self, token_id: str, reason: str, bytes_to_client: int, bytes_from_client: int) -> None:
        with self._sessions.begin() as db:
            db.execute(update(ConsoleSession).where(ConsoleSession.token_id == token_id)
                       .values(closed=_now(), close_reason=reason[:_REASON_CHARS],
                               bytes_to_client=bytes_to_client, bytes_from_client=bytes_from_client)
                       .execution_options(synchronize_session=False))

    def dispose(self) -> None:
        self.engine.dispose()


def _now() -> datetime:
    return datetime.now(UTC)
