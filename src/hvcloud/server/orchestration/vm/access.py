"""Who may use a VM: its own account, any root admin, or a domain admin of the owner's domain subtree.
Everyone else is answered as if the VM did not exist (CloudStack's 431), so ids of other accounts'
VMs reveal nothing."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hvcloud.server import errors
from hvcloud.server.db.models import User, VMInstance
from hvcloud.server.orchestration.domain_scope import may_act_for


def visible_vm(db: Session, caller: User, vm_id: str, param: str = "virtualmachineid") -> VMInstance:
    """The VM ``vm_id`` if ``caller`` may use it; else the 431 of an entity that does not exist
    (naming ``param``), whether or not it does."""
    vm = db.get(VMInstance, vm_id) if vm_id and len(vm_id) <= 64 else None
    if vm is None or vm.removed is not None or not may_act_for(db, caller, vm.account_id):
        raise errors.entity_not_found(param, vm_id[:64])
    return vm
