"""listEvents, listEventTypes, listAlerts, archiveAlerts."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import select

from hvcloud.server.api import errors
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, Result, SuccessResult
from hvcloud.server.api.views import alert_view, event_view
from hvcloud.server.db.models import Alert, Event

command = REGISTRY.command

LEVELS = ("INFO", "WARN", "ERROR")


@command("listEvents", "A command to list events", admin=False, listall=True, params=[
    Param("id", "uuid", description="the ID of the event"),
    Param("type", description="the event type"),
    Param("level", description="the event level (INFO, WARN, ERROR)"),
    Param("startdate", "date", description="the start date range of the list you want to retrieve"),
    Param("enddate", "date", description="the end date range of the list you want to retrieve"),
    Param("resourceid", "uuid", description="the ID of the resource associated with the event"),
], response=("id", "type", "level", "description", "created"))
def list_events(ctx: CallContext, args: Args) -> Result:
    stmt = select(Event).order_by(Event.created.desc(), Event.id)
    owner = ctx.owner_filter(Event.account_id, args)
    if owner is not None:
        stmt = stmt.where(owner)
    for param, column in (("id", Event.id), ("type", Event.event_type), ("resourceid", Event.resource_id)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    level = args.opt_str("level")
    if level is not None:
        if level.upper() not in LEVELS:
            raise errors.param_error(f"Invalid event level {level[:16]}: expected INFO, WARN or ERROR")
        stmt = stmt.where(Event.level == level.upper())
    start, end = args.opt_date("startdate"), args.opt_date("enddate")
    if start is not None:
        stmt = stmt.where(Event.created >= (start if start.tzinfo else start.replace(tzinfo=UTC)))
    if end is not None:
        stmt = stmt.where(Event.created <= (end if end.tzinfo else end.replace(tzinfo=UTC)))
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(Event.description.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt, args)
    return ListResult("event", [event_view(e) for e in rows], count)


@command("listAlerts", "Lists all alerts", params=[
    Param("id", "uuid", description="the ID of the alert"),
    Param("type", "integer", description="list by alert type"),
    Param("name", description="list by alert name"),
], response=("id", "type", "name", "description", "sent"))
def list_alerts(ctx: CallContext, args: Args) -> Result:
    stmt = select(Alert).where(Alert.archived.is_(False)).order_by(Alert.created.desc(), Alert.id)
    for param, column in (("id", Alert.id), ("name", Alert.name)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    if args.opt_int("type") is not None:
        stmt = stmt.where(Alert.alert_type == args.opt_int("type"))
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(Alert.subject.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt, args)
    return ListResult("alert", [alert_view(a) for a in rows], count)


@command("archiveAlerts", "Archive one or more alerts", params=[
    Param("ids", "list", description="the IDs of the alerts"),
    Param("type", description="archive by alert type"),
])
def archive_alerts(ctx: CallContext, args: Args) -> Result:
    ids, kind = args.list("ids"), args.opt_str("type")
    if not ids and kind is None:
        raise errors.param_error("either ids or type must be specified")
    stmt = select(Alert).where(Alert.archived.is_(False))
    if ids:
        stmt = stmt.where(Alert.id.in_(ids))
    if kind is not None:
        try:
            alert_type = int(kind)
        except ValueError:
            raise errors.invalid_value(ctx.command, "type", kind[:16]) from None
        if not -(2**31) <= alert_type < 2**31:  # beyond the column's range the database driver raises
            raise errors.invalid_value(ctx.command, "type", kind[:16])
        stmt = stmt.where(Alert.alert_type == alert_type)
    for alert in ctx.db.scalars(stmt):
        alert.archived = True
    return SuccessResult()
