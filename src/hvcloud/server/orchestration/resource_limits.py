"""Per-account and per-domain resource limits, as CloudStack's ResourceLimitManager keeps them.

Every account, and every domain (for itself and its sub-domains), has a ``resource_count`` row per
resource type. An allocation raises the account's row and those of its domain and every parent
domain with one conditional UPDATE each (``count + n <= limit``), in the transaction that creates
the resource: the UPDATE's row lock makes a concurrent allocation on PostgreSQL wait for this one
and then re-check the limit against the committed count, and SQLite runs one writer at a time
(across server processes too, see :mod:`hvcloud.server.db.engine`). Rows are always updated in the
same order (resource type, then account before domains, leaf domain first), so two allocations
cannot deadlock. Releases lower the rows without a check. A missing row is created with the count
recomputed from the real rows, which is also what ``updateResourceCount`` does.

Limits: an explicit ``resource_limit`` row, else the ``max.account.*`` / ``max.domain.*`` setting
(CloudStack's defaults). Root admin accounts and the ROOT domain are unlimited; -1 is unlimited.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import cast

from sqlalchemy import ColumnElement, Table, and_, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hvcloud.server import errors
from hvcloud.server import resource_types as R
from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import (
    Account,
    Domain,
    ResourceCount,
    ResourceLimit,
    TemplateStoreRef,
    User,
    UserIpAddress,
    VMInstance,
    VMTemplate,
    Volume,
    new_id,
)
from hvcloud.server.db.seed import ACCOUNT_TYPE_ADMIN
from hvcloud.server.orchestration import events

ROOT_PATH = "ROOT"


def default_limit(config: ServerConfig, kind: str, resource_type: int, *, account: Account | None = None,
                  domain_id: str | None = None) -> int:
    """The ``max.<kind>.*`` setting in counting units (storage settings are GiB, counts are bytes):
    the value stored for ``account`` (``max.account.*`` only), else for its domain or ``domain_id``,
    else the global one (``updateConfiguration`` with accountid/domainid, or none)."""
    name = f"max.{kind}.{R.SETTING_SUFFIX[resource_type]}"
    scoped = None
    if account is not None:
        scoped = config.scoped_value(name, "account", account.id)
        domain_id = account.domain_id
    if scoped is None and domain_id is not None:
        scoped = config.scoped_value(name, "domain", domain_id)
    value = int(scoped) if scoped is not None else dict(config.limit_defaults).get(name)
    if value is None:
        value = (R.ACCOUNT_DEFAULTS if kind == "account" else R.DOMAIN_DEFAULTS)[resource_type]
    return value if value == R.UNLIMITED else value * R.setting_unit(resource_type)


def _explicit(db: Session, resource_type: int, *, account_id: str | None = None,
              domain_id: str | None = None) -> int | None:
    owner = ResourceLimit.account_id == account_id if account_id else ResourceLimit.domain_id == domain_id
    return db.scalar(select(ResourceLimit.max).where(owner, ResourceLimit.resource_type == resource_type))


def account_limit(db: Session, config: ServerConfig, account: Account, resource_type: int) -> int:
    if account.account_type == ACCOUNT_TYPE_ADMIN:
        return R.UNLIMITED
    found = _explicit(db, resource_type, account_id=account.id)
    return found if found is not None else default_limit(config, "account", resource_type, account=account)


def account_limits(db: Session, config: ServerConfig, account: Account, types: Iterable[int]) -> dict[int, int]:
    """:func:`account_limit` of several resource types, with one query."""
    wanted = sorted(set(types))
    if account.account_type == ACCOUNT_TYPE_ADMIN:
        return {t: R.UNLIMITED for t in wanted}
    explicit: dict[int, int] = dict(db.execute(select(ResourceLimit.resource_type, ResourceLimit.max).where(  # type: ignore[arg-type]
        ResourceLimit.account_id == account.id, ResourceLimit.resource_type.in_(wanted))).all()) if wanted else {}
    return {t: explicit[t] if t in explicit else default_limit(config, "account", t, account=account) for t in wanted}


def domain_path(db: Session, domain: Domain) -> list[Domain]:
    """``domain`` and its parents, leaf first."""
    path = [domain]
    while path[-1].parent_id is not None and len(path) < 64:
        parent = db.get(Domain, path[-1].parent_id)
        if parent is None:
            break
        path.append(parent)
    return path


def domain_limit(db: Session, config: ServerConfig, domain: Domain, resource_type: int) -> int:
    """The domain's own limit, else the nearest parent's explicit one (ROOT excluded), else the
    ``max.domain.*`` default; the ROOT domain is unlimited."""
    for node in domain_path(db, domain):
        if node.parent_id is None:
            break
        found = _explicit(db, resource_type, domain_id=node.id)
        if found is not None:
            return found
    return R.UNLIMITED if domain.parent_id is None else default_limit(config, "domain", resource_type,
                                                                      domain_id=domain.id)


# ------------------------------------------------------------------------------------------ counting

def _real(db: Session, resource_type: int, owner: ColumnElement[bool] | None) -> int:
    """What the owner really holds; ``owner`` is a condition on ``Account`` (None: nobody)."""
    if owner is None:
        return 0
    vm_alive = and_(VMInstance.removed.is_(None), VMInstance.account_id == Account.id, owner)
    vol_alive = and_(Volume.removed.is_(None), Volume.account_id == Account.id, owner)
    tpl_alive = and_(VMTemplate.removed.is_(None), VMTemplate.account_id == Account.id, owner)
    stmt = {
        R.USER_VM: select(func.count(VMInstance.id)).where(vm_alive),
        R.CPU: select(func.sum(VMInstance.cpu_number)).where(vm_alive),
        R.MEMORY: select(func.sum(VMInstance.memory)).where(vm_alive),
        R.VOLUME: select(func.count(Volume.id)).where(vol_alive),
        R.PRIMARY_STORAGE: select(func.sum(Volume.size)).where(vol_alive),
        R.TEMPLATE: select(func.count(VMTemplate.id)).where(tpl_alive),
        R.PUBLIC_IP: select(func.count(UserIpAddress.id)).where(UserIpAddress.removed.is_(None),
                                                                UserIpAddress.is_system.is_(False),
                                                                UserIpAddress.account_id == Account.id, owner),
        R.SECONDARY_STORAGE: select(func.sum(TemplateStoreRef.physical_size))
        .where(TemplateStoreRef.template_id == VMTemplate.id, tpl_alive),
    }.get(resource_type)
    return int(db.scalar(stmt) or 0) if stmt is not None else 0


def _subtree(domain: Domain) -> ColumnElement[bool]:
    return Account.domain_id.in_(select(Domain.id).where(or_(Domain.path == domain.path,
                                                            Domain.path.startswith(domain.path + "/"))))


def recount_account(db: Session, account_id: str, resource_type: int) -> int:
    return _real(db, resource_type, Account.id == account_id)


def recount_domain(db: Session, domain: Domain, resource_type: int) -> int:
    return _real(db, resource_type, _subtree(domain))


def _insert_missing(db: Session, rows: list[dict[str, object]]) -> None:
    if not rows:
        return
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.execute(insert(ResourceCount).values(rows).on_conflict_do_nothing())


def ensure_rows(db: Session, account: Account, types: Iterable[int] = R.NAMES) -> list[Domain]:
    """Create the missing count rows of the account and its domains (counted from the real rows, as
    committed: objects this session has not flushed yet are left out); returns the domain path."""
    wanted = set(types)
    path = domain_path(db, account.domain)
    with db.no_autoflush:
        # one query for the account's and every domain's rows: they exist but for the first time
        have = db.execute(select(ResourceCount.account_id, ResourceCount.domain_id, ResourceCount.resource_type).where(
            or_(ResourceCount.account_id == account.id, ResourceCount.domain_id.in_([d.id for d in path])),
            ResourceCount.resource_type.in_(wanted))).all()
        held = {(a or d, t) for a, d, t in have}
        rows: list[dict[str, object]] = [
            {"id": new_id(), "account_id": account.id, "domain_id": None, "resource_type": t,
             "count": recount_account(db, account.id, t)} for t in sorted(wanted) if (account.id, t) not in held]
        for domain in path:
            rows += [{"id": new_id(), "account_id": None, "domain_id": domain.id, "resource_type": t,
                      "count": recount_domain(db, domain, t)} for t in sorted(wanted) if (domain.id, t) not in held]
    _insert_missing(db, rows)
    return path


def _lock_account(db: Session, account: Account) -> None:
    """PostgreSQL: take the account row first, so that every allocation takes its locks in one order:
    account, then count rows. (A first deploy also writes the account's number, which locks the row;
    without this, one transaction could hold count rows and wait for the account row while another
    holds the account row and waits for the count rows.) SQLite runs one writer at a time anyway."""
    if db.get_bind().dialect.name == "postgresql":
        # FOR NO KEY UPDATE: inserting rows that refer to the account (events, jobs) need not wait
        db.execute(select(Account.id).where(Account.id == account.id).with_for_update(key_share=True))


def _lock_rows(db: Session, owners: list[ColumnElement[bool]], types: list[int]) -> None:
    """PostgreSQL: lock every count row an allocation touches, in id order, before changing any, so
    that concurrent allocations queue on the rows instead of deadlocking."""
    if db.get_bind().dialect.name != "postgresql":
        return
    db.execute(select(ResourceCount.id).where(or_(*owners), ResourceCount.resource_type.in_(types))
               .order_by(ResourceCount.id).with_for_update())


def _bump(db: Session, owner: ColumnElement[bool], amounts: Mapping[int, int], limits: Mapping[int, int]) -> bool:
    """Add ``amounts`` to the owner's rows with one UPDATE, only if every row stays within its limit
    (types missing from ``limits`` are not checked); False when one would not (then nothing of
    this call is valid: the caller's transaction must roll back)."""
    types = sorted(amounts)
    amount = case({t: amounts[t] for t in types}, value=ResourceCount.resource_type, else_=0)
    checked = {t: v for t, v in limits.items() if v != R.UNLIMITED and amounts.get(t, 0) > 0}
    cond = [owner, ResourceCount.resource_type.in_(types)]
    if checked:
        limit = case(checked, value=ResourceCount.resource_type, else_=None)
        cond.append(or_(limit.is_(None), ResourceCount.count + amount <= limit))
    # a Core UPDATE of the table: the ORM's bulk-update path costs more than the statement here, and
    # no loaded ResourceCount object needs synchronising
    table = cast(Table, ResourceCount.__table__)
    done = db.execute(update(table).where(*cond).values(count=table.c.count + amount))
    return done.rowcount == len(types)  # type: ignore[attr-defined,no-any-return]


def _over(db: Session, owner: ColumnElement[bool], amounts: Mapping[int, int], limits: Mapping[int, int]) -> int:
    """The first resource type whose limit ``amounts`` would pass (after a refused :func:`_bump`)."""
    counts = dict(db.execute(select(ResourceCount.resource_type, ResourceCount.count).where(owner)).all())
    for resource_type in sorted(amounts):
        limit = limits.get(resource_type, R.UNLIMITED)
        if limit != R.UNLIMITED and counts.get(resource_type, 0) + amounts[resource_type] > limit:
            return resource_type
    return min(amounts)


def exceeded(resource_type: int, *, account: Account | None = None, domain: Domain | None = None) -> errors.CloudError:
    """CloudStack's ResourceAllocationException."""
    name = R.NAMES[resource_type]
    if account is not None:
        owner = f"account name={account.name} in domain id={account.domain_id}"
    else:
        owner = f"domain id={domain.id if domain is not None else '?'}"
    return errors.resource_allocation(f"Maximum number of resources of type '{name}' for {owner} has been exceeded.")


def _apply(db: Session, account: Account, deltas: Mapping[int, int], config: ServerConfig | None) -> None:
    """Reads first (rows, limits), then the writes: on SQLite the write lock is held for writes only."""
    todo = {t: n for t, n in deltas.items() if n}
    if not todo:
        return
    _lock_account(db, account)
    path = ensure_rows(db, account, todo)
    checked = config is not None and account.account_type != ACCOUNT_TYPE_ADMIN
    growing = [t for t in sorted(todo) if todo[t] > 0] if checked else []
    assert config is not None or not growing
    own_limits = account_limits(db, config, account, growing) if growing else {}  # type: ignore[arg-type]
    domain_limits = [{t: domain_limit(db, config, d, t) for t in growing} for d in path]  # type: ignore[arg-type]
    owners = [ResourceCount.account_id == account.id, *(ResourceCount.domain_id == d.id for d in path)]
    _lock_rows(db, owners, sorted(todo))
    if not _bump(db, owners[0], todo, own_limits):
        raise exceeded(_over(db, owners[0], todo, own_limits), account=account)
    for domain, owner, limits in zip(path, owners[1:], domain_limits, strict=True):
        if not _bump(db, owner, todo, limits):
            raise exceeded(_over(db, owner, todo, limits), domain=domain)


def charge(db: Session, config: ServerConfig, account: Account, deltas: Mapping[int, int]) -> None:
    """Add ``deltas`` (resource type → amount) to the account's and its domains' counts, refusing
    (CloudError 535) when a positive amount would pass a limit. Call it in the transaction that
    allocates, before the new rows are flushed; on refusal that transaction must roll back."""
    _apply(db, account, deltas, config)


def adjust(db: Session, account_id: str, deltas: Mapping[int, int]) -> None:
    """Change the counts without a limit check: a release (negative amounts) or a replacement of
    something already allowed."""
    account = db.get(Account, account_id)
    if account is not None:
        _apply(db, account, deltas, None)


def release(db: Session, account_id: str, deltas: Mapping[int, int]) -> None:
    """Give back what a resource held (its amounts are subtracted); call it before the resource is
    marked removed."""
    adjust(db, account_id, {t: -n for t, n in deltas.items()})


def vm_deltas(vm: VMInstance) -> dict[int, int]:
    return {R.USER_VM: 1, R.CPU: vm.cpu_number, R.MEMORY: vm.memory}


def volume_deltas(size: int, count: int = 1) -> dict[int, int]:
    return {R.VOLUME: count, R.PRIMARY_STORAGE: size}


def recount(db: Session, *, account: Account | None = None, domain: Domain | None = None,
            types: Iterable[int] = R.NAMES) -> dict[int, int]:
    """``updateResourceCount``: set the rows of one owner to what the real rows hold."""
    out: dict[int, int] = {}
    if account is not None:
        ensure_rows(db, account, types)
    for resource_type in types:
        if account is not None:
            value, owner = recount_account(db, account.id, resource_type), ResourceCount.account_id == account.id
        else:
            assert domain is not None
            _insert_missing(db, [{"id": new_id(), "account_id": None, "domain_id": domain.id,
                                  "resource_type": resource_type, "count": 0}])
            value, owner = recount_domain(db, domain, resource_type), ResourceCount.domain_id == domain.id
        db.execute(update(ResourceCount).where(owner, ResourceCount.resource_type == resource_type)
                   .values(count=value).execution_options(synchronize_session=False))
        out[resource_type] = value
    return out


def current(db: Session, *, account: Account | None = None, domain: Domain | None = None) -> dict[int, int]:
    """The stored counts of one owner (recounted for types that have no row yet)."""
    owner = ResourceCount.account_id == account.id if account is not None else \
        ResourceCount.domain_id == (domain.id if domain is not None else None)
    found = dict(db.execute(select(ResourceCount.resource_type, ResourceCount.count).where(owner)).all())
    for resource_type in R.NAMES:
        if resource_type not in found:
            found[resource_type] = recount_account(db, account.id, resource_type) if account is not None else \
                recount_domain(db, domain, resource_type) if domain is not None else 0
    return found


#: the field prefix of each resource type in CloudStack's account response (``vmlimit``, ``vmtotal`` …)
ACCOUNT_FIELD_PREFIX: dict[int, str] = {
    R.USER_VM: "vm", R.PUBLIC_IP: "ip", R.VOLUME: "volume", R.SNAPSHOT: "snapshot", R.TEMPLATE: "template",
    R.PROJECT: "project", R.NETWORK: "network", R.VPC: "vpc", R.CPU: "cpu", R.MEMORY: "memory",
    R.PRIMARY_STORAGE: "primarystorage", R.SECONDARY_STORAGE: "secondarystorage",
}


def account_usage(db: Session, config: ServerConfig, accounts: list[Account]) -> dict[str, dict[str, object]]:
    """``vmlimit``/``vmtotal``/``vmavailable`` … for a page of accounts, in two queries (plus a recount
    for an account that never allocated anything). Limits and what is available are strings, with
    ``Unlimited`` for -1, and storage is in GiB, as CloudStack shows them."""
    ids = [a.id for a in accounts]
    explicit: dict[tuple[str | None, int], int] = {
        (row.account_id, row.resource_type): row.max for row in db.scalars(
            select(ResourceLimit).where(ResourceLimit.account_id.in_(ids)))} if ids else {}
    counts: dict[tuple[str | None, int], int] = {
        (row.account_id, row.resource_type): row.count for row in db.scalars(
            select(ResourceCount).where(ResourceCount.account_id.in_(ids)))} if ids else {}
    out: dict[str, dict[str, object]] = {}
    for account in accounts:
        fields: dict[str, object] = {}
        for resource_type, prefix in ACCOUNT_FIELD_PREFIX.items():
            if account.account_type == ACCOUNT_TYPE_ADMIN:
                limit = R.UNLIMITED
            else:
                limit = explicit.get((account.id, resource_type),
                                     default_limit(config, "account", resource_type, account=account))
            total = counts.get((account.id, resource_type))
            if total is None:
                total = recount_account(db, account.id, resource_type)
            unit = R.setting_unit(resource_type)
            fields[f"{prefix}limit"] = "Unlimited" if limit == R.UNLIMITED else str(limit // unit)
            fields[f"{prefix}total"] = total // unit
            fields[f"{prefix}available"] = "Unlimited" if limit == R.UNLIMITED else str(max(limit - total, 0) // unit)
        out[account.id] = fields
    return out


def set_limit(db: Session, actor: User, resource_type: int, stored: int, shown: int, *, account: Account | None,
              domain: Domain | None) -> None:
    """updateResourceLimit: the account's limit if ``account``, else the domain's; ``stored`` in the
    type's unit of count (bytes for storage), ``shown`` as the caller gave it (for the event)."""
    if account is not None:
        owner = ResourceLimit.account_id == account.id
    else:
        assert domain is not None
        owner = ResourceLimit.domain_id == domain.id
    row = db.scalar(select(ResourceLimit).where(owner, ResourceLimit.resource_type == resource_type))
    if row is None:
        row = ResourceLimit(account_id=account.id if account else None, domain_id=domain.id if domain else None,
                            resource_type=resource_type, max=stored)
        db.add(row)
    row.max = stored
    db.flush()
    who = f"account {account.name}" if account is not None else f"domain {domain.path}"  # type: ignore[union-attr]
    events.record(db, actor, "RESOURCE.LIMIT.UPDATE",
                  f"Resource limit of {R.NAMES[resource_type]} for {who} set to {shown}",
                  resource_type="ResourceLimit", resource_id=row.id)
