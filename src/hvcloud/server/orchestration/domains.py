"""The domain manager: creating, renaming and deleting domains, as CloudStack's DomainManager.

A domain's ``path`` is its ancestors' names and its own, ``ROOT/a/b``; renaming a domain rewrites
the paths of its whole subtree. ``deleteDomain`` is a job: without ``cleanup`` it removes a domain
that holds no live account and no live sub-domain (else it fails with CloudStack's message and the
domain stays as it was); with ``cleanup`` it removes every account of the subtree (each as
``deleteAccount`` does: tombstoned, then its VMs, volumes and templates destroyed) and then the
domains, deepest first. A removed domain keeps its row (``removed`` set), as accounts do.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import String, func, literal, select, update
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server import errors
from hvcloud.server.db.models import Account, Domain, Project, User, utcnow
from hvcloud.server.errors import INTERNAL_ERROR
from hvcloud.server.jobs.handlers import JobContext, JobFailure, register
from hvcloud.server.orchestration import accounts, domain_scope, events
from hvcloud.server.orchestration.networks import validation as V

log = logs.get(__name__)

JOB_DELETE = "domain.delete"
ACTIVE, INACTIVE = "Active", "Inactive"
#: the longest path of a live domain: the ``path`` column's 1024 characters less room for the
#: ``#removed:<id>`` suffix a removed domain's path gets
MAX_PATH = 1024 - 64
REMOVED_SUFFIX = "#removed:"


def root(db: Session) -> Domain:
    domain = db.scalar(select(Domain).where(Domain.path == "ROOT", Domain.removed.is_(None)))
    if domain is None:
        raise errors.internal("ROOT domain missing")
    return domain


def check_name(name: str) -> str:
    """A domain name: not blank, no ``/`` (it separates the names of a path)."""
    if not name.strip():
        raise errors.param_error("Domain name cannot be empty")
    if "/" in name:
        raise errors.param_error("Domain name cannot contain '/'")
    return name


def _network_domain(value: str | None) -> str | None:
    return V.network_domain(value) if value else None


def _sibling(db: Session, parent_id: str | None, name: str) -> str | None:
    return db.scalar(select(Domain.id).where(Domain.parent_id == parent_id, Domain.name == name,
                                             Domain.removed.is_(None)))


def _path_of(parent: Domain, name: str) -> str:
    path = f"{parent.path}/{name}"
    if len(path) > MAX_PATH:
        raise errors.param_error(f"Domain path would exceed {MAX_PATH} characters")
    return path


def create_domain(db: Session, actor: User, parent: Domain, name: str, network_domain: str | None) -> Domain:
    check_name(name)
    if parent.state != ACTIVE:
        raise errors.internal(f"The domain cannot be created as the parent domain {parent.name} is being deleted")
    if _sibling(db, parent.id, name) is not None:
        raise errors.param_error(f"Domain with name [{name[:255]}] already exists for the parent with ID "
                                 f"[{parent.id}].")
    domain = Domain(name=name, path=_path_of(parent, name), parent_id=parent.id, level=parent.level + 1,
                    network_domain=_network_domain(network_domain))
    db.add(domain)
    db.flush()
    events.record(db, actor, "DOMAIN.CREATE", f"Creating domain {name}", resource_type="Domain", resource_id=domain.id)
    return domain


def update_domain(db: Session, actor: User, domain: Domain, name: str | None, network_domain: str | None) -> Domain:
    """Rename ``domain`` (its subtree's paths follow) and/or set its network domain ("" clears it)."""
    if name is not None and name != domain.name:
        if domain.parent_id is None:
            raise errors.param_error("ROOT domain can not be edited with a new name")
        check_name(name)
        if _sibling(db, domain.parent_id, name) is not None:
            raise errors.param_error(f"Failed to update specified domain id with name '{name[:255]}' since it "
                                     "already exists in the system")
        parent = db.get(Domain, domain.parent_id)
        assert parent is not None
        old, new = domain.path, _path_of(parent, name)
        longest = db.scalar(select(func.max(func.length(Domain.path))).where(
            Domain.id.in_(domain_scope.subtree_domain_ids(domain, strict=True)))) or 0
        if longest - len(old) + len(new) > MAX_PATH:
            raise errors.param_error(f"Domain path would exceed {MAX_PATH} characters")
        db.execute(update(Domain).where(Domain.id.in_(domain_scope.subtree_domain_ids(domain, strict=True)))
                   .values(path=literal(new, String).concat(func.substr(Domain.path, len(old) + 1)))
                   .execution_options(synchronize_session=False))
        domain.name, domain.path = name, new
    if network_domain is not None:
        domain.network_domain = _network_domain(network_domain)
    db.flush()
    events.record(db, actor, "DOMAIN.UPDATE", f"Updating domain {domain.name}", resource_type="Domain",
                  resource_id=domain.id)
    return domain


def has_children(db: Session, domain_ids: list[str]) -> set[str]:
    """Which of ``domain_ids`` have a live sub-domain."""
    if not domain_ids:
        return set()
    return set(db.scalars(select(Domain.parent_id).where(Domain.parent_id.in_(domain_ids), Domain.removed.is_(None))
                          .distinct()))  # type: ignore[arg-type]


def parent_names(db: Session, domains: list[Domain]) -> dict[str, str]:
    ids = {d.parent_id for d in domains if d.parent_id is not None}
    if not ids:
        return {}
    return {row.id: row.name for row in db.execute(select(Domain.id, Domain.name).where(Domain.id.in_(ids)))}


# -- deleteDomain ------------------------------------------------------------------------------------

def _remove_empty(db: Session, actor_id: str, domain_id: str) -> dict[str, Any]:
    """deleteDomain without cleanup: remove the domain if it holds no live account nor sub-domain."""
    domain = db.get(Domain, domain_id)
    if domain is None or domain.removed is not None:
        return {"success": True}
    busy = db.scalar(select(Account.id).where(Account.domain_id == domain.id, Account.removed.is_(None)).limit(1)) \
        or db.scalar(select(Domain.id).where(Domain.parent_id == domain.id, Domain.removed.is_(None)).limit(1))
    if busy is not None:
        raise JobFailure(INTERNAL_ERROR, f"Delete failed on domain {domain.name} (id: {domain.id}); Please make sure "
                         "all users and sub domains have been removed from the domain before deleting")
    _tombstone(db, actor_id, domain)
    return {"success": True}


def _tombstone(db: Session, actor_id: str, domain: Domain) -> None:
    """Remove ``domain``: the row stays, its path made unique so that the name may be used again."""
    domain.state, domain.removed = INACTIVE, domain.removed or utcnow()
    if REMOVED_SUFFIX not in domain.path:
        domain.path = f"{domain.path}{REMOVED_SUFFIX}{domain.id}"
    actor = db.get(User, actor_id)
    if actor is not None:
        events.record(db, actor, "DOMAIN.DELETE", f"Deleting domain {domain.name}", resource_type="Domain",
                      resource_id=domain.id)


def _remove_subtree(db: Session, actor_id: str, domain_id: str) -> list[str]:
    """deleteDomain with cleanup, its database part: every account of the subtree removed (as
    deleteAccount removes one) and every domain of it. Returns the accounts' ids (those removed now
    and earlier, whose resources the job then cleans up). The subtree is followed by ``parent_id``,
    not by path, so that a job resumed after this committed finds the same accounts again."""
    subtree: list[Domain] = []
    level = [d for d in (db.get(Domain, domain_id),) if d is not None]
    while level:
        subtree += level
        seen = {d.id for d in subtree}
        level = [d for d in db.scalars(select(Domain).where(Domain.parent_id.in_([d.id for d in level])))
                 if d.id not in seen]
    owned = list(db.scalars(select(Account).where(Account.domain_id.in_([d.id for d in subtree]))
                            .order_by(Account.created)))
    for account in owned:
        if account.removed is None:
            accounts.remove_account(db, account)
    for project in db.scalars(select(Project).where(Project.domain_id.in_([d.id for d in subtree]),
                                                    Project.removed.is_(None))):
        project.state, project.removed = "Disabled", utcnow()  # its account was among those removed above
    for d in subtree:
        if d.removed is None:
            _tombstone(db, actor_id, d)
    return [a.id for a in owned]


async def run_delete(jctx: JobContext) -> dict[str, Any]:
    domain_id = str(jctx.params["id"])
    sessions = jctx.sessions

    def in_tx(fn: Any, *args: Any) -> Any:
        with sessions.begin() as db:
            return fn(db, *args)

    if not jctx.params.get("cleanup"):
        return await asyncio.to_thread(in_tx, _remove_empty, jctx.user_id, domain_id)  # type: ignore[no-any-return]
    account_ids: list[str] = await asyncio.to_thread(in_tx, _remove_subtree, jctx.user_id, domain_id)
    failures: list[str] = []
    for account_id in account_ids:
        try:
            await accounts.clean_up(jctx, account_id)
        except JobFailure as exc:
            failures.append(f"account {account_id}: {exc}")
    if failures:
        raise JobFailure(INTERNAL_ERROR, "Failed to clean up domain resources and sub domains; call deleteAccount "
                         "on these accounts to retry: " + "; ".join(failures)[:800])
    log.info("domain deleted", domain_id=domain_id, accounts=len(account_ids))
    return {"success": True}


register(JOB_DELETE, run_delete, resumable=True)
