"""The context a command handler runs in: caller, DB session, visibility and paging helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, lazyload

from hvcloud.server.api import errors
from hvcloud.server.api.registry import Args
from hvcloud.server.db.models import Account, Base, Domain, Project, User
from hvcloud.server.db.seed import ACCOUNT_TYPE_ADMIN, ACCOUNT_TYPE_DOMAIN_ADMIN
from hvcloud.server.orchestration import domain_scope, events, projects
from hvcloud.server.state import ServerState

T = TypeVar("T", bound=Base)
R = TypeVar("R")


@dataclass
class CallContext:
    state: ServerState
    db: Session
    user: User
    command: str
    #: jobs this call queued: the job engine is woken for them once the call commits
    queued_jobs: int = 0
    #: the request's HTTP method: some limits differ for GET and POST (user data, as in CloudStack)
    http_method: str = "GET"
    #: the client's address (behind a trusted proxy: the forwarded one); console sessions record it
    client_address: str | None = None

    @property
    def account(self) -> Account:
        return self.user.account

    @property
    def is_admin(self) -> bool:
        """A root admin (domain admins are not: see :attr:`is_domain_admin`)."""
        return self.user.account.account_type == ACCOUNT_TYPE_ADMIN

    @property
    def is_domain_admin(self) -> bool:
        """A domain admin: an administrator of its domain's subtree only."""
        return self.user.account.account_type == ACCOUNT_TYPE_DOMAIN_ADMIN

    def may_act_for(self, account_id: str) -> bool:
        """Whether the caller may see and act on what ``account_id`` owns (its own; root admins any;
        domain admins those of their subtree): the one ownership check of single resources."""
        return domain_scope.may_act_for(self.db, self.user, account_id)

    def check_domain(self, domain: Domain) -> Domain:
        """``domain`` if the caller administers it (root admin, or domain admin of it or an ancestor);
        else CloudStack's 531."""
        if not domain_scope.may_manage_domain(self.user, domain):
            raise errors.permission_denied(f"Account {self.account.name} does not have permission to operate "
                                           f"within domain id={domain.id}")
        return domain

    def manages_domain_id(self, domain_id: str | None) -> bool:
        """Whether the caller administers the domain ``domain_id`` (see :meth:`check_domain`)."""
        if self.is_admin:
            return True
        domain = self.db.get(Domain, domain_id) if domain_id is not None and self.is_domain_admin else None
        return domain is not None and domain_scope.may_manage_domain(self.user, domain)

    def domain(self, value: str, name: str = "domainid") -> Domain:
        """A live domain by id, or the 431 of an entity that does not exist (removed ones included)."""
        domain = self.get(Domain, name, value)
        if domain.removed is not None:
            raise errors.entity_not_found(name, value)
        return domain

    def optional_domain(self, args: Args, name: str = "domainid") -> Domain | None:
        value = args.opt_str(name)
        return None if value is None else self.domain(value, name)

    def get(self, model: type[T], name: str, value: str, *, lazy: bool = False) -> T:
        """Fetch a row by id or fail with CloudStack's 431 "entity does not exist". ``lazy``: load
        none of its relationships now, not even those the model joins by default (for hot paths
        that read only the row's own columns)."""
        options = [lazyload("*")] if lazy else None
        row = self.db.get(model, value, options=options) if value != "-1" else None
        if row is None:
            raise errors.entity_not_found(name, value)
        return row

    def require(self, args: Args, model: type[T], name: str) -> T:
        return self.get(model, name, args.str(name))

    def optional(self, args: Args, model: type[T], name: str) -> T | None:
        value = args.opt_str(name)
        return None if value is None else self.get(model, name, value)

    def project(self, value: str, name: str = "projectid") -> Project:
        """A live project by id, or the 431 of an entity that does not exist (removed ones included)."""
        return projects.live_project(self.db, value, name)

    def project_scope(self, column: Any, args: Args) -> ColumnElement[bool]:
        """``projectid`` on a list: the rows of that project's account (the caller must be a member, or
        an admin of its domain: 531 otherwise); ``-1``: of every project the caller may use."""
        value = args.str("projectid")
        if value == "-1":
            return column.in_(projects.visible_project_accounts(self.user))  # type: ignore[no-any-return]
        project = self.project(value)
        if not projects.may_use(self.db, self.user, project):
            raise errors.permission_denied(f"Account {self.account.name} can't access project id={project.id}")
        return column == project.project_account_id  # type: ignore[no-any-return]

    def owner_filter(self, column: Any, args: Args) -> ColumnElement[bool] | None:
        """Restrict to the caller's account unless an admin asked for ``listall`` (a domain admin:
        then to the accounts of its subtree); ``projectid``: to a project's (:meth:`project_scope`)."""
        if args.has("projectid"):
            return self.project_scope(column, args)
        if args.bool("listall"):
            if self.is_admin:
                return None
            if self.is_domain_admin:
                return column.in_(domain_scope.subtree_account_ids(self.account.domain))  # type: ignore[no-any-return]
        return column == self.account.id  # type: ignore[no-any-return]

    def owner_and_domain_filter(self, account_column: Any, domain_column: Any,
                                args: Args) -> ColumnElement[bool] | None:
        """CloudStack's list visibility for rows with an owner account and domain: a user sees its
        own; an admin its own unless ``listall``, or those of ``account`` (a name, with ``domainid``),
        or of the domain ``domainid`` (and its sub-domains with ``isrecursive``). A domain admin is
        an admin of its subtree: ``domainid`` outside it is a 531, ``listall`` means its subtree.
        ``projectid`` wins over the others: the project's resources (:meth:`project_scope`)."""
        if args.has("projectid"):
            return self.project_scope(account_column, args)
        if not self.is_admin and not self.is_domain_admin:
            if args.has("account") or args.has("domainid"):
                domain_id = args.opt_str("domainid")
                if domain_id is not None and domain_id != self.account.domain_id:
                    raise errors.permission_denied("Caller does not have permission to operate with the domain")
                name = args.opt_str("account")
                if name is not None and name != self.account.name:
                    raise errors.permission_denied(f"Caller cannot access account {name[:64]}")
            return account_column == self.account.id  # type: ignore[no-any-return]
        domain = self.optional_domain(args)
        if domain is not None:
            self.check_domain(domain)
        name = args.opt_str("account")
        if name is not None:
            if domain is None:
                raise errors.param_error("Give domainid with account")
            account = self.db.scalar(select(Account).where(Account.domain_id == domain.id, Account.name == name,
                                                           Account.removed.is_(None)))
            if account is None:
                raise errors.param_error(f"Unable to find account {name[:64]} in domain {domain.id}")
            return account_column == account.id  # type: ignore[no-any-return]
        if domain is not None:
            if args.bool("isrecursive"):
                return domain_scope.in_domain_subtree(domain_column, domain)  # type: ignore[no-any-return]
            return domain_column == domain.id  # type: ignore[no-any-return]
        if args.bool("listall"):
            if self.is_admin:
                return None
            return domain_scope.in_domain_subtree(domain_column, self.account.domain)  # type: ignore[no-any-return]
        return account_column == self.account.id  # type: ignore[no-any-return]

    def owner_for(self, args: Args) -> Account:
        """The account a create/delete acts for: the caller's own, or (admins only: a domain admin
        within its subtree) ``account`` in ``domainid``, as CloudStack's ``finalizeOwner``; with
        ``projectid`` the project's account, for its members (and admins of its domain) while the
        project is Active."""
        project_id = args.opt_str("projectid")
        if project_id is not None:
            return self.project_owner(project_id)
        name = args.opt_str("account")
        domain_id = args.opt_str("domainid")
        if name is None and domain_id is None:
            return self.account
        if name is None or domain_id is None:
            raise errors.param_error("Give both account and domainid to act for another account")
        domain = self.domain(domain_id)
        if not self.is_admin and not self.is_domain_admin:
            if domain.id != self.account.domain_id or name != self.account.name:
                raise errors.permission_denied(f"Caller cannot act for account {name[:64]} in domain {domain.id}")
            return self.account
        self.check_domain(domain)
        account = self.db.scalar(select(Account).where(Account.domain_id == domain.id, Account.name == name,
                                                       Account.removed.is_(None)))
        if account is None:
            raise errors.param_error(f"Unable to find account by name {name[:64]} in domain {domain.id}")
        if not self.may_act_for(account.id):
            raise errors.permission_denied(f"Caller cannot act for account {name[:64]} in domain {domain.id}")
        return account

    def project_owner(self, project_id: str) -> Account:
        """The account of project ``project_id`` to own a new resource (see :meth:`owner_for`)."""
        project = self.project(project_id)
        if not projects.may_use(self.db, self.user, project):
            raise errors.permission_denied(f"Account {self.account.name} is unauthorised to use project "
                                           f"id={project.id}")
        if project.state != projects.ACTIVE:
            raise errors.permission_denied(f"Can't add resources to the project id={project.id} in "
                                           f"state={project.state} as it's no longer active")
        account = self.db.get(Account, project.project_account_id)
        assert account is not None  # a foreign key
        return account

    def page(self, stmt: Select[R], args: Args) -> tuple[list[R], int]:
        """Apply ``page``/``pagesize`` with CloudStack's rules; return the page and the total count."""
        limit, offset = self._window(args)
        count = self.db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
        if limit != -1:
            stmt = stmt.limit(limit).offset(offset)
        return list(self.db.scalars(stmt).unique()), count

    def page_list(self, items: list[R], args: Args) -> tuple[list[R], int]:
        """:meth:`page` of a list built in memory."""
        limit, offset = self._window(args)
        return (items if limit == -1 else items[offset:offset + limit]), len(items)

    def _window(self, args: Args) -> tuple[int, int]:
        """``(limit, offset)`` of ``page``/``pagesize`` (limit -1: all)."""
        page, pagesize = args.opt_int("page"), args.opt_int("pagesize")
        limit = self.state.config.max_page_size
        offset = 0
        if pagesize == -1:
            if page is not None:
                raise errors.param_error('Can\'t specify page parameter when pagesize is -1 (Unlimited)')
            limit = -1
        elif pagesize is not None or page is not None:
            if pagesize is None:
                raise errors.param_error('"pagesize" parameter is required when "page" is specified')
            if page is None:
                raise errors.param_error('"page" parameter is required when "pagesize" is specified')
            if pagesize > limit:
                raise errors.param_error(f"Page size can't exceed max allowed page size value: {limit}")
            if pagesize < 1 or page < 1:
                raise errors.param_error("page and pagesize must be positive")
            limit, offset = pagesize, (page - 1) * pagesize
        return limit, offset

    def event(self, event_type: str, description: str, *, resource_type: str | None = None,
              resource_id: str | None = None, level: str = "INFO") -> None:
        events.record(self.db, self.user, event_type, description, resource_type=resource_type,
                      resource_id=resource_id, level=level)


def keyword_pattern(args: Args) -> str | None:
    keyword = args.opt_str("keyword")
    if not keyword:
        return None
    escaped = keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
