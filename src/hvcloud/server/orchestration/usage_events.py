"""Usage events (CloudStack's ``usage_event``): written in the transaction of the change they record,
so the usage aggregation (:mod:`usage`) sees exactly what happened and when.

VMs: ``VM.CREATE``/``VM.DESTROY`` bound their allocated time, ``VM.START``/``VM.STOP`` their running
time; :func:`vm_state_changed` derives them from every state change (``vm.manager.set_state`` is the
one place a VM's state changes). Templates and ISOs: ``TEMPLATE.CREATE``/``TEMPLATE.DELETE`` (``ISO.*``)
per zone copy, with its stored size.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from hvcloud.server.db.models import UsageEvent, VMInstance, VMTemplate, utcnow

VM_CREATE, VM_DESTROY, VM_START, VM_STOP = "VM.CREATE", "VM.DESTROY", "VM.START", "VM.STOP"
TEMPLATE_CREATE, TEMPLATE_DELETE = "TEMPLATE.CREATE", "TEMPLATE.DELETE"
ISO_CREATE, ISO_DELETE = "ISO.CREATE", "ISO.DELETE"

#: VM states charged as running time (the VM is on its host); Starting is not, as in CloudStack
RUNNING_STATES = frozenset({"Running", "Stopping", "Migrating"})
#: VM states no longer charged as allocated
GONE_STATES = frozenset({"Destroyed", "Expunging"})


def _vm_event(db: Session, vm: VMInstance, event_type: str, at: datetime) -> None:
    db.add(UsageEvent(event_type=event_type, created=at, account_id=vm.account_id, zone_id=vm.zone_id,
                      resource_id=vm.id, resource_name=vm.instance_name, offering_id=vm.service_offering_id,
                      template_id=vm.template_id or vm.iso_id))


def vm_created(db: Session, vm: VMInstance, at: datetime | None = None) -> None:
    _vm_event(db, vm, VM_CREATE, at or utcnow())


def vm_state_changed(db: Session, vm: VMInstance, old: str, new: str, at: datetime) -> None:
    """The events of one state change (a start and an allocation are closed before a destroy)."""
    was_running, runs = old in RUNNING_STATES, new in RUNNING_STATES
    was_allocated, allocated = old not in GONE_STATES, new not in GONE_STATES
    if was_running and not runs:
        _vm_event(db, vm, VM_STOP, at)
    if was_allocated and not allocated:
        _vm_event(db, vm, VM_DESTROY, at)
    if allocated and not was_allocated:
        _vm_event(db, vm, VM_CREATE, at)
    if runs and not was_running:
        _vm_event(db, vm, VM_START, at)


def template_stored(db: Session, template: VMTemplate, zone_id: str, size: int) -> None:
    """A copy of the template is in ``zone_id``'s image store (again: a later event replaces the size)."""
    db.add(UsageEvent(event_type=ISO_CREATE if template.is_iso else TEMPLATE_CREATE, created=utcnow(),
                      account_id=template.account_id, zone_id=zone_id, resource_id=template.id,
                      resource_name=template.name, size=size))


def template_deleted(db: Session, template: VMTemplate, zone_id: str) -> None:
    db.add(UsageEvent(event_type=ISO_DELETE if template.is_iso else TEMPLATE_DELETE, created=utcnow(),
                      account_id=template.account_id, zone_id=zone_id, resource_id=template.id,
                      resource_name=template.name))
