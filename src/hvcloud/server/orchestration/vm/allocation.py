"""A VM's rows and what they count against limits, changed in the request's own transaction:
deploy's allocation (the VM and its volumes, before any host is involved), recover and scale.

The caller commits; deploy's rows are flushed by the caller together with the job it queues.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from hvcloud.server import resource_types as R
from hvcloud.server.config import ServerConfig
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import (
    Account,
    AffinityGroup,
    DiskOffering,
    ServiceOffering,
    User,
    VMInstance,
    VMTemplate,
    Volume,
    new_id,
    utcnow,
)
from hvcloud.server.errors import CloudError, param_error
from hvcloud.server.orchestration import affinity_groups, events, instance_groups, planner, usage_events
from hvcloud.server.orchestration import resource_limits as limits
from hvcloud.server.orchestration.networks import nics
from hvcloud.server.orchestration.networks.nics import NicRequest
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm.manager import set_state


@dataclass(frozen=True)
class NewVm:
    """What deployVirtualMachine asked for, checked by the API. ``root_size``: the ROOT disk's size in
    bytes when the caller chose it (for an ISO it must); ``data_size``/``disk_offering``: a data disk."""

    number: int
    instance_name: str
    name: str
    display_name: str
    zone_id: str
    offering: ServiceOffering
    image: VMTemplate
    image_size: int | None
    host_id: str | None
    cpus: int
    speed: int
    memory: int
    user_data: str | None
    #: the instance group's name (made if the owner has none of that name)
    group: str | None
    #: the legacy NIC's bridge/switch (zones without guest networks)
    network_label: str
    #: the NICs in device order (``networks.nics.plan_deploy``)
    nics: Sequence[NicRequest]
    root_size: int | None
    root_offering_id: str | None
    disk_offering: DiskOffering | None
    data_size: int | None
    #: the affinity groups the VM joins (``affinity_groups.resolve``)
    affinity_groups: Sequence[AffinityGroup] = ()


def allocate(db: Session, config: ServerConfig, box: SecretBox, actor: User, new: NewVm,
             owner: Account | None = None) -> VMInstance:
    """The VM (``Stopped``), its volumes (``Allocated``) and NICs (addresses taken), owned by and
    charged to ``owner`` (an admin deploying for an account; default the actor's account)."""
    owner = actor.account if owner is None else owner
    image, offering, number, account_id = new.image, new.offering, new.number, owner.id
    vm = VMInstance(id=new_id(), name=new.name, display_name=new.display_name, instance_name=new.instance_name,
                    vm_number=number, account_id=account_id, user_id=actor.id, zone_id=new.zone_id,
                    requested_host_id=new.host_id, template_id=None if image.is_iso else image.id,
                    iso_id=image.id if image.is_iso else None, service_offering_id=offering.id,
                    os_type_id=image.os_type_id, cpu_number=new.cpus, cpu_speed=new.speed, memory=new.memory,
                    state=S.STOPPED, user_data=new.user_data,
                    ha_enabled=offering.offer_ha, vnc_password_enc=box.encrypt(secrets.token_urlsafe(6)))
    if image.is_iso:
        root = Volume(name=f"ROOT-{number}", account_id=account_id, zone_id=new.zone_id, vm_id=vm.id,
                      volume_type="ROOT", device_id=0, size=new.root_size, attached=utcnow(),
                      disk_offering_id=new.root_offering_id)
    else:
        size = max(new.image_size or 0, new.root_size or 0, (offering.root_disk_size or 0) * R.GiB)
        root = Volume(name=f"ROOT-{number}", account_id=account_id, zone_id=new.zone_id, vm_id=vm.id,
                      volume_type="ROOT", device_id=0, size=size or R.GiB, template_id=image.id,
                      attached=utcnow())
    data = None
    if new.data_size is not None and new.disk_offering is not None:
        data = Volume(name=f"DATA-{number}", account_id=account_id, zone_id=new.zone_id, vm_id=vm.id,
                      volume_type="DATADISK", device_id=1, size=new.data_size,
                      disk_offering_id=new.disk_offering.id, attached=utcnow())
    volumes = [root] if data is None else [root, data]
    nic_plan = nics.plan_nics(db, number, new.nics)
    limits.charge(db, config, owner,
                  {**limits.vm_deltas(vm), **limits.volume_deltas(sum(v.size for v in volumes), len(volumes))})
    db.add_all([vm, *volumes])
    nics.create_nics(db, vm, nic_plan, new.network_label)
    if new.group:
        instance_groups.set_vm_group(db, vm, owner, new.group)
    if new.affinity_groups:
        affinity_groups.set_vm_groups(db, vm, new.affinity_groups)
    usage_events.vm_created(db, vm)
    events.record(db, actor, "VM.CREATE", f"Creating VM {new.instance_name}", resource_type="VirtualMachine",
                  resource_id=vm.id)
    return vm


def recover(db: Session, actor: User, vm: VMInstance) -> None:
    """A destroyed VM back to ``Stopped``, its volumes ``Ready`` again (the caller checked the state)."""
    set_state(vm, S.STOPPED)
    for v in db.scalars(select(Volume).where(Volume.vm_id == vm.id, Volume.state == S.VOL_DESTROY)):
        v.state = S.VOL_READY
    events.record(db, actor, "VM.RECOVER", f"Recovering VM {vm.instance_name}", resource_type="VirtualMachine",
                  resource_id=vm.id)


def scale(db: Session, config: ServerConfig, actor: User, vm: VMInstance, offering: ServiceOffering, *, cpus: int,
          speed: int, memory: int) -> None:
    """A stopped VM's new service offering (scaleVirtualMachine, changeServiceForVirtualMachine), the
    difference charged to (or released from) its owner.

    A stopped VM holds no host capacity (``planner``); a booking left by an interrupted start is given
    back first, at the size it was booked with. The new size is then written by one UPDATE conditional
    on the VM still being Stopped and holding nothing, so a start booking a host at the same moment
    cannot leave the host counting the old size while its release later subtracts the new one."""
    if vm.state != S.STOPPED:
        raise not_stopped(vm)
    planner.release_host(db, vm)
    limits.charge(db, config, vm.account, {R.CPU: cpus - vm.cpu_number, R.MEMORY: memory - vm.memory})
    changed = db.execute(update(VMInstance)
                         .where(VMInstance.id == vm.id, VMInstance.state == S.STOPPED,
                                VMInstance.capacity_host_id.is_(None))
                         .values(cpu_number=cpus, cpu_speed=speed, memory=memory, service_offering_id=offering.id)
                         .execution_options(synchronize_session=False))
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        db.refresh(vm)
        raise not_stopped(vm)
    for attr, value in (("cpu_number", cpus), ("cpu_speed", speed), ("memory", memory),
                        ("service_offering_id", offering.id), ("service_offering", offering)):
        set_committed_value(vm, attr, value)
    events.record(db, actor, "VM.UPGRADE", f"Scaling VM {vm.instance_name}", resource_type="VirtualMachine",
                  resource_id=vm.id)


def not_stopped(vm: VMInstance) -> CloudError:
    """CloudStack's answer to a change of offering of a VM that is not Stopped."""
    return param_error(f"Unable to upgrade virtual machine {vm.instance_name} in state {vm.state}; "
                       "make sure the virtual machine is stopped")
