"""listApis, listCapabilities, queryAsyncJobResult, listAsyncJobs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import job_view
from hvcloud.server.api.context import CallContext
from hvcloud.server.api.envelope import CLOUDSTACK_VERSION
from hvcloud.server.api.registry import REGISTRY, ApiCommand, Args, Param
from hvcloud.server.api.results import ListResult, RawResult, Result
from hvcloud.server.db.models import AsyncJob, Zone

command = REGISTRY.command


def _api_view(cmd: ApiCommand) -> dict[str, Any]:
    return {
        "name": cmd.name, "description": cmd.description, "isasync": cmd.isasync, "since": "4.0.0",
        "related": "", "type": "",
        "params": [{"name": p.name, "description": p.description, "type": p.type, "required": p.required,
                    "length": p.length, "related": "", "since": "4.0.0"} for p in cmd.params],
        "response": [{"name": field, "description": field, "type": "string"} for field in cmd.response],
    }


@command("listApis", "Lists all available APIs and their parameters", admin=False,
         params=[Param("name", description="API name")])
def list_apis(ctx: CallContext, args: Args) -> Result:
    role = ctx.account.role
    apis = [c for c in REGISTRY.all() if c.open_to(ctx.account.account_type)
            and ctx.state.roles.allows(ctx.db, role, c.name, admin_only=c.root_only)]
    name = args.opt_str("name")
    if name is not None:
        apis = [c for c in apis if c.name == name]
        if not apis:
            raise errors.param_error(f"Api Discovery plugin was unable to find an api by that name or "
                                     f"api is not available for user: {name[:64]}")
    views = [_api_view(c) for c in apis]
    return ListResult("api", views, len(views))


@command("listCapabilities", "Lists capabilities", admin=False)
def list_capabilities(ctx: CallContext, args: Args) -> Result:
    capability: dict[str, Any] = {
        "cloudstackversion": CLOUDSTACK_VERSION,
        "securitygroupsenabled": ctx.db.scalar(select(Zone.id).where(Zone.security_groups_enabled.is_(True))
                                               .limit(1)) is not None,
        "dynamicrolesenabled": True, "userpublictemplateenabled": True, "supportELB": "false",
        "projectinviterequired": False, "allowusercreateprojects": False,
        "customdiskofferingminsize": 1, "customdiskofferingmaxsize": 1024, "kvmsnapshotenabled": True,
        "allowuserviewdestroyedvm": True, "allowuserexpungerecovervm": True,
        "defaultuipagesize": 20,
        "kubernetesserviceenabled": False, "kubernetesclusterexperimentalfeaturesenabled": False,
    }
    limiter = ctx.state.rate_limiter
    if limiter.enabled:  # as CloudStack: advertised only when enforced
        capability["apilimitmax"], capability["apilimitinterval"] = limiter.maximum, limiter.interval
    return RawResult({"capability": capability})


def _visible_job(ctx: CallContext, job_id: str) -> AsyncJob:
    job = ctx.db.get(AsyncJob, job_id)
    if job is None or not ctx.may_act_for(job.account_id):
        raise errors.entity_not_found("jobid", job_id)
    return job


@command("queryAsyncJobResult", "Retrieves the current status of an asynchronous job", admin=False,
         params=[Param("jobid", "uuid", required=True, description="the ID of the asynchronous job")])
def query_async_job_result(ctx: CallContext, args: Args) -> Result:
    return RawResult(job_view(_visible_job(ctx, args.str("jobid"))))


@command("listAsyncJobs", "Lists all pending asynchronous jobs for the account", admin=False, listall=True)
def list_async_jobs(ctx: CallContext, args: Args) -> Result:
    stmt = select(AsyncJob).order_by(AsyncJob.created.desc())
    owner = ctx.owner_filter(AsyncJob.account_id, args)
    if owner is not None:
        stmt = stmt.where(owner)
    rows, count = ctx.page(stmt, args)
    return ListResult("asyncjobs", [job_view(j) for j in rows], count)
