"""CloudStack's ``tag`` object (``listTags``, and the ``tags`` list of every taggable resource).

Lists render the tags of a whole page with :func:`tag_map`: one query per page (per 500 rows), never
one per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server.db.models import Account, Domain, ResourceTag
from hvcloud.server.views.fields import compact

CHUNK = 500
#: a tag row as its object shows it: the owner's account and domain names joined in
TAG_QUERY = (select(ResourceTag.resource_id, ResourceTag.resource_type, ResourceTag.key, ResourceTag.value,
                    ResourceTag.customer, ResourceTag.domain_id, Account.name.label("account"),
                    Domain.name.label("domain"))
             .join(Account, Account.id == ResourceTag.account_id)
             .join(Domain, Domain.id == ResourceTag.domain_id))

#: the tags of each resource of a page, by resource id
TagMap = dict[str, list[dict[str, Any]]]


def tag_view(row: Any) -> dict[str, Any]:
    """A row of :data:`TAG_QUERY` as CloudStack's ``tag`` (no ``project``/``projectid`` fields yet: a
    project's tags name its account)."""
    return compact({"key": row.key, "value": row.value, "resourcetype": row.resource_type,
                    "resourceid": row.resource_id, "account": row.account, "domainid": row.domain_id,
                    "domain": row.domain, "customer": row.customer})


def tag_map(db: Session, resource_type: str | Sequence[str], resource_ids: Sequence[str]) -> TagMap:
    """The tags of these resources (``resource_type``: one type, or several sharing one id space such
    as Template and ISO): one query per :data:`CHUNK` ids."""
    types = [resource_type] if isinstance(resource_type, str) else list(resource_type)
    out: TagMap = {}
    ids = list(dict.fromkeys(resource_ids))
    for start in range(0, len(ids), CHUNK):
        rows = db.execute(TAG_QUERY.where(ResourceTag.resource_type.in_(types),
                                          ResourceTag.resource_id.in_(ids[start:start + CHUNK]))
                          .order_by(ResourceTag.resource_id, ResourceTag.created, ResourceTag.key))
        for row in rows:
            out.setdefault(row.resource_id, []).append(tag_view(row))
    return out


def tag_views(db: Session, tag_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The ``tag`` objects of these tag rows, in that order (listTags): one query per :data:`CHUNK`."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(tag_ids), CHUNK):
        chunk = tag_ids[start:start + CHUNK]
        rows = {r.id: r for r in db.execute(TAG_QUERY.add_columns(ResourceTag.id).where(ResourceTag.id.in_(chunk)))}
        out.extend(tag_view(rows[i]) for i in chunk if i in rows)
    return out


def tags_of(db: Session | None, resource_type: str | Sequence[str], resource_id: str) -> list[dict[str, Any]]:
    """One resource's tags (views of a single object); none without a session (an unsaved row)."""
    if db is None:
        return []
    return tag_map(db, resource_type, [resource_id]).get(resource_id, [])
