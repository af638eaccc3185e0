"""Projects: createProject, listProjects, updateProject, activateProject, suspendProject,
deleteProject, addAccountToProject, deleteAccountFromProject, listProjectAccounts.

The rules live in ``orchestration/projects.py``; ``projectid`` on the resource commands goes through
``CallContext.owner_for`` / ``owner_and_domain_filter`` / ``project_scope``. Invitations are not
supported (``project.invite.required`` is always false): addAccountToProject adds at once.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import aliased

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import run_inline, submit_job
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, Result, SuccessResult
from hvcloud.server.db.models import Project, ProjectAccount
from hvcloud.server.db.seed import ACCOUNT_TYPE_PROJECT, ACCOUNT_TYPE_USER
from hvcloud.server.orchestration import projects as P
from hvcloud.server.views.projects import project_account_view

command = REGISTRY.command

PROJECT_FIELDS = ("id", "name", "displaytext", "domainid", "domain", "domainpath", "owner", "projectaccountname",
                  "state", "created", "vmlimit", "vmtotal", "vmavailable", "volumelimit", "volumetotal",
                  "volumeavailable", "networklimit", "networktotal", "networkavailable", "iplimit", "iptotal",
                  "ipavailable", "cpulimit", "cputotal", "cpuavailable", "memorylimit", "memorytotal",
                  "memoryavailable")
PROJECT_ACCOUNT_FIELDS = ("projectid", "project", "accountid", "account", "accounttype", "role", "domainid",
                          "domain")
MAX_NAME = 255


def _project(ctx: CallContext, args: Args, name: str = "id") -> Project:
    return ctx.project(args.str(name), name)


def _view(ctx: CallContext, project: Project) -> ObjectResult:
    ctx.db.flush()
    return ObjectResult("project", P.views(ctx.db, ctx.state.config, [project])[0])


def _role(args: Args, name: str = "roletype") -> str | None:
    value = args.opt_str(name)
    if value is None:
        return None
    for role in P.ROLES:
        if value.lower() == role.lower():
            return role
    raise errors.param_error(f"Invalid {name} {value[:64]}: give Admin or Regular")


@command("createProject", "Creates a project", admin=False, isasync=True, params=[
    Param("name", required=True, length=MAX_NAME, description="name of the project"),
    Param("displaytext", length=MAX_NAME, description="display text of the project (by default its name)"),
    Param("account", description="account who will be Admin for the project"),
    Param("domainid", "uuid", description="domain ID of the account owning a project"),
], response=PROJECT_FIELDS)
def create_project(ctx: CallContext, args: Args) -> Result:
    if ctx.account.account_type == ACCOUNT_TYPE_USER and not ctx.state.config.allow_user_create_projects:
        raise errors.permission_denied("Regular user is not permitted to create a project")
    owner = ctx.owner_for(args)
    if owner.account_type == ACCOUNT_TYPE_PROJECT:
        raise errors.param_error("A project's account cannot own a project")
    project = P.create_project(ctx.db, ctx.user, owner, args.str("name"), args.opt_str("displaytext"))
    return run_inline(ctx, _view(ctx, project), instance_type="Project", instance_id=project.id, create=True)


@command("listProjects", "Lists projects and provides detailed information for listed projects", admin=False,
         listall=True, params=[
             Param("id", "uuid", description="list projects by project ID"),
             Param("name", description="list projects by name"),
             Param("displaytext", description="list projects by display text"),
             Param("state", description="list projects by state"),
             Param("account", description="list projects of this member account; with domainid"),
             Param("domainid", "uuid", description="list only projects of the domain specified"),
             Param("isrecursive", "boolean", description="with domainid: also the sub-domains' projects"),
             Param("details", "list", description="details requested: all, min"),
         ], response=PROJECT_FIELDS)
def list_projects(ctx: CallContext, args: Args) -> Result:
    """The projects the caller is a member of; admins: with ``listall`` all they administer, or
    those of ``domainid`` (``isrecursive``), or of a member ``account``."""
    stmt = select(Project).where(Project.removed.is_(None))
    inner = aliased(Project)
    scope = ctx.owner_and_domain_filter(ProjectAccount.account_id, inner.domain_id, args)
    if scope is not None:
        stmt = stmt.where(Project.id.in_(select(ProjectAccount.project_id)
                                         .join(inner, inner.id == ProjectAccount.project_id).where(scope)))
    for param, column in (("id", Project.id), ("name", Project.name), ("displaytext", Project.display_text)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    state = args.opt_str("state")
    if state is not None:
        stmt = stmt.where(Project.state.ilike(state.replace("\\", "").replace("%", "").replace("_", "")))
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(Project.name.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt.order_by(Project.created, Project.id), args)
    return ListResult("project", P.views(ctx.db, ctx.state.config, rows), count)


@command("updateProject", "Updates a project", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="id of the project to be modified"),
    Param("name", length=MAX_NAME, description="name of the project"),
    Param("displaytext", length=MAX_NAME, description="display text of the project"),
    Param("account", description="new Admin account for the project (a member)"),
    Param("swapowner", "boolean", description="true (default): the account replaces the current Admins; "
          "false: it becomes one more Admin"),
    Param("roletype", description="the account's new role: Admin (default) or Regular"),
], response=PROJECT_FIELDS)
def update_project(ctx: CallContext, args: Args) -> Result:
    project = _project(ctx, args)
    project = P.update_project(ctx.db, ctx.user, project, name=args.opt_str("name"),
                               display_text=args.opt_str("displaytext"), new_owner=args.opt_str("account"),
                               role=_role(args), swap_owner=args.bool("swapowner", True))
    return run_inline(ctx, _view(ctx, project), instance_type="Project", instance_id=project.id)


@command("activateProject", "Activates a project", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="id of the project to be activated"),
], response=PROJECT_FIELDS)
def activate_project(ctx: CallContext, args: Args) -> Result:
    project = P.activate(ctx.db, ctx.user, _project(ctx, args))
    return run_inline(ctx, _view(ctx, project), instance_type="Project", instance_id=project.id)


@command("suspendProject", "Suspends a project: no new resources, its VMs are stopped", admin=False,
         isasync=True, params=[
             Param("id", "uuid", required=True, description="id of the project to be suspended"),
         ], response=PROJECT_FIELDS)
def suspend_project(ctx: CallContext, args: Args) -> Result:
    project = P.check_manage(ctx.db, ctx.user, _project(ctx, args))
    if project.state == P.DISABLED:
        raise errors.param_error(f"Can't suspend the project in {project.state} state")
    return submit_job(ctx, P.JOB_SUSPEND, {"id": project.id}, instance_type="Project", instance_id=project.id)


@command("deleteProject", "Deletes a project", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="id of the project to be deleted"),
    Param("cleanup", "boolean", description="true: delete the project's resources with it; false (default): "
          "refused while it owns VMs, volumes, templates or networks"),
], response=("success",))
def delete_project(ctx: CallContext, args: Args) -> Result:
    project = P.check_manage(ctx.db, ctx.user, _project(ctx, args))
    return submit_job(ctx, P.JOB_DELETE, {"id": project.id, "cleanup": args.bool("cleanup")},
                      instance_type="Project", instance_id=project.id)


@command("addAccountToProject", "Adds account to a project", admin=False, isasync=True, params=[
    Param("projectid", "uuid", required=True, description="ID of the project to add the account to"),
    Param("account", required=True, description="name of the account to be added to the project"),
    Param("email", description="email to which invitation to the project is going to be sent (not supported)"),
    Param("roletype", description="Project role type: Admin or Regular (default)"),
    Param("projectroleid", "uuid", description="ID of the project role (not supported)"),
], response=("success",))
def add_account_to_project(ctx: CallContext, args: Args) -> Result:
    project = _project(ctx, args, "projectid")
    if args.has("email"):
        raise errors.param_error("Invalid email: project invitations are not supported (project.invite.required "
                                 "is false)")
    if args.has("projectroleid"):
        raise errors.entity_not_found("projectroleid", args.str("projectroleid"))
    P.add_account(ctx.db, ctx.user, project, args.str("account"), _role(args) or P.ROLE_REGULAR)
    return run_inline(ctx, SuccessResult(), instance_type="Project", instance_id=project.id)


@command("deleteAccountFromProject", "Deletes account from the project", admin=False, isasync=True, params=[
    Param("projectid", "uuid", required=True, description="ID of the project to remove the account from"),
    Param("account", required=True, description="name of the account to be removed from the project"),
], response=("success",))
def delete_account_from_project(ctx: CallContext, args: Args) -> Result:
    project = _project(ctx, args, "projectid")
    P.remove_account(ctx.db, ctx.user, project, args.str("account"))
    return run_inline(ctx, SuccessResult(), instance_type="Project", instance_id=project.id)


@command("listProjectAccounts", "Lists project's accounts", admin=False, params=[
    Param("projectid", "uuid", required=True, description="ID of the project"),
    Param("account", description="list accounts of the project by account name"),
    Param("role", description="list accounts of the project by role: Admin or Regular"),
], response=PROJECT_ACCOUNT_FIELDS)
def list_project_accounts(ctx: CallContext, args: Args) -> Result:
    project = _project(ctx, args, "projectid")
    if not P.may_use(ctx.db, ctx.user, project):
        raise errors.permission_denied(f"Account {ctx.account.name} can't access project id={project.id}")
    stmt = P.members(ctx.db, project)
    role = _role(args, "role")
    if role is not None:
        stmt = stmt.where(ProjectAccount.role == role)
    name = args.opt_str("account")
    if name is not None:
        stmt = stmt.where(ProjectAccount.account.has(name=name))
    rows, count = ctx.page(stmt, args)
    return ListResult("projectaccount", [project_account_view(project, row) for row in rows], count)
