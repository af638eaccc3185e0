"""listUsageRecords, listUsageTypes, generateUsageRecords (admins and domain admins, as CloudStack's
default roles: users are not shown usage)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from hvcloud.server.api import errors
from hvcloud.server.api.context import CallContext
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, Result, SuccessResult
from hvcloud.server.db.models import Account, UsageRecord
from hvcloud.server.orchestration import domain_scope
from hvcloud.server.orchestration import usage as U
from hvcloud.server.views.usage import usage_record_views, usage_type_view

command = REGISTRY.command

_DATE_HELP = 'use format "yyyy-MM-dd" or "yyyy-MM-dd HH:mm:ss" (UTC)'


def _range(args: Args) -> tuple[datetime, datetime]:
    """``[start, end)``: a date-only (midnight) ``enddate`` takes in its whole day, as CloudStack."""
    start, end = args.opt_date("startdate"), args.opt_date("enddate")
    assert start is not None and end is not None  # required parameters
    start, end = (d if d.tzinfo else d.replace(tzinfo=UTC) for d in (start, end))
    if start > end:
        raise errors.param_error(f"Incorrect Date Range. Start date: {start:%Y-%m-%d %H:%M:%S} is after end "
                                 f"date: {end:%Y-%m-%d %H:%M:%S}")
    midnight = end.hour == end.minute == end.second == 0
    return start, end + (timedelta(days=1) if midnight else timedelta(seconds=1))


@command("listUsageRecords", "Lists usage records for accounts", domain_admin=True, params=[
    Param("startdate", "date", required=True, description=f"start date range for the usage records ({_DATE_HELP})"),
    Param("enddate", "date", required=True, description=f"end date range for the usage records ({_DATE_HELP})"),
    Param("account", description="list usage records for the specified user; use with domainid"),
    Param("domainid", "uuid", description="list usage records for the specified domain"),
    Param("accountid", "uuid", description="list usage records for the specified account"),
    Param("isrecursive", "boolean", description="with domainid: its sub-domains too"),
    Param("type", "long", description="list usage records for the specified usage type"),
    Param("usageid", "uuid", description="list usage records for the specified usage UUID (with type)"),
    Param("includetags", "boolean", description="accepted; usage records carry no tags here"),
    Param("oldformat", "boolean", description="accepted; dates are always CloudStack's format"),
], response=("usageid", "usagetype", "rawusage", "startdate", "enddate"))
def list_usage_records(ctx: CallContext, args: Args) -> Result:
    start, end = _range(args)
    stmt = select(UsageRecord).where(UsageRecord.start_date >= start, UsageRecord.end_date <= end)
    account_id = args.opt_str("accountid")
    if account_id is not None:
        account = ctx.get(Account, "accountid", account_id)
        if not ctx.may_act_for(account.id):
            raise errors.permission_denied(f"Caller cannot see the usage of account {account.id}")
        stmt = stmt.where(UsageRecord.account_id == account.id)
    elif args.has("account") or args.has("domainid"):
        owner = ctx.owner_and_domain_filter(UsageRecord.account_id, UsageRecord.domain_id, args)
        if owner is not None:
            stmt = stmt.where(owner)
    elif not ctx.is_admin:  # a domain admin: its subtree
        stmt = stmt.where(domain_scope.in_domain_subtree(UsageRecord.domain_id, ctx.account.domain))
    usage_type, usage_id = args.opt_int("type"), args.opt_str("usageid")
    if usage_id is not None and usage_type is None:
        raise errors.param_error("Usageid must be specified together with usageType")
    if usage_type is not None:
        if usage_type not in U.USAGE_TYPE_IDS:
            raise errors.param_error(f"Usage type {usage_type} is not supported")
        stmt = stmt.where(UsageRecord.usage_type == usage_type)
    if usage_id is not None:
        stmt = stmt.where(UsageRecord.usage_id == usage_id)
    stmt = stmt.order_by(UsageRecord.start_date, UsageRecord.usage_type, UsageRecord.usage_id, UsageRecord.id)
    rows, count = ctx.page(stmt, args)
    return ListResult("usagerecord", usage_record_views(ctx.db, rows), count)


@command("listUsageTypes", "List Usage Types", domain_admin=True, response=("usagetypeid", "description"))
def list_usage_types(ctx: CallContext, args: Args) -> Result:
    items, count = ctx.page_list([usage_type_view(*t) for t in U.USAGE_TYPES], args)
    return ListResult("usagetype", items, count)


@command("generateUsageRecords", "Generates usage records. This will generate records only if there any records "
         "to be generated, i.e. if the scheduled usage job was not run or failed", params=[
    Param("startdate", "date", required=True, description=f"start date of the range ({_DATE_HELP})"),
    Param("enddate", "date", required=True, description=f"end date of the range ({_DATE_HELP})"),
    Param("domainid", "uuid", description="ignored, as in CloudStack: every account's records are generated"),
])
def generate_usage_records(ctx: CallContext, args: Args) -> Result:
    start, end = _range(args)
    try:
        U.generate(ctx.db, ctx.state.config.usage_aggregation_minutes, start, end)
    except ValueError as exc:
        raise errors.param_error(str(exc)) from None
    return SuccessResult()
