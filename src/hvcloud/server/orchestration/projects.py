"""The project manager, as CloudStack's ProjectManager: a project of a domain owns its resources
through its own account (type 5, no users, named ``PrjAcct-<project id>``); member accounts act for
it (``project_account``, role Admin or Regular). The creator is the first Admin.

Who may do what: a project's resources (``projectid`` on the resource APIs) are seen and managed by
its members, root admins and the domain admins of its domain's subtree (``domain_scope.may_act_for``);
the project itself (update, activate, suspend, delete, members) by its Admin members and those admins.
Invitations (``project.invite.required``) are not supported: accounts are added directly.

``suspendProject`` marks the project Suspended (no new resources) and stops its running VMs;
``deleteProject`` refuses a project that still owns VMs, detached volumes, templates or networks
unless ``cleanup``; with it the project account is removed and cleaned up as ``deleteAccount``
does (``accounts.clean_up``), then the project is removed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server import errors
from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import (
    Account,
    Network,
    Project,
    ProjectAccount,
    User,
    VMInstance,
    VMTemplate,
    Volume,
    new_id,
    utcnow,
)
from hvcloud.server.db.seed import ACCOUNT_TYPE_PROJECT
from hvcloud.server.errors import INTERNAL_ERROR
from hvcloud.server.jobs.handlers import JobContext, JobFailure, register
from hvcloud.server.orchestration import accounts, domain_scope, events
from hvcloud.server.orchestration import resource_limits as limits
from hvcloud.server.orchestration.vm import manager as vms
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm.steps import Steps
from hvcloud.server.views.projects import project_view

log = logs.get(__name__)

ACTIVE, SUSPENDED, DISABLED = "Active", "Suspended", "Disabled"
ROLE_ADMIN, ROLE_REGULAR = "Admin", "Regular"
ROLES = (ROLE_ADMIN, ROLE_REGULAR)
JOB_SUSPEND = "project.suspend"
JOB_DELETE = "project.delete"


# -- lookups and access ------------------------------------------------------------------------------

def live_project(db: Session, project_id: str, name: str = "id") -> Project:
    """A project not yet removed; a removed one is as unknown as an id that never existed (431)."""
    project = db.get(Project, project_id) if project_id != "-1" else None
    if project is None or project.removed is not None:
        raise errors.entity_not_found(name, project_id)
    return project


def member(db: Session, project: Project, account_id: str) -> ProjectAccount | None:
    return db.scalar(select(ProjectAccount).where(ProjectAccount.project_id == project.id,
                                                  ProjectAccount.account_id == account_id))


def may_use(db: Session, caller: User, project: Project) -> bool:
    """Members, root admins and the domain admins of the project's domain (or above it)."""
    return domain_scope.may_act_for(db, caller, project.project_account_id)


def may_manage(db: Session, caller: User, project: Project) -> bool:
    """Admin members, root admins and the domain admins of the project's domain (or above it)."""
    if domain_scope.may_manage_domain(caller, project.domain):
        return True
    row = member(db, project, caller.account_id)
    return row is not None and row.role == ROLE_ADMIN


def check_manage(db: Session, caller: User, project: Project) -> Project:
    if not may_manage(db, caller, project):
        raise errors.permission_denied(f"Account {caller.account.name} does not have permission to operate on "
                                       f"project id={project.id}")
    return project


def visible_project_ids(caller: User) -> Select[str]:
    """Ids of the live projects ``caller`` may use: all for a root admin; those of its subtree for a
    domain admin; those it is a member of for a user."""
    stmt = select(Project.id).where(Project.removed.is_(None))
    if domain_scope.is_root_admin(caller):
        return stmt
    if domain_scope.is_domain_admin(caller):
        return stmt.where(domain_scope.in_domain_subtree(Project.domain_id, caller.account.domain))
    return stmt.where(Project.id.in_(select(ProjectAccount.project_id)
                                     .where(ProjectAccount.account_id == caller.account_id)))


def visible_project_accounts(caller: User) -> Select[str]:
    """The accounts of :func:`visible_project_ids` (``projectid=-1`` on lists)."""
    return select(Project.project_account_id).where(Project.id.in_(visible_project_ids(caller)))


def _account_by_name(db: Session, project: Project, name: str) -> Account | None:
    """A live account (not a project's) of the project's domain."""
    return db.scalar(select(Account).where(Account.domain_id == project.domain_id, Account.name == name,
                                           Account.removed.is_(None), Account.account_type != ACCOUNT_TYPE_PROJECT))


# -- views -------------------------------------------------------------------------------------------

def owners(db: Session, project_ids: list[str]) -> dict[str, list[Account]]:
    out: dict[str, list[Account]] = {pid: [] for pid in project_ids}
    if project_ids:
        for row in db.scalars(select(ProjectAccount).where(ProjectAccount.project_id.in_(project_ids),
                                                           ProjectAccount.role == ROLE_ADMIN)
                              .order_by(ProjectAccount.created)):
            out[row.project_id].append(row.account)
    return out


def views(db: Session, config: ServerConfig, projects: list[Project]) -> list[dict[str, Any]]:
    """``listProjects``' objects, with the project account's resource limits and counts."""
    accounts_by_id = {a.id: a for a in db.scalars(select(Account).where(
        Account.id.in_([p.project_account_id for p in projects])))} if projects else {}
    usage = limits.account_usage(db, config, list(accounts_by_id.values()))
    owned = owners(db, [p.id for p in projects])
    return [project_view(p, accounts_by_id[p.project_account_id].name, owned[p.id],
                         usage[p.project_account_id]) for p in projects]


# -- create, update, state, members ------------------------------------------------------------------

def create_project(db: Session, actor: User, owner: Account, name: str, display_text: str | None) -> Project:
    """A project in the owner's domain, its account, and the owner as its Admin."""
    if not name.strip():
        raise errors.param_error("Project name can't be empty")
    if db.scalar(select(Project.id).where(Project.domain_id == owner.domain_id, Project.name == name,
                                          Project.removed.is_(None))) is not None:
        raise errors.param_error(f"Project with name {name} already exists in domain id={owner.domain_id}")
    project_id = new_id()
    account = Account(name=f"PrjAcct-{project_id}", domain_id=owner.domain_id, account_type=ACCOUNT_TYPE_PROJECT)
    db.add(account)
    db.flush()
    project = Project(id=project_id, name=name, display_text=display_text or name, domain_id=owner.domain_id,
                      project_account_id=account.id, state=ACTIVE)
    db.add(project)
    db.flush()
    db.add(ProjectAccount(project_id=project.id, account_id=owner.id, role=ROLE_ADMIN))
    db.flush()
    events.record(db, actor, "PROJECT.CREATE", f"Creating project {name}", resource_type="Project",
                  resource_id=project.id)
    return project


def update_project(db: Session, actor: User, project: Project, *, name: str | None, display_text: str | None,
                   new_owner: str | None, role: str | None, swap_owner: bool) -> Project:
    """updateProject: a new name or display text; ``new_owner`` (a member's account name) becomes an
    Admin (``role`` Regular: demoted instead), and with ``swap_owner`` the other Admins become Regular."""
    check_manage(db, actor, project)
    if name is not None and name != project.name:
        if not name.strip():
            raise errors.param_error("Project name can't be empty")
        if db.scalar(select(Project.id).where(Project.domain_id == project.domain_id, Project.name == name,
                                              Project.removed.is_(None))) is not None:
            raise errors.param_error(f"Project with name {name} already exists in domain id={project.domain_id}")
        project.name = name
    if display_text is not None:
        project.display_text = display_text
    if new_owner is not None:
        account = _account_by_name(db, project, new_owner)
        if account is None:
            raise errors.param_error(f"Unable to find account name={new_owner} in domain id={project.domain_id}")
        row = member(db, project, account.id)
        if row is None:
            raise errors.param_error(f"Account {new_owner} doesn't belong to the project. Add it to the project "
                                     "first and then change the project's ownership")
        admins = list(db.scalars(select(ProjectAccount).where(ProjectAccount.project_id == project.id,
                                                              ProjectAccount.role == ROLE_ADMIN)))
        new_role = role or ROLE_ADMIN
        if new_role != ROLE_ADMIN:
            if [a.id for a in admins] == [row.id]:
                raise errors.param_error("Cannot demote the only admin of the project")
        elif swap_owner:
            for other in admins:
                if other.id != row.id:
                    other.role = ROLE_REGULAR
        row.role = new_role
    db.flush()
    events.record(db, actor, "PROJECT.UPDATE", f"Updating project {project.name}", resource_type="Project",
                  resource_id=project.id)
    return project


def activate(db: Session, actor: User, project: Project) -> Project:
    """activateProject: Suspended → Active; an Active project stays as it is."""
    check_manage(db, actor, project)
    if project.state == ACTIVE:
        return project
    if project.state != SUSPENDED:
        raise errors.param_error(f"Can't activate the project in {project.state} state")
    project.state = ACTIVE
    events.record(db, actor, "PROJECT.ACTIVATE", f"Activating project {project.name}", resource_type="Project",
                  resource_id=project.id)
    return project


def add_account(db: Session, actor: User, project: Project, account_name: str, role: str) -> None:
    """addAccountToProject (no invitation: the account becomes a member at once); adding a member
    again changes nothing, as in CloudStack."""
    if project.state != ACTIVE:
        raise errors.param_error(f"Can't add account to the specified project id in state={project.state} as "
                                 "it's no longer active")
    account = _account_by_name(db, project, account_name)
    if account is None:
        raise errors.param_error(f"Unable to find account name={account_name} in specified domain id")
    check_manage(db, actor, project)
    if member(db, project, account.id) is not None:
        return
    db.add(ProjectAccount(project_id=project.id, account_id=account.id, role=role))
    db.flush()
    events.record(db, actor, "PROJECT.ACCOUNT.ADD", f"Adding account {account.name} to project {project.name}",
                  resource_type="Project", resource_id=project.id)


def remove_account(db: Session, actor: User, project: Project, account_name: str) -> None:
    account = _account_by_name(db, project, account_name)
    if account is None:
        raise errors.param_error(f"Unable to find account name={account_name} in domain id={project.domain_id}")
    check_manage(db, actor, project)
    row = member(db, project, account.id)
    if row is None:
        raise errors.param_error(f"Account {account_name} is not assigned to the project with specified id")
    if row.role == ROLE_ADMIN and db.scalar(select(func.count()).where(
            ProjectAccount.project_id == project.id, ProjectAccount.role == ROLE_ADMIN)) == 1:
        raise errors.param_error(f"Unable to delete account {account_name} from the project with specified id as "
                                 "the account is the owner of the project")
    db.delete(row)
    events.record(db, actor, "PROJECT.ACCOUNT.REMOVE", f"Removing account {account.name} from project "
                  f"{project.name}", resource_type="Project", resource_id=project.id)


def members(db: Session, project: Project) -> Select[ProjectAccount]:
    return select(ProjectAccount).where(ProjectAccount.project_id == project.id).order_by(ProjectAccount.created,
                                                                                         ProjectAccount.id)


# -- suspendProject ----------------------------------------------------------------------------------

def _suspend(db: Session, project_id: str) -> list[str]:
    project = live_project(db, project_id)
    if project.state == DISABLED:
        raise JobFailure(errors.PARAM_ERROR, f"Project id={project.id} is being deleted")
    project.state = SUSPENDED
    return list(db.scalars(select(VMInstance.id).where(VMInstance.account_id == project.project_account_id,
                                                       VMInstance.removed.is_(None), VMInstance.state == S.RUNNING)
                           .order_by(VMInstance.created)))


def _view_of(db: Session, config: ServerConfig, project_id: str) -> dict[str, Any]:
    return {"project": views(db, config, [live_project(db, project_id)])[0]}


def _in_tx(jctx: JobContext, fn: Any, *args: Any) -> Any:
    with jctx.sessions.begin() as db:
        return fn(db, *args)


async def run_suspend(jctx: JobContext) -> dict[str, Any]:
    """Mark the project Suspended (in one transaction: no new resources from then on), then stop
    its running VMs one by one; a VM that fails to stop fails the job (suspendProject again retries)."""
    project_id = str(jctx.params["id"])
    vm_ids: list[str] = await asyncio.to_thread(_in_tx, jctx, _suspend, project_id)
    steps = Steps(jctx.sessions, jctx.agents, jctx.state.box)
    failures: list[str] = []
    for vm_id in vm_ids:
        try:
            await vms.stop_vm(steps, vm_id, False)
        except JobFailure as exc:
            failures.append(f"VM {vm_id}: {exc}")
    if failures:
        raise JobFailure(INTERNAL_ERROR, "The project was suspended but some of its VMs did not stop: "
                         + "; ".join(failures)[:800])
    return await asyncio.to_thread(_in_tx, jctx, _view_of, jctx.state.config, project_id)  # type: ignore[no-any-return]


# -- deleteProject -----------------------------------------------------------------------------------

def _leftovers(db: Session, account_id: str) -> str | None:
    """CloudStack's refusal text for the first kind of resource the project still owns, if any."""
    checks: list[tuple[str, Any]] = [
        ("VirtualMachineTemplate", select(func.count()).where(VMTemplate.account_id == account_id,
                                                              VMTemplate.removed.is_(None))),
        ("VirtualMachine", select(func.count()).where(VMInstance.account_id == account_id,
                                                      VMInstance.removed.is_(None))),
        ("Volume", select(func.count()).where(Volume.account_id == account_id, Volume.removed.is_(None),
                                              Volume.vm_id.is_(None), Volume.state != S.VOL_EXPUNGED)),
        ("Network", select(func.count()).where(Network.account_id == account_id, Network.removed.is_(None))),
    ]
    for kind, stmt in checks:
        count = db.scalar(stmt) or 0
        if count:
            return f"{count} {kind} to clean up"
    return None


def _begin_delete(db: Session, actor_id: str, project_id: str, cleanup: bool) -> str:
    project = live_project(db, project_id)
    if not cleanup:
        left = _leftovers(db, project.project_account_id)
        if left is not None:
            raise JobFailure(INTERNAL_ERROR, f"Can't delete the project yet because it has {left}")
    project.state = DISABLED
    account = db.get(Account, project.project_account_id)
    if account is not None:
        accounts.remove_account(db, account)
    actor = db.get(User, actor_id)
    if actor is not None:
        events.record(db, actor, "PROJECT.DELETE", f"Deleting project {project.name}", resource_type="Project",
                      resource_id=project.id)
    return project.project_account_id


def _finish_delete(db: Session, project_id: str) -> None:
    project = live_project(db, project_id)
    db.execute(delete(ProjectAccount).where(ProjectAccount.project_id == project.id))
    project.removed = utcnow()


async def run_delete(jctx: JobContext) -> dict[str, Any]:
    project_id = str(jctx.params["id"])
    account_id: str = await asyncio.to_thread(_in_tx, jctx, _begin_delete, jctx.user_id, project_id,
                                              bool(jctx.params.get("cleanup")))
    try:
        await accounts.clean_up(jctx, account_id)
    except JobFailure as exc:
        raise JobFailure(INTERNAL_ERROR, "Failed to clean up the project's resources; call deleteProject again "
                         f"to retry: {exc}"[:1000]) from None
    await asyncio.to_thread(_in_tx, jctx, _finish_delete, project_id)
    log.info("project deleted", project_id=project_id)
    return {"success": True}


register(JOB_SUSPEND, run_suspend, resumable=True)
register(JOB_DELETE, run_delete, resumable=True)
