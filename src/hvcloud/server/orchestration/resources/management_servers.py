"""The management servers sharing the database: what each one holds (hosts it owns, jobs it runs)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hvcloud.server.db.models import AsyncJob, Host
from hvcloud.server.jobs import store


@dataclass(frozen=True)
class ServerLoad:
    hosts: dict[str, int]
    running_jobs: dict[str, int]


def loads(db: Session, server_ids: list[str]) -> ServerLoad:
    """The hosts owned and the jobs running per server, for ``server_ids`` (absent: none)."""
    hosts = {str(owner): int(n) for owner, n in db.execute(
        select(Host.owner_server_id, func.count()).where(Host.owner_server_id.in_(server_ids))
        .group_by(Host.owner_server_id))}
    jobs = {str(owner): int(n) for owner, n in db.execute(
        select(AsyncJob.owner_server_id, func.count())
        .where(AsyncJob.owner_server_id.in_(server_ids), AsyncJob.phase == store.PHASE_RUNNING)
        .group_by(AsyncJob.owner_server_id))}
    return ServerLoad(hosts=hosts, running_jobs=jobs)
