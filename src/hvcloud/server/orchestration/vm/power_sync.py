"""VM power-state sync from the hosts' reports (HostVmStateReport with every ping).

Reports are kept per host and instance name in ``vm_power_report``, so they are recorded whether or
not the VM is known to the database. A VM that drops out of its host's report keeps its last state
with ``missing_since`` set; once that lasts longer than the grace period (2 x ``ping.interval``, as
CloudStack's ``VirtualMachinePowerStateSyncImpl``) its state becomes ``PowerReportMissing``.
Unchanged rows are not rewritten.

The VM manager reads states with :func:`power_state_of` and can subscribe to the changes that
:func:`apply_report` returns (``AgentManager.on_power_change``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server.db.models import VMInstance, VmPowerReport
from hvcloud.server.orchestration.vm.states import ON_HOST

POWER_ON = "PowerOn"
POWER_OFF = "PowerOff"
POWER_UNKNOWN = "PowerUnknown"
POWER_REPORT_MISSING = "PowerReportMissing"
POWER_STATES = (POWER_ON, POWER_OFF, POWER_UNKNOWN, POWER_REPORT_MISSING)
MAX_NAME = 255
MAX_ENTRIES = 20_000


@dataclass(frozen=True)
class PowerChange:
    host_id: str
    instance_name: str
    old: str | None
    new: str
    #: when the report was requested: it says nothing about a VM whose state changed after that
    taken: datetime | None = None


@dataclass
class SyncResult:
    changes: list[PowerChange]
    #: some VMs are missing but still inside the grace period, so the next report must be applied
    #: even if it is identical to this one
    pending_missing: bool


def clean_report(report: dict[str, str]) -> dict[str, str]:
    """Drop names a VM cannot have (too long, control characters) and map unknown states to
    PowerUnknown; refuse absurdly large reports."""
    if len(report) > MAX_ENTRIES:
        raise ValueError(f"VM state report has {len(report)} entries (limit {MAX_ENTRIES})")
    out: dict[str, str] = {}
    for name, state in report.items():
        if not name or len(name) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
            continue
        out[name] = state if state in POWER_STATES else POWER_UNKNOWN
    return out


def apply_report(db: Session, host_id: str, report: dict[str, str], now: datetime,
                 grace_seconds: float, taken: datetime | None = None) -> SyncResult:
    rows = {r.instance_name: r for r in db.scalars(select(VmPowerReport).where(VmPowerReport.host_id == host_id))}
    changes: list[PowerChange] = []
    pending = False
    cleaned = clean_report(report)
    for name, state in cleaned.items():
        row = rows.get(name)
        if row is None:
            db.add(VmPowerReport(host_id=host_id, instance_name=name, power_state=state, state_changed=now,
                                 last_reported=now))
            changes.append(PowerChange(host_id, name, None, state, taken))
        elif row.power_state != state or row.missing_since is not None:
            if row.power_state != state:
                changes.append(PowerChange(host_id, name, row.power_state, state, taken))
                row.state_changed = now
            row.power_state, row.missing_since, row.last_reported = state, None, now
    reported = set(cleaned)
    for name, row in rows.items():
        if name in reported or row.power_state == POWER_REPORT_MISSING:
            continue
        if row.missing_since is None:
            row.missing_since = now
            pending = True
        elif (now - row.missing_since).total_seconds() >= grace_seconds:
            changes.append(PowerChange(host_id, name, row.power_state, POWER_REPORT_MISSING, taken))
            row.power_state, row.state_changed = POWER_REPORT_MISSING, now
        else:
            pending = True
    return SyncResult(changes, pending)


def _make_unknown(row: VmPowerReport, now: datetime) -> None:
    row.power_state, row.state_changed, row.missing_since = POWER_UNKNOWN, now, None


def mark_host_unknown(db: Session, host_id: str, now: datetime) -> int:
    """The host stopped answering: nothing it reported can be trusted any longer, so the power states
    of its VMs — those it reported and those the cloud placed there — become PowerUnknown (CloudStack's
    view of a disconnected host). The host's first report after it is back replaces them. Returns how
    many rows changed."""
    rows = {r.instance_name: r for r in db.scalars(select(VmPowerReport).where(VmPowerReport.host_id == host_id))}
    changed = 0
    for row in rows.values():
        if row.power_state in (POWER_ON, POWER_OFF):
            _make_unknown(row, now)
            changed += 1
    placed = db.scalars(select(VMInstance.instance_name).where(VMInstance.host_id == host_id,
                                                               VMInstance.state.in_(ON_HOST),
                                                               VMInstance.removed.is_(None)))
    for name in placed:
        if name not in rows:
            db.add(VmPowerReport(host_id=host_id, instance_name=name, power_state=POWER_UNKNOWN, state_changed=now,
                                 last_reported=now))
            changed += 1
    return changed


def note_unknown(db: Session, host_id: str, instance_name: str, now: datetime) -> None:
    """A stop sent to the host went unanswered: whether the VM still runs there is unknown until the
    host says (its next report, or a confirmed stop)."""
    row = db.scalars(select(VmPowerReport).where(VmPowerReport.host_id == host_id,
                                                 VmPowerReport.instance_name == instance_name)).first()
    if row is None:
        db.add(VmPowerReport(host_id=host_id, instance_name=instance_name, power_state=POWER_UNKNOWN,
                             state_changed=now, last_reported=now))
    elif row.power_state != POWER_UNKNOWN:
        _make_unknown(row, now)


def note_stopped(db: Session, host_id: str, instance_name: str, now: datetime) -> None:
    """The host confirmed a stop: the VM is off there until a report says otherwise."""
    row = db.scalars(select(VmPowerReport).where(VmPowerReport.host_id == host_id,
                                                 VmPowerReport.instance_name == instance_name)).first()
    if row is not None and row.power_state in (POWER_ON, POWER_UNKNOWN):
        row.power_state, row.state_changed, row.missing_since = POWER_OFF, now, None


def power_state_of(db: Session, instance_name: str) -> tuple[str, str] | None:
    """(host id, power state) of the most recent report naming this VM, or None."""
    row = db.scalars(select(VmPowerReport).where(VmPowerReport.instance_name == instance_name)
                     .order_by(VmPowerReport.missing_since.is_not(None), VmPowerReport.state_changed.desc())).first()
    return None if row is None else (row.host_id, row.power_state)
