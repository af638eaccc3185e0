"""API views of the DB rows: CloudStack's field names and JSON types (see cloudstack-api.md §2.6, §3.5)."""

from __future__ import annotations

import json
from typing import Any

from hvcloud.server.db.models import (
    Alert,
    Event,
    OsType,
)
from hvcloud.server.views.fields import compact


def ostype_view(o: OsType) -> dict[str, Any]:
    return {"id": o.id, "description": o.description, "name": o.description, "oscategoryid": o.category_id,
            "oscategoryname": o.category.name, "isuserdefined": o.is_user_defined}


def event_view(e: Event) -> dict[str, Any]:
    return compact({"id": e.id, "type": e.event_type, "level": e.level, "state": e.state,
                    "description": e.description, "account": e.account.name if e.account else None,
                    "domainid": e.account.domain_id if e.account else None,
                    "domain": e.account.domain.name if e.account else None,
                    "username": e.user.username if e.user else None, "resourcetype": e.resource_type,
                    "resourceid": e.resource_id, "created": e.created})


def alert_view(a: Alert) -> dict[str, Any]:
    return compact({"id": a.id, "type": a.alert_type, "name": a.name, "description": a.subject,
                    "sent": a.created})


def details_json(details: dict[str, str]) -> str:
    return json.dumps(details, sort_keys=True)
