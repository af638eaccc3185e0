"""Resource tags (CloudStack's ``createTags``/``deleteTags``/``listTags``): the resource types that take
them, who may tag what, the SQL conditions of the ``tags[i].key/value`` list filters, and the cleanup
that removes a resource's tags with it.

A tag row names its resource by type (CloudStack's ``ResourceObjectType`` name) and id; the owner
account and domain are the resource's, copied into the row so that ``listTags`` filters by owner
without touching the resources' tables. Rows never outlive their resource: every delete or expunge
path calls :func:`forget` in the transaction that removes the resource.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server import errors
from hvcloud.server.db.models import (
    Account,
    FirewallRule,
    Network,
    ResourceTag,
    SecurityGroup,
    User,
    UserIpAddress,
    VMInstance,
    VMTemplate,
    Volume,
)
from hvcloud.server.orchestration import domain_scope, events
from hvcloud.wire import routing as R

log = logs.get("hvcloud.server.tags")

USER_VM, VOLUME, TEMPLATE, ISO, NETWORK = "UserVm", "Volume", "Template", "ISO", "Network"
PUBLIC_IP, PORT_FORWARDING_RULE, FIREWALL_RULE, LOAD_BALANCER = (
    "PublicIpAddress", "PortForwardingRule", "FirewallRule", "LoadBalancer")
SECURITY_GROUP = "SecurityGroup"
#: the rule types, all rows of ``firewall_rules`` (deleting a rule drops the tags of all three)
RULE_TYPES = (PORT_FORWARDING_RULE, FIREWALL_RULE, LOAD_BALANCER)

#: CloudStack's resource object types that take tags, and those that do not (its own answers differ:
#: "doesn't support resource tags" for the second, "Invalid resource type" for names in neither)
CLOUDSTACK_TAGGABLE = (
    "VMInstance", "UserVm", "Template", "ISO", "Volume", "Snapshot", "Backup", "Network", "LoadBalancer",
    "PortForwardingRule", "FirewallRule", "SecurityGroup", "SecurityGroupRule", "PublicIpAddress", "Project",
    "Account", "Vpc", "NetworkACL", "StaticRoute", "VMSnapshot", "RemoteAccessVpn", "User", "SnapshotPolicy",
    "VpcOffering")
CLOUDSTACK_UNTAGGABLE = (
    "DomainRouter", "Nic", "Zone", "ServiceOffering", "Storage", "PrivateGateway", "NetworkACLList", "VpnGateway",
    "CustomerGateway", "VpnConnection", "DiskOffering", "AutoScaleVmProfile", "AutoScaleVmGroup",
    "LBStickinessPolicy", "LBHealthCheckPolicy", "GuestOs", "NetworkOffering", "Domain")
_BY_LOWER = {name.lower(): name for name in CLOUDSTACK_TAGGABLE + CLOUDSTACK_UNTAGGABLE}

MAX_KEY = 255
MAX_VALUE = 255
MAX_CUSTOMER = 255
#: tags one createTags may write (resources x keys): a bound on one request's work
MAX_TAGS_PER_CALL = 10_000


@dataclass(frozen=True)
class Taggable:
    """A resource type hvcloud has: its table's id and owner columns and what makes a row live."""

    name: str
    id_column: Any
    account_column: Any
    live: tuple[ColumnElement[bool], ...]


def _rule(name: str, purpose: str) -> Taggable:
    return Taggable(name, FirewallRule.id, FirewallRule.account_id, (FirewallRule.purpose == purpose,))


TAGGABLE: dict[str, Taggable] = {t.name: t for t in (
    Taggable(USER_VM, VMInstance.id, VMInstance.account_id, (VMInstance.removed.is_(None),)),
    Taggable(VOLUME, Volume.id, Volume.account_id, (Volume.removed.is_(None),)),
    Taggable(TEMPLATE, VMTemplate.id, VMTemplate.account_id, (VMTemplate.removed.is_(None),
                                                              VMTemplate.is_iso.is_(False))),
    Taggable(ISO, VMTemplate.id, VMTemplate.account_id, (VMTemplate.removed.is_(None), VMTemplate.is_iso.is_(True))),
    Taggable(NETWORK, Network.id, Network.account_id, (Network.removed.is_(None),)),
    Taggable(PUBLIC_IP, UserIpAddress.id, UserIpAddress.account_id, (UserIpAddress.removed.is_(None),)),
    _rule(PORT_FORWARDING_RULE, R.PURPOSE_PORT_FORWARDING),
    _rule(FIREWALL_RULE, R.PURPOSE_FIREWALL),
    _rule(LOAD_BALANCER, R.PURPOSE_LOAD_BALANCING),
    Taggable(SECURITY_GROUP, SecurityGroup.id, SecurityGroup.account_id, ()),
)}


def known_type(name: str) -> str:
    """CloudStack's spelling of a resource type given in any case; 431 naming it when CloudStack has
    no such type."""
    canonical = _BY_LOWER.get(name.strip().lower())
    if canonical is None:
        raise errors.param_error(f"Invalid resource type {name[:64]}")
    return canonical


def taggable_type(name: str) -> str:
    """A type createTags/deleteTags accept: CloudStack's name, and a type that takes tags."""
    canonical = known_type(name)
    if canonical in CLOUDSTACK_UNTAGGABLE:
        raise errors.param_error(f"The resource type {canonical} doesn't support resource tags")
    return canonical


@dataclass(frozen=True)
class Caller:
    """Who asks: root admins may tag any resource, domain admins those of their subtree's accounts,
    others only their account's."""

    user: User
    is_admin: bool


def _not_found(resource_id: str, resource_type: str) -> errors.CloudError:
    return errors.param_error(f"Unable to find resource by uuid {resource_id[:64]} and type {resource_type}")


def owners(db: Session, resource_type: str, resource_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``{id: (account_id, domain_id)}`` of the live resources of this type among ``resource_ids``."""
    kind = TAGGABLE.get(resource_type)
    if kind is None or not resource_ids:
        return {}
    rows = db.execute(select(kind.id_column, kind.account_column, Account.domain_id)
                      .join(Account, Account.id == kind.account_column)
                      .where(kind.id_column.in_(list(resource_ids)), *kind.live))
    return {rid: (account_id, domain_id) for rid, account_id, domain_id in rows}


def _distinct(resource_ids: Sequence[str]) -> list[str]:
    """The ids named, each once (ids are lower case)."""
    return list(dict.fromkeys(i.strip().lower() for i in resource_ids if i.strip()))


def _resources(db: Session, caller: Caller, resource_type: str, resource_ids: Sequence[str],
               action: str) -> dict[str, tuple[str, str]]:
    """The owners of every resource named, each checked to exist and be the caller's to change."""
    wanted = _distinct(resource_ids)
    if not wanted:
        raise errors.param_error("Unable to execute API command due to missing parameter resourceids")
    found = owners(db, resource_type, wanted)
    for rid in wanted:
        if rid not in found:
            raise _not_found(rid, resource_type)
        if not caller.is_admin and not domain_scope.may_act_for(db, caller.user, found[rid][0]):
            raise errors.permission_denied(f"Account '{caller.user.account.name}' doesn't have permissions to "
                                           f"{action} tags for resource '{rid}'")
    return {rid: found[rid] for rid in wanted}


def check_tag(key: str, value: str | None) -> None:
    if not key.strip():
        raise errors.param_error("Invalid tags: the key of a tag can't be empty")
    if len(key) > MAX_KEY:
        raise errors.param_error(f"Invalid tags: a key is longer than {MAX_KEY} characters")
    if value is None or value == "":
        raise errors.param_error(f"Value for the key {key} is either null or empty")
    if len(value) > MAX_VALUE:
        raise errors.param_error(f"Invalid tags: the value of key {key} is longer than {MAX_VALUE} characters")


def create_tags(db: Session, caller: Caller, resource_type: str, resource_ids: Sequence[str],
                tags: Mapping[str, str | None], customer: str | None) -> list[ResourceTag]:
    """Tag every resource with every key: all or nothing. An existing key on a resource is
    CloudStack's runtime error (530), as is one written by a concurrent call."""
    if not tags:
        raise errors.param_error("Unable to execute API command createtags due to missing parameter tags")
    for key, value in tags.items():
        check_tag(key, value)
    if customer is not None and len(customer) > MAX_CUSTOMER:
        raise errors.param_error(f"Invalid customer: longer than {MAX_CUSTOMER} characters")
    if len(_distinct(resource_ids)) * len(tags) > MAX_TAGS_PER_CALL:
        raise errors.param_error(f"Invalid tags: at most {MAX_TAGS_PER_CALL} tags (resources x keys) in one call")
    resources = _resources(db, caller, resource_type, resource_ids, "create")
    taken = db.execute(select(ResourceTag.key, ResourceTag.resource_id).where(
        ResourceTag.resource_type == resource_type, ResourceTag.resource_id.in_(list(resources)),
        ResourceTag.key.in_(list(tags)))).first()
    if taken is not None:
        raise _duplicate(taken[0], resource_type, taken[1])
    rows = [ResourceTag(key=key, value=value, resource_type=resource_type, resource_id=rid, account_id=account_id,
                        domain_id=domain_id, customer=customer or None)
            for key, value in tags.items() for rid, (account_id, domain_id) in resources.items()]
    db.add_all(rows)
    try:
        db.flush()
    except IntegrityError:
        raise errors.internal(f"tag already on {resource_type}: one of the keys was added meanwhile") from None
    events.record(db, caller.user, "CREATE_TAGS", f"creating resource tags on {len(resources)} {resource_type}",
                  resource_type=resource_type, resource_id=next(iter(resources)))
    log.info("tags_created", type=resource_type, resources=len(resources), keys=len(tags))
    return rows


def _duplicate(key: str, resource_type: str, resource_id: str) -> errors.CloudError:
    return errors.internal(f"tag {key} already on {resource_type} with id {resource_id}")


def delete_tags(db: Session, caller: Caller, resource_type: str, resource_ids: Sequence[str],
                tags: Mapping[str, str | None]) -> int:
    """Remove the resources' tags: all of them, or those with the given keys (and values where
    given), compared without regard to case as CloudStack does. Returns how many went; the caller
    must be allowed to change each one's owner (531 otherwise)."""
    wanted = _distinct(resource_ids)
    if not wanted:
        raise errors.param_error("Unable to execute API command deletetags due to missing parameter resourceids")
    stmt = select(ResourceTag).where(ResourceTag.resource_type == resource_type, ResourceTag.resource_id.in_(wanted))
    if tags:
        stmt = stmt.where(or_(*(
            and_(func.lower(ResourceTag.key) == key.lower(),
                 *(() if value is None else (func.lower(ResourceTag.value) == value.lower(),)))
            for key, value in tags.items())))
    rows = list(db.scalars(stmt))
    for row in rows:
        if not caller.is_admin and not domain_scope.may_act_for(db, caller.user, row.account_id):
            raise errors.permission_denied(f"Account '{caller.user.account.name}' doesn't have permissions to "
                                           f"delete tags for resource '{row.resource_id}'")
    if not rows:
        return 0
    db.execute(delete(ResourceTag).where(ResourceTag.id.in_([r.id for r in rows]))
               .execution_options(synchronize_session=False))
    events.record(db, caller.user, "DELETE_TAGS", f"deleting {len(rows)} resource tags on {resource_type}",
                  resource_type=resource_type, resource_id=rows[0].resource_id)
    log.info("tags_deleted", type=resource_type, count=len(rows))
    return len(rows)


def forget(db: Session, resource_types: str | Sequence[str], resource_ids: Iterable[str] | Select[Any]) -> None:
    """Drop the tags of resources that are going away (``resource_ids``: ids or a SELECT of them), in
    the transaction that removes them."""
    types = [resource_types] if isinstance(resource_types, str) else list(resource_types)
    ids: list[str] | Select[Any] = resource_ids if isinstance(resource_ids, Select) else list(resource_ids)
    if isinstance(ids, list) and not ids:
        return
    db.execute(delete(ResourceTag).where(ResourceTag.resource_type.in_(types), ResourceTag.resource_id.in_(ids))
               .execution_options(synchronize_session=False))


def forget_account(db: Session, account_id: str) -> None:
    """A removed account's tags go with it (its resources are already gone or going)."""
    db.execute(delete(ResourceTag).where(ResourceTag.account_id == account_id)
               .execution_options(synchronize_session=False))


def has_tag(resource_type: str, id_column: Any, key: str, value: str | None) -> ColumnElement[bool]:
    """SQL: the row of ``id_column`` carries tag ``key`` (with ``value`` when given). Written as ``id IN
    (ids with that tag)``, answered from the covering (resource_type, key, value, resource_id) index:
    a selective tag picks its few rows first instead of probing every row the list would read."""
    tagged = select(ResourceTag.resource_id).where(ResourceTag.resource_type == resource_type, ResourceTag.key == key)
    if value is not None:
        tagged = tagged.where(ResourceTag.value == value)
    return id_column.in_(tagged)  # type: ignore[no-any-return]


def has_tags(resource_type: str, id_column: Any, tags: Mapping[str, str | None]) -> list[ColumnElement[bool]]:
    """SQL conditions: the row carries all of ``tags``."""
    return [has_tag(resource_type, id_column, key, value) for key, value in tags.items()]
