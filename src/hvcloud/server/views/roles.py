"""CloudStack's ``role`` and ``rolepermission`` objects."""

from __future__ import annotations

from typing import Any

from hvcloud.server.db.models import Role, RolePermission
from hvcloud.server.views.fields import compact


def role_view(r: Role) -> dict[str, Any]:
    return compact({"id": r.id, "name": r.name, "type": r.role_type, "description": r.description,
                    "isdefault": r.is_default})


def permission_view(p: RolePermission, role: Role) -> dict[str, Any]:
    return compact({"id": p.id, "roleid": role.id, "rolename": role.name, "rule": p.rule,
                    "permission": p.permission, "description": p.description})
