"""CloudStack's ``affinitygroup`` object (listAffinityGroups, createAffinityGroup, a VM's
``affinitygroup[]``) and ``affinityGroupType`` (listAffinityGroupTypes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server.db.models import Account, AffinityGroup, AffinityGroupVmMap, Domain, VMInstance
from hvcloud.server.views.fields import compact

#: how many groups one batch of queries renders
CHUNK = 500


def group_views(db: Session, group_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The groups' objects in the order of ``group_ids``: two queries per :data:`CHUNK` groups."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(group_ids), CHUNK):
        chunk = list(group_ids[start:start + CHUNK])
        rows = {g.id: (g, account, domain) for g, account, domain in db.execute(
            select(AffinityGroup, Account.name, Domain.name).join(Account, Account.id == AffinityGroup.account_id)
            .join(Domain, Domain.id == AffinityGroup.domain_id).where(AffinityGroup.id.in_(chunk)))}
        members: dict[str, list[str]] = {}
        for gid, vm_id in db.execute(select(AffinityGroupVmMap.affinity_group_id, AffinityGroupVmMap.vm_id)
                                     .join(VMInstance, VMInstance.id == AffinityGroupVmMap.vm_id)
                                     .where(AffinityGroupVmMap.affinity_group_id.in_(chunk),
                                            VMInstance.removed.is_(None))
                                     .order_by(VMInstance.created, VMInstance.id)):
            members.setdefault(gid, []).append(vm_id)
        for gid in chunk:
            if gid not in rows:
                continue
            group, account, domain = rows[gid]
            out.append(compact({"id": group.id, "name": group.name, "description": group.description,
                                "type": group.group_type, "account": account, "domainid": group.domain_id,
                                "domain": domain, "virtualmachineIds": members.get(gid) or None}))
    return out


def vm_affinity_groups(db: Session, vm_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Each VM's ``affinitygroup[]`` (id, name, description, type, account...), in one query; the
    caller passes only VMs whose ``affinity_group_count`` is not 0 (none: no query)."""
    out: dict[str, list[dict[str, Any]]] = {}
    if not vm_ids:
        return out
    rows = db.execute(select(AffinityGroupVmMap.vm_id, AffinityGroup, Account.name, Domain.name)
                      .join(AffinityGroup, AffinityGroup.id == AffinityGroupVmMap.affinity_group_id)
                      .join(Account, Account.id == AffinityGroup.account_id)
                      .join(Domain, Domain.id == AffinityGroup.domain_id)
                      .where(AffinityGroupVmMap.vm_id.in_(list(vm_ids))).order_by(AffinityGroup.name))
    for vm_id, g, account, domain in rows:
        out.setdefault(vm_id, []).append(compact({"id": g.id, "name": g.name, "description": g.description,
                                                  "type": g.group_type, "account": account,
                                                  "domainid": g.domain_id, "domain": domain}))
    return out


def type_views(types: Sequence[str]) -> list[dict[str, Any]]:
    return [{"type": t} for t in types]
