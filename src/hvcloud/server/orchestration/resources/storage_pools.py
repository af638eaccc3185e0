"""Primary storage pools: creation (secrets encrypted), edits, deletion and the maintenance job."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy.orm import Session

from hvcloud.server import errors
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import Event, StoragePool
from hvcloud.server.jobs.handlers import JobContext, register
from hvcloud.server.views.storage import pool_view

#: the name predates this module; queued jobs of earlier versions must still find their handler
JOB_MAINTENANCE = "api.storageMaintenance"


def create_pool(db: Session, box: SecretBox, pool: StoragePool, details: dict[str, str]) -> StoragePool:
    """Add ``pool`` (built from createStoragePool's parameters); ``details`` (with the URL's
    credentials) are stored encrypted."""
    pool.details_enc = box.encrypt(json.dumps(details)) if details else None
    db.add(pool)
    db.flush()
    db.refresh(pool)
    return pool


def update_pool(pool: StoragePool, *, name: str | None, tags: str | None, tags_given: bool,
                capacity_bytes: int | None, enabled: bool | None) -> StoragePool:
    if name is not None:
        if not name:
            raise errors.param_error("Storage pool name cannot be empty")
        pool.name = name
    if tags_given:
        pool.tags = tags
    if capacity_bytes is not None:
        pool.capacity_bytes = capacity_bytes
    if enabled is not None:
        if pool.state not in ("Up", "Disabled"):
            raise errors.param_error(f"Storage pool in state {pool.state} cannot be enabled or disabled")
        pool.state = "Up" if enabled else "Disabled"
    return pool


def delete_pool(db: Session, pool: StoragePool) -> None:
    db.delete(pool)


def set_maintenance(pool: StoragePool, start: bool) -> None:
    """enableStorageMaintenance (``start``) or cancelStorageMaintenance, from the states that allow it."""
    if start:
        if pool.state not in ("Up", "Disabled", "ErrorInMaintenance"):
            raise errors.param_error(f"Primary storage in state {pool.state} cannot be put into maintenance")
        pool.state = "Maintenance"
    elif pool.state not in ("Maintenance", "PrepareForMaintenance", "ErrorInMaintenance"):
        raise errors.param_error(f"Primary storage in state {pool.state} is not in maintenance")
    else:
        pool.state = "Up"


def _maintain(jctx: JobContext) -> dict[str, Any]:
    """One transaction: the state change, its event and the job's result commit together or not at
    all, so running the job again after a crash is safe."""
    pool_id, start = str(jctx.params["id"]), bool(jctx.params["start"])
    with jctx.sessions.begin() as db:
        pool = db.get(StoragePool, pool_id) if pool_id != "-1" else None
        if pool is None:
            raise errors.entity_not_found("id", pool_id)
        set_maintenance(pool, start)
        db.add(Event(event_type="MAINT.PREPARE.PS" if start else "MAINT.CANCEL.PS", level="INFO",
                     description=f"{'Preparing' if start else 'Cancelling'} maintenance of storage pool "
                                 f"{pool.name}",
                     account_id=jctx.account_id, user_id=jctx.user_id, resource_type="StoragePool",
                     resource_id=pool.id))
        return {"storagepool": pool_view(pool)}


async def run_maintenance(jctx: JobContext) -> dict[str, Any]:
    return await asyncio.to_thread(_maintain, jctx)


register(JOB_MAINTENANCE, run_maintenance, resumable=True)
