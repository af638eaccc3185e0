"""CloudStack's dynamic roles: roles, their ordered allow/deny rules, and the default roles' rules.

CloudStack's rules for changes hold here: the four default roles and their rules cannot be changed or
deleted; a role some account uses cannot be deleted nor change its type; a new rule goes last. Every
change grows the role's ``version`` in the same transaction (see ``role_rules``), which is how every
server process learns of it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hvcloud import logs
from hvcloud.server import errors
from hvcloud.server.db.default_roles import (
    ACCOUNT_TYPE_OF_ROLE_TYPE,
    DEFAULT_ROLE_OF_ACCOUNT_TYPE,
    ROLE_TYPES,
    ROOT_ADMIN_ROLE_ID,
)
from hvcloud.server.db.models import Account, Role, RolePermission, User, utcnow
from hvcloud.server.orchestration import events
from hvcloud.server.orchestration.role_rules import ALLOW, check_permission, check_rule

log = logs.get(__name__)

#: account types hvcloud has (0 user, 1 root admin): an account's role must be of one of their role types
ASSIGNABLE_ACCOUNT_TYPES = frozenset(DEFAULT_ROLE_OF_ACCOUNT_TYPE)
REORDER_CONFLICT = ("The role's rule permissions list has changed while you were making updates, aborted "
                    "re-ordering of rules. Please try again.")


def check_role_type(value: str) -> str:
    """A role type by CloudStack's names (case-insensitive, answered in CloudStack's spelling)."""
    for role_type in ROLE_TYPES:
        if role_type.lower() == value.lower():
            return role_type
    raise errors.param_error("Invalid role type provided")


def live_role(db: Session, role_id: str, name: str = "id") -> Role:
    role = db.get(Role, role_id) if role_id != "-1" else None
    if role is None or role.removed is not None:
        raise errors.entity_not_found(name, role_id)
    return role


def rules_of(db: Session, role_id: str) -> list[RolePermission]:
    return list(db.scalars(select(RolePermission).where(RolePermission.role_id == role_id)
                           .order_by(RolePermission.sort_order, RolePermission.created, RolePermission.id)))


def _changed(db: Session, role_id: str) -> None:
    """The role's rules or type changed: every process recompiles it on its next call."""
    db.execute(update(Role).where(Role.id == role_id).values(version=Role.version + 1))


def _in_use(db: Session, role_id: str) -> bool:
    return db.scalar(select(Account.id).where(Account.role_id == role_id, Account.removed.is_(None))
                     .limit(1)) is not None


def role_for_account(db: Session, role_id: str | None, account_type: int | None) -> tuple[str, int]:
    """The role and account type of a new account: ``roleid`` decides the type (and must agree with
    ``accounttype`` when both are given); else ``accounttype``'s default role (a user by default)."""
    if role_id is None:
        account_type = 0 if account_type is None else account_type
        if account_type not in ASSIGNABLE_ACCOUNT_TYPES:
            raise errors.param_error("accounttype must be 0 (user), 1 (root admin) or 2 (domain admin)")
        return DEFAULT_ROLE_OF_ACCOUNT_TYPE[account_type], account_type
    role = live_role(db, role_id, "roleid")
    role_account_type = ACCOUNT_TYPE_OF_ROLE_TYPE[role.role_type]
    if role_account_type not in ASSIGNABLE_ACCOUNT_TYPES:
        raise errors.param_error(f"Accounts of role type {role.role_type} are not supported; give a role of "
                                 "type User, DomainAdmin or Admin")
    if account_type is not None and account_type != role_account_type:
        raise errors.param_error(f"The role type {role.role_type} of roleid does not match accounttype {account_type}")
    return role.id, role_account_type


# -- roles -------------------------------------------------------------------------------------------

def create_role(db: Session, actor: User, name: str, role_type: str, description: str | None) -> Role:
    role = Role(name=name, role_type=role_type, description=description, is_default=False)
    db.add(role)
    db.flush()
    events.record(db, actor, "ROLE.CREATE", f"Creating role {name}", resource_type="Role", resource_id=role.id)
    return role


def clone_role(db: Session, actor: User, name: str, source: Role, description: str | None) -> Role:
    """A new role of ``source``'s type with a copy of its rules, in the same order."""
    role = create_role(db, actor, name, source.role_type, description)
    db.add_all([RolePermission(role_id=role.id, rule=p.rule, permission=p.permission, description=p.description,
                               sort_order=n) for n, p in enumerate(rules_of(db, source.id))])
    db.flush()
    return role


def update_role(db: Session, actor: User, role: Role, name: str | None, role_type: str | None,
                description: str | None) -> Role:
    if role.is_default:
        raise errors.permission_denied("Default roles cannot be updated")
    if role_type is not None and role_type != role.role_type:
        if _in_use(db, role.id):
            raise errors.permission_denied("Found accounts that have role in use, won't allow to change role type")
        role.role_type = role_type
    if name:
        role.name = name
    if description:
        role.description = description
    _changed(db, role.id)
    events.record(db, actor, "ROLE.UPDATE", f"Updating role {role.name}", resource_type="Role", resource_id=role.id)
    return role


def delete_role(db: Session, actor: User, role: Role) -> None:
    if role.is_default:
        raise errors.permission_denied("Default roles cannot be deleted")
    if _in_use(db, role.id):
        raise errors.permission_denied("Found accounts that have role in use, won't allow to delete role")
    for permission in rules_of(db, role.id):
        db.delete(permission)
    role.removed = utcnow()
    _changed(db, role.id)
    events.record(db, actor, "ROLE.DELETE", f"Deleting role {role.name}", resource_type="Role", resource_id=role.id)


# -- rules -------------------------------------------------------------------------------------------

def create_permission(db: Session, actor: User, role: Role, rule: str, permission: str,
                      description: str | None) -> RolePermission:
    """A new rule, last in the role's order."""
    check_rule(rule)
    permission = check_permission(permission)
    if role.is_default:
        raise errors.permission_denied("Role permission cannot be added for Default roles")
    taken = db.scalar(select(RolePermission.id).where(RolePermission.role_id == role.id,
                                                      func.lower(RolePermission.rule) == rule.lower()))
    if taken is not None:
        raise errors.permission_denied(f"Rule already exists for the role: {role.name}")
    last = db.scalar(select(func.max(RolePermission.sort_order)).where(RolePermission.role_id == role.id))
    row = RolePermission(role_id=role.id, rule=rule, permission=permission, description=description,
                         sort_order=0 if last is None else last + 1)
    db.add(row)
    db.flush()
    _changed(db, role.id)
    events.record(db, actor, "ROLE.PERMISSION.CREATE", f"Creating rule {rule} ({permission}) of role {role.name}",
                  resource_type="Role", resource_id=role.id)
    return row


def set_permission(db: Session, actor: User, role: Role, rule_id: str, permission: str) -> None:
    permission = check_permission(permission)
    row = db.get(RolePermission, rule_id)
    if row is None or row.role_id != role.id:
        raise errors.param_error("Invalid rule id provided")
    if role.is_default:
        raise errors.permission_denied("Role permission cannot be updated for Default roles")
    row.permission = permission
    _changed(db, role.id)
    events.record(db, actor, "ROLE.PERMISSION.UPDATE", f"Rule {row.rule} of role {role.name} is now {permission}",
                  resource_type="Role", resource_id=role.id)


def reorder(db: Session, actor: User, role: Role, rule_ids: list[str]) -> None:
    """The role's rules in the order given, which must name each of them exactly once (CloudStack's
    check that nobody changed them meanwhile)."""
    current = rules_of(db, role.id)
    by_id = {p.id: p for p in current}
    if not all(rule_id in by_id or db.get(RolePermission, rule_id) is not None for rule_id in rule_ids):
        raise errors.param_error("Provided role permission(s) do not exist")
    if role.is_default:
        raise errors.permission_denied("Role permission cannot be updated for Default roles")
    if len(rule_ids) != len(current) or set(rule_ids) != set(by_id):
        raise errors.internal(REORDER_CONFLICT)
    for n, rule_id in enumerate(rule_ids):
        by_id[rule_id].sort_order = n
    _changed(db, role.id)
    events.record(db, actor, "ROLE.PERMISSION.UPDATE", f"Reordering the rules of role {role.name}",
                  resource_type="Role", resource_id=role.id)


def delete_permission(db: Session, actor: User, row: RolePermission) -> None:
    role = db.get(Role, row.role_id)
    if role is None or role.is_default:
        raise errors.permission_denied("Role permission cannot be deleted for Default roles")
    db.delete(row)
    _changed(db, role.id)
    events.record(db, actor, "ROLE.PERMISSION.DELETE", f"Deleting rule {row.rule} of role {role.name}",
                  resource_type="Role", resource_id=role.id)


# -- the default roles' rules ------------------------------------------------------------------------

def sync_default_rules(db: Session, user_commands: Iterable[str]) -> bool:
    """Write the default roles' rules as this server's commands make them: Root Admin ``*`` allow, the
    other default roles one allow rule per command that is not admin-only (in name order). Returns
    whether anything changed. Rules are only written where they differ, so servers of one release
    starting together find nothing to do after the first."""
    wanted_user = sorted(set(user_commands))
    changed = False
    for role in db.scalars(select(Role).where(Role.is_default.is_(True), Role.removed.is_(None))):
        wanted = ["*"] if role.id == ROOT_ADMIN_ROLE_ID else wanted_user
        have = rules_of(db, role.id)
        if [(p.rule, p.permission) for p in have] == [(r, ALLOW) for r in wanted]:
            continue
        keep = {p.rule: p for p in have if p.permission == ALLOW and p.rule in set(wanted)}
        for p in have:
            if keep.get(p.rule) is not p:
                db.delete(p)
        db.flush()
        for n, rule in enumerate(wanted):
            existing = keep.get(rule)
            if existing is not None:
                existing.sort_order = n
            else:
                db.add(RolePermission(role_id=role.id, rule=rule, permission=ALLOW, sort_order=n))
        _changed(db, role.id)
        changed = True
        log.info("default role rules written", role=role.name, rules=len(wanted))
    db.flush()
    return changed


def write_default_rules(sessions: sessionmaker[Session], user_commands: list[str], attempts: int = 3) -> None:
    """``sync_default_rules`` in its own transaction; servers starting together may race to write the
    same rules (a unique rule per role): the loser reads the winner's and finds nothing to do."""
    for attempt in range(attempts):
        try:
            with sessions.begin() as db:
                sync_default_rules(db, user_commands)
            return
        except IntegrityError:
            if attempt == attempts - 1:
                raise
            log.info("default role rules written by another server meanwhile; checking again")
