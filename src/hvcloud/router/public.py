"""A router's public side as both router hosts keep it: the addresses it holds and the rules on
them, validated and merged one :class:`~hvcloud.router.api.RuleChange` at a time.

:func:`merge` checks the whole change against what the router holds first and returns a new
:class:`PublicBook` (the old one is untouched), so an invalid change raises
:class:`~hvcloud.router.api.InvalidRouterRequest` naming the field and changes nothing. The order
inside a change is: releases, removals, then additions (so a rule on an address released in the
same change is refused: the address is not held). :class:`Touched` says which keys a change may
have altered, so the runtime's update costs what the change holds, not what the router holds.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hvcloud.router import validation
from hvcloud.router.api import (
    FirewallRule,
    InvalidRouterRequest,
    LoadBalancer,
    PortForward,
    PortRange,
    PublicAddress,
    PublicState,
    RouterError,
    RouterSpec,
    RuleChange,
    Segment,
    StaticNat,
)

#: items of one kind in one change, and rules of all kinds a router holds
MAX_CHANGE_ITEMS = 10_000
MAX_RULES = 20_000
MAX_CIDRS = 256
MAX_BACKENDS = 256
MAX_ADDRESSES = 256
_RULE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
PROTOCOLS = ("tcp", "udp", "icmp", "all")
ALGORITHMS = ("roundrobin", "leastconn", "source")


def _bad(where: str, message: str) -> InvalidRouterRequest:
    return InvalidRouterRequest(f"{where}: {message}")


def rule_id(value: object, where: str) -> str:
    if not isinstance(value, str) or not _RULE_ID_RE.fullmatch(value):
        raise _bad(f"{where}.rule_id", f"invalid rule id {str(value)[:80]!r} ([A-Za-z0-9._:-], at most 64)")
    return value


def _ip(value: object, where: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))  # type: ignore[arg-type]
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise _bad(where, f"{str(value)[:64]!r} is not an IPv4 address") from None


def cidr(value: object, where: str) -> str:
    """A CIDR as CloudStack accepts it (host bits may be set; they are dropped)."""
    if not isinstance(value, str) or len(value) > 18 or "/" not in value:
        raise _bad(where, f"{str(value)[:64]!r} is not a CIDR (a.b.c.d/n)")
    try:
        return str(ipaddress.IPv4Network(value, strict=False))
    except ValueError:
        raise _bad(where, f"{value!r} is not a CIDR (a.b.c.d/n)") from None


def port_range(value: object, where: str) -> PortRange:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise _bad(where, "a port range is (start, end)")
    start, end = value
    for p in (start, end):
        if not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= 65535:
            raise _bad(where, f"port {str(p)[:16]} is outside 1-65535")
    if start > end:
        raise _bad(where, f"port range {start}-{end} starts after it ends")
    return (start, end)


def _overlap(a: PortRange, b: PortRange) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _guest_net(spec: RouterSpec) -> ipaddress.IPv4Network:
    return validation.network(spec)


def guest_address(spec: RouterSpec, value: object, where: str) -> str:
    try:
        return validation.address_in(spec, value)  # type: ignore[arg-type]
    except InvalidRouterRequest as exc:
        raise _bad(where, str(exc)) from None


def _cidrs(values: object, where: str) -> tuple[str, ...]:
    if not isinstance(values, tuple | list):
        raise _bad(where, "a list of CIDRs")
    if len(values) > MAX_CIDRS:
        raise _bad(where, f"{len(values)} CIDRs, at most {MAX_CIDRS}")
    out = tuple(dict.fromkeys(cidr(v, f"{where}[{i}]") for i, v in enumerate(values)))
    return out or ("0.0.0.0/0",)


def address(spec: RouterSpec, value: PublicAddress, where: str) -> PublicAddress:
    ip = _ip(value.ip, f"{where}.ip")
    if not isinstance(value.prefix, int) or isinstance(value.prefix, bool) or not 8 <= value.prefix <= 32:
        raise _bad(f"{where}.prefix", f"/{value.prefix} is outside /8../32")
    net = ipaddress.IPv4Interface(f"{ip}/{value.prefix}").network
    if ipaddress.IPv4Address(ip) in _guest_net(spec):
        raise _bad(f"{where}.ip", f"{ip} lies in the guest network {_guest_net(spec)}")
    gateway = _ip(value.gateway, f"{where}.gateway")
    if ipaddress.IPv4Address(gateway) not in net or gateway == ip:
        raise _bad(f"{where}.gateway", f"{gateway} is not another address of {net}")
    if net.prefixlen < 31 and ipaddress.IPv4Address(ip) in (net.network_address, net.broadcast_address):
        raise _bad(f"{where}.ip", f"{ip} is the network's or the broadcast address of {net}")
    try:
        mac = validation.mac(value.mac)
    except InvalidRouterRequest as exc:
        raise _bad(f"{where}.mac", str(exc)) from None
    if not isinstance(value.segment, Segment) or value.segment.trunk is None:
        raise _bad(f"{where}.segment", "names no trunk (the Public traffic label)")
    try:
        seg = validation.segment(value.segment)
    except InvalidRouterRequest as exc:
        raise _bad(f"{where}.segment", str(exc)) from None
    if seg.trunk is None:
        raise _bad(f"{where}.segment", "names no trunk (the Public traffic label)")
    return PublicAddress(ip=ip, prefix=value.prefix, gateway=gateway, mac=mac, segment=seg,
                         source_nat=bool(value.source_nat))


@dataclass
class Touched:
    """The keys a change may have altered (what the runtime compares before and after)."""

    addresses: set[str] = field(default_factory=set)
    forwards: set[str] = field(default_factory=set)
    statics: set[str] = field(default_factory=set)
    firewall: set[str] = field(default_factory=set)
    balancers: bool = False
    egress_default: bool = False


@dataclass
class PublicBook:
    addresses: dict[str, PublicAddress] = field(default_factory=dict)
    forwards: dict[str, PortForward] = field(default_factory=dict)
    #: by public address
    statics: dict[str, StaticNat] = field(default_factory=dict)
    firewall: dict[str, FirewallRule] = field(default_factory=dict)
    balancers: dict[str, LoadBalancer] = field(default_factory=dict)
    egress_default_allow: bool = True

    def copy(self) -> PublicBook:
        return PublicBook(dict(self.addresses), dict(self.forwards), dict(self.statics), dict(self.firewall),
                          dict(self.balancers), self.egress_default_allow)

    def state(self) -> PublicState:
        return PublicState(addresses=tuple(self.addresses.values()), port_forwards=tuple(self.forwards.values()),
                           static_nats=tuple(self.statics.values()), firewall=tuple(self.firewall.values()),
                           load_balancers=tuple(self.balancers.values()),
                           egress_default_allow=self.egress_default_allow)

    def source_nat(self) -> PublicAddress | None:
        return next((a for a in self.addresses.values() if a.source_nat), None)

    def rules(self) -> int:
        return len(self.forwards) + len(self.statics) + len(self.firewall) + len(self.balancers)

    def empty(self) -> bool:
        return not self.addresses and not self.rules() and self.egress_default_allow

    def to_json(self) -> dict[str, Any]:
        return change_to_json(RuleChange(
            addresses=tuple(self.addresses.values()), port_forwards=tuple(self.forwards.values()),
            static_nats=tuple(self.statics.values()), firewall=tuple(self.firewall.values()),
            load_balancers=tuple(self.balancers.values()), egress_default_allow=self.egress_default_allow))

    @classmethod
    def from_json(cls, spec: RouterSpec, data: Any, changes: Iterable[Any] = ()) -> PublicBook:
        """A book as saved (a snapshot and the changes applied since), validated again by merging
        it into an empty one."""
        book = cls()
        try:
            if data:
                book = merge(spec, book, change_from_json(data))[0]
            for item in changes:
                book = merge(spec, book, change_from_json(item))[0]
        except (KeyError, TypeError, AttributeError, ValueError, InvalidRouterRequest) as exc:
            raise RouterError(f"saved public state is unreadable: {exc}") from exc
        return book


def change_to_json(c: RuleChange) -> dict[str, Any]:
    """A change as saved (by hand: ``dataclasses.asdict`` deep-copies, 145 ms for 2,000 rules)."""
    out: dict[str, Any] = {
        "addresses": [{"ip": a.ip, "prefix": a.prefix, "gateway": a.gateway, "mac": a.mac,
                       "segment": {"trunk": a.segment.trunk, "vlan": a.segment.vlan, "vxlan": a.segment.vxlan},
                       "source_nat": a.source_nat} for a in c.addresses],
        "port_forwards": [{"rule_id": f.rule_id, "public_ip": f.public_ip, "protocol": f.protocol,
                           "public_ports": list(f.public_ports), "private_ip": f.private_ip,
                           "private_ports": list(f.private_ports), "source_cidrs": list(f.source_cidrs)}
                          for f in c.port_forwards],
        "static_nats": [{"public_ip": s.public_ip, "private_ip": s.private_ip} for s in c.static_nats],
        "firewall": [{"rule_id": r.rule_id, "direction": r.direction, "protocol": r.protocol, "cidrs": list(r.cidrs),
                      "public_ip": r.public_ip, "ports": list(r.ports) if r.ports is not None else None,
                      "icmp_type": r.icmp_type, "icmp_code": r.icmp_code} for r in c.firewall],
        "load_balancers": None if c.load_balancers is None else [
            {"rule_id": b.rule_id, "public_ip": b.public_ip, "public_port": b.public_port,
             "private_port": b.private_port, "protocol": b.protocol, "algorithm": b.algorithm,
             "backends": list(b.backends)} for b in c.load_balancers],
        "egress_default_allow": c.egress_default_allow,
    }
    for name in ("release", "remove_port_forwards", "remove_static_nats", "remove_firewall"):
        values = getattr(c, name)
        if values:
            out[name] = list(values)
    return out


def change_from_json(data: Any) -> RuleChange:
    lbs = data.get("load_balancers")
    egress = data.get("egress_default_allow")
    return RuleChange(
        addresses=tuple(PublicAddress(**{**a, "segment": Segment(**a["segment"])}) for a in data.get("addresses", [])),
        release=tuple(data.get("release", ())),
        port_forwards=tuple(PortForward(**{**f, "public_ports": tuple(f["public_ports"]),
                                           "private_ports": tuple(f["private_ports"]),
                                           "source_cidrs": tuple(f.get("source_cidrs", ()))})
                            for f in data.get("port_forwards", [])),
        remove_port_forwards=tuple(data.get("remove_port_forwards", ())),
        static_nats=tuple(StaticNat(**s) for s in data.get("static_nats", [])),
        remove_static_nats=tuple(data.get("remove_static_nats", ())),
        firewall=tuple(FirewallRule(**{**r, "cidrs": tuple(r["cidrs"]),
                                       "ports": tuple(r["ports"]) if r.get("ports") else None})
                       for r in data.get("firewall", [])),
        remove_firewall=tuple(data.get("remove_firewall", ())),
        load_balancers=None if lbs is None else tuple(LoadBalancer(**{**b, "backends": tuple(b["backends"])})
                                                      for b in lbs),
        egress_default_allow=None if egress is None else bool(egress),
    )


# --------------------------------------------------------------------------- merging a change


def _count(items: Iterable[object], what: str) -> None:
    n = len(tuple(items))
    if n > MAX_CHANGE_ITEMS:
        raise _bad(what, f"{n} items in one change, at most {MAX_CHANGE_ITEMS}")


def _forward(spec: RouterSpec, book: PublicBook, f: PortForward, where: str) -> PortForward:
    rid = rule_id(f.rule_id, where)
    pub = _ip(f.public_ip, f"{where}.public_ip")
    if pub not in book.addresses:
        raise _bad(f"{where}.public_ip", f"{pub} is not an address this router holds")
    if pub in book.statics:
        raise _bad(f"{where}.public_ip", f"{pub} is static-NATed to {book.statics[pub].private_ip}")
    if f.protocol not in ("tcp", "udp"):
        raise _bad(f"{where}.protocol", f"{str(f.protocol)[:16]!r}: a port forward is tcp or udp")
    public_ports = port_range(f.public_ports, f"{where}.public_ports")
    private_ports = port_range(f.private_ports, f"{where}.private_ports")
    if public_ports[1] - public_ports[0] != private_ports[1] - private_ports[0]:
        raise _bad(f"{where}.private_ports", f"{private_ports[0]}-{private_ports[1]} is not as long as the public "
                   f"range {public_ports[0]}-{public_ports[1]}")
    private = guest_address(spec, f.private_ip, f"{where}.private_ip")
    sources = _cidrs(f.source_cidrs, f"{where}.source_cidrs")
    return PortForward(rule_id=rid, public_ip=pub, protocol=f.protocol, public_ports=public_ports,
                       private_ip=private, private_ports=private_ports, source_cidrs=sources)


def _firewall(book: PublicBook, r: FirewallRule, where: str) -> FirewallRule:
    rid = rule_id(r.rule_id, where)
    if r.direction not in ("ingress", "egress"):
        raise _bad(f"{where}.direction", f"{str(r.direction)[:16]!r} is neither ingress nor egress")
    if r.protocol not in PROTOCOLS:
        raise _bad(f"{where}.protocol", f"{str(r.protocol)[:16]!r} is not one of {', '.join(PROTOCOLS)}")
    cidrs = _cidrs(r.cidrs, f"{where}.cidrs")
    public_ip = None
    if r.direction == "ingress":
        public_ip = _ip(r.public_ip, f"{where}.public_ip")
        if public_ip not in book.addresses:
            raise _bad(f"{where}.public_ip", f"{public_ip} is not an address this router holds")
    elif r.public_ip is not None:
        raise _bad(f"{where}.public_ip", "an egress rule names no public address")
    ports = None
    if r.ports is not None:
        if r.protocol not in ("tcp", "udp"):
            raise _bad(f"{where}.ports", f"ports make no sense for protocol {r.protocol}")
        ports = port_range(r.ports, f"{where}.ports")
    for name, value in (("icmp_type", r.icmp_type), ("icmp_code", r.icmp_code)):
        if value is None:
            continue
        if r.protocol != "icmp":
            raise _bad(f"{where}.{name}", f"{name} makes no sense for protocol {r.protocol}")
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 255:
            raise _bad(f"{where}.{name}", f"{str(value)[:16]} is outside 0-255")
    if r.icmp_code is not None and r.icmp_type is None:
        raise _bad(f"{where}.icmp_code", "an ICMP code needs an ICMP type")
    return FirewallRule(rule_id=rid, direction=r.direction, protocol=r.protocol, cidrs=cidrs, public_ip=public_ip,
                        ports=ports, icmp_type=r.icmp_type, icmp_code=r.icmp_code)


def _balancer(spec: RouterSpec, book: PublicBook, b: LoadBalancer, where: str) -> LoadBalancer:
    rid = rule_id(b.rule_id, where)
    pub = _ip(b.public_ip, f"{where}.public_ip")
    if pub not in book.addresses:
        raise _bad(f"{where}.public_ip", f"{pub} is not an address this router holds")
    if pub in book.statics:
        raise _bad(f"{where}.public_ip", f"{pub} is static-NATed to {book.statics[pub].private_ip}")
    if b.protocol != "tcp":
        raise _bad(f"{where}.protocol", f"{str(b.protocol)[:16]!r}: the router balances TCP only (HAProxy)")
    if b.algorithm not in ALGORITHMS:
        raise _bad(f"{where}.algorithm", f"{str(b.algorithm)[:32]!r} is not one of {', '.join(ALGORITHMS)}")
    public_port = port_range((b.public_port, b.public_port), f"{where}.public_port")[0]
    private_port = port_range((b.private_port, b.private_port), f"{where}.private_port")[0]
    if not isinstance(b.backends, tuple | list) or len(b.backends) > MAX_BACKENDS:
        raise _bad(f"{where}.backends", f"a list of at most {MAX_BACKENDS} guest addresses")
    backends = tuple(dict.fromkeys(guest_address(spec, ip, f"{where}.backends[{i}]")
                                   for i, ip in enumerate(b.backends)))
    return LoadBalancer(rule_id=rid, public_ip=pub, public_port=public_port, private_port=private_port,
                        protocol="tcp", algorithm=b.algorithm, backends=backends)


def _clash(book: PublicBook, ip: str, proto: str, ports: PortRange, me: str, where: str) -> None:
    """No two port forwards or load balancers listen on overlapping ports of one address and
    protocol (``me``: the rule's own label, replaced rather than clashing)."""
    for f in book.forwards.values():
        label = f"port forward {f.rule_id}"
        if label != me and f.public_ip == ip and f.protocol == proto and _overlap(ports, f.public_ports):
            raise _bad(where, f"{proto} {ports[0]}-{ports[1]} on {ip} overlaps {label} "
                       f"({f.public_ports[0]}-{f.public_ports[1]})")
    for b in book.balancers.values():
        label = f"load balancer {b.rule_id}"
        if label != me and b.public_ip == ip and b.protocol == proto and _overlap(ports, (b.public_port,) * 2):
            raise _bad(where, f"{proto} {ports[0]}-{ports[1]} on {ip} overlaps {label} ({b.public_port})")


def _release(book: PublicBook, ip: str, touched: Touched) -> None:
    book.addresses.pop(ip, None)
    touched.addresses.add(ip)
    for rid, f in list(book.forwards.items()):
        if f.public_ip == ip:
            del book.forwards[rid]
            touched.forwards.add(rid)
    if book.statics.pop(ip, None) is not None:
        touched.statics.add(ip)
    for rid, r in list(book.firewall.items()):
        if r.public_ip == ip:
            del book.firewall[rid]
            touched.firewall.add(rid)
    for rid, b in list(book.balancers.items()):
        if b.public_ip == ip:
            del book.balancers[rid]
            touched.balancers = True


def merge(spec: RouterSpec, old: PublicBook, change: RuleChange) -> tuple[PublicBook, Touched]:
    """``old`` with ``change`` applied, and what it touched; raises before anything is changed."""
    for name in ("addresses", "release", "port_forwards", "remove_port_forwards", "static_nats",
                 "remove_static_nats", "firewall", "remove_firewall"):
        _count(getattr(change, name), name)
    if change.load_balancers is not None:
        _count(change.load_balancers, "load_balancers")
    book, touched = old.copy(), Touched()

    for i, ip in enumerate(change.release):
        _release(book, _ip(ip, f"release[{i}]"), touched)
    for i, rid in enumerate(change.remove_port_forwards):
        if book.forwards.pop(rule_id(rid, f"remove_port_forwards[{i}]"), None) is not None:
            touched.forwards.add(rid)
    for i, raw in enumerate(change.remove_static_nats):
        ip = _ip(raw, f"remove_static_nats[{i}]")
        if book.statics.pop(ip, None) is not None:
            touched.statics.add(ip)
    for i, rid in enumerate(change.remove_firewall):
        if book.firewall.pop(rule_id(rid, f"remove_firewall[{i}]"), None) is not None:
            touched.firewall.add(rid)

    sources = {a.ip for a in change.addresses if a.source_nat}
    if len(sources) > 1:
        raise _bad("addresses", f"{len(sources)} source NAT addresses in one change; a router has one")
    for i, a in enumerate(change.addresses):
        where = f"addresses[{i}]"
        addr = address(spec, a, where)
        others = [o for o in book.addresses.values() if o.ip != addr.ip]
        if others and others[0].segment != addr.segment:
            raise _bad(f"{where}.segment", f"the router's public interface is on {others[0].segment}, not "
                       f"{addr.segment}")
        if others and others[0].mac != addr.mac:
            raise _bad(f"{where}.mac", f"the router's public interface has MAC {others[0].mac}, not {addr.mac}")
        if addr.source_nat:
            if addr.ip in book.statics:
                raise _bad(f"{where}.source_nat", f"{addr.ip} is static-NATed; it cannot be the source NAT address")
            for o in others:
                if o.source_nat:
                    book.addresses[o.ip] = PublicAddress(o.ip, o.prefix, o.gateway, o.mac, o.segment, False)
                    touched.addresses.add(o.ip)
        book.addresses[addr.ip] = addr
        touched.addresses.add(addr.ip)
    if len(book.addresses) > MAX_ADDRESSES:
        raise _bad("addresses", f"a router holds at most {MAX_ADDRESSES} public addresses")

    for i, s in enumerate(change.static_nats):
        where = f"static_nats[{i}]"
        pub = _ip(s.public_ip, f"{where}.public_ip")
        held = book.addresses.get(pub)
        if held is None:
            raise _bad(f"{where}.public_ip", f"{pub} is not an address this router holds")
        if held.source_nat:
            raise _bad(f"{where}.public_ip", f"{pub} is the source NAT address; static NAT needs another one")
        if any(f.public_ip == pub for f in book.forwards.values()) or \
                any(b.public_ip == pub for b in book.balancers.values()):
            raise _bad(f"{where}.public_ip", f"{pub} has port forwards or load balancers")
        private = guest_address(spec, s.private_ip, f"{where}.private_ip")
        for other in book.statics.values():
            if other.private_ip == private and other.public_ip != pub:
                raise _bad(f"{where}.private_ip", f"{private} is static-NATed to {other.public_ip} already")
        book.statics[pub] = StaticNat(public_ip=pub, private_ip=private)
        touched.statics.add(pub)

    for i, f in enumerate(change.port_forwards):
        checked = _forward(spec, book, f, f"port_forwards[{i}]")
        _clash(book, checked.public_ip, checked.protocol, checked.public_ports, f"port forward {checked.rule_id}",
               f"port_forwards[{i}].public_ports")
        book.forwards[checked.rule_id] = checked
        touched.forwards.add(checked.rule_id)

    if change.load_balancers is not None:
        balancers: dict[str, LoadBalancer] = {}
        for i, b in enumerate(change.load_balancers):
            lb = _balancer(spec, book, b, f"load_balancers[{i}]")
            if lb.rule_id in balancers:
                raise _bad(f"load_balancers[{i}].rule_id", f"{lb.rule_id} is given twice")
            _clash(PublicBook(forwards=book.forwards, balancers=balancers), lb.public_ip, lb.protocol,
                   (lb.public_port, lb.public_port), f"load balancer {lb.rule_id}", f"load_balancers[{i}].public_port")
            balancers[lb.rule_id] = lb
        if balancers != book.balancers:
            touched.balancers = True
        book.balancers = balancers

    for i, r in enumerate(change.firewall):
        rule = _firewall(book, r, f"firewall[{i}]")
        book.firewall[rule.rule_id] = rule
        touched.firewall.add(rule.rule_id)

    if change.egress_default_allow is not None and bool(change.egress_default_allow) != book.egress_default_allow:
        book.egress_default_allow = bool(change.egress_default_allow)
        touched.egress_default = True
    if book.rules() > MAX_RULES:
        raise _bad("rules", f"a router holds at most {MAX_RULES} rules")
    return book, touched


def combine(first: RuleChange, then: RuleChange) -> RuleChange:
    """One change that does what ``first`` and then ``then`` do (an aggregated batch is applied as
    one). :func:`merge` applies removals before additions, so an addition in ``first`` that
    ``then`` removes (or whose address ``then`` releases) is dropped here instead."""
    released = set(then.release)
    readded = {a.ip for a in then.addresses}  # IpAssoc then SetSourceNat of one address: the later wins
    rm_pf, rm_st, rm_fw = set(then.remove_port_forwards), set(then.remove_static_nats), set(then.remove_firewall)
    return RuleChange(
        addresses=tuple(a for a in first.addresses if a.ip not in released and a.ip not in readded) + then.addresses,
        release=first.release + then.release,
        port_forwards=tuple(f for f in first.port_forwards
                            if f.rule_id not in rm_pf and f.public_ip not in released) + then.port_forwards,
        remove_port_forwards=first.remove_port_forwards + then.remove_port_forwards,
        static_nats=tuple(s for s in first.static_nats
                          if s.public_ip not in rm_st and s.public_ip not in released) + then.static_nats,
        remove_static_nats=first.remove_static_nats + then.remove_static_nats,
        firewall=tuple(r for r in first.firewall
                       if r.rule_id not in rm_fw and (r.public_ip is None or r.public_ip not in released))
        + then.firewall,
        remove_firewall=first.remove_firewall + then.remove_firewall,
        load_balancers=then.load_balancers if then.load_balancers is not None else first.load_balancers,
        egress_default_allow=(then.egress_default_allow if then.egress_default_allow is not None
                              else first.egress_default_allow),
    )
