"""Public addresses: taking one of the zone's public ranges for an account's network
(``associateIpAddress``, the source NAT address of an isolated network) and giving it back.

An address is held by its ``user_ip_address`` row while ``ip_key`` (``<zone>/<address>``) is set:
the unique key makes two servers handing out one address impossible, as ``nic.ip_key`` does for
guest addresses. A released row keeps its history (``removed``, ``ip_key`` None, state Free).
Allocation walks the zone's public ranges lowest address first and inserts under a savepoint, so a
key taken meanwhile by another server is skipped, never an error.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server import errors
from hvcloud.server import resource_types as RTY
from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import (
    Account,
    FirewallRule,
    FirewallRuleCidr,
    LoadBalancerVmMap,
    LoadBalancingRule,
    Network,
    PortForwardingRule,
    UserIpAddress,
    VlanIpRange,
    utcnow,
)
from hvcloud.server.orchestration import resource_limits as limits
from hvcloud.server.orchestration import resource_tags as tags
from hvcloud.server.orchestration.networks import implement as N

log = logs.get(__name__)

#: ``IpAddress.State``
FREE = "Free"
ALLOCATING = "Allocating"
ALLOCATED = "Allocated"
RELEASING = "Releasing"
HELD_STATES = (ALLOCATING, ALLOCATED, RELEASING)
#: addresses a zone's ranges are walked over at most per allocation (a hostile /8 range costs no more)
MAX_CANDIDATES = 1 << 20


def ip_key(zone_id: str, address: str) -> str:
    return f"{zone_id}/{address}"


def has_source_nat_service(network: Network) -> bool:
    """An isolated network whose offering gives SourceNat (through the VirtualRouter)."""
    if network.guest_type != N.ISOLATED or network.offering is None:
        return False
    return "SourceNat" in N.offering_services(network.offering.services_json)


def public_ranges(db: Session, zone_id: str, account_id: str | None = None) -> list[VlanIpRange]:
    """The zone's live public ranges an account may take from (unassigned, or dedicated to it)."""
    stmt = select(VlanIpRange).where(VlanIpRange.zone_id == zone_id, VlanIpRange.for_virtual_network.is_(True),
                                     VlanIpRange.network_id.is_(None), VlanIpRange.removed.is_(None))
    if account_id is not None:
        stmt = stmt.where(or_(VlanIpRange.account_id.is_(None), VlanIpRange.account_id == account_id))
    return list(db.scalars(stmt.order_by(VlanIpRange.created, VlanIpRange.id)))


def range_addresses(rng: VlanIpRange, limit: int = MAX_CANDIDATES) -> Iterator[str]:
    """The range's addresses but its gateway, lowest first, at most ``limit``."""
    try:
        first, last = int(ipaddress.IPv4Address(rng.start_ip)), int(ipaddress.IPv4Address(rng.end_ip))
        gateway = rng.gateway
    except ValueError:
        return
    for value in range(first, min(last, first + limit - 1) + 1):
        address = str(ipaddress.IPv4Address(value))
        if address != gateway:
            yield address


def _held(db: Session, zone_id: str) -> set[str]:
    return set(db.scalars(select(UserIpAddress.public_ip_address).where(
        UserIpAddress.zone_id == zone_id, UserIpAddress.ip_key.is_not(None))))


def allocate(db: Session, *, zone_id: str, account: Account, network: Network | None, source_nat: bool = False,
             requested: str | None = None, state: str = ALLOCATED) -> UserIpAddress:
    """Take the lowest free address of the zone's public ranges (or ``requested``, which must be one
    of them and free) for ``account``/``network``. 533 when none is free."""
    ranges = public_ranges(db, zone_id, account.id)
    held = _held(db, zone_id)
    for rng in ranges:
        for address in range_addresses(rng):
            if address in held or (requested is not None and address != requested):
                continue
            row = UserIpAddress(public_ip_address=address, ip_key=ip_key(zone_id, address), zone_id=zone_id,
                                vlan_id=rng.id, physical_network_id=rng.physical_network_id, account_id=account.id,
                                domain_id=account.domain_id, network_id=network.id if network else None,
                                source_nat=source_nat, state=state, allocated=utcnow())
            try:
                with db.begin_nested():
                    db.add(row)
            except IntegrityError:
                continue  # another server took it meanwhile
            log.info("public_ip_allocated", ip=address, zone=zone_id, network=row.network_id, source_nat=source_nat)
            return row
    if requested is not None:
        raise errors.param_error(f"Invalid ipaddress {requested[:64]}: it is not a free address of the zone's "
                                 "public ranges")
    raise errors.insufficient_capacity(f"Insufficient address capacity: no free public address in zone {zone_id}")


def associate(db: Session, config: ServerConfig, *, zone_id: str, account: Account, network: Network | None,
              requested: str | None = None) -> UserIpAddress:
    """``associateIpAddress``: an address charged to the account's ``public_ip`` limit."""
    limits.charge(db, config, account, {RTY.PUBLIC_IP: 1})
    return allocate(db, zone_id=zone_id, account=account, network=network, requested=requested)


def source_nat_of(db: Session, network_id: str) -> UserIpAddress | None:
    return db.scalars(select(UserIpAddress).where(UserIpAddress.network_id == network_id,
                                                  UserIpAddress.source_nat.is_(True),
                                                  UserIpAddress.removed.is_(None))).first()


def ensure_source_nat(db: Session, network: Network) -> UserIpAddress | None:
    """When an isolated network with the SourceNat service is implemented (the caller holds its lock,
    in the transaction that takes its segment id): its source NAT address. A zone without public
    ranges leaves the network without one (it works as before part 2: no way out)."""
    if not has_source_nat_service(network):
        return None
    existing = source_nat_of(db, network.id)
    if existing is not None:
        return existing
    if not public_ranges(db, network.zone_id, network.account_id):
        log.warning("source_nat_unavailable", network=network.id, reason="the zone has no public range")
        return None
    account = db.get(Account, network.account_id)
    assert account is not None
    # counted (before the row exists, as a charge must be), never refused: the VM start needs it
    limits.adjust(db, account.id, {RTY.PUBLIC_IP: 1})
    return allocate(db, zone_id=network.zone_id, account=account, network=network, source_nat=True)


def network_ips(db: Session, network_id: str) -> list[UserIpAddress]:
    """The network's live public addresses, source NAT first."""
    return list(db.scalars(select(UserIpAddress).where(UserIpAddress.network_id == network_id,
                                                       UserIpAddress.removed.is_(None))
                           .order_by(UserIpAddress.source_nat.desc(), UserIpAddress.allocated,
                                     UserIpAddress.public_ip_address)))


def delete_rules(db: Session, rule_ids: list[str]) -> None:
    """Remove rule rows and everything hanging off them."""
    if not rule_ids:
        return
    tags.forget(db, tags.RULE_TYPES, select(FirewallRule.id).where(or_(FirewallRule.id.in_(rule_ids),
                                                                       FirewallRule.related_id.in_(rule_ids))))
    db.execute(delete(LoadBalancerVmMap).where(LoadBalancerVmMap.load_balancer_id.in_(rule_ids))
               .execution_options(synchronize_session=False))
    for model in (LoadBalancingRule, PortForwardingRule):
        db.execute(delete(model).where(model.id.in_(rule_ids)).execution_options(synchronize_session=False))
    db.execute(delete(FirewallRuleCidr).where(FirewallRuleCidr.rule_id.in_(rule_ids))
               .execution_options(synchronize_session=False))
    db.execute(delete(FirewallRule).where(FirewallRule.related_id.in_(rule_ids))
               .execution_options(synchronize_session=False))
    db.execute(delete(FirewallRule).where(FirewallRule.id.in_(rule_ids)).execution_options(synchronize_session=False))


def release(db: Session, ip: UserIpAddress) -> None:
    """Give the address back: its rules go, the account's count drops, the key is free."""
    rule_ids = list(db.scalars(select(FirewallRule.id).where(FirewallRule.ip_address_id == ip.id)))
    delete_rules(db, rule_ids)
    if ip.removed is None:
        limits.release(db, ip.account_id, {RTY.PUBLIC_IP: 1})
    ip.state, ip.ip_key, ip.removed = FREE, None, utcnow()
    tags.forget(db, tags.PUBLIC_IP, [ip.id])
    ip.one_to_one_nat, ip.vm_id, ip.vm_ip = False, None, None
    log.info("public_ip_released", ip=ip.public_ip_address, network=ip.network_id)


def release_source_nat(db: Session, network: Network) -> None:
    """The network was shut down: its source NAT address goes back to the zone."""
    ip = source_nat_of(db, network.id)
    if ip is not None:
        release(db, ip)


def release_network(db: Session, network_id: str) -> None:
    """The network is deleted: every address it holds goes back (with their rules)."""
    for ip in network_ips(db, network_id):
        release(db, ip)
    egress = list(db.scalars(select(FirewallRule.id).where(FirewallRule.network_id == network_id)))
    delete_rules(db, egress)
