"""The agent-side steps of a VM's life, each a short DB transaction around one agent command.

Every command sent here is idempotent on the agent (a template copy is cached per pool, a volume
copy or create with the same uuid returns the existing file, Start of a VM already running the same
spec succeeds, Stop of a missing VM succeeds, Delete of a missing file succeeds), so a job that runs
these steps again after a management server crash converges instead of duplicating work.

A volume's creation is recorded before its command is sent (state ``Creating`` and the host, in
their own transaction), and the agent names the new file after the volume's uuid. So a volume whose
answer never came back (the agent died after creating it) is still known to have a disk, and a
DeleteCommand by that uuid removes it. Disks a failed job must delete are first marked ``Expunging``
(:func:`retire_volume`); if no host can delete them then, the storage cleanup
(``storage_cleanup``) retries once a host answers again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import case, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload, sessionmaker

from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import (
    Host,
    StoragePool,
    TemplatePoolRef,
    TemplateStoreRef,
    VMInstance,
    VMTemplate,
    Volume,
    utcnow,
)
from hvcloud.server.orchestration import planner
from hvcloud.server.orchestration import resource_limits as limits
from hvcloud.server.orchestration import resource_tags as tags
from hvcloud.server.orchestration.agents import HOST_UP, AgentError
from hvcloud.server.orchestration.agents.protocol import AgentSender
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm import wire as vm_wire
from hvcloud.wire import answers as A
from hvcloud.wire import commands as C
from hvcloud.wire.base import Answer, Command
from hvcloud.wire.to import DiskTO, TemplateObjectTO, VolumeObjectTO

T = TypeVar("T")


class StepFailed(Exception):
    """An agent refused or could not run a step; ``host_fault`` says whether another host may do better,
    ``unanswered`` that the host gave no answer at all (down, killed, timed out): what it did is unknown."""

    def __init__(self, text: str, *, host_fault: bool = True, unanswered: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.host_fault = host_fault
        self.unanswered = unanswered


class Steps:
    """Runs the steps for one job: ``agents`` is the AgentManager, ``sessions`` the database."""

    def __init__(self, sessions: sessionmaker[Session], agents: AgentSender | None, box: SecretBox,
                 name_suffix: str = "VM") -> None:
        self.sessions = sessions
        self.agents = agents
        self.box = box
        #: CloudStack's ``instance.name``: the last part of the names of the system VMs (routers)
        #: these steps create, so that clouds sharing a host never reuse a name
        self.name_suffix = name_suffix

    async def tx(self, fn: Callable[..., T], *args: Any) -> T:
        def run() -> T:
            with self.sessions.begin() as db:
                return fn(db, *args)
        return await asyncio.to_thread(run)

    async def send(self, host_id: str, command: Command, what: str) -> Answer:
        if self.agents is None:
            raise StepFailed("the agent manager is not running on this management server", host_fault=False)
        try:
            answer = await self.agents.send(host_id, command)
        except AgentError as exc:
            raise StepFailed(f"{what} on host {host_id}: {exc}", unanswered=True) from None
        if not answer.result:
            raise StepFailed(f"{what} on host {host_id} failed: {answer.details or 'no details'}")
        return answer  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ template and volumes

    async def template_to_pool(self, host_id: str, template_id: str, pool_id: str,
                               known: TemplateTOs | None = None) -> TemplateObjectTO:
        """The template's copy on the pool, copied from the image store the first time (once per pool).
        ``known``: what a transaction of the caller already read (:func:`template_tos`)."""
        if known is None:
            known = await self.tx(template_tos, self.box, template_id, pool_id)
        if known.in_pool is not None and known.in_pool.path:
            return known.in_pool
        if known.on_store is None:
            raise StepFailed(f"template {template_id} is not ready on an image store of the zone", host_fault=False)
        answer = await self.send(host_id, C.CopyCommand(srcTO=known.on_store, destTO=known.dest, wait=10800),
                                 "copying the template to primary storage")
        if not isinstance(answer, A.CopyCmdAnswer) or not isinstance(answer.newData, TemplateObjectTO) \
                or not answer.newData.path:
            raise StepFailed("the template copy answered no path")
        await self.tx(_record_template_in_pool, template_id, pool_id, answer.newData.path, answer.newData.size or 0)
        return known.dest.model_copy(update={"path": answer.newData.path})

    async def forget_template_in_pool(self, template_id: str, pool_id: str) -> None:
        await self.tx(_forget_template_in_pool, template_id, pool_id)

    async def create_volume(self, host_id: str, volume_id: str, vm_name: str | None,
                            template: TemplateObjectTO | None, *, prepared: VolumeObjectTO | None = None,
                            record: bool = True) -> Created | None:
        """Clone a ROOT volume from the template on primary, or create an empty one; record its path
        unless not ``record`` (the caller then records the returned :class:`Created` in its next
        transaction, before it relies on the disk). ``prepared``: the volume's TO from a transaction
        of the caller that already recorded the creation attempt (:func:`volume_to_create`). None
        when the volume was already there."""
        vol_to = prepared if prepared is not None else await self.tx(volume_to_create, volume_id, vm_name, host_id)
        if vol_to is None:
            return None
        if template is not None:
            answer = await self.send(host_id, C.CopyCommand(srcTO=template, destTO=vol_to, wait=10800),
                                     f"creating volume {volume_id} from the template")
            new = answer.newData if isinstance(answer, A.CopyCmdAnswer) else None
        else:
            answer = await self.send(host_id, C.CreateObjectCommand(data=vol_to), f"creating volume {volume_id}")
            new = answer.data if isinstance(answer, A.CreateObjectAnswer) else None
        if not isinstance(new, VolumeObjectTO) or not new.path:
            raise StepFailed(f"creating volume {volume_id} answered no path")
        created = Created(volume_id, new.path, new.size)
        if record:
            await self.tx(record_volume, created)
        return created

    async def delete_volume(self, volume_id: str, fallback_host: str | None = None) -> None:
        """Delete the volume's file (idempotent) and mark it Expunged, releasing its pool space."""
        target = await self.tx(_delete_target, volume_id, fallback_host)
        if target is None:
            return
        host_id, data = target
        if host_id is not None and data is not None:
            await self.send(host_id, C.DeleteCommand(data=data), f"deleting volume {volume_id}")
        elif data is not None:
            raise StepFailed(f"no connected host can reach the pool of volume {volume_id}", host_fault=False)
        await self.tx(_expunge_volume_row, volume_id)

    # ------------------------------------------------------------------ the VM

    async def start(self, host_id: str, vm_id: str, *, created: Created | None = None, to: Any = None) -> None:
        """StartCommand carries no ``wait`` of its own: the ``wait`` setting bounds it, as in CloudStack.
        ``created``: a volume of the VM whose creation the caller records after the start (with the
        VM Running, in one write); the command shows it as recorded. ``to``: the VirtualMachineTO
        when the caller read it already (:func:`start_vm_to`, in its own transaction)."""
        if to is None:
            to = await self.tx(start_vm_to, self.box, vm_id, created, host_id)
        answer = await self.send(host_id, C.StartCommand(vm=to), f"starting VM {to.name}")
        if not isinstance(answer, A.StartAnswer):
            raise StepFailed(f"starting VM {to.name} answered {type(answer).__name__}")

    async def stop(self, host_id: str, instance_name: str, force: bool) -> None:
        await self.send(host_id, C.StopCommand(vmName=instance_name, forceStop=force, wait=600),
                        f"stopping VM {instance_name}")


# ---------------------------------------------------------------------- transactions


@dataclass
class TemplateTOs:
    on_store: TemplateObjectTO | None
    in_pool: TemplateObjectTO | None
    dest: TemplateObjectTO


@dataclass(frozen=True)
class Created:
    """A volume the agent created: what :func:`record_volume` writes."""

    volume_id: str
    path: str
    size: int | None


def template_tos(db: Session, box: SecretBox, template_id: str, pool_id: str) -> TemplateTOs:
    """The template's copy on the pool if it has one, else its copy on an image store of the zone
    (the source of the copy to make): once the pool has it, the store is not looked up."""
    template = db.get(VMTemplate, template_id, options=[lazyload("*")])
    pool = db.get(StoragePool, pool_id)
    if template is None or pool is None:
        raise StepFailed("the template or the storage pool no longer exists", host_fault=False)
    ref = db.scalars(select(TemplatePoolRef).where(TemplatePoolRef.template_id == template_id,
                                                   TemplatePoolRef.pool_id == pool_id)).first()
    dest = vm_wire.template_in_pool_to(template, None, pool)
    if ref is not None and ref.install_path:
        return TemplateTOs(None, vm_wire.template_in_pool_to(template, ref, pool), dest)
    store_ref = db.scalars(select(TemplateStoreRef).where(TemplateStoreRef.template_id == template_id,
                                                          TemplateStoreRef.zone_id == pool.zone_id,
                                                          TemplateStoreRef.download_state == "DOWNLOADED")).first()
    on_store = None
    if store_ref is not None and store_ref.store is not None and store_ref.install_path:
        on_store = vm_wire.template_on_store_to(template, store_ref.store, store_ref.install_path, box)
    return TemplateTOs(on_store, vm_wire.template_in_pool_to(template, ref, pool) if ref else None, dest)


def _record_template_in_pool(db: Session, template_id: str, pool_id: str, path: str, size: int) -> None:
    exists = db.scalar(select(TemplatePoolRef.id).where(TemplatePoolRef.template_id == template_id,
                                                        TemplatePoolRef.pool_id == pool_id))
    if exists is None:
        try:
            with db.begin_nested():
                db.add(TemplatePoolRef(template_id=template_id, pool_id=pool_id, install_path=path, size=size))
        except IntegrityError:
            pass  # another deploy recorded the same copy at the same time


def _forget_template_in_pool(db: Session, template_id: str, pool_id: str) -> None:
    for ref in db.scalars(select(TemplatePoolRef).where(TemplatePoolRef.template_id == template_id,
                                                        TemplatePoolRef.pool_id == pool_id)):
        db.delete(ref)


def volume_to_create(db: Session, volume_id: str, vm_name: str | None, host_id: str) -> VolumeObjectTO | None:
    """Record the creation attempt (committed before the command is sent) and build its TO."""
    volume = db.get(Volume, volume_id)
    if volume is None or volume.pool is None:
        raise StepFailed(f"volume {volume_id} has no storage pool", host_fault=False)
    if volume.state == S.VOL_READY and volume.path:
        return None
    mark_creating(volume, host_id)
    return vm_wire.volume_to(volume, volume.pool, vm_name)


def mark_creating(volume: Volume, host_id: str) -> None:
    volume.state = S.VOL_CREATING
    volume.host_id = host_id


def record_volume(db: Session, created: Created) -> None:
    """One UPDATE, without loading the row: callers record a creation first thing in a transaction."""
    values: dict[str, Any] = {"path": created.path, "state": S.VOL_READY}
    if created.size:
        values["size"] = case((Volume.size < created.size, created.size), else_=Volume.size)
    db.execute(update(Volume).where(Volume.id == created.volume_id).values(**values)
               .execution_options(synchronize_session="fetch"))


def _delete_target(db: Session, volume_id: str,
                   fallback_host: str | None) -> tuple[str | None, VolumeObjectTO | None] | None:
    """Where to send the DeleteCommand: None when the row is gone, (None, None) when no disk was ever
    asked for (Allocated), (None, TO) when no connected host sees the pool."""
    volume = db.get(Volume, volume_id)
    if volume is None or volume.state == S.VOL_EXPUNGED:
        return None
    pool = volume.pool
    if pool is None or volume.state == S.VOL_ALLOCATED:
        return None, None
    return pool_host(db, pool, (volume.host_id, fallback_host)), vm_wire.volume_to(volume, pool, None)


def pool_host(db: Session, pool: StoragePool, preferred: tuple[str | None, ...] = ()) -> str | None:
    """An Up host that can reach ``pool``: the first of ``preferred`` that can, else any in the zone."""
    for host_id in preferred:
        host = db.get(Host, host_id) if host_id else None
        if host is not None and host.status == HOST_UP and planner.host_sees_pool(host, pool):
            return host.id
    for host in db.scalars(select(Host).where(Host.zone_id == pool.zone_id, Host.status == HOST_UP)):
        if planner.host_sees_pool(host, pool):
            return host.id
    return None


def _locked_volume(db: Session, volume_id: str) -> Volume | None:
    """The volume row, locked until the transaction ends (two servers finishing the same delete must
    not both give its pool space back)."""
    return db.scalars(select(Volume).where(Volume.id == volume_id).with_for_update(of=Volume)).first()


def _expunge_volume_row(db: Session, volume_id: str) -> None:
    volume = _locked_volume(db, volume_id)
    if volume is None or volume.state == S.VOL_EXPUNGED:
        return
    if volume.removed is None:
        limits.release(db, volume.account_id, limits.volume_deltas(volume.size))
    planner.release_pool(db, volume)
    volume.state, volume.vm_id, volume.device_id, volume.attached = S.VOL_EXPUNGED, None, None, None
    volume.removed = volume.removed or utcnow()
    tags.forget(db, tags.VOLUME, [volume_id])


def retire_volume(db: Session, volume_id: str) -> None:
    """Detach a volume whose disk may exist (its creation was attempted) and mark it ``Expunging``: a
    durable promise to delete the disk, kept until an agent confirms. It keeps its pool space, since
    the disk still takes it. A volume never created (Allocated) is left to be expunged at once."""
    volume = _locked_volume(db, volume_id)
    if volume is None or volume.state in (S.VOL_ALLOCATED, S.VOL_EXPUNGED, S.VOL_EXPUNGING):
        return
    volume.state, volume.vm_id, volume.device_id, volume.attached = S.VOL_EXPUNGING, None, None, None


def vm_disks(db: Session, vm: VMInstance, box: SecretBox, created: Created | None = None) -> list[DiskTO]:
    """The VM's Ready volumes and ISO; ``created``: a volume of the VM whose creation is not recorded
    yet, shown as :func:`record_volume` will record it."""
    usable = Volume.state == S.VOL_READY
    if created is not None:
        usable = or_(usable, Volume.id == created.volume_id)
    volumes = db.scalars(select(Volume).where(Volume.vm_id == vm.id, Volume.removed.is_(None), usable)
                         .order_by(Volume.device_id))
    disks = []
    for v in volumes:
        if v.pool is None:
            continue
        if created is not None and v.id == created.volume_id:
            disks.append(vm_wire.disk_to(v, v.pool, vm.instance_name, path=created.path,
                                         size=max(v.size, created.size or 0)))
        else:
            disks.append(vm_wire.disk_to(v, v.pool, vm.instance_name))
    iso = iso_to(db, vm, box)
    disks.append(vm_wire.iso_disk_to(iso))
    return disks


def iso_to(db: Session, vm: VMInstance, box: SecretBox) -> TemplateObjectTO | None:
    if vm.iso is None:
        return None
    ref = db.scalars(select(TemplateStoreRef).where(TemplateStoreRef.template_id == vm.iso.id,
                                                    TemplateStoreRef.zone_id == vm.zone_id)).first()
    if ref is None or ref.store is None or not ref.install_path:
        return None
    return vm_wire.template_on_store_to(vm.iso, ref.store, ref.install_path, box)


def start_vm_to(db: Session, box: SecretBox, vm_id: str, created: Created | None = None,
           host_id: str | None = None) -> Any:
    from hvcloud.server.orchestration.networks import nics

    vm = db.get(VMInstance, vm_id)
    if vm is None:
        raise StepFailed(f"VM {vm_id} no longer exists", host_fault=False)
    password = box.decrypt(vm.vnc_password_enc) if vm.vnc_password_enc else None
    host = db.get(Host, host_id) if host_id is not None else None
    tos = nics.nic_tos(db, vm, host.hypervisor if host is not None else None)
    for to in tos:
        if to.broadcastUri is None:
            raise StepFailed(f"the network of NIC {to.uuid} of VM {vm.instance_name} is not implemented (it has no "
                             "segment id yet)", host_fault=False)
    return vm_wire.vm_to(vm, vm_disks(db, vm, box, created), password, tos)
