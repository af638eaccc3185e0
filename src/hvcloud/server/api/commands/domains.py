"""Domains: createDomain, updateDomain, deleteDomain, listDomains, listDomainChildren.

Root admins manage every domain; domain admins the domains below their own (they may list their
own, not rename or delete it); users only see their own domain.
"""

from __future__ import annotations

from sqlalchemy import Select, select

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import submit_job
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, Result
from hvcloud.server.db.models import Domain
from hvcloud.server.orchestration import domain_scope
from hvcloud.server.orchestration import domains as domain_manager
from hvcloud.server.views.accounts import domain_view

command = REGISTRY.command

DOMAIN_FIELDS = ("id", "name", "path", "level", "parentdomainid", "parentdomainname", "haschild",
                 "networkdomain", "state")
DETAILS = frozenset({"all", "resource", "min"})


def _below_own(ctx: CallContext, domain: Domain) -> Domain:
    """A domain the caller may rename or delete: any but ROOT's rename for a root admin; for a domain
    admin, one strictly below its own domain (531 otherwise)."""
    ctx.check_domain(domain)
    if not ctx.is_admin and domain.id == ctx.account.domain_id:
        raise errors.permission_denied(f"Account {ctx.account.name} does not have permission to operate on its "
                                       f"own domain id={domain.id}")
    return domain


def _list(ctx: CallContext, stmt: Select[Domain], args: Args) -> Result:
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(Domain.name.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt.order_by(Domain.path), args)
    ids = [d.id for d in rows]
    parents = domain_manager.parent_names(ctx.db, rows)
    with_children = domain_manager.has_children(ctx.db, ids)
    return ListResult("domain", [domain_view(d, parent_name=parents.get(d.parent_id or ""),
                                             has_child=d.id in with_children) for d in rows], count)


@command("createDomain", "Creates a domain", domain_admin=True, params=[
    Param("name", required=True, description="creates domain with this name (no '/')"),
    Param("parentdomainid", "uuid", description="assigns new domain a parent domain by domain ID of the parent; "
          "by default ROOT"),
    Param("networkdomain", description="Network domain for networks in the domain"),
], response=DOMAIN_FIELDS)
def create_domain(ctx: CallContext, args: Args) -> Result:
    parent = ctx.optional_domain(args, "parentdomainid") or domain_manager.root(ctx.db)
    ctx.check_domain(parent)
    domain = domain_manager.create_domain(ctx.db, ctx.user, parent, args.str("name"), args.opt_str("networkdomain"))
    return ObjectResult("domain", domain_view(domain, parent_name=parent.name))


@command("updateDomain", "Updates a domain with a new name", domain_admin=True, params=[
    Param("id", "uuid", required=True, description="ID of domain to update"),
    Param("name", description="updates domain with this name"),
    Param("networkdomain", description="Network domain for the domain's networks; empty to clear it"),
], response=DOMAIN_FIELDS)
def update_domain(ctx: CallContext, args: Args) -> Result:
    domain = _below_own(ctx, ctx.domain(args.str("id"), "id"))
    domain = domain_manager.update_domain(ctx.db, ctx.user, domain, args.opt_str("name"),
                                          args.opt_str("networkdomain"))
    parents = domain_manager.parent_names(ctx.db, [domain])
    return ObjectResult("domain", domain_view(domain, parent_name=parents.get(domain.parent_id or ""),
                                              has_child=bool(domain_manager.has_children(ctx.db, [domain.id]))))


@command("deleteDomain", "Deletes a specified domain", isasync=True, domain_admin=True, params=[
    Param("id", "uuid", required=True, description="ID of domain to delete"),
    Param("cleanup", "boolean", description="true: delete all its sub-domains and accounts with their resources; "
          "false (default): refused while the domain holds accounts or sub-domains"),
], response=("success",))
def delete_domain(ctx: CallContext, args: Args) -> Result:
    domain = ctx.domain(args.str("id"), "id")
    if domain.parent_id is None:
        raise errors.permission_denied("Can't delete ROOT domain")
    _below_own(ctx, domain)
    if domain_scope.in_subtree(domain, ctx.account.domain):
        raise errors.permission_denied(f"Account {ctx.account.name} cannot delete the domain it belongs to")
    if domain.state != domain_manager.ACTIVE:
        raise errors.param_error(f"The domain {domain.name} is already being deleted")
    return submit_job(ctx, domain_manager.JOB_DELETE, {"id": domain.id, "cleanup": args.bool("cleanup")},
                      instance_type="Domain", instance_id=domain.id)


@command("listDomains", "Lists domains and provides detailed information for listed domains", admin=False,
         listall=True, params=[
             Param("id", "uuid", description="List domain by domain ID"),
             Param("name", description="List domain by domain name"),
             Param("level", "integer", description="List domains by domain level"),
             Param("details", "list", description="details requested: all, resource or min"),
         ], response=DOMAIN_FIELDS)
def list_domains(ctx: CallContext, args: Args) -> Result:
    """CloudStack's searchForDomains: ``id`` (which the caller must administer, or be in) alone; else
    a root admin sees every domain, a domain admin its own (and with ``listall`` its subtree), a
    user its own."""
    bad = [d for d in args.list("details") if d.lower() not in DETAILS]
    if bad:
        raise errors.param_error(f"Invalid details parameter {bad[0][:64]}: give all, resource or min")
    stmt = select(Domain).where(Domain.removed.is_(None))
    domain_id = args.opt_str("id")
    if domain_id is not None:
        domain = ctx.domain(domain_id, "id")
        if domain.id != ctx.account.domain_id:
            ctx.check_domain(domain)
        stmt = stmt.where(Domain.id == domain.id)
    elif ctx.is_domain_admin and args.bool("listall"):
        stmt = stmt.where(Domain.id.in_(domain_scope.subtree_domain_ids(ctx.account.domain)))
    elif not ctx.is_admin:
        stmt = stmt.where(Domain.id == ctx.account.domain_id)
    name = args.opt_str("name")
    if name is not None:
        stmt = stmt.where(Domain.name == name)
    if args.opt_int("level") is not None:
        stmt = stmt.where(Domain.level == args.opt_int("level"))
    return _list(ctx, stmt, args)


@command("listDomainChildren", "Lists all children domains belonging to a specified domain", domain_admin=True,
         listall=True, params=[
             Param("id", "uuid", description="list children of this domain (by default the caller's)"),
             Param("name", description="list children domains by name (a part of it)"),
             Param("isrecursive", "boolean", description="to return the entire tree, use the value true"),
         ], response=DOMAIN_FIELDS)
def list_domain_children(ctx: CallContext, args: Args) -> Result:
    """The children of ``id`` (by default the caller's domain); with ``isrecursive`` (and without
    ``listall``, as CloudStack) every domain below it."""
    domain_id = args.opt_str("id")
    domain = ctx.check_domain(ctx.domain(domain_id, "id")) if domain_id is not None else ctx.account.domain
    stmt = select(Domain).where(Domain.removed.is_(None))
    if args.bool("isrecursive") and not args.bool("listall"):
        stmt = stmt.where(Domain.id.in_(domain_scope.subtree_domain_ids(domain, strict=True)))
    else:
        stmt = stmt.where(Domain.parent_id == domain.id)
    name = args.opt_str("name")
    if name:
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Domain.name.like(f"%{escaped}%", escape="\\"))
    return _list(ctx, stmt, args)
