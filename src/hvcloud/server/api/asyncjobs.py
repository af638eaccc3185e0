"""Asynchronous API commands on top of the job engine, and ``queryAsyncJobResult``'s job object.

An async command validates its parameters in the request, then queues a job (in the same
transaction as any rows it creates) and answers ``{"jobid"}`` (or ``{"id", "jobid"}`` for create
commands); the engine runs the job's handler and records CloudStack's ``jobstatus`` /
``jobresultcode`` / ``jobresult``.
"""

from __future__ import annotations

import json
from typing import Any

from hvcloud.server.api.context import CallContext
from hvcloud.server.api.results import AsyncResult, Result, body_of
from hvcloud.server.db.models import AsyncJob
from hvcloud.server.errors import CloudError
from hvcloud.server.jobs import store
from hvcloud.server.views.fields import compact

JOB_IN_PROGRESS = store.IN_PROGRESS
JOB_SUCCEEDED = store.SUCCEEDED
JOB_FAILED = store.FAILED


def submit_job(ctx: CallContext, handler: str, params: dict[str, Any] | None = None, *,
               instance_type: str | None = None, instance_id: str | None = None, create: bool = False,
               object_key: str | None = None) -> AsyncResult:
    """Queue ``handler`` as this command's job; jobs with one ``object_key`` (default: the instance)
    run one after another in submission order."""
    if object_key is None and instance_type and instance_id:
        object_key = f"{instance_type}:{instance_id}"
    job = store.submit(ctx.db, account_id=ctx.account.id, user_id=ctx.user.id, command=ctx.command,
                       handler=handler, params=params, instance_type=instance_type, instance_id=instance_id,
                       object_key=object_key)
    ctx.queued_jobs += 1
    return AsyncResult(jobid=job.id, object_id=instance_id if create else None)


def run_inline(ctx: CallContext, result_or_error: Result | CloudError, *,
               instance_type: str | None = None, instance_id: str | None = None,
               create: bool = False) -> AsyncResult:
    """Record a job whose work was already done inside the request (for commands that need no
    long-running step); prefer :func:`submit_job`."""
    if isinstance(result_or_error, CloudError):
        body: dict[str, Any] = store.error_body(result_or_error.code, result_or_error.text)
        code: int | None = result_or_error.code
    else:
        body, code = body_of(result_or_error, in_job=True), None
    job = store.record_finished(ctx.db, account_id=ctx.account.id, user_id=ctx.user.id, command=ctx.command,
                                body=body, error_code=code, instance_type=instance_type,
                                instance_id=instance_id)
    return AsyncResult(jobid=job.id, object_id=instance_id if create else None)


def job_view(job: AsyncJob) -> dict[str, Any]:
    out: dict[str, Any] = {
        "accountid": job.account_id, "userid": job.user_id,
        "domainid": job.account.domain_id if job.account is not None else None, "cmd": job.command,
        "jobstatus": job.status, "jobprocstatus": job.proc_percent if job.status == JOB_IN_PROGRESS else 0,
        "jobresultcode": job.result_code, "jobinstancetype": job.instance_type,
        "jobinstanceid": job.instance_id, "created": job.created, "completed": job.completed, "jobid": job.id,
    }
    if job.status != JOB_IN_PROGRESS and job.result_json is not None:
        out["jobresulttype"] = "object"
        out["jobresult"] = json.loads(job.result_json)
    return compact(out)
