"""The public side of a network's router in CloudStack's router commands, built from the rows.

:func:`full_batch` is everything (sent after a router's DHCP/VM-data entries when it starts, on
replay and ``restartNetwork``), bracketed by ``AggregationControlCommand`` Start/Finish so the
router applies it in one configuration load: ``IpAssocCommand`` (every address of the network),
``SetSourceNatCommand``, ``SetFirewallRulesCommand`` (ingress), ``SetFirewallRulesCommand``
(egress, with the offering's default policy), ``SetPortForwardingRulesCommand``,
``SetStaticNatRulesCommand`` and ``LoadBalancerConfigCommand``. :func:`change_batch` is one API
change: just the rules it touches (revoked ones with ``revoked`` true), except load balancers, which
CloudStack always sends whole.

Rule ids on the wire are ``long``s; ours are UUIDs, so :func:`wire_id` derives a stable 60-bit
number from the UUID (the router only uses it to name a rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hvcloud.server.db.models import (
    DomainRouter,
    FirewallRule,
    FirewallRuleCidr,
    Host,
    LoadBalancerVmMap,
    LoadBalancingRule,
    Network,
    PhysicalNetwork,
    PortForwardingRule,
    RouterPublicNic,
    UserIpAddress,
    VlanIpRange,
)
from hvcloud.server.orchestration.networks import implement as N
from hvcloud.server.orchestration.networks import physical as P
from hvcloud.server.orchestration.networks import public_ips as IP
from hvcloud.wire import routing as R
from hvcloud.wire.base import Command

if TYPE_CHECKING:
    from hvcloud.server.orchestration.networks.routers import RouterRef

#: ``FirewallRule.State``
ADD = "Add"
ACTIVE = "Active"
REVOKE = "Revoke"
#: ``FirewallRule.Purpose``
FIREWALL = R.PURPOSE_FIREWALL
PORT_FORWARDING = R.PURPOSE_PORT_FORWARDING
STATIC_NAT = R.PURPOSE_STATIC_NAT
LOAD_BALANCING = R.PURPOSE_LOAD_BALANCING
INGRESS = R.TRAFFIC_INGRESS
EGRESS = R.TRAFFIC_EGRESS
PUBLIC = "Public"
ALL_CIDR = "0.0.0.0/0"


def wire_id(uuid: str) -> int:
    """A rule's ``long`` id on the wire: the first 60 bits of its UUID (stable, positive)."""
    return int(uuid.replace("-", "")[:15], 16)


@dataclass
class Change:
    """What one API change touches: rules (by id; Add or Revoke), addresses to associate or release
    (by their state), addresses whose static NAT is enabled, addresses whose static NAT is disabled
    (id → the guest address it pointed at), and whether load balancers changed."""

    rule_ids: list[str] = field(default_factory=list)
    ip_ids: list[str] = field(default_factory=list)
    nat_enable: list[str] = field(default_factory=list)
    nat_disable: dict[str, str] = field(default_factory=dict)
    lb: bool = False

    def as_params(self) -> dict[str, object]:
        return {"rules": self.rule_ids, "ips": self.ip_ids, "nat_enable": self.nat_enable,
                "nat_disable": self.nat_disable, "lb": self.lb}

    @classmethod
    def of_params(cls, params: dict[str, object]) -> Change:
        def strings(key: str) -> list[str]:
            value = params.get(key)
            return [str(v) for v in value] if isinstance(value, list) else []
        raw = params.get("nat_disable")
        disable = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        return cls(strings("rules"), strings("ips"), strings("nat_enable"), disable, bool(params.get("lb")))


# ------------------------------------------------------------------------------ addresses


def public_label(db: Session, rng: VlanIpRange, zone_id: str, hypervisor: str) -> str | None:
    """The bridge/switch the router's public NIC goes on: the Public traffic type's label of the
    range's physical network (else of the zone's physical network that carries Public traffic)."""
    pn_ids = [rng.physical_network_id] if rng.physical_network_id else []
    pn_ids += list(db.scalars(select(PhysicalNetwork.id).where(PhysicalNetwork.zone_id == zone_id,
                                                               PhysicalNetwork.removed.is_(None))
                              .order_by(PhysicalNetwork.created)))
    for pn_id in pn_ids:
        if P.carries(db, pn_id, PUBLIC):
            return P.traffic_label(db, pn_id, hypervisor, PUBLIC)
    return None


def public_mac(db: Session, router_id: str, router_number: int, vlan_id: str) -> str:
    """The MAC of the router's NIC on the range's VLAN, made once and kept (``1e:01:`` + the
    router's number, ``1e:02:`` … for further VLANs)."""
    row = db.scalar(select(RouterPublicNic).where(RouterPublicNic.router_id == router_id,
                                                  RouterPublicNic.vlan_id == vlan_id))
    if row is not None:
        return row.mac_address
    n = router_number & 0xFFFFFFFF
    tail = ":".join(f"{(n >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))
    for prefix in range(1, 256):
        mac = f"1e:{prefix:02x}:{tail}"
        try:
            with db.begin_nested():
                db.add(RouterPublicNic(router_id=router_id, vlan_id=vlan_id, mac_address=mac))
        except IntegrityError:
            continue
        return mac
    raise RuntimeError(f"no MAC left for router {router_id}")  # 255 public VLANs on one router


def _uri(rng: VlanIpRange) -> str:
    tag = (rng.vlan_tag or "untagged").strip()
    if tag.lower() in ("untagged", ""):
        return "vlan://untagged"
    return tag if "://" in tag else f"vlan://{tag}"


def ip_to(db: Session, ip: UserIpAddress, router: DomainRouter, *, add: bool, first: bool = False) -> R.IpAddressTO:
    rng = db.get(VlanIpRange, ip.vlan_id)
    assert rng is not None
    host = db.get(Host, router.host_id) if router.host_id else None
    return R.IpAddressTO(publicIp=ip.public_ip_address, sourceNat=ip.source_nat, add=add,
                         oneToOneNat=ip.one_to_one_nat, firstIP=first, broadcastUri=_uri(rng),
                         vlanGateway=rng.gateway, vlanNetmask=rng.netmask,
                         vifMacAddress=public_mac(db, router.id, router.vm_number, rng.id), trafficType=PUBLIC,
                         networkName=public_label(db, rng, ip.zone_id, host.hypervisor if host else ""),
                         newNic=False)


def _router(db: Session, ref: RouterRef) -> DomainRouter:
    router = db.get(DomainRouter, ref.id)
    assert router is not None
    return router


def ip_assoc(db: Session, ref: RouterRef, ips: Sequence[tuple[UserIpAddress, bool]]) -> R.IpAssocCommand | None:
    if not ips:
        return None
    router = _router(db, ref)
    tos = [ip_to(db, ip, router, add=add, first=i == 0) for i, (ip, add) in enumerate(ips)]
    # "true" when no address stays on the public VLAN(s) of the command (its NIC may go, as
    # CloudStack sets network.public.last.ip)
    vlans = {ip.vlan_id for ip, _add in ips}
    leaving = {ip.id for ip, add in ips if not add}
    staying = [ip for ip in IP.network_ips(db, ref.network_id)
               if ip.vlan_id in vlans and ip.id not in leaving and ip.state != IP.RELEASING]
    access = {**ref.access, R.NETWORK_PUB_LAST_IP: "false" if staying else "true"}
    return R.IpAssocCommand(ipAddresses=tos, accessDetails=access)


# ------------------------------------------------------------------------------ rules


def _cidrs(db: Session, rule_ids: Sequence[str]) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    ids = list(rule_ids)
    for start in range(0, len(ids), 500):
        for row in db.scalars(select(FirewallRuleCidr).where(FirewallRuleCidr.rule_id.in_(ids[start:start + 500]))
                              .order_by(FirewallRuleCidr.id)):
            out.setdefault((row.rule_id, row.kind), []).append(row.cidr)
    return out


def _ports(rule: FirewallRule) -> list[int] | None:
    if rule.start_port is None:
        return None
    return [rule.start_port, rule.end_port if rule.end_port is not None else rule.start_port]


def _ip_of(db: Session, rule: FirewallRule) -> UserIpAddress | None:
    return db.get(UserIpAddress, rule.ip_address_id) if rule.ip_address_id else None


def firewall_tos(db: Session, network: Network, rules: Sequence[FirewallRule]) -> list[R.FirewallRuleTO]:
    cidrs = _cidrs(db, [r.id for r in rules])
    out: list[R.FirewallRuleTO] = []
    for rule in rules:
        ip = _ip_of(db, rule)
        egress = rule.traffic_type == EGRESS
        to = R.FirewallRuleTO(id=wire_id(rule.id), srcVlanTag=None, srcIp=ip.public_ip_address if ip else None,
                              protocol=rule.protocol, srcPortRange=_ports(rule), revoked=rule.state == REVOKE,
                              alreadyAdded=rule.state == ACTIVE, purpose=FIREWALL, icmpType=rule.icmp_type,
                              icmpCode=rule.icmp_code, trafficType=rule.traffic_type,
                              sourceCidrList=cidrs.get((rule.id, "source"), [] if egress else [ALL_CIDR]),
                              destCidrList=cidrs.get((rule.id, "destination")) if egress else None,
                              guestCidr=network.cidr if egress else None,
                              defaultEgressPolicy=bool(network.offering.egress_default_policy) if egress else None,
                              type="User")
        out.append(to)
    return out


def default_egress_to(network: Network) -> R.FirewallRuleTO:
    """The rule CloudStack sends when a network has no egress rule: protocol ``all`` from the guest
    CIDR, carrying the offering's default policy (the router allows or denies everything else)."""
    return R.FirewallRuleTO(id=0, protocol="all", revoked=False, alreadyAdded=False, purpose=FIREWALL,
                            trafficType=EGRESS, sourceCidrList=[network.cidr or ALL_CIDR], destCidrList=[],
                            guestCidr=network.cidr,
                            defaultEgressPolicy=bool(network.offering.egress_default_policy), type="System")


def pf_tos(db: Session, rules: Sequence[FirewallRule]) -> list[R.PortForwardingRuleTO]:
    cidrs = _cidrs(db, [r.id for r in rules])
    ids = [r.id for r in rules]
    for start in range(0, len(ids), 500):  # one query per 500 rules, then ``db.get`` finds them loaded
        list(db.scalars(select(PortForwardingRule).where(PortForwardingRule.id.in_(ids[start:start + 500]))))
    out: list[R.PortForwardingRuleTO] = []
    for rule in rules:
        pf = db.get(PortForwardingRule, rule.id)
        ip = _ip_of(db, rule)
        if pf is None or ip is None:
            continue
        out.append(R.PortForwardingRuleTO(
            id=wire_id(rule.id), srcIp=ip.public_ip_address, protocol=rule.protocol, srcPortRange=_ports(rule),
            revoked=rule.state == REVOKE, alreadyAdded=rule.state == ACTIVE, purpose=PORT_FORWARDING,
            trafficType=INGRESS, sourceCidrList=cidrs.get((rule.id, "source"), [ALL_CIDR]), dstIp=pf.dest_ip,
            dstPortRange=[pf.dest_port_start, pf.dest_port_end], type="User"))
    return out


def static_nat_tos(ips: Sequence[tuple[UserIpAddress, str | None, bool]]) -> list[R.StaticNatRuleTO]:
    """``(address, guest address, revoked)`` → one-to-one NAT rules."""
    return [R.StaticNatRuleTO(id=wire_id(ip.id), srcIp=ip.public_ip_address, dstIp=vm_ip, revoked=revoked,
                              alreadyAdded=not revoked and ip.one_to_one_nat, purpose=STATIC_NAT,
                              trafficType=INGRESS, protocol=None, sourceCidrList=[ALL_CIDR])
            for ip, vm_ip, revoked in ips]


def lb_command(db: Session, ref: RouterRef, network: Network) -> R.LoadBalancerConfigCommand:
    """Every load balancer rule of the network (revoked ones and removed members flagged)."""
    rows = db.execute(select(FirewallRule, LoadBalancingRule).join(LoadBalancingRule,
                                                                   LoadBalancingRule.id == FirewallRule.id)
                      .where(FirewallRule.network_id == network.id)
                      .order_by(FirewallRule.created, FirewallRule.id)).all()
    tos: list[R.LoadBalancerTO] = []
    for rule, lb in rows:
        ip = _ip_of(db, rule)
        if ip is None:
            continue
        rng = db.get(VlanIpRange, ip.vlan_id)
        members = db.scalars(select(LoadBalancerVmMap).where(LoadBalancerVmMap.load_balancer_id == lb.id)
                             .order_by(LoadBalancerVmMap.id))
        dests = [R.DestinationTO(destIp=m.vm_ip, destPort=lb.default_port_start,
                                 revoked=m.revoke or rule.state == REVOKE, alreadyAdded=m.state == ACTIVE)
                 for m in members if m.vm_ip]
        tos.append(R.LoadBalancerTO(uuid=rule.id, srcIp=ip.public_ip_address, srcPort=rule.start_port,
                                    protocol=rule.protocol, lbProtocol=lb.lb_protocol, algorithm=lb.algorithm,
                                    revoked=rule.state == REVOKE, alreadyAdded=rule.state == ACTIVE, inline=False,
                                    srcIpVlan=rng.vlan_tag if rng else None, srcIpGateway=rng.gateway if rng else None,
                                    srcIpNetmask=rng.netmask if rng else None, destinations=dests))
    source_nat = IP.source_nat_of(db, network.id)
    return R.LoadBalancerConfigCommand(loadBalancers=tos, lbStatsVisibility="disabled",
                                       lbStatsPublicIP=source_nat.public_ip_address if source_nat else None,
                                       lbStatsGuestIP=ref.access.get(R.ROUTER_GUEST_IP), maxconn="4096",
                                       keepAliveEnabled=False, isTransparent=False, networkCidr=network.cidr,
                                       accessDetails=ref.access)


def _rules(db: Session, network_id: str, purpose: str, traffic: str = INGRESS,
           ids: Sequence[str] | None = None) -> list[FirewallRule]:
    stmt = select(FirewallRule).where(FirewallRule.network_id == network_id, FirewallRule.purpose == purpose,
                                      FirewallRule.traffic_type == traffic)
    if ids is not None:
        stmt = stmt.where(FirewallRule.id.in_(list(ids)))
    return list(db.scalars(stmt.order_by(FirewallRule.created, FirewallRule.id)))


def _firewall_access(ref: RouterRef, network: Network) -> dict[str, str]:
    access = dict(ref.access)
    if network.vnet is not None:
        access[R.GUEST_VLAN_TAG] = str(network.vnet)
    return access


def _aggregated(ref: RouterRef, commands: list[Command]) -> list[Command]:
    if len(commands) < 2:
        return commands
    return [R.AggregationControlCommand(action=R.AGGREGATION_START, accessDetails=ref.access), *commands,
            R.AggregationControlCommand(action=R.AGGREGATION_FINISH, accessDetails=ref.access)]


def full_batch(db: Session, ref: RouterRef) -> list[Command]:
    """The whole public side of the router's network; empty when the network holds no address."""
    network = db.get(Network, ref.network_id)
    if network is None:
        return []
    ips = IP.network_ips(db, network.id)
    if not ips:
        return []
    commands: list[Command] = []
    assoc = ip_assoc(db, ref, [(ip, ip.state != IP.RELEASING) for ip in ips])
    if assoc is not None:
        commands.append(assoc)
    router = _router(db, ref)
    source_nat = next((ip for ip in ips if ip.source_nat), None)
    if source_nat is not None:
        commands.append(R.SetSourceNatCommand(ipAddress=ip_to(db, source_nat, router, add=True), add=True,
                                              accessDetails=ref.access))
    access = _firewall_access(ref, network)
    commands.append(R.SetFirewallRulesCommand(rules=firewall_tos(db, network, _rules(db, network.id, FIREWALL)),
                                              accessDetails=access))
    egress = _rules(db, network.id, FIREWALL, EGRESS)
    commands.append(R.SetFirewallRulesCommand(rules=firewall_tos(db, network, egress) if egress
                                              else [default_egress_to(network)], accessDetails=access))
    commands.append(R.SetPortForwardingRulesCommand(rules=pf_tos(db, _rules(db, network.id, PORT_FORWARDING)),
                                                    accessDetails=ref.access))
    nat = [(ip, ip.vm_ip, ip.state == IP.RELEASING) for ip in ips if ip.one_to_one_nat and ip.vm_ip]
    commands.append(R.SetStaticNatRulesCommand(rules=static_nat_tos(nat), accessDetails=ref.access))
    commands.append(lb_command(db, ref, network))
    return _aggregated(ref, commands)


@dataclass(frozen=True)
class Snapshot:
    """What a full batch held, row by row, so that only those rows move on once the router has it
    (a rule added or revoked meanwhile waits for its own job)."""

    rules: dict[str, str]
    members: dict[int, bool]
    releasing: list[str]


def snapshot(db: Session, network_id: str, change: Change | None = None) -> Snapshot:
    """The rows a batch holds: every rule of the network (a full batch), or ``change``'s rules and,
    when it touches load balancers, every load balancer rule of the network."""
    stmt = select(FirewallRule.id, FirewallRule.state).where(FirewallRule.network_id == network_id)
    if change is not None:
        conds: list[ColumnElement[bool]] = [FirewallRule.id.in_(change.rule_ids)]
        if change.lb:
            conds.append(FirewallRule.purpose == LOAD_BALANCING)
        stmt = stmt.where(or_(*conds))
    rules = dict(db.execute(stmt).all())
    if change is not None and not change.lb:
        return Snapshot(rules, {}, [])
    members = dict(db.execute(select(LoadBalancerVmMap.id, LoadBalancerVmMap.revoke)
                              .join(FirewallRule, FirewallRule.id == LoadBalancerVmMap.load_balancer_id)
                              .where(FirewallRule.network_id == network_id)).all())
    releasing = [ip.id for ip in IP.network_ips(db, network_id) if ip.state == IP.RELEASING]
    return Snapshot(rules, members, releasing)


def full_batch_with_snapshot(db: Session, ref: RouterRef) -> tuple[list[Command], Snapshot]:
    return full_batch(db, ref), snapshot(db, ref.network_id)


def change_batch(db: Session, ref: RouterRef, change: Change) -> list[Command]:
    """The commands of one API change (see the module docstring): new addresses first, then static
    NAT, rules and load balancers, and released addresses last (their rules are revoked first)."""
    network = db.get(Network, ref.network_id)
    if network is None:
        return []
    commands: list[Command] = []
    ips = [ip for ip in (db.get(UserIpAddress, i) for i in change.ip_ids) if ip is not None]
    adding = [ip for ip in ips if ip.state != IP.RELEASING and ip.removed is None]
    enabling = [ip for ip in (db.get(UserIpAddress, i) for i in change.nat_enable) if ip is not None]
    assoc = ip_assoc(db, ref, [(ip, True) for ip in adding + [e for e in enabling if e not in adding]])
    if assoc is not None:
        commands.append(assoc)
    disabling = [ip for ip in (db.get(UserIpAddress, i) for i in change.nat_disable) if ip is not None]
    nat = [(ip, ip.vm_ip, False) for ip in enabling] + [(ip, change.nat_disable[ip.id], True) for ip in disabling]
    if nat:
        commands.append(R.SetStaticNatRulesCommand(rules=static_nat_tos(nat), accessDetails=ref.access))
    if change.rule_ids:
        access = _firewall_access(ref, network)
        ingress = _rules(db, network.id, FIREWALL, INGRESS, change.rule_ids)
        if ingress:
            commands.append(R.SetFirewallRulesCommand(rules=firewall_tos(db, network, ingress), accessDetails=access))
        egress = _rules(db, network.id, FIREWALL, EGRESS, change.rule_ids)
        if egress:
            commands.append(R.SetFirewallRulesCommand(rules=firewall_tos(db, network, egress), accessDetails=access))
        forwards = _rules(db, network.id, PORT_FORWARDING, INGRESS, change.rule_ids)
        if forwards:
            commands.append(R.SetPortForwardingRulesCommand(rules=pf_tos(db, forwards), accessDetails=ref.access))
    if change.lb:
        commands.append(lb_command(db, ref, network))
    if disabling:
        # the address leaves one-to-one mode on the router
        back = ip_assoc(db, ref, [(ip, True) for ip in disabling if ip.state != IP.RELEASING])
        if back is not None:
            for to in back.ipAddresses or []:
                to.oneToOneNat = False
            commands.append(back)
    releasing = ip_assoc(db, ref, [(ip, False) for ip in ips if ip not in adding])
    if releasing is not None:
        commands.append(releasing)
    return _aggregated(ref, commands)


def failed_results(answer: object) -> list[str]:
    """The entries of a Set*RulesAnswer/IpAssocAnswer that say ``Failed``."""
    results = getattr(answer, "results", None)
    if not isinstance(results, list):
        return []
    return [str(r) for r in results if str(r).lower() == "failed"]


def network_of_router(db: Session, network_id: str) -> Network | None:
    network = db.get(Network, network_id)
    return network if network is not None and network.removed is None and N.needs_router(network) else None
