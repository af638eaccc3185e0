"""Who may act where in the domain tree, as CloudStack's access checks: a root admin everywhere, a
domain admin (account type 2) in its domain and the domains below it, a user in its own account.

A domain's subtree is found by its ``path`` (``ROOT/a/b``): the domain itself and every live domain
whose path starts with ``<path>/``. Names never hold ``/`` (``createDomain`` refuses them), so a
prefix is always a real ancestor.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from hvcloud.server.db.models import Account, Domain, Project, ProjectAccount, User
from hvcloud.server.db.seed import ACCOUNT_TYPE_ADMIN, ACCOUNT_TYPE_DOMAIN_ADMIN


def in_subtree(ancestor: Domain, domain: Domain) -> bool:
    """Whether ``domain`` is ``ancestor`` or below it."""
    return domain.id == ancestor.id or domain.path.startswith(ancestor.path + "/")


def subtree_domain_ids(domain: Domain, *, strict: bool = False) -> Select[str]:
    """Ids of the live domains of ``domain``'s subtree (``strict``: without ``domain`` itself)."""
    below = Domain.path.startswith(domain.path + "/", autoescape=True)
    return select(Domain.id).where(Domain.removed.is_(None), below if strict else or_(Domain.id == domain.id, below))


def subtree_account_ids(domain: Domain) -> Select[str]:
    """Ids of the accounts in ``domain``'s subtree."""
    return select(Account.id).where(Account.domain_id.in_(subtree_domain_ids(domain)))


def in_domain_subtree(column: Any, domain: Domain) -> Any:
    """A condition: ``column`` (a domain id) is in ``domain``'s subtree."""
    return column.in_(subtree_domain_ids(domain))


def domain_of_account(account_column: Any) -> Any:
    """The domain id of the account in ``account_column``, for rows that hold no domain id of their own."""
    return select(Account.domain_id).where(Account.id == account_column).scalar_subquery()


def is_root_admin(user: User) -> bool:
    return user.account.account_type == ACCOUNT_TYPE_ADMIN


def is_domain_admin(user: User) -> bool:
    return user.account.account_type == ACCOUNT_TYPE_DOMAIN_ADMIN


def may_manage_domain(caller: User, domain: Domain) -> bool:
    """Root admins manage every domain; a domain admin its own and those below it."""
    if is_root_admin(caller):
        return True
    return is_domain_admin(caller) and in_subtree(caller.account.domain, domain)


def is_project_member(db: Session, account_id: str, project_account_id: str) -> bool:
    """Whether ``account_id`` is a member of the live project whose account is ``project_account_id``."""
    return db.scalar(select(ProjectAccount.id).join(Project, Project.id == ProjectAccount.project_id)
                     .where(Project.project_account_id == project_account_id, Project.removed.is_(None),
                            ProjectAccount.account_id == account_id)) is not None


def may_act_for(db: Session, caller: User, account_id: str) -> bool:
    """Whether ``caller`` may see and act on what account ``account_id`` owns: its own account; a
    root admin any; a domain admin those of its subtree, except root admins' accounts; a member of
    a project what the project's account owns."""
    if is_root_admin(caller) or account_id == caller.account_id:
        return True
    if not is_domain_admin(caller):
        return is_project_member(db, caller.account_id, account_id)
    owner = db.get(Account, account_id)
    return (owner is not None and owner.account_type != ACCOUNT_TYPE_ADMIN
            and in_subtree(caller.account.domain, owner.domain))
