"""A server plugin (``hvcloud server run --plugin tests.integration.server.job_test_plugin``) with slow
jobs for crash tests.

``testSleepJob`` queues a job that writes ``<jobid>.started.<attempt>`` into ``markerdir``, sleeps
``seconds`` on its first attempt only, then writes ``<jobid>.done``. ``mode=resume`` registers it as
resumable; ``mode=rollback`` as non-resumable with a rollback that writes ``<jobid>.rolledback``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import submit_job
from hvcloud.server.api.context import CallContext
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import Result
from hvcloud.server.jobs.handlers import JobContext, register


def _marker(ctx: JobContext, suffix: str) -> None:
    (Path(ctx.params["markerdir"]) / f"{ctx.job_id}.{suffix}").write_text(str(ctx.attempt))


async def _sleep(ctx: JobContext) -> dict[str, Any]:
    _marker(ctx, f"started.{ctx.attempt}")
    if ctx.attempt == 1:
        await ctx.progress(10, "sleeping")
        await asyncio.sleep(float(ctx.params["seconds"]))
    _marker(ctx, "done")
    return {"success": True, "displaytext": f"attempt {ctx.attempt}"}


async def _rollback(ctx: JobContext) -> None:
    _marker(ctx, "rolledback")


register("test.sleep.resume", _sleep, resumable=True)
register("test.sleep.rollback", _sleep, rollback=_rollback)


@REGISTRY.command("testSleepJob", "Test only: a slow job", isasync=True, params=[
    Param("mode", required=True), Param("seconds", "integer", required=True),
    Param("markerdir", required=True, length=1024), Param("objectid", "uuid")])
def test_sleep_job(ctx: CallContext, args: Args) -> Result:
    mode = args.str("mode")
    if mode not in ("resume", "rollback"):
        raise errors.param_error("mode is resume or rollback")
    return submit_job(ctx, f"test.sleep.{mode}", {"seconds": args.opt_int("seconds"),
                                                  "markerdir": args.str("markerdir")},
                      instance_type="VirtualMachine", instance_id=args.opt_str("objectid"))
