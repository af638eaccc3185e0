"""Affinity groups: an account's named sets of VMs that the planner keeps on one host (``host
affinity``) or on distinct hosts (``host anti-affinity``), CloudStack's two host processors.

A VM's memberships are rows of ``affinity_group_vm_map``; ``vm_instance.affinity_group_count``
counts them in the same transactions, so that placing or showing a VM in no group reads nothing more.
Memberships change only while the VM is Stopped (CloudStack's rule); they go with the group or the
VM (expunge). Placement: :func:`placement`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from hvcloud.server import errors
from hvcloud.server.db.models import Account, AffinityGroup, AffinityGroupVmMap, User, VMInstance
from hvcloud.server.orchestration import events
from hvcloud.server.orchestration.vm import states as S

HOST_AFFINITY = "host affinity"
HOST_ANTI_AFFINITY = "host anti-affinity"
TYPES = (HOST_ANTI_AFFINITY, HOST_AFFINITY)
#: bound on one VM's groups (CloudStack has none; ours keeps a request's work bounded)
MAX_GROUPS_PER_VM = 32


def find_group(db: Session, account_id: str, name: str) -> AffinityGroup | None:
    return db.scalar(select(AffinityGroup).where(AffinityGroup.account_id == account_id, AffinityGroup.name == name))


def create_group(db: Session, actor: User, owner: Account, name: str, group_type: str,
                 description: str | None) -> AffinityGroup:
    if group_type not in TYPES:
        raise errors.param_error(f"Unable to create affinity group, invalid affinity group type {group_type[:64]}; "
                                 f"the types are: {', '.join(TYPES)}")
    name = name.strip()
    if not name:
        raise errors.param_error("Invalid name: the affinity group name cannot be empty")
    if db.scalar(select(AffinityGroup.id).where(AffinityGroup.account_id == owner.id,
                                                func.lower(AffinityGroup.name) == name.lower())) is not None:
        raise errors.param_error(f"Unable to create affinity group, a group with name {name} already exists.")
    group = AffinityGroup(name=name, group_type=group_type, description=description, account_id=owner.id,
                          domain_id=owner.domain_id)
    db.add(group)
    db.flush()
    events.record(db, actor, "AG.CREATE", f"Creating affinity group {name}", resource_type="AffinityGroup",
                  resource_id=group.id)
    return group


def delete_group(db: Session, actor: User, group: AffinityGroup) -> None:
    """The group goes, and with it its VMs' memberships (CloudStack removes the map rows)."""
    members = select(AffinityGroupVmMap.vm_id).where(AffinityGroupVmMap.affinity_group_id == group.id)
    db.execute(update(VMInstance).where(VMInstance.id.in_(members))
               .values(affinity_group_count=VMInstance.affinity_group_count - 1)
               .execution_options(synchronize_session=False))
    db.execute(delete(AffinityGroupVmMap).where(AffinityGroupVmMap.affinity_group_id == group.id)
               .execution_options(synchronize_session=False))
    db.delete(group)
    db.flush()
    events.record(db, actor, "AG.DELETE", f"Deleting affinity group {group.name}", resource_type="AffinityGroup",
                  resource_id=group.id)


def resolve(db: Session, owner: Account, ids: Sequence[str], names: Sequence[str], *,
            ids_param: str = "affinitygroupids", names_param: str = "affinitygroupnames") -> list[AffinityGroup]:
    """The groups a VM of ``owner`` is to be in (by ids or names, not both): another account's group
    is as unknown as a missing one (CloudStack: the group's owner must be the VM's)."""
    if ids and names:
        raise errors.param_error(f"Invalid {names_param}: {names_param} and {ids_param} parameters can't be "
                                 "specified together")
    param = ids_param if ids else names_param
    wanted = list(ids or names)
    if len(wanted) > MAX_GROUPS_PER_VM:
        raise errors.param_error(f"Invalid {param}: at most {MAX_GROUPS_PER_VM} affinity groups per virtual machine")
    out: list[AffinityGroup] = []
    for raw in wanted:
        group = db.get(AffinityGroup, raw) if ids else find_group(db, owner.id, raw)
        if group is None or group.account_id != owner.id:
            raise errors.param_error(f"Invalid {param}: Unable to find affinity group {raw[:64]} of account "
                                     f"{owner.name[:64]}")
        if group not in out:
            out.append(group)
    return out


def set_vm_groups(db: Session, vm: VMInstance, groups: Sequence[AffinityGroup]) -> None:
    """The VM's memberships become ``groups`` (a new VM's, or a Stopped VM's new set)."""
    if vm.affinity_group_count:
        db.execute(delete(AffinityGroupVmMap).where(AffinityGroupVmMap.vm_id == vm.id)
                   .execution_options(synchronize_session=False))
    db.add_all([AffinityGroupVmMap(affinity_group_id=g.id, vm_id=vm.id) for g in groups])
    vm.affinity_group_count = len(groups)


def update_vm_groups(db: Session, actor: User, vm: VMInstance, groups: Sequence[AffinityGroup]) -> None:
    """updateVMAffinityGroup: only a Stopped VM changes groups (CloudStack's refusal, 431)."""
    if vm.state != S.STOPPED:
        raise errors.param_error(f"Unable update affinity groups of the virtual machine {vm.instance_name} in state "
                                 f"{vm.state}; make sure the virtual machine is stopped and not in an error state "
                                 "before updating.")
    set_vm_groups(db, vm, groups)
    db.flush()
    events.record(db, actor, "VM.AG.UPDATE", f"Updating the affinity groups of VM {vm.instance_name}",
                  resource_type="VirtualMachine", resource_id=vm.id)


def leave_all(db: Session, vm_id: str) -> None:
    """An expunged VM leaves its groups."""
    db.execute(delete(AffinityGroupVmMap).where(AffinityGroupVmMap.vm_id == vm_id)
               .execution_options(synchronize_session=False))
    db.execute(update(VMInstance).where(VMInstance.id == vm_id).values(affinity_group_count=0)
               .execution_options(synchronize_session=False))


# ---------------------------------------------------------------------- placement


@dataclass(frozen=True)
class Placement:
    """What a VM's groups allow: hosts to avoid (anti-affinity), and the hosts it must go to
    (affinity; None: any), with the reason for an error that no host satisfies them."""

    avoid: frozenset[str]
    within: frozenset[str] | None
    reason: str


def _holding_hosts(db: Session, vm: VMInstance, groups: list[AffinityGroup]) -> dict[str, set[str]]:
    """The hosts each group's other live VMs are on or booked on (Running, Starting, Stopping,
    Migrating or holding capacity), by group id."""
    on_host = (*S.ON_HOST, S.STARTING)
    rows = db.execute(select(AffinityGroupVmMap.affinity_group_id, VMInstance.state, VMInstance.host_id,
                             VMInstance.capacity_host_id)
                      .join(VMInstance, VMInstance.id == AffinityGroupVmMap.vm_id)
                      .where(AffinityGroupVmMap.affinity_group_id.in_([g.id for g in groups]),
                             VMInstance.id != vm.id, VMInstance.removed.is_(None)))
    out: dict[str, set[str]] = {g.id: set() for g in groups}
    for group_id, state, host_id, capacity_host_id in rows:
        if capacity_host_id is not None:
            out[group_id].add(capacity_host_id)
        if host_id is not None and state in on_host:
            out[group_id].add(host_id)
    return out


def placement(db: Session, vm: VMInstance) -> Placement | None:
    """The constraints of the VM's affinity groups; None when it is in none (no query then).

    The groups' rows are read FOR UPDATE (PostgreSQL), so that concurrent placements of members of
    one group take turns and each sees where the others went."""
    if not vm.affinity_group_count:
        return None
    groups = list(db.scalars(select(AffinityGroup).join(AffinityGroupVmMap, AffinityGroupVmMap.affinity_group_id ==
                                                        AffinityGroup.id)
                             .where(AffinityGroupVmMap.vm_id == vm.id).order_by(AffinityGroup.id)
                             .with_for_update(of=AffinityGroup)))
    if not groups:
        return None
    holding = _holding_hosts(db, vm, groups)
    avoid: set[str] = set()
    within: set[str] | None = None
    reasons: list[str] = []
    for g in groups:
        hosts = holding[g.id]
        if g.group_type == HOST_ANTI_AFFINITY:
            avoid |= hosts
            reasons.append(f"host anti-affinity group {g.name} excludes {len(hosts)} host(s)")
        elif hosts:
            within = set(hosts) if within is None else within & hosts
            reasons.append(f"host affinity group {g.name} allows only {len(hosts)} host(s)")
    return Placement(frozenset(avoid), None if within is None else frozenset(within),
                     "; ".join(reasons) or "no constraint")


def allows(db: Session, vm: VMInstance, host_id: str) -> bool:
    """Whether the VM's groups allow ``host_id`` as the database holds them now: placement checks again
    once it has booked the host. On SQLite the booking holds the write lock, so a concurrent
    placement of another member has committed before this read (or waits for this one)."""
    rules = placement(db, vm)
    return rules is None or (host_id not in rules.avoid and (rules.within is None or host_id in rules.within))
