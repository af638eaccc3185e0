"""getApiLimit, resetApiLimit (the API rate-limit plugin); listResourceLimits, updateResourceLimit,
updateResourceCount (per-account and per-domain resource limits)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hvcloud.server import resource_types as R
from hvcloud.server.api import errors
from hvcloud.server.api.context import CallContext
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, Result, SuccessResult
from hvcloud.server.db.models import Account, Domain
from hvcloud.server.db.seed import ACCOUNT_TYPE_ADMIN
from hvcloud.server.orchestration import resource_limits as limits

command = REGISTRY.command

THROTTLING_OFF_TEXT = "This api is only available when api.throttling.enabled = true."


def _require_throttling(ctx: CallContext) -> None:
    if not ctx.state.rate_limiter.enabled:
        raise errors.ApiError(errors.UNSUPPORTED_ACTION, THROTTLING_OFF_TEXT)


@command("getApiLimit", "Get API limit count for the caller", admin=False,
         response=("account", "accountid", "apiIssued", "apiAllowed", "expireAfter"))
def get_api_limit(ctx: CallContext, args: Args) -> Result:
    _require_throttling(ctx)
    status = ctx.state.rate_limiter.status(ctx.account.id)
    return ObjectResult("apilimit", {"accountid": ctx.account.id, "account": ctx.account.name,
                                     "apiIssued": status.issued, "apiAllowed": status.allowed,
                                     "expireAfter": status.expire_after_ms})


@command("resetApiLimit", "Reset api count", params=[
    Param("account", "uuid", description="The ID of the Account whose limit to be reset"),
])
def reset_api_limit(ctx: CallContext, args: Args) -> Result:
    _require_throttling(ctx)
    account = ctx.optional(args, Account, "account")
    ctx.state.rate_limiter.reset(None if account is None else account.id)
    return SuccessResult()


# --------------------------------------------------------------------------------------- resource limits

LIMIT_FIELDS = ("account", "domainid", "domain", "resourcetype", "resourcetypename", "max")
COUNT_FIELDS = ("account", "domainid", "domain", "resourcetype", "resourcetypename", "resourcecount")
#: the largest ``max`` in GiB that still fits a 64-bit count of bytes
MAX_GIB = (2**63 - 1) // R.GiB


def _resource_type(args: Args, *, required: bool = False) -> int | None:
    number, name = args.opt_int("resourcetype"), args.opt_str("resourcetypename")
    if number is not None and number not in R.NAMES:
        raise errors.param_error("Please specify a valid resource type.")
    if name is not None:
        if name not in R.BY_NAME:
            raise errors.param_error("Please specify a valid resource type name.")
        if number is not None and number != R.BY_NAME[name]:
            raise errors.param_error("resourcetype and resourcetypename name different resource types")
        number = R.BY_NAME[name]
    if number is None and required:
        raise errors.missing_parameter(args.command, "resourcetype")
    return number


def _owner(ctx: CallContext, args: Args) -> tuple[Account | None, Domain | None]:
    """Whose limits a call is about: a user's own account always; for admins ``account`` (a name,
    with ``domainid``), else the domain ``domainid``, else their own account."""
    if not ctx.is_admin:
        return ctx.account, None
    domain = ctx.optional_domain(args)
    name = args.opt_str("account")
    if name is None:
        return (None, domain) if domain is not None else (ctx.account, None)
    if domain is None:
        raise errors.param_error("Give domainid with account")
    account = ctx.db.scalar(select(Account).where(Account.domain_id == domain.id, Account.name == name))
    if account is None:
        raise errors.param_error(f"Unable to find account {name[:64]} in domain {domain.id}")
    return account, None


def _shown_max(resource_type: int, value: int) -> int:
    """Storage limits are counted in bytes and shown in GiB, as CloudStack shows them."""
    return value if value == R.UNLIMITED else value // R.setting_unit(resource_type)


def _owner_fields(account: Account | None, domain: Domain | None) -> dict[str, Any]:
    if account is not None:
        return {"account": account.name, "domainid": account.domain_id, "domain": account.domain.name,
                "domainpath": account.domain.path}
    assert domain is not None
    return {"domainid": domain.id, "domain": domain.name, "domainpath": domain.path}


def _limit_view(ctx: CallContext, account: Account | None, domain: Domain | None, resource_type: int) -> dict[str, Any]:
    config = ctx.state.config
    value = limits.account_limit(ctx.db, config, account, resource_type) if account is not None else \
        limits.domain_limit(ctx.db, config, domain, resource_type)  # type: ignore[arg-type]
    return {**_owner_fields(account, domain), "resourcetype": str(resource_type),
            "resourcetypename": R.NAMES[resource_type], "max": _shown_max(resource_type, value)}


@command("listResourceLimits", "Lists resource limits.", admin=False, params=[
    Param("resourcetype", "integer", description="Type of resource: 0 Instance, 1 IP, 2 Volume, 3 Snapshot, "
          "4 Template, 5 Project, 6 Network, 7 VPC, 8 CPU, 9 Memory, 10 PrimaryStorage, 11 SecondaryStorage"),
    Param("resourcetypename", description="Type of resource by name: user_vm, public_ip, volume, snapshot, "
          "template, project, network, vpc, cpu, memory, primary_storage, secondary_storage"),
    Param("account", description="List resources by account (with domainid)"),
    Param("domainid", "uuid", description="List only resources belonging to the domain specified"),
], response=LIMIT_FIELDS)
def list_resource_limits(ctx: CallContext, args: Args) -> Result:
    chosen = _resource_type(args)
    account, domain = _owner(ctx, args)
    types = [chosen] if chosen is not None else sorted(R.NAMES)
    views = [_limit_view(ctx, account, domain, t) for t in types]
    return ListResult("resourcelimit", views, len(views))


@command("updateResourceLimit", "Updates resource limits for an account or domain.", params=[
    Param("resourcetype", "integer", required=True, description="Type of resource to update (0-11)"),
    Param("max", "long", description="Maximum resource limit; -1 is unlimited (storage in GiB)"),
    Param("account", description="Update the resource limit of this account (with domainid)"),
    Param("domainid", "uuid", description="Update the resource limit of this domain, or of the account in it"),
], response=LIMIT_FIELDS)
def update_resource_limit(ctx: CallContext, args: Args) -> Result:
    resource_type = _resource_type(args, required=True)
    assert resource_type is not None
    value = args.opt_int("max")
    value = R.UNLIMITED if value is None else value
    if value < R.UNLIMITED:
        raise errors.param_error("Please specify either '-1' for an infinite limit, or a limit that is at least '0'.")
    if R.setting_unit(resource_type) > 1 and value > MAX_GIB:
        raise errors.param_error(f"max for {R.NAMES[resource_type]} is in GiB and cannot exceed {MAX_GIB}")
    if not args.has("account") and not args.has("domainid"):
        raise errors.param_error("Give account and domainid, or domainid, to update a resource limit")
    account, domain = _owner(ctx, args)
    if account is not None and account.account_type == ACCOUNT_TYPE_ADMIN:
        raise errors.param_error("The resource limits of a root admin account cannot be changed: they are unlimited")
    if domain is not None and domain.parent_id is None:
        raise errors.param_error(f"Cannot update resource limit for ROOT domain {domain.id}")
    stored = value if value == R.UNLIMITED else value * R.setting_unit(resource_type)
    limits.set_limit(ctx.db, ctx.user, resource_type, stored, value, account=account, domain=domain)
    return ObjectResult("resourcelimit", _limit_view(ctx, account, domain, resource_type))


@command("updateResourceCount", "Recalculate and update resource count for an account or domain.", params=[
    Param("domainid", "uuid", required=True, description="Update the resource count of this domain (or of the "
          "account in it)"),
    Param("account", description="Update the resource count of this account"),
    Param("resourcetype", "integer", description="Type of resource to update; all types if not given"),
], response=COUNT_FIELDS)
def update_resource_count(ctx: CallContext, args: Args) -> Result:
    chosen = _resource_type(args)
    types = [chosen] if chosen is not None else sorted(R.NAMES)
    account, domain = _owner(ctx, args)
    counts = limits.recount(ctx.db, account=account, domain=domain, types=types)
    views = [{**_owner_fields(account, domain), "resourcetype": str(t), "resourcetypename": R.NAMES[t],
              "resourcecount": counts[t]} for t in types]
    return ListResult("resourcecount", views, len(views))
