"""The template jobs: download from a URL, copy between zones, install an upload, delete.

Registered with the job engine on import (see :mod:`hvcloud.server.orchestration.job_handlers`);
the API's template commands queue them by these names.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from hvcloud.server.db.models import TemplateStoreRef
from hvcloud.server.errors import INTERNAL_ERROR
from hvcloud.server.jobs.handlers import JobContext, JobFailure, register
from hvcloud.server.orchestration import templates as tpl
from hvcloud.server.views.templates import template_view

JOB_DOWNLOAD = "template.download"
JOB_COPY = "template.copy"
JOB_UPLOAD = "template.upload"
JOB_DELETE = "template.delete"


def _ref_body(sessions: sessionmaker[Session], ref_id: str, is_iso: bool) -> dict[str, Any]:
    with sessions() as db:
        ref = db.get(TemplateStoreRef, ref_id)
        if ref is None:
            raise JobFailure(INTERNAL_ERROR, "the template no longer exists")
        return {"iso" if is_iso else "template": template_view(ref)}



def _settings(jctx: JobContext) -> tpl.StoreSettings:
    return tpl.StoreSettings.of(jctx.state.config, jctx.state.box)


def _fail(jctx: JobContext, ref_id: str, exc: Exception, what: str) -> JobFailure:
    tpl.set_state(jctx.sessions, ref_id, tpl.DOWNLOAD_ERROR, error=str(exc))
    return JobFailure(INTERNAL_ERROR, f"{what}: {exc}")


async def _download_job(jctx: JobContext) -> dict[str, Any]:
    ref_id = str(jctx.params["ref_id"])
    settings = _settings(jctx)

    def work() -> None:
        try:
            tpl.download_template(jctx.sessions, settings, jctx.state.config, ref_id, jctx.progress_sync)
        except tpl.TemplateInstallError as exc:
            raise _fail(jctx, ref_id, exc, "Failed to download the template") from None

    await asyncio.to_thread(work)
    return await asyncio.to_thread(_ref_body, jctx.sessions, ref_id, bool(jctx.params.get("iso")))


async def _mark_unfinished_failed(jctx: JobContext) -> None:
    """Rollback of the template jobs: a copy that did not finish is marked failed, never left
    'in progress'; partial files are removed by the next attempt or deleteTemplate."""
    ref_id = str(jctx.params.get("ref_id") or jctx.params.get("dst_ref_id") or "")

    def work() -> None:
        with jctx.sessions.begin() as db:
            ref = db.get(TemplateStoreRef, ref_id)
            if ref is not None and ref.download_state in (tpl.DOWNLOAD_IN_PROGRESS, tpl.NOT_DOWNLOADED,
                                                          tpl.UPLOAD_IN_PROGRESS):
                ref.download_state = tpl.DOWNLOAD_ERROR
                ref.error_text = ref.error_text or "the job failed"
        for suffix in ("download", "copy", "upload"):
            tpl.staging_file(_settings(jctx), ref_id, suffix).unlink(missing_ok=True)

    await asyncio.to_thread(work)


async def _copy_job(jctx: JobContext) -> dict[str, Any]:
    src, dst = str(jctx.params["src_ref_id"]), str(jctx.params["dst_ref_id"])
    settings = _settings(jctx)

    def work() -> None:
        try:
            tpl.copy_between_stores(jctx.sessions, settings, src, dst, jctx.progress_sync)
        except tpl.TemplateInstallError as exc:
            raise _fail(jctx, dst, exc, "Failed to copy the template") from None

    await asyncio.to_thread(work)
    return await asyncio.to_thread(_ref_body, jctx.sessions, dst, bool(jctx.params.get("iso")))


async def _upload_job(jctx: JobContext) -> dict[str, Any]:
    ref_id = str(jctx.params["ref_id"])
    settings = _settings(jctx)
    staged = tpl.staging_file(settings, ref_id, "upload")

    def work() -> None:
        with jctx.sessions() as db:
            ref = db.get(TemplateStoreRef, ref_id)
            if ref is not None and ref.download_state == tpl.DOWNLOADED:
                return
            checksum = ref.template.checksum if ref is not None else None
        if not staged.exists():
            raise _fail(jctx, ref_id, tpl.TemplateInstallError("the uploaded file is gone"), "Upload failed")
        try:
            tpl.install_staged(jctx.sessions, settings, ref_id, staged, checksum, jctx.progress_sync)
        except tpl.TemplateInstallError as exc:
            raise _fail(jctx, ref_id, exc, "Upload failed") from None
        finally:
            staged.unlink(missing_ok=True)

    await asyncio.to_thread(work)
    return await asyncio.to_thread(_ref_body, jctx.sessions, ref_id, bool(jctx.params.get("iso")))


async def _delete_job(jctx: JobContext) -> dict[str, Any]:
    template_id, zone_id = str(jctx.params["template_id"]), jctx.params.get("zone_id")
    settings = _settings(jctx)

    def work() -> None:
        try:
            tpl.delete_template(jctx.sessions, settings, template_id, zone_id)
        except tpl.TemplateInstallError as exc:
            raise JobFailure(INTERNAL_ERROR, f"Failed to delete the template: {exc}") from None

    await asyncio.to_thread(work)
    return {"success": True}


register(JOB_DOWNLOAD, _download_job, resumable=True, rollback=_mark_unfinished_failed)
register(JOB_COPY, _copy_job, resumable=True, rollback=_mark_unfinished_failed)
register(JOB_UPLOAD, _upload_job, resumable=True, rollback=_mark_unfinished_failed)
register(JOB_DELETE, _delete_job, resumable=True)
