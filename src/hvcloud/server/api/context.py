"""The context a command handler runs in: caller, DB session, visibility and paging helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, lazyload

from hvcloud.server.api import errors
from hvcloud.server.api.registry import Args
from hvcloud.server.db.models import Account, Base, User
from hvcloud.server.db.seed import ACCOUNT_TYPE_ADMIN
from hvcloud.server.orchestration import events
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

    @property
    def account(self) -> Account:
        return self.user.account

    @property
    def is_admin(self) -> bool:
        return self.user.account.account_type == ACCOUNT_TYPE_ADMIN

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

    def owner_filter(self, column: Any, args: Args) -> ColumnElement[bool] | None:
        """Restrict to the caller's account unless an admin asked for ``listall``."""
        if self.is_admin and args.bool("listall"):
            return None
        return column == self.account.id  # type: ignore[no-any-return]

    def page(self, stmt: Select[R], args: Args) -> tuple[list[R], int]:
        """Apply ``page``/``pagesize`` with CloudStack's rules; return the page and the total count."""
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
        count = self.db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
        if limit != -1:
            stmt = stmt.limit(limit).offset(offset)
        return list(self.db.scalars(stmt).unique()), count

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
