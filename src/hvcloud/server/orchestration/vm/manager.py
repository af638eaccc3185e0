"""The VM manager's jobs: start (and deploy), stop, reboot, destroy, expunge; power sync.

Deploy and start run the command sequence CloudStack sends: the template to the chosen primary pool
once per pool (CopyCommand image store → primary, recorded in ``template_pool_ref``), the ROOT volume
as a linked clone (CopyCommand template → volume), data disks (CreateObjectCommand), then
StartCommand with the VirtualMachineTO. When a host fails the start, the VM is stopped there, its
capacity released, and the planner tries another host (up to ``START_ATTEMPTS`` hosts).

Crash safety: every handler is *resumable* — a job interrupted by a server crash runs again from the
top; each step checks what the database says is done and the agent commands are idempotent, so the
run converges on the same host. The deploy/start handlers also declare a *rollback*, run when the
job fails on its own or is abandoned after too many interruptions: the VM is stopped on its host,
a deploy's volumes are deleted, capacity is released, and the VM is left ``Error`` (deploy) or
``Stopped`` (start) with the reason in ``state_reason``. What the rollback cannot finish because the
host does not answer (the stop, the disks) stays recorded and is finished by ``storage_cleanup``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, object_session, sessionmaker

from hvcloud import logs
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import AsyncJob, Host, StoragePool, VMInstance, VmPowerReport, Volume, utcnow
from hvcloud.server.errors import INSUFFICIENT_CAPACITY, INTERNAL_ERROR, PARAM_ERROR
from hvcloud.server.jobs.handlers import JobContext, JobFailure, register
from hvcloud.server.orchestration import affinity_groups as affinity
from hvcloud.server.orchestration import planner, usage_events
from hvcloud.server.orchestration import resource_limits as limits
from hvcloud.server.orchestration import resource_tags as tags
from hvcloud.server.orchestration.agents import HOST_UP
from hvcloud.server.orchestration.networks import nics, routing, sg_sync
from hvcloud.server.orchestration.vm import power_sync as P
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm import wire as vm_wire
from hvcloud.server.orchestration.vm.steps import (
    Created,
    StepFailed,
    Steps,
    TemplateTOs,
    mark_creating,
    record_volume,
    retire_volume,
    start_vm_to,
    template_tos,
)
from hvcloud.wire.to import VolumeObjectTO

log = logs.get(__name__)

START_ATTEMPTS = 5
JOB_START = "vm.start"
JOB_STOP = "vm.stop"
JOB_REBOOT = "vm.reboot"
JOB_DESTROY = "vm.destroy"
JOB_EXPUNGE = "vm.expunge"
JOB_ISO = "vm.iso"


def set_state(vm: VMInstance, state: str, reason: str | None = None) -> None:
    """The one way a VM's state changes: its usage events go into the same transaction."""
    if vm.state != state:
        db = object_session(vm)
        if db is None:
            raise RuntimeError(f"VM {vm.id} changes state outside a session: its usage would be lost")
        now = utcnow()
        usage_events.vm_state_changed(db, vm, vm.state, state, now)
        vm.state, vm.state_changed = state, now
    vm.state_reason = reason


def _steps(jctx: JobContext) -> Steps:
    return Steps(jctx.sessions, jctx.agents, jctx.state.box, jctx.state.config.instance_name_suffix)


def _vm(db: Session, vm_id: str) -> VMInstance:
    vm = db.get(VMInstance, vm_id)
    if vm is None or vm.removed is not None:
        raise JobFailure(PARAM_ERROR, f"VM {vm_id} does not exist")
    return vm


def _result(jctx: JobContext, vm_id: str) -> dict[str, Any]:
    with jctx.sessions() as db:
        vm = db.get(VMInstance, vm_id)
        if vm is None:
            raise JobFailure(PARAM_ERROR, f"VM {vm_id} does not exist")
        return _result_of(db, vm)


def _result_of(db: Session, vm: VMInstance) -> dict[str, Any]:
    from hvcloud.server.views.vms import vm_view

    return {"virtualmachine": vm_view(db, vm)}


# ---------------------------------------------------------------------- start / deploy


@dataclass(frozen=True)
class Placed:
    """Where a start runs: the host, the VM's instance name, the template to clone (if its ROOT
    volume is new), the volumes to create (ROOT first) on ``pool_id``; and, read in the same
    transaction, the template's copy on the pool and the first volume's TO with its creation
    recorded (when the template copy exists or no template is needed)."""

    host_id: str
    name: str
    template_id: str | None
    todo: list[str]
    pool_id: str
    template: TemplateTOs | None = None
    first_volume: VolumeObjectTO | None = None
    #: the rows placement loaded, held so that the rest of its transaction finds them in the session
    #: (whose identity map keeps only what is referenced) instead of reading them again
    loaded: tuple[object, ...] = field(default=(), repr=False, compare=False)


def _place_and_prepare(db: Session, box: SecretBox, vm_id: str, avoid: list[str], deploy: bool,
                       jctx: JobContext | None = None) -> Placed | None:
    """Book a host (or keep the one an interrupted run booked) and pools for the VM's new volumes, and
    read what the next steps send. None if the VM is already Running (an earlier run finished).

    Everything is read first and written last (the bookings are compare-and-set UPDATEs, right for
    what was read or refused), so that the transaction holds the database's write lock only for its
    writes: on SQLite every other writer, of this server or of another sharing the file, waits."""
    with db.no_autoflush:
        vm = _vm(db, vm_id)
        if vm.state == S.RUNNING:
            return None
        if vm.state not in (S.STARTING, S.STOPPED) and not (deploy and vm.state == S.ERROR):
            raise JobFailure(PARAM_ERROR, f"Unable to start VM {vm.instance_name}: it is {vm.state}")
        booked: Host | None = None
        if vm.capacity_host_id is not None and vm.capacity_host_id not in avoid:
            booked = db.get(Host, vm.capacity_host_id)
            if booked is None or booked.status != HOST_UP:
                booked = None
        if booked is None and vm.capacity_host_id is not None:
            planner.release_host(db, vm)
        volumes = list(db.scalars(select(Volume).where(Volume.vm_id == vm.id, Volume.removed.is_(None))
                                  .order_by(Volume.device_id)))
        root = next((v for v in volumes if v.volume_type == "ROOT"), None)
        root_ready = root is not None and root.state == S.VOL_READY
        need = planner.Need.of(vm)
        rules = None
        if booked is not None:
            options: Iterable[tuple[Host, StoragePool | None]] = [(booked, root.pool if root is not None else None)]
        else:
            rules = affinity.placement(db, vm)
            options = planner.fitting(db, vm, need, avoid=[*avoid, *rules.avoid] if rules else avoid,
                                      root_size=0 if root is None or root_ready else root.size, volumes=volumes,
                                      within=rules.within if rules else None)
        for host, pool in options:
            plan = _plan(db, box, vm, host, pool, volumes, root)
            if booked is not None:
                break
            if planner.reserve_host(db, vm, host, need):
                if rules is None or affinity.allows(db, vm, host.id):
                    break
                planner.release_host(db, vm)  # a member of one of its groups was placed meanwhile
        else:
            raise JobFailure(INSUFFICIENT_CAPACITY,
                             planner.no_room(vm, need, avoid, rules.reason if rules else None).text)
        placed = _book(db, vm, host, plan)
    if jctx is not None:
        jctx.progress_in(db, 20, f"placed on host {host.name}")
    return placed


@dataclass(frozen=True)
class _Plan:
    pool: StoragePool
    todo: list[Volume]
    template_id: str | None
    template: TemplateTOs | None
    first_volume: VolumeObjectTO | None


def _plan(db: Session, box: SecretBox, vm: VMInstance, host: Host, pool: StoragePool | None,
          volumes: list[Volume], root: Volume | None) -> _Plan:
    """What a start on ``host`` needs, read without writing: the pool, the volumes to create on it
    (ROOT first when cloned from the template), the template's copies and the first volume's TO."""
    if root is not None and root.state == S.VOL_READY and root.pool is not None:
        pool = root.pool
    if pool is None or not planner.host_sees_pool(host, pool):
        pools = planner.pools_for(db, host, local=vm.service_offering.storage_type == "local")
        if not pools:
            raise JobFailure(INSUFFICIENT_CAPACITY, f"host {host.name} has no usable primary storage pool")
        pool = pools[0]
    todo = [v for v in volumes if v.state != S.VOL_READY]
    template_id = vm.template_id if root is not None and root in todo and root.template_id else None
    template, first = None, None
    if template_id is not None and root is not None:
        todo.remove(root)
        todo.insert(0, root)
        template = template_tos(db, box, template_id, pool.id)
    if todo and (template is None or (template.in_pool is not None and template.in_pool.path)):
        first = vm_wire.volume_to(todo[0], pool, vm.instance_name)
    return _Plan(pool, todo, template_id, template, first)


def _book(db: Session, vm: VMInstance, host: Host, plan: _Plan) -> Placed:
    """The writes of a placement, once its host is booked: the volumes' pool space, the VM on its way
    to the host and, when its TO was read, the first volume's creation attempt."""
    pool = plan.pool
    for v in plan.todo:
        if v.pool_id is not None and v.pool_id != pool.id:
            planner.release_pool(db, v)
        if not planner.reserve_pool(db, v, pool):
            raise JobFailure(INSUFFICIENT_CAPACITY, f"primary storage pool {pool.name} has no room for volume {v.name} "
                                           f"({v.size} bytes)")
    vm.host_id = host.id
    set_state(vm, S.STARTING)
    if plan.first_volume is not None:
        mark_creating(plan.todo[0], host.id)
    return Placed(host.id, vm.instance_name, plan.template_id, [v.id for v in plan.todo], pool.id,
                  template=plan.template, first_volume=plan.first_volume, loaded=(vm, host, pool, *plan.todo))


def _start_reads(db: Session, box: SecretBox, vm_id: str, created: Created | None,
                 host_id: str) -> tuple[routing.StartPlan, Any, bool]:
    """The reads before a start, in one transaction: what the VM's routers need, when every
    network's router runs already (the usual case) the StartCommand's VirtualMachineTO, and whether
    the VM is in security groups (then its rules go to the host after the start)."""
    plan = routing.start_plan(db, box, vm_id)
    to = start_vm_to(db, box, vm_id, created, host_id) if plan.ready else None
    return plan, to, bool(sg_sync.vm_group_ids(db, vm_id))


def _note_reason(db: Session, vm_id: str, text: str) -> None:
    vm = db.get(VMInstance, vm_id)
    if vm is not None:
        vm.state_reason = text[:1024]




def _started(db: Session, jctx: JobContext, vm_id: str, host_id: str, created: Created | None = None) -> dict[str, Any]:
    """Record the VM running, the last volume the start created (``created``: a crash before this
    leaves it ``Creating``, and the job's rerun or rollback handles it as a creation whose answer was
    lost) and the job's result, in one transaction. Its reads come first, so that it holds the
    database's write lock only for its writes."""
    from hvcloud.server.views.vms import vm_view_becoming

    with db.no_autoflush:
        vm = _vm(db, vm_id)
        view = vm_view_becoming(db, vm_id, S.RUNNING, None) if vm.host_id == host_id else None
        vm.host_id, vm.last_host_id = host_id, host_id
        set_state(vm, S.RUNNING)
    if created is not None:
        record_volume(db, created)
    db.flush()
    body = {"virtualmachine": view} if view is not None else _result_of(db, vm)
    if jctx.params.get("deploy") and vm.password_enc:  # the generated password, shown in this result only
        body["virtualmachine"]["password"] = jctx.state.box.decrypt(vm.password_enc)
    return jctx.finish_in(db, body)


def _failed_on_host(db: Session, vm_id: str, host_id: str, reason: str, deploy: bool) -> list[str]:
    """After a failed start on a host: give back its capacity. Volumes on that host's local pool must
    be recreated elsewhere (returned), except a start's Ready volumes: they hold the VM's data, and
    only that host can start it."""
    vm = _vm(db, vm_id)
    planner.release_host(db, vm)
    vm.host_id = None
    vm.state_reason = reason[:1024]
    local: list[str] = []
    for v in db.scalars(select(Volume).where(Volume.vm_id == vm.id, Volume.removed.is_(None))):
        if v.pool is not None and v.pool.scope == "HOST" and v.pool.host_id == host_id \
                and (deploy or v.state != S.VOL_READY):
            local.append(v.id)
    return local


def _recreate_elsewhere(db: Session, volume_id: str) -> bool:
    """A volume on the failed host's local pool must be made anew on the next host. One never created
    just gives its pool space back; otherwise a fresh row takes its place on the VM and the old one is
    retired, its disk deleted now or by the storage cleanup. True when there is a disk to delete."""
    old = db.get(Volume, volume_id)
    if old is None:
        return False
    if old.state == S.VOL_ALLOCATED:
        planner.release_pool(db, old)
        old.pool_id, old.host_id = None, None
        return False
    limits.adjust(db, old.account_id, limits.volume_deltas(old.size))  # the replacement, until the old one goes
    db.add(Volume(name=old.name, account_id=old.account_id, zone_id=old.zone_id, vm_id=old.vm_id,
                  volume_type=old.volume_type, device_id=old.device_id, size=old.size, format=old.format,
                  disk_offering_id=old.disk_offering_id, template_id=old.template_id, attached=old.attached,
                  state=S.VOL_ALLOCATED))
    retire_volume(db, old.id)
    return True


async def run_start(jctx: JobContext) -> dict[str, Any]:
    vm_id, deploy = str(jctx.params["vm_id"]), bool(jctx.params.get("deploy"))
    steps = _steps(jctx)
    avoid: list[str] = []
    last_error = ""
    for _attempt in range(START_ATTEMPTS):
        try:
            placed = await steps.tx(_place_and_prepare, steps.box, vm_id, avoid, deploy, jctx)
        except JobFailure as exc:
            text = exc.text if not avoid else f"{exc.text}; the last start failed with: {last_error}"
            await steps.tx(_note_reason, vm_id, text)
            raise JobFailure(exc.code, text) from None
        if placed is None:
            return _result(jctx, vm_id)
        host_id, name, template_id, todo, pool_id = placed.host_id, placed.name, placed.template_id, \
            placed.todo, placed.pool_id
        try:
            template = None
            if template_id is not None:
                template = await steps.template_to_pool(host_id, template_id, pool_id, placed.template)
            unrecorded: Created | None = None
            for volume_id in todo:
                last = volume_id == todo[-1]
                prepared = placed.first_volume if volume_id == todo[0] else None
                try:
                    from_template = template if volume_id == todo[0] else None
                    created = await steps.create_volume(host_id, volume_id, name, from_template, prepared=prepared,
                                                        record=not last)
                except StepFailed as exc:
                    if template is None or volume_id != todo[0] or exc.unanswered:
                        raise
                    # the pool lost its template copy (or this host never had it): copy it again
                    await steps.forget_template_in_pool(template_id or "", pool_id)
                    template = await steps.template_to_pool(host_id, template_id or "", pool_id)
                    created = await steps.create_volume(host_id, volume_id, name, template, record=not last)
                if last:
                    unrecorded = created
            plan, to, grouped = await steps.tx(_start_reads, steps.box, vm_id, unrecorded, host_id)
            if not await routing.publish_start(steps, plan, vm_id, host_id):
                to = None  # a network was implemented or its router restarted: read the NICs again
            await steps.start(host_id, vm_id, created=unrecorded, to=to)
            if grouped:
                await sg_sync.vm_changed(steps, vm_id, host_id)
        except StepFailed as exc:
            last_error = exc.text
            log.warning("VM start failed", vm=name, host=host_id, reason=exc.text)
            try:
                await steps.stop(host_id, name, True)
            except StepFailed as stop_exc:
                log.warning("cleanup stop of a VM failed", vm=name, host=host_id, reason=stop_exc.text)
                await steps.tx(P.note_unknown, host_id, name, utcnow())
            local = await steps.tx(_failed_on_host, vm_id, host_id, exc.text, deploy)
            for volume_id in local:
                if await steps.tx(_recreate_elsewhere, volume_id):
                    with contextlib.suppress(StepFailed):
                        await steps.delete_volume(volume_id, host_id)
            if not exc.host_fault:
                raise JobFailure(INTERNAL_ERROR, exc.text) from None
            avoid.append(host_id)
            continue
        return await steps.tx(_started, jctx, vm_id, host_id, unrecorded)
    raise JobFailure(INTERNAL_ERROR, f"Unable to start VM {vm_id} on {len(avoid)} host(s); last error: {last_error}")


def _rollback_plan(db: Session, vm_id: str) -> tuple[str | None, str, list[str]] | None:
    vm = db.get(VMInstance, vm_id)
    if vm is None:
        return None
    volumes = [v.id for v in db.scalars(select(Volume).where(Volume.vm_id == vm.id, Volume.removed.is_(None)))]
    return vm.host_id or vm.capacity_host_id, vm.instance_name, volumes


def _rolled_back(db: Session, vm_id: str, deploy: bool, reason: str, unconfirmed_on: str | None) -> None:
    """``unconfirmed_on``: the host that did not confirm the VM's stop. The VM's power state there
    becomes unknown, so that the storage cleanup stops it there (a failed deploy's VM) before it
    deletes the disks, or power sync finds it running (a start's)."""
    vm = db.get(VMInstance, vm_id)
    if vm is None:
        return
    planner.release_host(db, vm)
    vm.host_id = None
    if vm.state == S.RUNNING:
        return
    if unconfirmed_on is not None:
        P.note_unknown(db, unconfirmed_on, vm.instance_name, utcnow())
    text = reason if not vm.state_reason else f"{reason}: {vm.state_reason}"
    set_state(vm, S.ERROR if deploy else S.STOPPED, text[:1024])


async def rollback_start(jctx: JobContext) -> None:
    vm_id, deploy = str(jctx.params["vm_id"]), bool(jctx.params.get("deploy"))
    steps = _steps(jctx)
    plan = await steps.tx(_rollback_plan, vm_id)
    if plan is None:
        return
    host_id, name, volumes = plan
    running = await steps.tx(lambda db: (v := db.get(VMInstance, vm_id)) is not None and v.state == S.RUNNING)
    if running:
        return
    unconfirmed = None
    if host_id is not None:
        try:
            await steps.stop(host_id, name, True)
        except StepFailed as exc:
            log.warning("rollback: stopping the VM failed", vm=name, reason=exc.text)
            unconfirmed = host_id
    if deploy:
        for volume_id in volumes:
            await steps.tx(retire_volume, volume_id)
        for volume_id in volumes:
            try:
                await steps.delete_volume(volume_id, host_id)
            except StepFailed as exc:
                log.warning("rollback: volume is left to the storage cleanup", volume=volume_id, reason=exc.text)
    reason = "Deployment failed and was rolled back" if deploy else "Start failed and was rolled back"
    await steps.tx(_rolled_back, vm_id, deploy, reason, unconfirmed)


# ---------------------------------------------------------------------- stop, reboot


def _begin_stop(db: Session, vm_id: str) -> tuple[str | None, str] | None:
    vm = _vm(db, vm_id)
    if vm.state == S.STOPPED:
        return None
    if vm.state not in S.ALLOWED["stop"]:
        raise JobFailure(PARAM_ERROR, f"Unable to stop VM {vm.instance_name}: it is {vm.state}")
    set_state(vm, S.STOPPING)
    return vm.host_id or vm.capacity_host_id, vm.instance_name


def _stopped(db: Session, vm_id: str, reason: str | None = None) -> None:
    vm = _vm(db, vm_id)
    planner.release_host(db, vm)
    if vm.host_id is not None:
        vm.last_host_id = vm.host_id
    vm.host_id = None
    set_state(vm, S.STOPPED, reason)


def _stop_failed(db: Session, vm_id: str, reason: str) -> None:
    vm = _vm(db, vm_id)
    set_state(vm, S.RUNNING, reason[:1024])


async def stop_vm(steps: Steps, vm_id: str, forced: bool) -> None:
    begun = await steps.tx(_begin_stop, vm_id)
    if begun is None:
        return
    host_id, name = begun
    if host_id is not None:
        try:
            await steps.stop(host_id, name, forced)
        except StepFailed as exc:
            if not forced:
                await steps.tx(_stop_failed, vm_id, exc.text)
                raise JobFailure(INTERNAL_ERROR, f"Unable to stop VM {name}: {exc.text}") from None
            await steps.tx(_stopped, vm_id, f"forced stop; the host did not confirm: {exc.text}")
            await sg_sync.vm_changed(steps, vm_id)
            return
    await steps.tx(_stopped, vm_id)
    await sg_sync.vm_changed(steps, vm_id)


async def run_stop(jctx: JobContext) -> dict[str, Any]:
    vm_id = str(jctx.params["vm_id"])
    await stop_vm(_steps(jctx), vm_id, bool(jctx.params.get("forced")))
    return _result(jctx, vm_id)


def _reboot_target(db: Session, vm_id: str) -> tuple[str, str]:
    vm = _vm(db, vm_id)
    if vm.state != S.RUNNING or vm.host_id is None:
        raise JobFailure(PARAM_ERROR, f"Unable to reboot VM {vm.instance_name}: it is {vm.state}")
    return vm.host_id, vm.instance_name


async def run_reboot(jctx: JobContext) -> dict[str, Any]:
    from hvcloud.wire import commands as C

    vm_id = str(jctx.params["vm_id"])
    steps = _steps(jctx)
    host_id, name = await steps.tx(_reboot_target, vm_id)
    try:
        await steps.send(host_id, C.RebootCommand(vmName=name, wait=600), f"rebooting VM {name}")
    except StepFailed as exc:
        raise JobFailure(INTERNAL_ERROR, exc.text) from None
    return _result(jctx, vm_id)


# ---------------------------------------------------------------------- destroy, expunge


def _destroyed(db: Session, vm_id: str) -> None:
    vm = _vm(db, vm_id)
    planner.release_host(db, vm)
    set_state(vm, S.DESTROYED)
    for v in db.scalars(select(Volume).where(Volume.vm_id == vm.id, Volume.volume_type == "ROOT",
                                             Volume.removed.is_(None))):
        if v.state == S.VOL_READY:
            v.state = S.VOL_DESTROY


def _begin_expunge(db: Session, vm_id: str) -> tuple[str | None, list[str]]:
    vm = db.get(VMInstance, vm_id)
    if vm is None or vm.removed is not None:
        return None, []
    set_state(vm, S.EXPUNGING)
    root: list[str] = []
    for v in db.scalars(select(Volume).where(Volume.vm_id == vm.id, Volume.removed.is_(None))):
        if v.volume_type == "ROOT":
            root.append(v.id)
        else:
            v.vm_id, v.device_id, v.attached = None, None, None
    return vm.last_host_id, root


def _expunged(db: Session, vm_id: str) -> None:
    vm = db.get(VMInstance, vm_id)
    if vm is not None:
        if vm.removed is None:
            limits.release(db, vm.account_id, limits.vm_deltas(vm))
        planner.release_host(db, vm)
        vm.host_id = None
        vm.removed = vm.removed or utcnow()
        nics.release_vm_nics(db, vm_id)
        tags.forget(db, tags.USER_VM, [vm_id])
        if vm.affinity_group_count:
            affinity.leave_all(db, vm_id)


async def expunge_vm(steps: Steps, vm_id: str) -> None:
    host_hint, volumes = await steps.tx(_begin_expunge, vm_id)
    for volume_id in volumes:
        try:
            await steps.delete_volume(volume_id, host_hint)
        except StepFailed as exc:
            raise JobFailure(INTERNAL_ERROR, f"Unable to expunge VM {vm_id}: {exc.text}") from None
    # the routers forget the VM while its NICs still name their networks, then the addresses go back
    await routing.withdraw_vm(steps, vm_id)
    await steps.tx(_expunged, vm_id)
    await sg_sync.vm_changed(steps, vm_id)


async def destroy_vm(steps: Steps, vm_id: str) -> None:
    """Stop the VM (forced) and leave it Destroyed, unless it already is (or is being expunged)."""
    state = await steps.tx(lambda db: _vm(db, vm_id).state)
    if state not in (S.DESTROYED, S.EXPUNGING):
        if state != S.STOPPED:
            await stop_vm(steps, vm_id, True)
        await steps.tx(_destroyed, vm_id)


async def run_destroy(jctx: JobContext) -> dict[str, Any]:
    vm_id = str(jctx.params["vm_id"])
    steps = _steps(jctx)
    await destroy_vm(steps, vm_id)
    if jctx.params.get("expunge"):
        result = _result(jctx, vm_id)
        await expunge_vm(steps, vm_id)
        result["virtualmachine"]["state"] = S.EXPUNGING
        return result
    return _result(jctx, vm_id)


async def run_expunge(jctx: JobContext) -> dict[str, Any]:
    vm_id = str(jctx.params["vm_id"])
    steps = _steps(jctx)
    state = await steps.tx(lambda db: _vm(db, vm_id).state)
    if state in (S.RUNNING, S.STARTING, S.STOPPING):
        await stop_vm(steps, vm_id, True)
    await expunge_vm(steps, vm_id)
    return {"success": True}


def _iso_target(db: Session, box: Any, vm_id: str) -> tuple[str | None, str, Any]:
    from hvcloud.server.orchestration.vm.steps import iso_to

    vm = _vm(db, vm_id)
    host = vm.host_id if vm.state == S.RUNNING else None
    return host, vm.instance_name, iso_to(db, vm, box)


def _set_iso(db: Session, vm_id: str, iso_id: str | None) -> None:
    _vm(db, vm_id).iso_id = iso_id


async def run_iso(jctx: JobContext) -> dict[str, Any]:
    """attachIso / detachIso: the ISO drive (slot 3) of a running VM changes through the agent; a
    stopped VM only records it (the next StartCommand carries it)."""
    from hvcloud.wire import commands as C

    vm_id, attach = str(jctx.params["vm_id"]), bool(jctx.params.get("attach"))
    steps = _steps(jctx)
    host_id, name, iso = await steps.tx(_iso_target, jctx.state.box, vm_id)
    if host_id is not None and iso is not None:
        disk = vm_wire.iso_disk_to(iso)
        cmd: Any = C.AttachCommand(disk=disk, vmName=name) if attach else C.DettachCommand(disk=disk, vmName=name)
        try:
            await steps.send(host_id, cmd, f"{'attaching' if attach else 'detaching'} the ISO of {name}")
        except StepFailed as exc:
            if attach:
                await steps.tx(_set_iso, vm_id, None)
            raise JobFailure(INTERNAL_ERROR, exc.text) from None
    if not attach:
        await steps.tx(_set_iso, vm_id, None)
    return _result(jctx, vm_id)


register(JOB_START, run_start, resumable=True, rollback=rollback_start)
register(JOB_STOP, run_stop, resumable=True)
register(JOB_REBOOT, run_reboot, resumable=True)
register(JOB_DESTROY, run_destroy, resumable=True)
register(JOB_EXPUNGE, run_expunge, resumable=True)
register(JOB_ISO, run_iso, resumable=True)


# ---------------------------------------------------------------------- power sync


def job_in_flight(db: Session, vm_id: str) -> bool:
    return db.scalar(select(AsyncJob.id).where(AsyncJob.object_key == f"VirtualMachine:{vm_id}",
                                               AsyncJob.status == 0).limit(1)) is not None


def apply_power_changes(db: Session, changes: list[P.PowerChange], grace_seconds: float) -> int:
    """Move VMs to Stopped when their host reports them off or missing, to Running when reported on.

    VMs with a job in flight, or whose state changed within the grace period or after the report was
    requested (a report taken before a start finished, applied late under load), are left to their job."""
    moved = 0
    now = utcnow()
    for change in changes:
        vm = db.scalars(select(VMInstance).where(VMInstance.instance_name == change.instance_name,
                                                 VMInstance.removed.is_(None))).first()
        if vm is None or job_in_flight(db, vm.id) or now - vm.state_changed < timedelta(seconds=grace_seconds):
            continue
        if change.taken is not None and vm.state_changed >= change.taken:
            continue
        if change.new in (P.POWER_OFF, P.POWER_REPORT_MISSING) and vm.state == S.RUNNING \
                and vm.host_id == change.host_id:
            planner.release_host(db, vm)
            vm.last_host_id, vm.host_id = vm.host_id, None
            what = "reported powered off by its host" if change.new == P.POWER_OFF \
                else "missing from its host's reports"
            set_state(vm, S.STOPPED, f"The VM was {what}, outside the cloud's control")
            moved += 1
        elif change.new == P.POWER_ON and vm.state == S.STOPPED:
            host = db.get(Host, change.host_id)
            if host is None:
                continue
            planner.hold_host(db, vm, host)
            vm.host_id = vm.last_host_id = host.id
            set_state(vm, S.RUNNING, "The VM was found running on its host")
            moved += 1
    return moved


def sweep_unreported(db: Session, grace_seconds: float) -> int:
    """Stop Running VMs their host has never reported although it was pinged well after they
    started (a VM that vanished before any report showed it has no power report row to change)."""
    moved = 0
    report = VmPowerReport
    stmt = (select(VMInstance, Host).join(Host, VMInstance.host_id == Host.id)
            .outerjoin(report, and_(report.host_id == Host.id, report.instance_name == VMInstance.instance_name))
            .where(VMInstance.state == S.RUNNING, VMInstance.removed.is_(None), Host.status == HOST_UP,
                   report.id.is_(None)))
    for vm, host in db.execute(stmt).unique().all():
        if host.last_pinged is None or host.last_pinged - vm.state_changed < timedelta(seconds=2 * grace_seconds):
            continue
        if not job_in_flight(db, vm.id):
            planner.release_host(db, vm)
            vm.last_host_id, vm.host_id = vm.host_id, None
            set_state(vm, S.STOPPED, "The VM was missing from its host's reports")
            moved += 1
    return moved


async def power_sweep_loop(sessions: sessionmaker[Session], timing: Callable[[], tuple[float, float]]) -> None:
    """Every ping interval, :func:`sweep_unreported`; ``timing`` gives the current (interval, grace)
    (both follow ``ping.interval``, which may change while the server runs)."""
    def once(grace_seconds: float) -> None:
        with sessions.begin() as db:
            sweep_unreported(db, grace_seconds)

    while True:
        await asyncio.sleep(timing()[0])
        try:
            await asyncio.to_thread(once, timing()[1])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("VM power sweep failed")


def power_listener(sessions: sessionmaker[Session], grace_seconds: Callable[[], float]) -> Any:
    def listener(changes: list[P.PowerChange]) -> None:
        with sessions.begin() as db:
            apply_power_changes(db, changes, grace_seconds())
    return listener
