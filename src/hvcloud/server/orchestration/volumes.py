"""The volume manager: create and delete (deleteVolume synchronous, as in CloudStack), and the volume
jobs: attach and detach (running VMs through the agent, stopped VMs in the database only),
and resize.

A new DATADISK stays ``Allocated`` (database only) until it is first attached: attached to a stopped
VM it is created by the VM's next start; attached to a running VM it is created at once on the pool
of the VM's ROOT volume (CreateObjectCommand) and then hot-plugged (AttachCommand).

A resize of a volume on primary storage is CloudStack's ResizeVolumeCommand: to the host running
the VM the volume is attached to (which grows the disk through the hypervisor, the guest sees the
new size at once), or to any Up host that reaches the pool. The request marks the volume
``Resizing`` and books the growth on the pool; the job records the size the agent answered, or puts
the volume back ``Ready`` with its old size and booking when the agent refuses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from hvcloud.server import errors
from hvcloud.server import resource_types as R
from hvcloud.server.config import ServerConfig
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import Account, User, VMInstance, Volume, utcnow
from hvcloud.server.errors import INTERNAL_ERROR, PARAM_ERROR, RESOURCE_UNAVAILABLE
from hvcloud.server.jobs.handlers import JobContext, JobFailure, register
from hvcloud.server.orchestration import events, planner
from hvcloud.server.orchestration import resource_limits as limits
from hvcloud.server.orchestration import resource_tags as tags
from hvcloud.server.orchestration.agents import AgentError
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm import wire as vm_wire
from hvcloud.server.orchestration.vm.steps import StepFailed, Steps, pool_host
from hvcloud.wire import answers as A
from hvcloud.wire import commands as C
from hvcloud.wire.to import DiskTO

if TYPE_CHECKING:
    from hvcloud.server.orchestration.agents.protocol import AgentService

JOB_ATTACH = "volume.attach"
JOB_DETACH = "volume.detach"
JOB_RESIZE = "volume.resize"
ISO_DEVICE = vm_wire.ISO_SLOT
MAX_DEVICE = 15


def create_volume(db: Session, config: ServerConfig, actor: User, owner: Account, *, zone_id: str, name: str,
                  size: int, offering_id: str) -> Volume:
    """A new DATADISK, ``Allocated`` (no disk until it is first attached), charged to ``owner``."""
    volume = Volume(name=name[:255], account_id=owner.id, zone_id=zone_id, volume_type="DATADISK",
                    size=size, disk_offering_id=offering_id, state=S.VOL_ALLOCATED)
    limits.charge(db, config, owner, limits.volume_deltas(volume.size))
    db.add(volume)
    db.flush()
    events.record(db, actor, "VOLUME.CREATE", f"Creating volume {volume.name}", resource_type="Volume",
                  resource_id=volume.id)
    return volume


def delete_volume(db: Session, actor: User, volume: Volume, *, agents: AgentService | None,
                  sessions: sessionmaker[Session], box: SecretBox) -> None:
    """deleteVolume, synchronous as CloudStack's: a volume never created (``Allocated``) is removed in
    ``db``'s transaction; otherwise that transaction commits and the disk is deleted on a host now
    (the delete step writes in its own transaction). Called from a request's thread, not the loop."""
    events.record(db, actor, "VOLUME.DELETE", f"Deleting volume {volume.name}", resource_type="Volume",
                  resource_id=volume.id)
    if volume.state == S.VOL_ALLOCATED:
        limits.release(db, volume.account_id, limits.volume_deltas(volume.size))
        planner.release_pool(db, volume)
        volume.state, volume.removed = S.VOL_EXPUNGED, utcnow()
        tags.forget(db, tags.VOLUME, [volume.id])
        return
    if agents is None:
        raise errors.unavailable("The agent manager is not running on this management server")
    volume_id = volume.id
    db.commit()
    steps = Steps(sessions, agents, box)
    try:
        agents.run_sync(steps.delete_volume(volume_id), timeout=agents.config.command_wait_seconds + 10)
    except (StepFailed, AgentError) as exc:
        raise errors.internal(f"Unable to delete volume {volume_id}: {exc}") from None


def resize(db: Session, config: ServerConfig, actor: User, volume: Volume, new_size: int,
           offering_id: str | None) -> dict[str, Any] | None:
    """resizeVolume once the API checked it: the growth is charged to the owner and booked on the pool.
    A volume never created (``Allocated``) or kept at its size is resized here (None returned); any
    other is claimed ``Resizing`` and the params of the :data:`JOB_RESIZE` job are returned."""
    events.record(db, actor, "VOLUME.RESIZE", f"Resizing volume {volume.name} from {volume.size} to {new_size} bytes",
                  resource_type="Volume", resource_id=volume.id)
    shrink = new_size < volume.size
    charge = {R.PRIMARY_STORAGE: new_size - volume.size}
    if volume.state == S.VOL_ALLOCATED or new_size == volume.size:
        limits.charge(db, config, volume.account, charge)
        if not planner.rebook_pool(db, volume, new_size):
            raise _pool_full(volume, new_size)
        volume.size = new_size
        volume.disk_offering_id = offering_id or volume.disk_offering_id
        return None
    claimed = db.execute(update(Volume).where(Volume.id == volume.id, Volume.state == S.VOL_READY)
                         .values(state=S.VOL_RESIZING).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise errors.param_error(f"Volume {volume.name} is busy with another operation; try again")
    volume.state = S.VOL_RESIZING
    limits.charge(db, config, volume.account, charge)  # after the claim: volume, then account
    if not shrink and not planner.rebook_pool(db, volume, new_size):
        raise _pool_full(volume, new_size)
    return {"volume_id": volume.id, "old_size": volume.size, "new_size": new_size, "shrink_ok": shrink,
            "offering_id": offering_id}


def _pool_full(volume: Volume, new_size: int) -> errors.CloudError:
    pool = volume.pool.name if volume.pool is not None else "?"
    return errors.insufficient_capacity(f"Primary storage pool {pool} has no room to grow volume {volume.name} "
                                        f"from {volume.size} to {new_size} bytes")


def next_device_id(db: Session, vm_id: str) -> int:
    used = set(db.scalars(select(Volume.device_id).where(Volume.vm_id == vm_id, Volume.removed.is_(None))))
    for device in range(1, MAX_DEVICE + 1):
        if device != ISO_DEVICE and device not in used:
            return device
    raise JobFailure(PARAM_ERROR, f"the VM already has {MAX_DEVICE - 1} data disks")


def _result(jctx: JobContext, volume_id: str) -> dict[str, Any]:
    from hvcloud.server.views.volumes import volume_view

    with jctx.sessions() as db:
        volume = db.get(Volume, volume_id)
        if volume is None:
            raise JobFailure(PARAM_ERROR, f"volume {volume_id} does not exist")
        return {"volume": volume_view(volume)}


def _attach_plan(db: Session, volume_id: str, vm_id: str) -> tuple[str, str, bool] | None:
    """Record the attachment; for a running VM also book the pool. Returns (host, instance name,
    needs creating) when the agent must act."""
    volume, vm = db.get(Volume, volume_id), db.get(VMInstance, vm_id)
    if volume is None or vm is None or vm.removed is not None:
        raise JobFailure(PARAM_ERROR, "the volume or the VM no longer exists")
    if volume.vm_id not in (None, vm.id):
        raise JobFailure(PARAM_ERROR, f"volume {volume.name} is attached to another VM")
    if vm.state not in (S.RUNNING, S.STOPPED):
        raise JobFailure(PARAM_ERROR, f"Unable to attach a volume to VM {vm.instance_name}: it is {vm.state}")
    if volume.vm_id is None:
        volume.vm_id, volume.device_id = vm.id, next_device_id(db, vm.id)
    volume.attached = volume.attached or utcnow()
    if vm.state != S.RUNNING or vm.host_id is None:
        return None
    create = volume.state != S.VOL_READY
    if create and volume.pool_id is None:
        root = db.scalars(select(Volume).where(Volume.vm_id == vm.id, Volume.volume_type == "ROOT",
                                               Volume.removed.is_(None))).first()
        pool = root.pool if root is not None else None
        if pool is None or not planner.reserve_pool(db, volume, pool):
            raise JobFailure(errors.INSUFFICIENT_CAPACITY,
                             f"no room for volume {volume.name} on the VM's primary storage pool")
    return vm.host_id, vm.instance_name, create


def _disk(db: Session, volume_id: str, vm_name: str) -> DiskTO:
    volume = db.get(Volume, volume_id)
    if volume is None or volume.pool is None:
        raise JobFailure(PARAM_ERROR, f"volume {volume_id} has no storage pool")
    return vm_wire.disk_to(volume, volume.pool, vm_name)


def _undo_attach(db: Session, volume_id: str) -> None:
    volume = db.get(Volume, volume_id)
    if volume is not None:
        volume.vm_id, volume.device_id, volume.attached = None, None, None


async def run_attach(jctx: JobContext) -> dict[str, Any]:
    volume_id, vm_id = str(jctx.params["volume_id"]), str(jctx.params["vm_id"])
    steps = Steps(jctx.sessions, jctx.agents, jctx.state.box)
    plan = await steps.tx(_attach_plan, volume_id, vm_id)
    if plan is not None:
        host_id, name, create = plan
        try:
            if create:
                await steps.create_volume(host_id, volume_id, name, None)
            disk = await steps.tx(_disk, volume_id, name)
            await steps.send(host_id, C.AttachCommand(disk=disk, vmName=name), f"attaching volume to {name}")
        except StepFailed as exc:
            await steps.tx(_undo_attach, volume_id)
            raise JobFailure(INTERNAL_ERROR, exc.text) from None
    return _result(jctx, volume_id)


def _detach_plan(db: Session, volume_id: str) -> tuple[str, str] | None:
    volume = db.get(Volume, volume_id)
    if volume is None or volume.vm_id is None:
        return None
    vm = db.get(VMInstance, volume.vm_id)
    if vm is None or vm.state != S.RUNNING or vm.host_id is None or volume.state != S.VOL_READY:
        return None
    return vm.host_id, vm.instance_name


async def run_detach(jctx: JobContext) -> dict[str, Any]:
    volume_id = str(jctx.params["volume_id"])
    steps = Steps(jctx.sessions, jctx.agents, jctx.state.box)
    plan = await steps.tx(_detach_plan, volume_id)
    if plan is not None:
        host_id, name = plan
        disk = await steps.tx(_disk, volume_id, name)
        try:
            await steps.send(host_id, C.DettachCommand(disk=disk, vmName=name), f"detaching volume from {name}")
        except StepFailed as exc:
            raise JobFailure(INTERNAL_ERROR, exc.text) from None
    await steps.tx(_undo_attach, volume_id)
    return _result(jctx, volume_id)


def _resize_plan(db: Session, volume_id: str, new_size: int,
                 shrink_ok: bool) -> tuple[str, C.ResizeVolumeCommand] | None:
    """The host and command for a resize still to do; None when an earlier run finished it."""
    volume = db.get(Volume, volume_id)
    if volume is None or volume.removed is not None:
        raise JobFailure(PARAM_ERROR, f"volume {volume_id} no longer exists")
    if volume.state != S.VOL_RESIZING:
        return None
    if volume.pool is None or not volume.path:
        raise JobFailure(PARAM_ERROR, f"volume {volume.name} is not on primary storage")
    vm = db.get(VMInstance, volume.vm_id) if volume.vm_id else None
    vm_name: str | None = None
    if vm is not None and vm.state not in (S.RUNNING, S.STOPPED):
        raise JobFailure(PARAM_ERROR, f"Unable to resize volume {volume.name}: its VM {vm.instance_name} is {vm.state}")
    if vm is not None and vm.state == S.RUNNING and vm.host_id is not None:
        if new_size < volume.size:
            raise JobFailure(PARAM_ERROR, f"Unable to shrink volume {volume.name}: its VM {vm.instance_name} is "
                                        "running; stop it first")
        vm_name, host_id = vm.instance_name, vm.host_id
    else:
        found = pool_host(db, volume.pool, (volume.host_id,))
        if found is None:
            raise JobFailure(RESOURCE_UNAVAILABLE, f"no connected host can reach storage pool {volume.pool.name} of "
                                              f"volume {volume.name}")
        host_id = found
    return host_id, C.ResizeVolumeCommand(path=volume.path, pool=vm_wire.filer_to(volume.pool),
                                          currentSize=volume.size, newSize=new_size, shrinkOk=shrink_ok,
                                          vmInstance=vm_name, wait=3600)


def _resized(db: Session, volume_id: str, size: int, offering_id: str | None, asked: int | None = None) -> None:
    """``asked``: the size the API call charged to the owner's primary storage (None: ``size``)."""
    volume = db.get(Volume, volume_id)
    if volume is None or volume.state != S.VOL_RESIZING:
        return
    limits.adjust(db, volume.account_id, {R.PRIMARY_STORAGE: size - (size if asked is None else asked)})
    planner.rebook_pool(db, volume, size)
    volume.size, volume.state = size, S.VOL_READY
    if offering_id:
        volume.disk_offering_id = offering_id


async def run_resize(jctx: JobContext) -> dict[str, Any]:
    volume_id, new_size = str(jctx.params["volume_id"]), int(jctx.params["new_size"])
    steps = Steps(jctx.sessions, jctx.agents, jctx.state.box)
    plan = await steps.tx(_resize_plan, volume_id, new_size, bool(jctx.params.get("shrink_ok")))
    if plan is not None:
        host_id, cmd = plan
        try:
            answer = await steps.send(host_id, cmd, f"resizing volume {volume_id}")
        except StepFailed as exc:
            raise JobFailure(INTERNAL_ERROR, exc.text) from None
        size = answer.newSize if isinstance(answer, A.ResizeVolumeAnswer) and answer.newSize > 0 else new_size
        await steps.tx(_resized, volume_id, size, jctx.params.get("offering_id"), new_size)
    return _result(jctx, volume_id)


def _resize_undone(db: Session, volume_id: str, old_size: int, new_size: int | None = None) -> None:
    """``new_size``: what the API call charged the owner for (None: nothing to give back)."""
    volume = db.get(Volume, volume_id)
    if volume is None or volume.state != S.VOL_RESIZING:
        return
    limits.adjust(db, volume.account_id, {R.PRIMARY_STORAGE: old_size - (old_size if new_size is None else new_size)})
    planner.rebook_pool(db, volume, old_size)
    volume.size, volume.state = old_size, S.VOL_READY


async def rollback_resize(jctx: JobContext) -> None:
    """The volume goes back to Ready with its old size and booking (idempotent)."""
    steps = Steps(jctx.sessions, jctx.agents, jctx.state.box)
    await steps.tx(_resize_undone, str(jctx.params["volume_id"]), int(jctx.params["old_size"]),
                   int(jctx.params["new_size"]))


register(JOB_ATTACH, run_attach, resumable=True)
register(JOB_DETACH, run_detach, resumable=True)
register(JOB_RESIZE, run_resize, resumable=True, rollback=rollback_resize)
