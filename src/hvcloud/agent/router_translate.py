"""Virtual-router wire objects → the router runtime's values (:mod:`hvcloud.router.api`).

The runtime never sees a wire object: the handlers in :mod:`hvcloud.agent.handlers.router` call
these. Every function raises :class:`~hvcloud.agent.translate.TranslationError` (an in-band
``result:false``) for input that cannot be acted on; the runtime validates again what only it can
(an address inside the router's subnet, file names of VM data).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from hvcloud.agent.translate import TranslationError, normalise_mac, segment_of, vm_name
from hvcloud.router.api import (
    DhcpEntry,
    FirewallRule,
    LoadBalancer,
    PortForward,
    PublicAddress,
    RouterSpec,
    RuleChange,
    Segment,
    StaticNat,
)
from hvcloud.wire.routing import (
    DhcpEntryCommand,
    DhcpTO,
    IpAddressTO,
    IpAssocCommand,
    LoadBalancerConfigCommand,
    NetworkElementCommand,
    SetFirewallRulesCommand,
    SetPortForwardingRulesCommand,
    SetSourceNatCommand,
    SetStaticNatRulesCommand,
    VmDataCommand,
)
from hvcloud.wire.to import NicTO, VirtualMachineTO

ROUTER_TYPE = "DomainRouter"
#: ``vm.type`` values CloudStack gives the virtual routers it starts (a VPC router is one too)
ROUTER_VM_TYPES = frozenset({ROUTER_TYPE})
#: ``type=`` values of a router's boot arguments this agent serves
BOOT_TYPES = frozenset({"router", "dhcpsrvr"})

MAX_BOOT_ARGS = 16 * 1024
MAX_BOOT_TOKENS = 256
MAX_VM_DATA_ENTRIES = 256
#: all of one VM's data (user data is at most 1 MiB in CloudStack, base64 grows it by a third)
MAX_VM_DATA_BYTES = 2 * 1024 * 1024
MAX_PASSWORD = 1024

_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_BOOT_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_DATA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def is_router(vm: VirtualMachineTO | None) -> bool:
    return vm is not None and (vm.type or "") in ROUTER_VM_TYPES


def target_router(cmd: NetworkElementCommand) -> str:
    """The router a routing command is for: ``accessDetails["router.name"]``."""
    name = cmd.router_name()
    if name is not None and not isinstance(name, str):
        raise TranslationError(f"{type(cmd).__name__}: accessDetails[\"router.name\"] is not a string")
    if not name:
        raise TranslationError(f"{type(cmd).__name__} names no router (accessDetails[\"router.name\"] is missing)")
    return vm_name(name, "router")


def ipv4(value: str | None, what: str) -> str:
    if not value:
        raise TranslationError(f"{what} is missing")
    try:
        return str(ipaddress.IPv4Address(value.strip()))
    except ValueError:
        raise TranslationError(f"{what} {value[:64]!r} is not an IPv4 address") from None


def prefix_of(netmask: str | None) -> int:
    """``255.255.255.0`` → 24; a non-contiguous or missing mask is refused."""
    if not netmask:
        raise TranslationError("the netmask is missing")
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{netmask.strip()}").prefixlen
    except ValueError:
        raise TranslationError(f"invalid netmask {netmask[:64]!r}") from None


def hostname(value: str | None) -> str:
    """A VM's DHCP/DNS name: one RFC 1123 label (nothing that could break a dnsmasq line)."""
    if not value or not _HOST_LABEL.fullmatch(value):
        raise TranslationError(f"invalid host name {(value or '')[:100]!r}: one label of letters, digits and '-'")
    return value


def domain_name(value: str) -> str:
    if len(value) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in value.rstrip(".").split(".")):
        raise TranslationError(f"invalid network domain {value[:100]!r}")
    return value.rstrip(".").lower()


def parse_boot_args(text: str | None) -> dict[str, str]:
    """CloudStack's system-VM boot arguments: ``key=value`` pairs separated by white space
    (``name=r-12-VM type=router eth0ip=10.1.1.1 …``), in any order. A token without ``=`` is
    skipped and an empty value counts as absent; a key given twice with two values is refused."""
    if not text:
        return {}
    if len(text) > MAX_BOOT_ARGS:
        raise TranslationError(f"the boot arguments are longer than {MAX_BOOT_ARGS} characters")
    if _CONTROL.search(text.replace("\t", " ").replace("\n", " ").replace("\r", " ")):
        raise TranslationError("the boot arguments hold control characters")
    tokens = text.split()
    if len(tokens) > MAX_BOOT_TOKENS:
        raise TranslationError(f"the boot arguments hold more than {MAX_BOOT_TOKENS} items")
    out: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or not value:
            continue
        if not _BOOT_KEY.fullmatch(key):
            raise TranslationError(f"invalid boot argument name {key[:64]!r}")
        if key in out and out[key] != value:
            raise TranslationError(f"boot argument {key} is given twice ({out[key][:64]!r}, {value[:64]!r})")
        out[key] = value
    return out


def _guest_nic(nics: Sequence[NicTO]) -> NicTO:
    if not nics:
        raise TranslationError("the router has no NIC on its guest network")
    return next((n for n in nics if (n.type or "").lower() == "guest"), nics[0])


def router_spec(vm: VirtualMachineTO, default_trunk: str | None = None) -> RouterSpec:
    """The router a ``StartCommand`` of a ``DomainRouter`` describes: its guest NIC (the first NIC
    of type Guest, else the first) gives the MAC, address, mask, segment and trunk (the NIC's
    ``name``, the zone's traffic label, else the host's ``default_trunk``); the boot arguments give
    the domain and DNS servers and must agree with the NIC where both speak."""
    name = vm_name(vm.name, "router")
    args = parse_boot_args(vm.bootArgs)
    if "name" in args and args["name"] != name:
        raise TranslationError(f"the boot arguments name router {args['name'][:80]!r}, the command {name}")
    if "type" in args and args["type"] not in BOOT_TYPES:
        raise TranslationError(f"boot argument type={args['type'][:32]!r} is not a router this host runs")
    nic = _guest_nic(vm.nics or [])
    mac = normalise_mac(nic.mac)
    address = ipv4(nic.ip or args.get("eth0ip"), "the router's guest address")
    if "eth0ip" in args and ipv4(args["eth0ip"], "boot argument eth0ip") != address:
        raise TranslationError(f"boot argument eth0ip={args['eth0ip'][:64]} differs from the NIC's {address}")
    prefix = prefix_of(nic.netmask or args.get("eth0mask"))
    if "eth0mask" in args and prefix_of(args["eth0mask"]) != prefix:
        raise TranslationError(f"boot argument eth0mask={args['eth0mask'][:64]} differs from the NIC's netmask")
    if prefix > 30:
        raise TranslationError(f"a /{prefix} guest network has no room for VMs")
    vlan, vxlan = segment_of(nic.broadcastUri or nic.isolationUri)
    trunk = nic.name or default_trunk or None
    if trunk is not None and not re.fullmatch(r"[A-Za-z0-9_.:-]{1,15}", trunk):
        raise TranslationError(f"invalid traffic label (trunk bridge) {trunk[:64]!r}")
    dns = tuple(ipv4(args[k], f"boot argument {k}") for k in ("dns1", "dns2") if k in args)
    if not dns:
        dns = tuple(ipv4(v, "the NIC's DNS server") for v in (nic.dns1, nic.dns2) if v)
    domain = domain_name(args["domain"]) if "domain" in args else "cloud.internal"
    return RouterSpec(name=name, segment=Segment(trunk=trunk, vlan=vlan, vxlan=vxlan), mac=mac,
                      address=address, prefix=prefix, domain=domain, dns=dns, network_id=nic.uuid or None)


def dhcp_entry(cmd: DhcpEntryCommand) -> DhcpEntry:
    return DhcpEntry(mac=normalise_mac(cmd.vmMac), ip=ipv4(cmd.vmIpAddress, "the VM's address"),
                     hostname=hostname(cmd.vmName), default=cmd.isDefault is not False)


def vm_data(cmd: VmDataCommand) -> list[tuple[str, str, str | None]]:
    """``vmData`` as ``(folder, file, contents)`` triples, shape and size checked."""
    raw = cmd.vmData or []
    if len(raw) > MAX_VM_DATA_ENTRIES:
        raise TranslationError(f"VmDataCommand holds {len(raw)} entries, at most {MAX_VM_DATA_ENTRIES}")
    out: list[tuple[str, str, str | None]] = []
    total = 0
    seen: set[tuple[str, str]] = set()
    for item in raw:
        if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 3:
            raise TranslationError("a vmData entry is not a [folder, file, contents] triple")
        folder, file = (_data_name(part) for part in item[:2])
        contents = item[2]
        if contents is not None and not isinstance(contents, str):
            raise TranslationError(f"vmData {folder}/{file} is not text")
        if (folder, file) in seen:
            raise TranslationError(f"vmData names {folder}/{file} twice")
        seen.add((folder, file))
        total += len(contents.encode("utf-8", "surrogatepass")) if contents else 0
        if total > MAX_VM_DATA_BYTES:
            raise TranslationError(f"the VM's data is larger than {MAX_VM_DATA_BYTES} bytes")
        out.append((folder, file, contents))
    return out


def _data_name(part: object) -> str:
    if not isinstance(part, str) or not _DATA_NAME.fullmatch(part):
        raise TranslationError(f"invalid vmData folder or file name {str(part)[:64]!r}")
    return part


def password(value: str | None) -> str:
    if value is None or value == "":
        raise TranslationError("the password is missing")
    if len(value) > MAX_PASSWORD or _CONTROL.search(value):
        raise TranslationError("the password is too long or holds control characters")
    return value


def dhcp_subnets(dhcp: Sequence[DhcpTO]) -> list[tuple[str, int]]:
    """``(router address, prefix)`` of each DhcpTO, as DnsMasqConfigCommand lists them."""
    return [(ipv4(d.routerIp, "DhcpTO routerIp"), prefix_of(d.netmask)) for d in dhcp]


# --------------------------------------------------------------------------- part 2: the public side
#: rules in one command (CloudStack sends every rule of a network or an address)
MAX_RULES = 10_000
MAX_CIDRS = 256
_PROTOCOLS = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "all": "all"}


def _where(kind: str, index: int) -> str:
    return f"{kind}[{index}]"


def _ports(value: Sequence[int] | None, where: str) -> tuple[int, int] | None:
    """``[start]`` or ``[start, end]`` as CloudStack's ``int[]`` port ranges; None: none given."""
    if value is None or len(value) == 0:
        return None
    if len(value) > 2:
        raise TranslationError(f"{where}: a port range has one or two ports, not {len(value)}")
    start, end = value[0], value[-1]
    for p in (start, end):
        if not isinstance(p, int) or not 1 <= p <= 65535:
            raise TranslationError(f"{where}: port {str(p)[:16]} is outside 1-65535")
    if start > end:
        raise TranslationError(f"{where}: port range {start}-{end} starts after it ends")
    return (start, end)


def _protocol(value: str | None, where: str, allowed: Sequence[str]) -> str:
    proto = (value or "").strip().lower()
    if proto not in allowed:
        raise TranslationError(f"{where}.protocol: {str(value)[:16]!r} is not one of {', '.join(allowed)}")
    return _PROTOCOLS[proto]


def _cidr_list(values: Sequence[str] | None, where: str) -> tuple[str, ...]:
    items = list(values or [])
    if len(items) > MAX_CIDRS:
        raise TranslationError(f"{where}: {len(items)} CIDRs, at most {MAX_CIDRS}")
    out = []
    for i, v in enumerate(items):
        if not isinstance(v, str):
            raise TranslationError(f"{where}[{i}] is not a CIDR")
        try:
            out.append(str(ipaddress.IPv4Network(v.strip(), strict=False)))
        except ValueError:
            raise TranslationError(f"{where}[{i}]: {v[:64]!r} is not a CIDR (a.b.c.d/n)") from None
    return tuple(out)


def _rule_id(value: int | None, where: str) -> str:
    if value is None or not isinstance(value, int) or value < 0:
        raise TranslationError(f"{where}.id is missing or negative")
    return str(value)


def _count(rules: Sequence[object] | None, what: str) -> list[Any]:
    items = list(rules or [])
    if len(items) > MAX_RULES:
        raise TranslationError(f"{what}: {len(items)} rules, at most {MAX_RULES}")
    return items


def public_address(to: IpAddressTO, default_trunk: str | None, where: str = "ipAddress") -> PublicAddress:
    """An ``IpAddressTO`` the router takes: ``networkName`` is the Public traffic label (the trunk
    bridge), ``broadcastUri`` its VLAN (``vlan://untagged``: none)."""
    ip = ipv4(to.publicIp, f"{where}.publicIp")
    gateway = ipv4(to.vlanGateway, f"{where}.vlanGateway")
    try:
        prefix = prefix_of(to.vlanNetmask)
    except TranslationError as exc:
        raise TranslationError(f"{where}.vlanNetmask: {exc}") from None
    try:
        mac = normalise_mac(to.vifMacAddress)
    except TranslationError as exc:
        raise TranslationError(f"{where}.vifMacAddress: {exc}") from None
    try:
        vlan, vxlan = segment_of(to.broadcastUri)
    except TranslationError as exc:
        raise TranslationError(f"{where}.broadcastUri: {exc}") from None
    trunk = to.networkName or default_trunk or None
    if trunk is None or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,15}", trunk):
        raise TranslationError(f"{where}.networkName: invalid or missing traffic label {str(trunk)[:64]!r}")
    return PublicAddress(ip=ip, prefix=prefix, gateway=gateway, mac=mac,
                         segment=Segment(trunk=trunk, vlan=vlan, vxlan=vxlan), source_nat=bool(to.sourceNat))


def ip_assoc(cmd: IpAssocCommand, default_trunk: str | None) -> RuleChange:
    """``add`` true: take the address (and its source NAT role); false: release it and its rules."""
    adds: list[PublicAddress] = []
    release: list[str] = []
    for i, to in enumerate(_count(cmd.ipAddresses, "ipAddresses")):
        where = _where("ipAddresses", i)
        if to.add is False:
            release.append(ipv4(to.publicIp, f"{where}.publicIp"))
        else:
            adds.append(public_address(to, default_trunk, where))
    return RuleChange(addresses=tuple(adds), release=tuple(release))


def source_nat(cmd: SetSourceNatCommand, default_trunk: str | None) -> RuleChange:
    if cmd.ipAddress is None:
        raise TranslationError("SetSourceNatCommand.ipAddress is missing")
    addr = public_address(cmd.ipAddress, default_trunk)
    return RuleChange(addresses=(replace(addr, source_nat=cmd.add is not False),))


def port_forwards(cmd: SetPortForwardingRulesCommand) -> RuleChange:
    add: list[PortForward] = []
    remove: list[str] = []
    for i, r in enumerate(_count(cmd.rules, "rules")):
        where = _where("rules", i)
        rid = _rule_id(r.id, where)
        if r.revoked:
            remove.append(rid)
            continue
        public = _ports(r.srcPortRange, f"{where}.srcPortRange")
        private = _ports(r.dstPortRange, f"{where}.dstPortRange")
        if public is None or private is None:
            raise TranslationError(f"{where}: a port forward needs srcPortRange and dstPortRange")
        if public[1] - public[0] != private[1] - private[0]:
            raise TranslationError(f"{where}.dstPortRange: {private[0]}-{private[1]} is not as long as "
                                   f"srcPortRange {public[0]}-{public[1]}")
        proto = _protocol(r.protocol, where, ("tcp", "udp"))
        add.append(PortForward(rule_id=rid, public_ip=ipv4(r.srcIp, f"{where}.srcIp"),
                               protocol="tcp" if proto == "tcp" else "udp", public_ports=public,
                               private_ip=ipv4(r.dstIp, f"{where}.dstIp"), private_ports=private,
                               source_cidrs=_cidr_list(r.sourceCidrList, f"{where}.sourceCidrList")))
    return RuleChange(port_forwards=tuple(add), remove_port_forwards=tuple(remove))


def static_nats(cmd: SetStaticNatRulesCommand) -> RuleChange:
    add: list[StaticNat] = []
    remove: list[str] = []
    for i, r in enumerate(_count(cmd.rules, "rules")):
        where = _where("rules", i)
        public = ipv4(r.srcIp, f"{where}.srcIp")
        if r.revoked:
            remove.append(public)
        else:
            add.append(StaticNat(public_ip=public, private_ip=ipv4(r.dstIp, f"{where}.dstIp")))
    return RuleChange(static_nats=tuple(add), remove_static_nats=tuple(remove))


def firewall_rules(cmd: SetFirewallRulesCommand) -> RuleChange:
    """Ingress rules (``srcIp`` the public address, ``sourceCidrList`` who) or egress rules
    (``trafficType`` Egress, ``destCidrList`` where; ``defaultEgressPolicy`` the default; the
    ``System`` rule CloudStack sends for the default is not a rule here)."""
    add: list[FirewallRule] = []
    remove: list[str] = []
    egress_default: bool | None = None
    for i, r in enumerate(_count(cmd.rules, "rules")):
        where = _where("rules", i)
        egress = (r.trafficType or "").lower() == "egress"
        if egress and r.defaultEgressPolicy is not None:
            egress_default = bool(r.defaultEgressPolicy)
        if egress and (r.type or "").lower() == "system":
            # CloudStack's default egress rule (protocol all, the guest CIDR to 0.0.0.0/0, type
            # System): it carries the offering's default, it is no exception to it
            continue
        rid = _rule_id(r.id, where)
        if r.revoked:
            remove.append(rid)
            continue
        proto = _protocol(r.protocol, where, tuple(_PROTOCOLS))
        ports = _ports(r.srcPortRange, f"{where}.srcPortRange")
        if ports is not None and proto not in ("tcp", "udp"):
            raise TranslationError(f"{where}.srcPortRange: ports make no sense for protocol {proto}")
        icmp_type = r.icmpType if r.icmpType is not None and r.icmpType != -1 else None
        icmp_code = r.icmpCode if r.icmpCode is not None and r.icmpCode != -1 else None
        if proto != "icmp":
            icmp_type = icmp_code = None
        for name, value in (("icmpType", icmp_type), ("icmpCode", icmp_code)):
            if value is not None and not 0 <= value <= 255:
                raise TranslationError(f"{where}.{name}: {value} is outside 0-255 (or -1: any)")
        if egress:
            cidrs = _cidr_list(r.destCidrList, f"{where}.destCidrList")
            public_ip = None
        else:
            cidrs = _cidr_list(r.sourceCidrList, f"{where}.sourceCidrList")
            public_ip = ipv4(r.srcIp, f"{where}.srcIp")
        add.append(FirewallRule(rule_id=rid, direction="egress" if egress else "ingress",
                                protocol=proto,  # type: ignore[arg-type]
                                cidrs=cidrs, public_ip=public_ip, ports=ports, icmp_type=icmp_type,
                                icmp_code=icmp_code))
    return RuleChange(firewall=tuple(add), remove_firewall=tuple(remove), egress_default_allow=egress_default)


def load_balancers(cmd: LoadBalancerConfigCommand) -> RuleChange:
    """The whole set: revoked rules and revoked backends are left out."""
    out: list[LoadBalancer] = []
    for i, lb in enumerate(_count(cmd.loadBalancers, "loadBalancers")):
        where = _where("loadBalancers", i)
        if lb.revoked:
            continue
        public = ipv4(lb.srcIp, f"{where}.srcIp")
        port = _ports([lb.srcPort] if lb.srcPort is not None else None, f"{where}.srcPort")
        if port is None:
            raise TranslationError(f"{where}.srcPort is missing")
        _protocol(lb.protocol or "tcp", where, ("tcp",))
        algorithm = (lb.algorithm or "roundrobin").strip().lower()
        if algorithm not in ("roundrobin", "leastconn", "source"):
            raise TranslationError(f"{where}.algorithm: {algorithm[:32]!r} is not roundrobin, leastconn or source")
        dests = [d for d in _count(lb.destinations, f"{where}.destinations") if not d.revoked]
        backends = tuple(ipv4(d.destIp, f"{where}.destinations[{j}].destIp") for j, d in enumerate(dests))
        private_ports = {_ports([d.destPort] if d.destPort is not None else None,
                                f"{where}.destinations[{j}].destPort") for j, d in enumerate(dests)}
        if None in private_ports:
            raise TranslationError(f"{where}.destinations: a destination has no destPort")
        if len(private_ports) > 1:
            raise TranslationError(f"{where}.destinations: every backend listens on one port")
        private = next(iter(private_ports))[0] if private_ports else port[0]  # type: ignore[index]
        rid = lb.uuid or f"{public}:{port[0]}"
        out.append(LoadBalancer(rule_id=rid, public_ip=public, public_port=port[0], private_port=private,
                                protocol="tcp", algorithm=algorithm,  # type: ignore[arg-type]
                                backends=backends))
    return RuleChange(load_balancers=tuple(out))
