"""``POST /upload/template/<id>``: the upload URL ``getUploadParamsFor{Template,Iso}`` hands out.

Authenticated by the signed ``X-signature`` / ``X-metadata`` / ``X-expires`` headers from those
calls (as CloudStack's upload servers do). The body is the image itself
(``application/octet-stream``); it is streamed to a staging file under the size limit, then a
``template.upload`` job checks it and copies it to the image store.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hvcloud.server.api.commands.templates import UPLOAD_PURPOSE, upload_signature
from hvcloud.server.db.models import TemplateStoreRef
from hvcloud.server.jobs import store as job_store
from hvcloud.server.orchestration import template_jobs
from hvcloud.server.orchestration import templates as tpl
from hvcloud.server.state import ServerState


def _error(status: int, text: str) -> Response:
    return JSONResponse({"errorcode": status, "errortext": text}, status_code=status)


def _claim_ref(state: ServerState, ref_id: str) -> dict[str, Any] | None:
    """Move the ref from NOT_UPLOADED to UPLOAD_IN_PROGRESS; None when it is not awaiting an upload."""
    with state.sessions.begin() as db:
        ref = db.get(TemplateStoreRef, ref_id)
        if ref is None or ref.template.removed is not None or not ref.template.account.users:
            return None  # deleted meanwhile (with its account, or by deleteTemplate)
        result = db.execute(update(TemplateStoreRef)
                            .where(TemplateStoreRef.id == ref_id, TemplateStoreRef.download_state == tpl.NOT_UPLOADED)
                            .values(download_state=tpl.UPLOAD_IN_PROGRESS, error_text=None))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        ref = db.get(TemplateStoreRef, ref_id)
        assert ref is not None
        return {"template_id": ref.template_id, "account_id": ref.template.account_id,
                "is_iso": ref.template.is_iso, "owner": ref.template.account.users[0].id}


def _submit(state: ServerState, ref_id: str, info: dict[str, Any]) -> str:
    with state.sessions.begin() as db:
        job = job_store.submit(db, account_id=info["account_id"], user_id=info["owner"],
                               command="uploadTemplate", handler=template_jobs.JOB_UPLOAD,
                               params={"ref_id": ref_id, "iso": info["is_iso"]}, instance_type="Template",
                               instance_id=info["template_id"], object_key=f"Template:{info['template_id']}")
        return job.id


def make_upload_handler(state: ServerState) -> Any:
    async def upload(request: Request) -> Response:
        ref_id = request.path_params["ref_id"]
        signature = request.headers.get("x-signature", "")
        metadata = request.headers.get("x-metadata", "")
        expires = request.headers.get("x-expires", "")
        expected = upload_signature(state.box.derive_key(UPLOAD_PURPOSE), ref_id, metadata, expires)
        if not signature or not hmac.compare_digest(signature, expected):
            return _error(401, "invalid upload signature")
        try:
            expiry = datetime.strptime(expires, "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            return _error(401, "invalid upload expiry")
        if expiry < datetime.now(UTC):
            return _error(401, "the upload URL has expired")
        ctype = request.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
        if ctype not in ("application/octet-stream", "application/x-iso9660-image", ""):
            return _error(415, "send the image as the request body (application/octet-stream)")
        limit = state.config.template_max_bytes
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return _error(413, f"the upload exceeds the size limit of {limit} bytes")
        info = await asyncio.to_thread(_claim_ref, state, ref_id)
        if info is None:
            return _error(409, "this template is not awaiting an upload")
        settings = tpl.StoreSettings.of(state.config, state.box)
        staged = tpl.staging_file(settings, ref_id, "upload")
        done = 0
        try:
            out = await asyncio.to_thread(open, staged, "wb")
            try:
                async for chunk in request.stream():
                    done += len(chunk)
                    if done > limit:
                        raise ValueError(f"the upload exceeds the size limit of {limit} bytes")
                    await asyncio.to_thread(out.write, chunk)
            finally:
                await asyncio.to_thread(out.close)
            if done == 0:
                raise ValueError("the upload is empty")
        except Exception as exc:
            staged.unlink(missing_ok=True)
            await asyncio.to_thread(tpl.set_state, state.sessions, ref_id, tpl.NOT_UPLOADED, error=str(exc))
            return _error(413 if "limit" in str(exc) else 400, str(exc))
        job_id = await asyncio.to_thread(_submit, state, ref_id, info)
        state.notify_jobs()
        return Response(json.dumps({"jobid": job_id, "size": done}), media_type="application/json")

    return upload
