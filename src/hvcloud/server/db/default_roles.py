"""CloudStack's four default roles (Root Admin, Resource Admin, Domain Admin, User) with the fixed ids
hvcloud gives them, and how role types map to account types.

The ids are fixed (not drawn at first start) so that the migration that adds ``account.role_id`` can
point existing accounts at them, and a new ``Account`` row without a role gets its type's default.
"""

from __future__ import annotations

from typing import Any

ROLE_TYPE_ADMIN = "Admin"
ROLE_TYPE_RESOURCE_ADMIN = "ResourceAdmin"
ROLE_TYPE_DOMAIN_ADMIN = "DomainAdmin"
ROLE_TYPE_USER = "User"
ROLE_TYPES = (ROLE_TYPE_ADMIN, ROLE_TYPE_RESOURCE_ADMIN, ROLE_TYPE_DOMAIN_ADMIN, ROLE_TYPE_USER)

ROOT_ADMIN_ROLE_ID = "79206e26-2d24-4c83-a823-9563bbf655cb"
RESOURCE_ADMIN_ROLE_ID = "c69b8d09-91d3-47c1-aac8-6f020dff7286"
DOMAIN_ADMIN_ROLE_ID = "cbf6a289-4ca2-430e-afcf-5a1ad60e56f2"
USER_ROLE_ID = "adc61351-b550-4464-8b06-fc1b7220ca94"

#: (id, name, type, description) as CloudStack seeds them
DEFAULT_ROLES: tuple[tuple[str, str, str, str], ...] = (
    (ROOT_ADMIN_ROLE_ID, "Root Admin", ROLE_TYPE_ADMIN, "Default root admin role"),
    (RESOURCE_ADMIN_ROLE_ID, "Resource Admin", ROLE_TYPE_RESOURCE_ADMIN, "Default resource admin role"),
    (DOMAIN_ADMIN_ROLE_ID, "Domain Admin", ROLE_TYPE_DOMAIN_ADMIN, "Default domain admin role"),
    (USER_ROLE_ID, "User", ROLE_TYPE_USER, "Default user role"),
)

#: CloudStack's account type of each role type (0 user, 1 root admin, 2 domain admin, 3 resource admin)
ACCOUNT_TYPE_OF_ROLE_TYPE = {ROLE_TYPE_USER: 0, ROLE_TYPE_ADMIN: 1, ROLE_TYPE_DOMAIN_ADMIN: 2,
                             ROLE_TYPE_RESOURCE_ADMIN: 3}
#: the default role of each account type hvcloud has (0 user, 1 root admin, 2 domain admin)
DEFAULT_ROLE_OF_ACCOUNT_TYPE = {0: USER_ROLE_ID, 1: ROOT_ADMIN_ROLE_ID, 2: DOMAIN_ADMIN_ROLE_ID}


def default_role_id(context: Any) -> str:
    """The ``account.role_id`` of a new row that names none: its account type's default role (an
    SQLAlchemy context-sensitive default)."""
    account_type = context.get_current_parameters().get("account_type")
    return DEFAULT_ROLE_OF_ACCOUNT_TYPE.get(account_type, USER_ROLE_ID)
