"""API views of the DB rows: CloudStack's field names and JSON types (see cloudstack-api.md §2.6, §3.5)."""

from __future__ import annotations

import json
from typing import Any

from hvcloud.server.api.envelope import compact
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import (
    Account,
    Alert,
    Domain,
    Event,
    OsType,
    User,
)

ROLE_NAMES = {0: ("User", "User"), 1: ("Admin", "Admin"), 2: ("DomainAdmin", "DomainAdmin")}


def domain_view(d: Domain) -> dict[str, Any]:
    return compact({"id": d.id, "name": d.name, "path": d.path, "level": d.level,
                    "parentdomainid": d.parent_id, "haschild": False, "created": d.created})


def user_view(u: User, *, with_keys: bool = False, box: SecretBox | None = None) -> dict[str, Any]:
    a = u.account
    role = ROLE_NAMES.get(a.account_type, ("User", "User"))
    out = {"id": u.id, "username": u.username, "firstname": u.firstname, "lastname": u.lastname,
           "email": u.email, "created": u.created, "state": u.state, "account": a.name,
           "accountid": a.id, "accounttype": a.account_type, "domainid": a.domain_id,
           "domain": a.domain.name, "rolename": role[0], "roletype": role[1], "timezone": u.timezone,
           "apikey": u.api_key, "iscallerchilddomain": False, "isdefault": u.username == "admin"}
    if with_keys and box is not None and u.secret_key_enc is not None:
        out["secretkey"] = box.decrypt(u.secret_key_enc)
    return compact(out)


def account_view(a: Account) -> dict[str, Any]:
    role = ROLE_NAMES.get(a.account_type, ("User", "User"))
    return compact({"id": a.id, "name": a.name, "accounttype": a.account_type, "domainid": a.domain_id,
                    "domain": a.domain.name, "domainpath": a.domain.path, "state": a.state,
                    "rolename": role[0], "roletype": role[1], "networkdomain": a.network_domain,
                    "created": a.created, "isdefault": a.name == "admin",
                    "user": [user_view(u) for u in a.users]})


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
