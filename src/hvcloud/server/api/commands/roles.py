"""Dynamic roles (CloudStack 4.9+): roles and their ordered allow/deny rules. Root admins only."""

from __future__ import annotations

from sqlalchemy import or_, select

from hvcloud.server.api import errors
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, Result, SuccessResult
from hvcloud.server.db.models import Role, RolePermission
from hvcloud.server.orchestration import roles
from hvcloud.server.orchestration.role_rules import MAX_RULE_LENGTH
from hvcloud.server.views.roles import permission_view, role_view

command = REGISTRY.command

ROLE_FIELDS = ("id", "name", "type", "description", "isdefault")
PERMISSION_FIELDS = ("id", "roleid", "rolename", "rule", "permission", "description")
MAX_DESCRIPTION = 4096
TYPE_TEXT = "The type of the role, valid options are: Admin, ResourceAdmin, DomainAdmin, User"


def _name(args: Args) -> str | None:
    name = args.opt_str("name")
    if name is not None and not name.strip():
        raise errors.param_error("Invalid role name provided")
    return None if name is None else name.strip()


@command("listRoles", "Lists dynamic roles in CloudStack", params=[
    Param("id", "uuid", description="List role by role ID."),
    Param("name", description="List role by role name."),
    Param("type", description="List role by role type, valid options are: Admin, ResourceAdmin, DomainAdmin, User."),
], response=ROLE_FIELDS)
def list_roles(ctx: CallContext, args: Args) -> Result:
    stmt = select(Role).where(Role.removed.is_(None)).order_by(Role.created, Role.name, Role.id)
    for param, column in (("id", Role.id), ("name", Role.name)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    role_type = args.opt_str("type")
    if role_type is not None:
        stmt = stmt.where(Role.role_type == roles.check_role_type(role_type))
    pattern = keyword_pattern(args)
    if pattern is not None:
        stmt = stmt.where(or_(Role.name.ilike(pattern, escape="\\"), Role.description.ilike(pattern, escape="\\")))
    rows, count = ctx.page(stmt, args)
    return ListResult("role", [role_view(r) for r in rows], count)


@command("createRole", "Creates a role", params=[
    Param("name", required=True, description="Creates a role with this unique name"),
    Param("type", description=TYPE_TEXT + ". Either roleid or type must be passed in"),
    Param("roleid", "uuid", description="ID of the role to be cloned from. Either roleid or type must be passed in"),
    Param("description", length=MAX_DESCRIPTION, description="The description of the role"),
], response=ROLE_FIELDS)
def create_role(ctx: CallContext, args: Args) -> Result:
    name = _name(args) or ""
    role_type, source_id = args.opt_str("type"), args.opt_str("roleid")
    if role_type is None and source_id is None:
        raise errors.param_error("Neither role type nor role ID is provided")
    if role_type is not None and source_id is not None:
        raise errors.param_error("Both role type and role ID should not be specified")
    description = args.opt_str("description")
    if source_id is not None:
        source = roles.live_role(ctx.db, source_id, "roleid")
        role = roles.clone_role(ctx.db, ctx.user, name, source, description)
    else:
        role = roles.create_role(ctx.db, ctx.user, name, roles.check_role_type(role_type or ""), description)
    return ObjectResult("role", role_view(role))


@command("updateRole", "Updates a role", params=[
    Param("id", "uuid", required=True, description="ID of the role"),
    Param("name", description="creates a role with this unique name"),
    Param("type", description=TYPE_TEXT),
    Param("description", length=MAX_DESCRIPTION, description="The description of the role"),
], response=ROLE_FIELDS)
def update_role(ctx: CallContext, args: Args) -> Result:
    role = roles.live_role(ctx.db, args.str("id"))
    role_type = args.opt_str("type")
    checked_type = None if role_type is None else roles.check_role_type(role_type)
    role = roles.update_role(ctx.db, ctx.user, role, _name(args), checked_type, args.opt_str("description"))
    return ObjectResult("role", role_view(role))


@command("deleteRole", "Deletes a role", params=[
    Param("id", "uuid", required=True, description="ID of the role"),
])
def delete_role(ctx: CallContext, args: Args) -> Result:
    roles.delete_role(ctx.db, ctx.user, roles.live_role(ctx.db, args.str("id")))
    return SuccessResult()


@command("listRolePermissions", "Lists role permissions", params=[
    Param("roleid", "uuid", description="ID of the role"),
], response=PERMISSION_FIELDS)
def list_role_permissions(ctx: CallContext, args: Args) -> Result:
    """A role's rules in the order they apply; without ``roleid`` every live role's, role by role."""
    role_id = args.opt_str("roleid")
    if role_id is not None:
        role = roles.live_role(ctx.db, role_id, "roleid")
        pairs = [(p, role) for p in roles.rules_of(ctx.db, role.id)]
    else:
        stmt = (select(RolePermission, Role).join(Role, Role.id == RolePermission.role_id)
                .where(Role.removed.is_(None))
                .order_by(Role.created, Role.id, RolePermission.sort_order, RolePermission.created))
        pairs = [(p, r) for p, r in ctx.db.execute(stmt).all()]
    views = [permission_view(p, r) for p, r in pairs]
    return ListResult("rolepermission", views, len(views))


@command("createRolePermission", "Adds an API permission to a role", params=[
    Param("roleid", "uuid", required=True, description="ID of the role"),
    Param("rule", required=True, length=MAX_RULE_LENGTH, description="The API name or wildcard rule such as list*"),
    Param("permission", required=True, description="The rule permission, allow or deny. Default: deny."),
    Param("description", length=MAX_DESCRIPTION, description="The description of the role permission"),
], response=PERMISSION_FIELDS)
def create_role_permission(ctx: CallContext, args: Args) -> Result:
    role = roles.live_role(ctx.db, args.str("roleid"), "roleid")
    row = roles.create_permission(ctx.db, ctx.user, role, args.str("rule"), args.str("permission"),
                                  args.opt_str("description"))
    return ObjectResult("rolepermission", permission_view(row, role))


@command("updateRolePermission", "Updates a role permission order", params=[
    Param("roleid", "uuid", required=True, description="ID of the role"),
    Param("ruleorder", "list", description="The parent role permission uuid, use 0 to move this rule at the top of "
          "the list"),
    Param("ruleid", "uuid", description="Role permission rule id"),
    Param("permission", description="Rule permission, can be: allow or deny"),
])
def update_role_permission(ctx: CallContext, args: Args) -> Result:
    role = roles.live_role(ctx.db, args.str("roleid"), "roleid")
    rule_id, permission = args.opt_str("ruleid"), args.opt_str("permission")
    if args.has("ruleorder"):
        if rule_id is not None or permission is not None:
            raise errors.param_error("Parameters permission and ruleid must be mutually exclusive with ruleorder")
        # bounded by the value's length (``params.MAX_VALUE_LENGTH``): some 1,700 rule ids at most
        roles.reorder(ctx.db, ctx.user, role, args.list("ruleorder"))
    elif rule_id is not None and permission is not None:
        roles.set_permission(ctx.db, ctx.user, role, rule_id, permission)
    else:
        raise errors.param_error("Give ruleorder, or ruleid with permission")
    return SuccessResult()


@command("deleteRolePermission", "Deletes a role permission", params=[
    Param("id", "uuid", required=True, description="ID of the role permission"),
])
def delete_role_permission(ctx: CallContext, args: Args) -> Result:
    row = ctx.require(args, RolePermission, "id")
    roles.delete_permission(ctx.db, ctx.user, row)
    return SuccessResult()
