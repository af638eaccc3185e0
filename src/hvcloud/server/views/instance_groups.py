"""CloudStack's ``instancegroup`` object (listInstanceGroups, create/updateInstanceGroup)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server.db.models import Account, Domain, InstanceGroup
from hvcloud.server.views.fields import compact


def group_views(db: Session, group_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The groups' objects in the order of ``group_ids``, in one query."""
    if not group_ids:
        return []
    rows = {g.id: (g, account, domain) for g, account, domain in db.execute(
        select(InstanceGroup, Account.name, Domain.name).join(Account, Account.id == InstanceGroup.account_id)
        .join(Domain, Domain.id == InstanceGroup.domain_id).where(InstanceGroup.id.in_(list(group_ids))))}
    out: list[dict[str, Any]] = []
    for gid in group_ids:
        if gid in rows:
            group, account, domain = rows[gid]
            out.append(compact({"id": group.id, "name": group.name, "created": group.created, "account": account,
                                "domainid": group.domain_id, "domain": domain}))
    return out


def group_view(db: Session, group: InstanceGroup) -> dict[str, Any]:
    return group_views(db, [group.id])[0]
