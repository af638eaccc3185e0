"""CloudStack's ``domain``, ``account`` and ``user`` objects."""

from __future__ import annotations

from typing import Any

from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import Account, Domain, User
from hvcloud.server.views.fields import compact

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
