"""Usage records (CloudStack's usage server): what each account's resources were charged, per period.

Where the times come from, all written in the transaction of the change itself:

- VMs (RUNNING_VM, ALLOCATED_VM) and templates/ISOs (TEMPLATE, ISO): ``usage_event`` rows
  (:mod:`usage_events`), paired into spans (a start opens one, an end closes it; a second start
  closes the open span and opens one with its new attributes).
- Volumes (VOLUME) and public addresses (IP_ADDRESS): their own rows, which keep ``created``
  (``allocated``) and ``removed`` for ever; a volume is charged at its current size.
- Network bytes (NETWORK_BYTES_SENT/RECEIVED): no source. Routers are not asked for byte counters
  (there is no NetworkUsageCommand), so no records of types 4 and 5 are written rather than invented.

Aggregation cuts the spans at period boundaries (``usage.stats.job.aggregation.range`` minutes,
aligned on midnight UTC) and writes one record per resource (and offering, template, size) and
period with its hours. Re-aggregating a period first deletes the records starting in it, so it is
idempotent. The periodic job (:func:`usage_loop`) aggregates every closed period after
``usage_job.aggregated_until`` and moves that mark in the same transaction, under a row lock: a
restarted or second server carries on where the last run stopped, without gaps or doubles.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from hvcloud import logs
from hvcloud.server.db.models import Account, UsageEvent, UsageJob, UsageRecord, UserIpAddress, Volume, utcnow
from hvcloud.server.orchestration import usage_events as E

log = logs.get(__name__)

RUNNING_VM, ALLOCATED_VM, IP_ADDRESS, NETWORK_BYTES_SENT, NETWORK_BYTES_RECEIVED = 1, 2, 3, 4, 5
VOLUME, TEMPLATE, ISO = 6, 7, 8

#: CloudStack's usage types (``listUsageTypes``): id, name, description
USAGE_TYPES: tuple[tuple[int, str, str], ...] = (
    (RUNNING_VM, "RUNNING_VM", "Running Vm Usage"),
    (ALLOCATED_VM, "ALLOCATED_VM", "Allocated Vm Usage"),
    (IP_ADDRESS, "IP_ADDRESS", "IP Address Usage"),
    (NETWORK_BYTES_SENT, "NETWORK_BYTES_SENT", "Network Usage (Bytes Sent)"),
    (NETWORK_BYTES_RECEIVED, "NETWORK_BYTES_RECEIVED", "Network Usage (Bytes Received)"),
    (VOLUME, "VOLUME", "Volume Usage"),
    (TEMPLATE, "TEMPLATE", "Template Usage"),
    (ISO, "ISO", "ISO Usage"),
    (9, "SNAPSHOT", "Snapshot Usage"),
    (10, "SECURITY_GROUP", "Security Group Usage"),
    (11, "LOAD_BALANCER_POLICY", "Load Balancer Usage"),
    (12, "PORT_FORWARDING_RULE", "Port Forwarding Usage"),
    (13, "NETWORK_OFFERING", "Network Offering Usage"),
    (14, "VPN_USERS", "VPN users usage"),
    (21, "VM_DISK_IO_READ", "VM Disk usage(I/O Read)"),
    (22, "VM_DISK_IO_WRITE", "VM Disk usage(I/O Write)"),
    (23, "VM_DISK_BYTES_READ", "VM Disk usage(Bytes Read)"),
    (24, "VM_DISK_BYTES_WRITE", "VM Disk usage(Bytes Write)"),
    (25, "VM_SNAPSHOT", "VM Snapshot storage usage"),
    (26, "VOLUME_SECONDARY", "Volume on secondary storage usage"),
    (27, "VM_SNAPSHOT_ON_PRIMARY", "VM Snapshot on primary storage usage"),
    (28, "BACKUP", "Backup storage usage"),
)
USAGE_TYPE_IDS = frozenset(t[0] for t in USAGE_TYPES)

#: which usage event opens and which closes a span of each event-driven usage type
EVENT_PAIRS: dict[int, tuple[str, str]] = {
    RUNNING_VM: (E.VM_START, E.VM_STOP),
    ALLOCATED_VM: (E.VM_CREATE, E.VM_DESTROY),
    TEMPLATE: (E.TEMPLATE_CREATE, E.TEMPLATE_DELETE),
    ISO: (E.ISO_CREATE, E.ISO_DELETE),
}
_VM_TYPES = (RUNNING_VM, ALLOCATED_VM)

DAY_MINUTES = 1440
#: the most periods one run of the periodic job aggregates (it catches up over the next runs)
PERIODS_PER_RUN = 48
#: the most periods ``generateUsageRecords`` recomputes in one call (a year of days, a month of hours)
MAX_PERIODS = 744
HOUR = 3600.0


def period_minutes(configured: int) -> int:
    """The aggregation period in minutes: whole hours dividing a day, else an hour."""
    ok = 60 <= configured <= DAY_MINUTES and configured % 60 == 0 and DAY_MINUTES % configured == 0
    return configured if ok else 60


def period_start(at: datetime, minutes: int) -> datetime:
    """The start of the period holding ``at`` (periods are aligned on midnight UTC)."""
    at = at.astimezone(UTC)
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = int((at - midnight).total_seconds() // 60)
    return midnight + timedelta(minutes=elapsed - elapsed % minutes)


def periods(start: datetime, end: datetime, minutes: int) -> list[tuple[datetime, datetime]]:
    """The periods from the one holding ``start`` up to those starting before ``end``."""
    out, step = [], timedelta(minutes=minutes)
    cursor = period_start(start, minutes)
    while cursor < end:
        out.append((cursor, cursor + step))
        cursor += step
    return out


@dataclass(frozen=True)
class Span:
    """One stretch of time a resource was charged for, with what the record shows about it."""

    usage_type: int
    usage_id: str
    account_id: str
    zone_id: str | None
    start: datetime
    end: datetime | None
    name: str | None = None
    vm_id: str | None = None
    offering_id: str | None = None
    template_id: str | None = None
    size: int | None = None
    source_nat: bool | None = None

    def hours_in(self, lo: datetime, hi: datetime) -> float:
        start, end = max(self.start, lo), min(self.end or hi, hi)
        return max((end - start).total_seconds(), 0.0) / HOUR


def _event_span(usage_type: int, event: UsageEvent, end: datetime | None) -> Span:
    vm_id = event.resource_id if usage_type in _VM_TYPES else None
    return Span(usage_type, event.resource_id, event.account_id, event.zone_id, event.created, end,
                name=event.resource_name, vm_id=vm_id, offering_id=event.offering_id,
                template_id=event.template_id, size=event.size)


def event_spans(events: Iterable[UsageEvent]) -> list[Span]:
    """Pair events (in the order they happened) into spans; spans still open end at None."""
    by_type = {name: (usage_type, opens) for usage_type, pair in EVENT_PAIRS.items()
               for opens, name in ((True, pair[0]), (False, pair[1]))}
    open_spans: dict[tuple[int, str, str | None], UsageEvent] = {}
    out: list[Span] = []
    for event in events:
        if event.event_type not in by_type:
            continue
        usage_type, opens = by_type[event.event_type]
        key = (usage_type, event.resource_id, event.zone_id)
        started = open_spans.pop(key, None)
        if started is not None:
            out.append(_event_span(usage_type, started, event.created))
        if opens:
            open_spans[key] = event
    out.extend(_event_span(key[0], event, None) for key, event in open_spans.items())
    return out


def collect_spans(db: Session, lo: datetime, hi: datetime) -> list[Span]:
    """Every span that overlaps ``[lo, hi)``."""
    events = db.scalars(select(UsageEvent).where(UsageEvent.created < hi)
                        .order_by(UsageEvent.created, UsageEvent.seq))
    spans = [s for s in event_spans(events) if s.end is None or s.end > lo]
    volumes = db.scalars(select(Volume).where(Volume.created < hi, or_(Volume.removed.is_(None), Volume.removed > lo)))
    spans.extend(Span(VOLUME, v.id, v.account_id, v.zone_id, v.created, v.removed, name=v.name, vm_id=v.vm_id,
                      offering_id=v.disk_offering_id, template_id=v.template_id, size=v.size) for v in volumes)
    since = func.coalesce(UserIpAddress.allocated, UserIpAddress.created)
    ips = db.scalars(select(UserIpAddress).where(since < hi, or_(UserIpAddress.removed.is_(None),
                                                                  UserIpAddress.removed > lo)))
    spans.extend(Span(IP_ADDRESS, ip.id, ip.account_id, ip.zone_id, ip.allocated or ip.created, ip.removed,
                      name=ip.public_ip_address, source_nat=ip.source_nat) for ip in ips)
    return spans


def _hours_text(hours: float) -> str:
    """CloudStack's ``#.######`` format: ``5``, ``2.5``, ``0.333333``."""
    return f"{hours:.6f}".rstrip("0").rstrip(".")


def describe(span: Span, hours: float) -> str:
    if span.usage_type == RUNNING_VM:
        return (f"{span.name} running time (ServiceOffering: {span.offering_id}) "
                f"(Template: {span.template_id})")
    if span.usage_type == ALLOCATED_VM:
        return f"{span.name} allocated (ServiceOffering: {span.offering_id}) (Template: {span.template_id})"
    if span.usage_type == IP_ADDRESS:
        return f"IPAddress: {span.name}"
    if span.usage_type == VOLUME:
        text = f"Volume Id: {span.usage_id} usage time"
        if span.offering_id:
            text += f" (DiskOffering: {span.offering_id})"
        if span.template_id:
            text += f" (Template: {span.template_id})"
        return f"{text} (Size: {span.size})"
    kind = "Template" if span.usage_type == TEMPLATE else "ISO"
    return f"{kind} Id: {span.usage_id} Size: {span.size}"


def usage_display(raw: float) -> str:
    return f"{_hours_text(raw)} Hrs"


def raw_usage_text(raw: float) -> str:
    return _hours_text(raw)


def records_for(spans: Sequence[Span], lo: datetime, hi: datetime,
                domains: dict[str, str]) -> list[UsageRecord]:
    """The records of one period: one per resource and attributes, its spans' hours summed."""
    grouped: dict[tuple[object, ...], tuple[Span, float]] = {}
    for span in spans:
        hours = span.hours_in(lo, hi)
        if hours <= 0:
            continue
        key = (span.usage_type, span.usage_id, span.zone_id, span.offering_id, span.template_id, span.size)
        first, total = grouped.get(key, (span, 0.0))
        grouped[key] = (first, total + hours)
    out = []
    for span, hours in grouped.values():
        hours = round(hours, 6)
        out.append(UsageRecord(account_id=span.account_id, domain_id=domains.get(span.account_id, ""),
                               zone_id=span.zone_id, usage_type=span.usage_type, usage_id=span.usage_id,
                               description=describe(span, hours)[:1024], raw_usage=hours, vm_id=span.vm_id,
                               name=span.name, offering_id=span.offering_id, template_id=span.template_id,
                               size=span.size, source_nat=span.source_nat, start_date=lo, end_date=hi))
    return out


def aggregate(db: Session, windows: Sequence[tuple[datetime, datetime]]) -> int:
    """(Re)write the records of these consecutive periods; returns how many were written."""
    if not windows:
        return 0
    lo, hi = windows[0][0], windows[-1][1]
    spans = collect_spans(db, lo, hi)
    account_ids = {s.account_id for s in spans}
    domains: dict[str, str] = defaultdict(str)
    for account_id, domain_id in db.execute(select(Account.id, Account.domain_id)
                                            .where(Account.id.in_(account_ids))):
        domains[account_id] = domain_id
    db.execute(delete(UsageRecord).where(UsageRecord.start_date >= lo, UsageRecord.start_date < hi))
    written = 0
    for start, end in windows:
        records = records_for(spans, start, end, domains)
        db.add_all(records)
        written += len(records)
    return written


def generate(db: Session, minutes: int, start: datetime, end: datetime, now: datetime | None = None) -> int:
    """``generateUsageRecords``: recompute the closed periods overlapping ``[start, end]``."""
    now = now or utcnow()
    step = period_minutes(minutes)
    windows = [w for w in periods(start, min(end, now), step) if w[1] <= now]
    if len(windows) > MAX_PERIODS:
        raise ValueError(f"at most {MAX_PERIODS} usage periods at a time ({len(windows)} asked)")
    return aggregate(db, windows)


def aggregate_due(db: Session, minutes: int, now: datetime | None = None, limit: int = PERIODS_PER_RUN) -> int:
    """The periodic job's step: aggregate the closed periods after the stored mark (at most ``limit``)
    and move the mark, in the caller's transaction. A first run starts at the current period."""
    now = now or utcnow()
    step = period_minutes(minutes)
    job = db.scalar(select(UsageJob).where(UsageJob.id == 1).with_for_update())
    if job is None:
        job = UsageJob(id=1, aggregated_until=period_start(now, step), updated=now)
        db.add(job)
        db.flush()
        return 0
    windows: list[tuple[datetime, datetime]] = []
    cursor = job.aggregated_until
    while len(windows) < limit:
        end = period_start(cursor, step) + timedelta(minutes=step)
        if end > now:
            break
        windows.append((cursor, end))
        cursor = end
    if not windows:
        return 0
    written = aggregate(db, windows)
    job.aggregated_until, job.updated = cursor, now
    return written


async def usage_loop(sessions: sessionmaker[Session], settings: Callable[[], tuple[float, int]]) -> None:
    """Every poll interval, :func:`aggregate_due`; ``settings`` gives (poll seconds, period minutes)."""
    def once() -> None:
        with sessions.begin() as db:
            written = aggregate_due(db, settings()[1])
        if written:
            log.info("usage_aggregated", records=written)

    while True:
        await asyncio.sleep(settings()[0])
        try:
            await asyncio.to_thread(once)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("usage aggregation failed")
