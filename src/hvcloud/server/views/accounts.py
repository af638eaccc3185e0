"""CloudStack's ``domain``, ``account`` and ``user`` objects."""

from __future__ import annotations

from typing import Any

from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import Account, Domain, User
from hvcloud.server.views.fields import compact


def domain_view(d: Domain, *, parent_name: str | None = None, has_child: bool = False) -> dict[str, Any]:
    return compact({"id": d.id, "name": d.name, "path": d.path, "level": d.level,
                    "parentdomainid": d.parent_id, "parentdomainname": parent_name, "haschild": has_child,
                    "networkdomain": d.network_domain, "state": d.state, "created": d.created})


def user_view(u: User, *, with_keys: bool = False, box: SecretBox | None = None) -> dict[str, Any]:
    a = u.account
    out = {"id": u.id, "username": u.username, "firstname": u.firstname, "lastname": u.lastname,
           "email": u.email, "created": u.created, "state": u.state, "account": a.name,
           "accountid": a.id, "accounttype": a.account_type, "domainid": a.domain_id,
           "domain": a.domain.name, "roleid": a.role_id, "rolename": a.role.name, "roletype": a.role.role_type,
           "timezone": u.timezone,
           "apikey": u.api_key, "iscallerchilddomain": False, "isdefault": u.username == "admin"}
    if with_keys and box is not None and u.secret_key_enc is not None:
        out["secretkey"] = box.decrypt(u.secret_key_enc)
    return compact(out)


def account_view(a: Account) -> dict[str, Any]:
    return compact({"id": a.id, "name": a.name, "accounttype": a.account_type, "domainid": a.domain_id,
                    "domain": a.domain.name, "domainpath": a.domain.path, "state": a.state,
                    "roleid": a.role_id, "rolename": a.role.name, "roletype": a.role.role_type,
                    "networkdomain": a.network_domain,
                    "created": a.created, "isdefault": a.name == "admin",
                    "user": [user_view(u) for u in a.users]})
