"""Who may use a VM: its own account, or any root admin. Everyone else is answered as if the VM did
not exist (CloudStack's 431), so ids of other accounts' VMs reveal nothing."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hvcloud.server import errors
from hvcloud.server.db.models import User, VMInstance
from hvcloud.server.db.seed import ACCOUNT_TYPE_ADMIN


def visible_vm(db: Session, caller: User, vm_id: str, param: str = "virtualmachineid") -> VMInstance:
    """The VM ``vm_id`` if ``caller`` may use it; else the 431 of an entity that does not exist
    (naming ``param``), whether or not it does."""
    vm = db.get(VMInstance, vm_id) if vm_id and len(vm_id) <= 64 else None
    if vm is None or vm.removed is not None or (
            caller.account.account_type != ACCOUNT_TYPE_ADMIN and vm.account_id != caller.account_id):
        raise errors.entity_not_found(param, vm_id[:64])
    return vm
