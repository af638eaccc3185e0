"""IPv4 addresses of NICs on guest networks.

The pool of a network: an isolated network's CIDR without its network, broadcast and gateway
addresses (and any address one of its routers holds); a shared network's address ranges
(``vlan_ip_range`` rows of the network, or its ``start_ip``-``end_ip``). L2 networks give no
address.

An address is held by a live NIC through its ``ip_key`` (``<network id>/<address>``, unique in the
database): two deploys that pick the same address at once cannot both write it; the loser takes the
next free one (or, for an address the caller asked for, is refused). Releasing clears the key. The
free address is the lowest one no live NIC holds: one indexed read of the network's held addresses,
then a walk that stops at the first gap, so a network's cost grows with its NICs, not its size.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server import errors
from hvcloud.server.db.models import DomainRouter, Network, Nic, VlanIpRange

log = logs.get(__name__)

L2 = "L2"
SHARED = "Shared"
#: concurrent writers that take the address picked; after this many the network is treated as busy
MAX_RACES = 64
#: the largest request text echoed back in an error
_ECHO = 64


@dataclass(frozen=True)
class Pool:
    """Where a network's addresses come from: inclusive integer ranges, the addresses no NIC may
    take, and what NICs on it are told (netmask, gateway)."""

    ranges: tuple[tuple[int, int], ...]
    reserved: frozenset[int]
    netmask: str | None
    gateway: str | None

    def contains(self, ip: int) -> bool:
        return any(lo <= ip <= hi for lo, hi in self.ranges) and ip not in self.reserved

    def candidates(self) -> Iterator[int]:
        for lo, hi in self.ranges:
            for ip in range(lo, hi + 1):
                if ip not in self.reserved:
                    yield ip


def ip_key(network_id: str, ip: str) -> str:
    return f"{network_id}/{ip}"


def _int(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        return None


def has_addresses(network: Network) -> bool:
    """L2 networks give no address; an isolated one needs its CIDR; a shared one has its ranges."""
    return network.guest_type != L2 and bool(network.cidr or network.start_ip or network.guest_type == SHARED)


def pool_of(db: Session, network: Network) -> Pool:
    """The network's address pool (empty for L2 networks and networks without a CIDR or range)."""
    if not has_addresses(network):
        return Pool((), frozenset(), None, None)
    cidr = ipaddress.IPv4Network(network.cidr, strict=False) if network.cidr else None
    netmask = str(cidr.netmask) if cidr is not None else None
    gateway = network.gateway
    ranges: list[tuple[int, int]] = []
    if network.guest_type == SHARED:
        for r in db.scalars(select(VlanIpRange).where(VlanIpRange.network_id == network.id,
                                                      VlanIpRange.removed.is_(None))):
            lo, hi = _int(r.start_ip), _int(r.end_ip)
            if lo is not None and hi is not None and lo <= hi:
                ranges.append((lo, hi))
                netmask, gateway = netmask or r.netmask, gateway or r.gateway
        if not ranges:
            lo, hi = _int(network.start_ip), _int(network.end_ip)
            if lo is not None and hi is not None and lo <= hi:
                ranges.append((lo, hi))
    if not ranges and cidr is not None and cidr.num_addresses > 2:
        ranges.append((int(cidr.network_address) + 1, int(cidr.broadcast_address) - 1))
    ranges.sort()  # the lowest free address first, whatever order the ranges were added in
    reserved = {ip for ip in (_int(gateway),) if ip is not None}
    reserved.update(ip for ip in map(_int, db.scalars(select(DomainRouter.guest_ip).where(
        DomainRouter.network_id == network.id, DomainRouter.removed.is_(None)))) if ip is not None)
    if cidr is not None:
        reserved.update((int(cidr.network_address), int(cidr.broadcast_address)))
    return Pool(tuple(ranges), frozenset(reserved), netmask, gateway)


def _held(db: Session, network_id: str) -> set[int]:
    rows = db.scalars(select(Nic.ip4_address).where(Nic.network_id == network_id, Nic.removed.is_(None),
                                                    Nic.ip_key.is_not(None)))
    return {ip for ip in map(_int, rows) if ip is not None}


def _held_in_db(db: Session, key: str) -> bool:
    return db.scalar(select(Nic.id).where(Nic.ip_key == key)) is not None


def check_requested(db: Session, network: Network, requested: str, param: str) -> str:
    """The address a caller asked for, in canonical form, if it is in the network's pool and free:
    else the 431 naming ``param``."""
    ip = _int(requested)
    if ip is None:
        raise errors.param_error(f"Invalid parameter {param} value={requested[:_ECHO]}: not an IPv4 address")
    if not has_addresses(network):
        raise errors.param_error(f"Invalid parameter {param}: network {network.name} is an L2 network without "
                                 "addresses")
    pool = pool_of(db, network)
    text = str(ipaddress.IPv4Address(ip))
    if not pool.contains(ip):
        raise errors.param_error(f"Invalid parameter {param} value={text}: the address is not in the range of "
                                 f"network {network.name} ({network.cidr or network.start_ip})")
    if _held_in_db(db, ip_key(network.id, text)):
        raise errors.param_error(f"Invalid parameter {param} value={text}: the address is already in use in "
                                 f"network {network.name}")
    return text


@dataclass
class Prepared:
    """What an assignment reads, read before the caller's first write (so that its transaction holds
    the database's write lock only for its writes): the pool and the addresses held."""

    network: Network
    pool: Pool
    held: set[int]


def prepare(db: Session, network: Network) -> Prepared:
    if not has_addresses(network):
        return Prepared(network, Pool((), frozenset(), None, None), set())
    return Prepared(network, pool_of(db, network), _held(db, network.id))


def assign(db: Session, nic: Nic, prepared: Prepared, requested: str | None = None,
           param: str = "ipaddress") -> None:
    """Give the NIC (new, not yet in the session) an address of the prepared network and add it, in
    a savepoint of its own so that a lost race leaves the caller's transaction intact.
    ``requested``: the address the caller asked for, checked (:func:`check_requested`; ``param``
    names it in errors). L2 networks: no address. The caller's rows must be flushed already."""
    network, pool = prepared.network, prepared.pool
    nic.network_id = network.id
    if not has_addresses(network):
        nic.ip4_address, nic.ip_key, nic.netmask, nic.gateway = None, None, None, None
        db.add(nic)
        db.flush()
        return
    nic.netmask, nic.gateway = pool.netmask, pool.gateway
    if requested is not None:
        if not _insert(db, nic, network.id, requested):
            raise errors.param_error(f"Invalid parameter {param} value={requested}: the address is already in use "
                                     f"in network {network.name}")
        prepared.held.add(int(ipaddress.IPv4Address(requested)))
        return
    races = 0
    for ip in pool.candidates():
        if ip in prepared.held:
            continue
        prepared.held.add(ip)
        if _insert(db, nic, network.id, str(ipaddress.IPv4Address(ip))):
            return
        races += 1
        if races >= MAX_RACES:
            break
    log.warning("network_full", network=network.id, held=len(prepared.held), races=races)
    raise errors.insufficient_capacity(f"Insufficient address capacity: no free address in network {network.name}")


def _insert(db: Session, nic: Nic, network_id: str, ip: str) -> bool:
    """Write the NIC holding ``ip``; False when another NIC holds it (the savepoint is undone)."""
    key = ip_key(network_id, ip)
    nic.ip4_address, nic.ip_key = ip, key
    try:
        with db.begin_nested():
            db.add(nic)
            db.flush()
    except IntegrityError:
        if not _held_in_db(db, key):
            raise
        log.info("address_race_lost", network=network_id, ip=ip)
        return False
    return True


def release(nic: Nic) -> None:
    """The NIC gives its address back (the row keeps it for history)."""
    nic.ip_key = None
