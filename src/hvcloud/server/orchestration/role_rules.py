"""Which API commands a role allows: rule syntax, matching, and the per-process cache of compiled roles.

The API path is hot, so deciding costs no query of its own: the caller's role row arrives joined with
the account on every call (``Account.role``), and its ``version`` grows with every change to the role
or its rules. Each process keeps each custom role's rules compiled with the version it read; a call
that brings a newer version recompiles that role (one query, once per change). A change made through
any server process sharing the database therefore applies to the next call every process serves.

The default roles are fixed (CloudStack refuses changes to them): Root Admin allows every command;
the other default roles allow exactly the commands that are not admin-only, which are also the rules
``roles.sync_default_rules`` writes for them at start.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server import errors
from hvcloud.server.db.default_roles import ROOT_ADMIN_ROLE_ID
from hvcloud.server.db.models import Role, RolePermission

ALLOW = "allow"
DENY = "deny"
MAX_RULE_LENGTH = 255
_RULE_SYNTAX = re.compile(r"[A-Za-z0-9*]+")


def check_rule(rule: str) -> str:
    """A rule as CloudStack accepts it: letters, digits and ``*`` only (431 otherwise)."""
    if not _RULE_SYNTAX.fullmatch(rule) or len(rule) > MAX_RULE_LENGTH:
        raise errors.param_error(f"Only API names and wildcards are allowed, invalid rule provided: {rule[:64]}")
    return rule


def check_permission(value: str) -> str:
    permission = value.lower()
    if permission not in (ALLOW, DENY):
        raise errors.param_error("Values for permission parameter should be: allow or deny")
    return permission


def matches(rule: str, command: str) -> bool:
    """Whether ``rule`` (lower case; ``*`` matches any run of characters) matches ``command`` (lower
    case). A two-pointer glob match: linear in practice and never exponential, whatever the stars."""
    r = c = 0
    star, resume = -1, 0
    while c < len(command):
        if r < len(rule) and rule[r] == "*":
            star, resume = r, c
            r += 1
        elif r < len(rule) and rule[r] == command[c]:
            r += 1
            c += 1
        elif star >= 0:
            resume += 1
            r, c = star + 1, resume
        else:
            return False
    while r < len(rule) and rule[r] == "*":
        r += 1
    return r == len(rule)


@dataclass
class CompiledRole:
    """A custom role's rules in order, as (lower-case rule, allowed), with its decisions memoised (per
    registered command name: bounded by the registry)."""

    version: int
    rules: tuple[tuple[str, bool], ...]
    decided: dict[str, bool] = field(default_factory=dict)

    def allows(self, command: str) -> bool:
        known = self.decided.get(command)
        if known is not None:
            return known
        name = command.lower()
        verdict = next((allowed for rule, allowed in self.rules if matches(rule, name)), False)
        self.decided[command] = verdict
        return verdict


def compile_rules(version: int, permissions: list[RolePermission]) -> CompiledRole:
    ordered = sorted(permissions, key=lambda p: (p.sort_order, p.created, p.id))
    return CompiledRole(version, tuple((p.rule.lower(), p.permission == ALLOW) for p in ordered))


def default_role_allows(role: Role, admin_only: bool) -> bool:
    return role.id == ROOT_ADMIN_ROLE_ID or not admin_only


class RoleRules:
    """This process's compiled custom roles, by role id."""

    def __init__(self) -> None:
        self._roles: dict[str, CompiledRole] = {}
        self._lock = threading.Lock()

    def allows(self, db: Session, role: Role, command: str, *, admin_only: bool) -> bool:
        """Whether ``role`` (a row read in this call, with its current ``version``) allows ``command``:
        the first of its rules that matches decides; none matching denies."""
        if role.is_default:
            return default_role_allows(role, admin_only)
        compiled = self._roles.get(role.id)
        if compiled is None or compiled.version != role.version:
            compiled = self._load(db, role)
        return compiled.allows(command)

    def _load(self, db: Session, role: Role) -> CompiledRole:
        permissions = list(db.scalars(select(RolePermission).where(RolePermission.role_id == role.id)))
        compiled = compile_rules(role.version, permissions)
        with self._lock:
            current = self._roles.get(role.id)
            if current is None or current.version <= compiled.version:
                self._roles[role.id] = compiled
        return compiled

    def forget(self, role_id: str) -> None:
        with self._lock:
            self._roles.pop(role_id, None)
