"""CloudStack's ``securitygroup`` object (listSecurityGroups, the authorize commands, a VM's
``securitygroup[]``) and its ``ingressrule``/``egressrule`` entries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server.db.models import (
    Account,
    Domain,
    SecurityGroup,
    SecurityGroupRule,
    SecurityGroupVmMap,
    VMInstance,
)
from hvcloud.server.orchestration.resource_tags import SECURITY_GROUP
from hvcloud.server.views.fields import compact
from hvcloud.server.views.tags import tag_map

#: how many groups one batch of queries renders
CHUNK = 500


def rule_view(rule: SecurityGroupRule, allowed: tuple[str, str] | None) -> dict[str, Any]:
    """``allowed``: the (group name, account name) a rule naming a group admits."""
    out: dict[str, Any] = {"ruleid": rule.id, "protocol": rule.protocol}
    if rule.protocol == "icmp":
        out["icmptype"], out["icmpcode"] = rule.start_port, rule.end_port
    elif rule.protocol in ("tcp", "udp"):
        out["startport"], out["endport"] = rule.start_port, rule.end_port
    if allowed is not None:
        out["securitygroupname"], out["account"] = allowed
    else:
        out["cidr"] = rule.allowed_cidr
    out["tags"] = []
    return compact(out)


def group_views(db: Session, groups: Sequence[SecurityGroup], *, only_rules: Sequence[str] | None = None,
                members: bool = True) -> list[dict[str, Any]]:
    """The groups' objects in their order: a fixed number of queries per :data:`CHUNK` groups.
    ``only_rules``: show these rules only (the authorize commands answer with the new ones)."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(groups), CHUNK):
        chunk = list(groups[start:start + CHUNK])
        ids = [g.id for g in chunk]
        owners = {a.id: (a.name, d.name) for a, d in db.execute(
            select(Account, Domain).join(Domain, Domain.id == Account.domain_id)
            .where(Account.id.in_({g.account_id for g in chunk})))}
        rule_stmt = select(SecurityGroupRule).where(SecurityGroupRule.security_group_id.in_(ids))
        if only_rules is not None:
            rule_stmt = rule_stmt.where(SecurityGroupRule.id.in_(list(only_rules)))
        rules = list(db.scalars(rule_stmt.order_by(SecurityGroupRule.created, SecurityGroupRule.id)))
        allowed_ids = {r.allowed_group_id for r in rules if r.allowed_group_id}
        allowed = {gid: (name, account) for gid, name, account in db.execute(
            select(SecurityGroup.id, SecurityGroup.name, Account.name).join(Account, Account.id ==
                                                                             SecurityGroup.account_id)
            .where(SecurityGroup.id.in_(allowed_ids)))} if allowed_ids else {}
        vms: dict[str, list[str]] = {}
        if members:
            for gid, vm_id in db.execute(select(SecurityGroupVmMap.security_group_id, SecurityGroupVmMap.vm_id)
                                         .join(VMInstance, VMInstance.id == SecurityGroupVmMap.vm_id)
                                         .where(SecurityGroupVmMap.security_group_id.in_(ids),
                                                VMInstance.removed.is_(None))
                                         .order_by(VMInstance.created, VMInstance.id)):
                vms.setdefault(gid, []).append(vm_id)
        tags = tag_map(db, SECURITY_GROUP, ids)
        for group in chunk:
            own = [r for r in rules if r.security_group_id == group.id]
            account, domain = owners.get(group.account_id, ("", ""))
            view: dict[str, Any] = {
                "id": group.id, "name": group.name, "description": group.description, "account": account,
                "domainid": group.domain_id, "domain": domain,
                "ingressrule": [rule_view(r, allowed.get(r.allowed_group_id or "")) for r in own
                                if r.rule_type == "ingress"],
                "egressrule": [rule_view(r, allowed.get(r.allowed_group_id or "")) for r in own
                               if r.rule_type == "egress"],
                "tags": tags.get(group.id, []),
            }
            if members:
                view["virtualmachinecount"] = len(vms.get(group.id, []))
                view["virtualmachineids"] = vms.get(group.id, [])
            out.append(compact(view))
    return out


def group_view(db: Session, group: SecurityGroup, *, only_rules: Sequence[str] | None = None) -> dict[str, Any]:
    return group_views(db, [group], only_rules=only_rules)[0]


def vm_groups(db: Session, vm_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Each VM's ``securitygroup[]`` (id, name, description, account), in one query."""
    out: dict[str, list[dict[str, Any]]] = {}
    if not vm_ids:
        return out
    rows = db.execute(select(SecurityGroupVmMap.vm_id, SecurityGroup.id, SecurityGroup.name, SecurityGroup.description,
                             Account.name)
                      .join(SecurityGroup, SecurityGroup.id == SecurityGroupVmMap.security_group_id)
                      .join(Account, Account.id == SecurityGroup.account_id)
                      .where(SecurityGroupVmMap.vm_id.in_(list(vm_ids))).order_by(SecurityGroup.name))
    for vm_id, gid, name, description, account in rows:
        out.setdefault(vm_id, []).append(compact({"id": gid, "name": name, "description": description,
                                                  "account": account}))
    return out
