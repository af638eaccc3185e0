"""Firewall, port forwarding and load balancer rules as rows: their parameters checked and their
conflicts detected as CloudStack's FirewallManager does, before anything is written.

Conflicts on one address (rules not being revoked): a static NAT address takes no other rule and a
rule on an address makes static NAT impossible; port ranges of forwards and load balancers may not
overlap unless both are forwards of different protocols; firewall rules of one protocol may not
overlap unless their CIDR lists differ (ICMP: same type and code with the same CIDRs). Firewall
rules never conflict with forwards or load balancers: they are what opens them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from hvcloud.server import errors
from hvcloud.server.db.models import FirewallRule, FirewallRuleCidr, UserIpAddress
from hvcloud.server.orchestration.networks import public_ips as IP
from hvcloud.server.orchestration.networks import router_rules as RR

TCP, UDP, ICMP, ALL = "tcp", "udp", "icmp", "all"
PORT_PROTOCOLS = (TCP, UDP)
FIREWALL_PROTOCOLS = (TCP, UDP, ICMP)
EGRESS_PROTOCOLS = (TCP, UDP, ICMP, ALL)
#: CIDRs one rule may carry
MAX_CIDRS = 64
ALGORITHMS = ("roundrobin", "leastconn", "source")


@dataclass(frozen=True)
class RuleSpec:
    """A rule as asked for, checked: ports None for icmp/all (or all ports), icmp None else."""

    protocol: str
    start: int | None
    end: int | None
    icmp_type: int | None = None
    icmp_code: int | None = None
    cidrs: tuple[str, ...] = ()
    dest_cidrs: tuple[str, ...] = ()


def protocol(value: str, allowed: Sequence[str], name: str = "protocol") -> str:
    text = value.strip().lower()
    if text not in allowed:
        raise errors.param_error(f"Invalid {name} {value[:32]}: valid values are {', '.join(allowed)}")
    return text


def port(value: int | None, name: str) -> int | None:
    if value is None:
        return None
    if not 1 <= value <= 65535:
        raise errors.param_error(f"Invalid {name} {value}: a port is 1-65535")
    return value


def port_range(start: int | None, end: int | None, start_name: str, end_name: str) -> tuple[int | None, int | None]:
    """``start``-``end`` (``end`` defaults to ``start``); start > end is refused, naming the field."""
    start, end = port(start, start_name), port(end, end_name)
    if start is None and end is not None:
        raise errors.param_error(f"Invalid {end_name}: give {start_name} with it")
    if start is not None and end is None:
        end = start
    if start is not None and end is not None and start > end:
        raise errors.param_error(f"Invalid {start_name}/{end_name} {start}-{end}: the start port is greater than "
                                 "the end port")
    return start, end


def cidr_list(values: Sequence[str], name: str = "cidrlist") -> tuple[str, ...]:
    """IPv4 CIDRs (an address alone is a /32); at most :data:`MAX_CIDRS`; duplicates dropped."""
    if len(values) > MAX_CIDRS:
        raise errors.param_error(f"Invalid {name}: at most {MAX_CIDRS} CIDRs")
    out: list[str] = []
    for raw in values:
        text = raw.strip()
        try:
            if "/" not in text or not text.split("/", 1)[1].isdigit():
                raise ValueError(text)
            net = ipaddress.IPv4Network(text, strict=False)
        except ValueError:
            raise errors.param_error(f"Invalid {name}: {raw[:64]!r} is not an IPv4 CIDR") from None
        if str(net) not in out:
            out.append(str(net))
    return tuple(out)


def icmp_value(value: int | None, name: str) -> int | None:
    if value is None:
        return None
    if not -1 <= value <= 255:
        raise errors.param_error(f"Invalid {name} {value}: it is -1 (any) or 0-255")
    return value


def firewall_spec(proto: str, allowed: Sequence[str], start: int | None, end: int | None, icmp_type: int | None,
                  icmp_code: int | None, cidrs: Sequence[str], dest_cidrs: Sequence[str] = ()) -> RuleSpec:
    """createFirewallRule/createEgressFirewallRule's parameters: ports only with tcp/udp, ICMP type
    and code only with icmp."""
    name = protocol(proto, allowed)
    if name in (ICMP, ALL) and (start is not None or end is not None):
        raise errors.param_error(f"Invalid startport/endport: ports can't be given when protocol is {name}")
    if name != ICMP and (icmp_type is not None or icmp_code is not None):
        raise errors.param_error(f"Invalid icmptype/icmpcode: they can be given for protocol icmp only, not {name}")
    first, last = port_range(start, end, "startport", "endport")
    itype, icode = icmp_value(icmp_type, "icmptype"), icmp_value(icmp_code, "icmpcode")
    if name == ICMP and itype is None and icode is not None:
        raise errors.param_error("Invalid icmpcode: give icmptype with it")
    if name == ICMP and itype is None:
        itype, icode = -1, -1
    elif name == ICMP and icode is None:
        icode = -1
    return RuleSpec(name, first, last, itype, icode, cidr_list(cidrs, "cidrlist"),
                    cidr_list(dest_cidrs, "destcidrlist"))


def forward_ports(public_start: int | None, public_end: int | None, private_start: int | None,
                  private_end: int | None) -> tuple[int, int, int, int]:
    """createPortForwardingRule's ranges: both given, valid, of equal length."""
    ps, pe = port_range(public_start, public_end, "publicport", "publicendport")
    qs, qe = port_range(private_start, private_end, "privateport", "privateendport")
    if ps is None or pe is None:
        raise errors.param_error("Invalid publicport: it is required")
    if qs is None or qe is None:
        raise errors.param_error("Invalid privateport: it is required")
    if pe - ps != qe - qs:
        raise errors.param_error(f"Invalid privateport/privateendport {qs}-{qe}: the private port range must be as "
                                 f"long as the public port range {ps}-{pe}")
    return ps, pe, qs, qe


def usable_address(ip: UserIpAddress, what: str) -> None:
    """Rules go only on an address that is held by a network and not being released."""
    if ip.removed is not None or ip.state == IP.RELEASING:
        raise errors.param_error(f"Invalid ipaddressid {ip.id}: the ip address is being released; unable to "
                                 f"create {what}")
    if ip.network_id is None:
        raise errors.param_error(f"Invalid ipaddressid {ip.id}: the ip address is not associated with any network; "
                                 f"unable to create {what}")


def _cidrs_of(db: Session, rule_id: str) -> set[str]:
    return set(db.scalars(select(FirewallRuleCidr.cidr).where(FirewallRuleCidr.rule_id == rule_id,
                                                              FirewallRuleCidr.kind == "source")))


def _overlap(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    return a_start <= b_end and b_start <= a_end


def check_conflicts(db: Session, *, ip: UserIpAddress | None, network_id: str, purpose: str, traffic: str,
                    spec: RuleSpec, exclude: str | None = None) -> None:
    """CloudStack's conflict detection for a new rule (537 naming the conflicting rule)."""
    stmt = select(FirewallRule).where(FirewallRule.state != RR.REVOKE, FirewallRule.traffic_type == traffic)
    stmt = stmt.where(FirewallRule.ip_address_id == ip.id) if ip is not None else \
        stmt.where(FirewallRule.network_id == network_id, FirewallRule.ip_address_id.is_(None))
    if ip is not None and ip.one_to_one_nat and purpose != RR.FIREWALL:
        raise errors.rule_conflict(f"There is 1 to 1 Nat rule specified for the ip address id={ip.id}: static NAT is "
                                   "enabled on it (ipaddressid)")
    new_cidrs = set(spec.cidrs) or {RR.ALL_CIDR}
    if spec.start is not None:
        # only rules whose ports overlap, or that have none (icmp, all), can conflict: the database
        # picks those, so a change costs the same with a thousand rules on the address
        last = spec.end if spec.end is not None else spec.start
        stmt = stmt.where(or_(FirewallRule.start_port.is_(None),
                              and_(FirewallRule.start_port <= last,
                                   func.coalesce(FirewallRule.end_port, FirewallRule.start_port) >= spec.start)))
    else:
        stmt = stmt.where(FirewallRule.protocol == spec.protocol)
    for rule in db.scalars(stmt.order_by(FirewallRule.created)):
        if rule.id == exclude:
            continue
        one_is_firewall = (rule.purpose == RR.FIREWALL or purpose == RR.FIREWALL) and \
            (rule.purpose != purpose or rule.protocol != spec.protocol)
        if one_is_firewall:
            continue  # firewall rules open forwards and load balancers, they never conflict with them
        both_firewall = rule.purpose == purpose == RR.FIREWALL
        end = spec.end if spec.end is not None else spec.start
        overlapping = rule.start_port is not None and spec.start is not None and end is not None and \
            _overlap(rule.start_port, rule.end_port or rule.start_port, spec.start, end)
        same_kind = (spec.protocol == ICMP and (rule.icmp_type, rule.icmp_code) == (spec.icmp_type, spec.icmp_code)) \
            or spec.protocol == ALL
        if not overlapping and not (both_firewall and same_kind):
            continue
        # the CIDRs are read only for the few rules that could conflict (a thousand rules cost one query)
        same_cidrs = both_firewall and (_cidrs_of(db, rule.id) or {RR.ALL_CIDR}) == new_cidrs
        if both_firewall and not same_cidrs:
            continue
        if both_firewall and spec.protocol == ICMP and same_kind:
            raise errors.rule_conflict(f"New rule conflicts with existing rule id={rule.id} (icmptype/icmpcode)")
        if both_firewall and spec.protocol == ALL:
            raise errors.rule_conflict(f"New rule conflicts with existing rule id={rule.id} (protocol all)")
        if not overlapping:
            continue
        if rule.purpose == purpose == RR.PORT_FORWARDING and rule.protocol != spec.protocol:
            continue  # a tcp and a udp forward may share ports
        raise errors.rule_conflict(f"The range specified, {spec.start}-{end}, conflicts with rule {rule.id} which has "
                                   f"{rule.start_port}-{rule.end_port} (publicport)")


def add_rule(db: Session, *, ip: UserIpAddress | None, network_id: str, account_id: str, domain_id: str,
             purpose: str, traffic: str, spec: RuleSpec, related_id: str | None = None,
             display: bool = True) -> FirewallRule:
    """Write a rule (state Add) and its CIDRs; the caller checked it."""
    rule = FirewallRule(ip_address_id=ip.id if ip else None, network_id=network_id, account_id=account_id,
                        domain_id=domain_id, purpose=purpose, traffic_type=traffic, protocol=spec.protocol,
                        start_port=spec.start, end_port=spec.end, icmp_type=spec.icmp_type,
                        icmp_code=spec.icmp_code, state=RR.ADD, related_id=related_id, display=display)
    db.add(rule)
    db.flush()
    for cidr in spec.cidrs:
        db.add(FirewallRuleCidr(rule_id=rule.id, kind="source", cidr=cidr))
    for cidr in spec.dest_cidrs:
        db.add(FirewallRuleCidr(rule_id=rule.id, kind="destination", cidr=cidr))
    db.flush()
    return rule


def revoke(db: Session, rule: FirewallRule) -> list[str]:
    """Mark the rule and the firewall rules opened for it Revoke; their ids."""
    ids = [rule.id]
    rule.state = RR.REVOKE
    for related in db.scalars(select(FirewallRule).where(FirewallRule.related_id == rule.id)):
        related.state = RR.REVOKE
        ids.append(related.id)
    return ids


def has_rules(db: Session, ip_id: str, purposes: Sequence[str]) -> bool:
    return db.scalar(select(FirewallRule.id).where(FirewallRule.ip_address_id == ip_id,
                                                   FirewallRule.purpose.in_(list(purposes)),
                                                   FirewallRule.state != RR.REVOKE).limit(1)) is not None
