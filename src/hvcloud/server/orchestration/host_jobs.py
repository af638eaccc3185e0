"""The host jobs of reconnectHost and prepareHostForMaintenance.

Maintenance follows CloudStack's resource states: the API moves an Up, Enabled host to
``PrepareForMaintenance`` at once (the planner places nothing on it from then on), and the job
empties the host and moves it to ``Maintenance``, or to ``ErrorInMaintenance`` with the reason when
VMs are still there. hvcloud does not live-migrate yet, so what happens to running VMs is
CloudStack's ``host.maintenance.local.storage.strategy``: ``Error`` (the default: the operator moves
or stops them and retries) or ``ForceStop`` (they are stopped, their capacity released). The agent is
sent ``MaintainCommand`` last, as CloudStack does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hvcloud.server import errors
from hvcloud.server.db.models import Event, Host, VMInstance
from hvcloud.server.jobs.handlers import JobContext, JobFailure, register
from hvcloud.server.orchestration.agents import (
    RESOURCE_MAINTENANCE,
    RESOURCE_PREPARE_MAINTENANCE,
)
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm.manager import stop_vm
from hvcloud.server.orchestration.vm.steps import StepFailed, Steps
from hvcloud.server.views.hosts import host_view
from hvcloud.wire import commands as C

JOB_RECONNECT = "host.reconnect"
JOB_MAINTAIN = "host.maintain"
RESOURCE_ERROR_IN_MAINTENANCE = "ErrorInMaintenance"
STRATEGY_ERROR = "Error"
STRATEGY_FORCE_STOP = "ForceStop"


def _host(db: Session, host_id: str) -> Host:
    host = db.get(Host, host_id)
    if host is None:
        raise JobFailure(errors.PARAM_ERROR, f"Host {host_id} does not exist")
    return host


def _result(jctx: JobContext, host_id: str) -> dict[str, Any]:
    with jctx.sessions() as db:
        return {"host": host_view(_host(db, host_id))}


def _event(jctx: JobContext, db: Session, host: Host, event_type: str, text: str, level: str = "INFO") -> None:
    db.add(Event(event_type=event_type, level=level, description=text, account_id=jctx.account_id,
                 user_id=jctx.user_id, resource_type="Host", resource_id=host.id))


# ---------------------------------------------------------------------- reconnect

async def run_reconnect(jctx: JobContext) -> dict[str, Any]:
    host_id = str(jctx.params["host_id"])
    if jctx.agents is None:
        raise JobFailure(errors.INTERNAL_ERROR, "the agent manager is not running on this management server")
    steps = Steps(jctx.sessions, jctx.agents, jctx.state.box)
    name = await steps.tx(lambda db: _host(db, host_id).name)
    outcome = await jctx.agents.reconnect(host_id)
    if outcome is None:
        raise JobFailure(errors.PARAM_ERROR, f"Host {name} no longer exists")
    if outcome.error is not None:
        raise JobFailure(errors.INTERNAL_ERROR, f"Failed to reconnect host {name}: {outcome.error}")

    def reconnected(db: Session) -> None:
        _event(jctx, db, _host(db, host_id), "HOST.RECONNECT", f"Reconnected host {name}")

    await steps.tx(reconnected)
    return _result(jctx, host_id)


# ---------------------------------------------------------------------- maintenance

def _vms_on(db: Session, host_id: str) -> list[VMInstance]:
    return list(db.scalars(select(VMInstance).where(
        or_(VMInstance.host_id == host_id, VMInstance.capacity_host_id == host_id),
        VMInstance.state.in_(S.HOLDS_CAPACITY), VMInstance.removed.is_(None)).order_by(VMInstance.instance_name)))


def _preparing(db: Session, host_id: str) -> list[str] | None:
    """The running VMs to stop; None when the host left PrepareForMaintenance (cancelled meanwhile)."""
    host = _host(db, host_id)
    if host.resource_state != RESOURCE_PREPARE_MAINTENANCE:
        return None
    return [vm.id for vm in _vms_on(db, host_id) if vm.state == S.RUNNING]


def _conclude(jctx: JobContext, db: Session, host_id: str, failures: list[str]) -> str | None:
    """Maintenance or ErrorInMaintenance; returns the error text for the latter."""
    host = _host(db, host_id)
    if host.resource_state != RESOURCE_PREPARE_MAINTENANCE:
        return f"Host {host.name} left PrepareForMaintenance ({host.resource_state}) before it was empty"
    left = [f"{vm.instance_name} ({vm.state})" for vm in _vms_on(db, host_id)]
    if left or failures:
        text = f"Host {host.name} cannot enter maintenance: " + "; ".join(
            [*failures, *(f"VM {v} still on the host" for v in left)])
        if left:
            text += (". hvcloud does not migrate VMs: stop them, or set "
                     "host.maintenance.local.storage.strategy=ForceStop, then retry")
        text = text[:1000]
        host.resource_state = RESOURCE_ERROR_IN_MAINTENANCE
        _event(jctx, db, host, "MAINT.PREPARE", text, level="ERROR")
        return text
    host.resource_state = RESOURCE_MAINTENANCE
    _event(jctx, db, host, "MAINT.PREPARE", f"Host {host.name} is in maintenance")
    return None


async def run_maintain(jctx: JobContext) -> dict[str, Any]:
    host_id = str(jctx.params["host_id"])
    steps = Steps(jctx.sessions, jctx.agents, jctx.state.box)
    running = await steps.tx(_preparing, host_id)
    if running is None:
        return _result(jctx, host_id)
    failures: list[str] = []
    if running and jctx.state.config.maintenance_strategy == STRATEGY_FORCE_STOP:
        for vm_id in running:
            try:
                await stop_vm(steps, vm_id, forced=True)
            except JobFailure as exc:
                failures.append(exc.text)
    if not running and not failures:
        try:
            await steps.send(host_id, C.MaintainCommand(), "MaintainCommand")
        except StepFailed as exc:
            failures.append(f"MaintainCommand: {exc.text}")
    error = await steps.tx(lambda db: _conclude(jctx, db, host_id, failures))
    if error is not None:
        raise JobFailure(errors.INTERNAL_ERROR, error)
    return _result(jctx, host_id)


async def rollback_maintain(jctx: JobContext) -> None:
    """A maintenance job that fails on its own already concluded; one abandoned mid-way leaves the
    host ErrorInMaintenance (never stuck in PrepareForMaintenance) for the operator to retry."""
    host_id = str(jctx.params["host_id"])

    def abandon(db: Session) -> None:
        host = db.get(Host, host_id)
        if host is not None and host.resource_state == RESOURCE_PREPARE_MAINTENANCE:
            host.resource_state = RESOURCE_ERROR_IN_MAINTENANCE
            _event(jctx, db, host, "MAINT.PREPARE", f"Maintenance of host {host.name} was interrupted; "
                   "retry prepareHostForMaintenance", level="ERROR")

    await Steps(jctx.sessions, jctx.agents, jctx.state.box).tx(abandon)


register(JOB_RECONNECT, run_reconnect, resumable=True)
register(JOB_MAINTAIN, run_maintain, resumable=True, rollback=rollback_maintain)
