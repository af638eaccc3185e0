"""Instance groups: an account's named sets of VMs (CloudStack's ``instance_group``), for the user's
own bookkeeping. ``createInstanceGroup`` makes one; the ``group`` name of deployVirtualMachine and
updateVirtualMachine picks the account's group of that name, made when it does not exist yet. A VM is
in at most one group; deleting a group leaves its VMs in none.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hvcloud.server import errors
from hvcloud.server.db.models import Account, InstanceGroup, User, VMInstance, new_id, utcnow
from hvcloud.server.orchestration import events

MAX_NAME = 255


def _checked(name: str) -> str:
    name = name.strip()
    if not name:
        raise errors.param_error("Invalid name: the instance group name cannot be empty")
    if len(name) > MAX_NAME:
        raise errors.param_error(f"Invalid name: at most {MAX_NAME} characters")
    return name


def find_group(db: Session, account_id: str, name: str) -> InstanceGroup | None:
    return db.scalar(select(InstanceGroup).where(InstanceGroup.account_id == account_id,
                                                 func.lower(InstanceGroup.name) == name.lower()))


def create_group(db: Session, actor: User, owner: Account, name: str) -> InstanceGroup:
    name = _checked(name)
    if find_group(db, owner.id, name) is not None:
        raise errors.param_error(f"Unable to create vm group, a group with name {name} already exists for account "
                                 f"{owner.name}")
    group = InstanceGroup(name=name, account_id=owner.id, domain_id=owner.domain_id)
    db.add(group)
    db.flush()
    events.record(db, actor, "VM.GROUP.CREATE", f"Creating instance group {name}", resource_type="InstanceGroup",
                  resource_id=group.id)
    return group


def group_named(db: Session, owner: Account, name: str) -> InstanceGroup:
    """The owner's group ``name`` (a VM's ``group``), made now if it has none. ``INSERT … ON CONFLICT
    DO NOTHING`` on the unique (account, name) index: a concurrent maker's row wins and is read back."""
    name = _checked(name)
    group = find_group(db, owner.id, name)
    if group is not None:
        return group
    insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    db.execute(insert(InstanceGroup).values(id=new_id(), name=name, account_id=owner.id, domain_id=owner.domain_id,
                                            created=utcnow())
               .on_conflict_do_nothing(index_elements=["account_id", "name"]))
    found = find_group(db, owner.id, name)
    assert found is not None
    return found


def rename_group(db: Session, group: InstanceGroup, name: str) -> None:
    name = _checked(name)
    other = find_group(db, group.account_id, name)
    if other is not None and other.id != group.id:
        raise errors.param_error(f"Unable to update vm group, a group with name {name} already exists for account")
    group.name = name
    db.flush()


def delete_group(db: Session, actor: User, group: InstanceGroup) -> None:
    """The group goes; its VMs are left in no group."""
    db.execute(update(VMInstance).where(VMInstance.group_id == group.id).values(group_id=None)
               .execution_options(synchronize_session=False))
    db.delete(group)
    db.flush()
    events.record(db, actor, "VM.GROUP.DELETE", f"Deleting instance group {group.name}",
                  resource_type="InstanceGroup", resource_id=group.id)


def set_vm_group(db: Session, vm: VMInstance, owner: Account, name: str | None) -> None:
    """The VM's group becomes the owner's group ``name`` (made if needed); None or blank: no group."""
    vm.group_id = group_named(db, owner, name).id if name and name.strip() else None
