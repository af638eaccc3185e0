"""``SecurityGroupRulesCmd`` → :class:`~hvcloud.network.security_groups.NicPolicy`.

CloudStack's management server sends a VM NIC's whole rule set: ``ingressRuleSet`` and
``egressRuleSet`` of ``IpPortAndProto`` (protocol by name or IANA number; for icmp ``startPort`` is
the type and ``endPort`` the code, ``-1`` meaning any; ``allowedCidrs``), the NIC's ``guestMac``,
``guestIp`` and ``secIps``, and ``seqNum``. Every refusal is a :class:`TranslationError` naming the
wire field (``ingressRuleSet[2].allowedCidrs[0]``), raised before the driver is called, so a
malformed command changes nothing. A rule with no CIDRs (a group whose members have no address yet)
admits nothing and is left out, as CloudStack's KVM agent leaves it out.
"""

from __future__ import annotations

from hvcloud.agent.translate import TranslationError, nic_ips, normalise_mac, vm_name
from hvcloud.host_errors import InvalidRequest
from hvcloud.network.security_groups import NicPolicy, SgProtocol, SgRule
from hvcloud.network.sg_policy import MAX_CIDRS, MAX_RULES, MAX_SEQ, check_policy, parse_cidr
from hvcloud.wire.security_groups import IpPortAndProto, SecurityGroupRulesCmd

#: protocol names and the IANA numbers CloudStack also accepts for them
_PROTOCOLS: dict[str, SgProtocol] = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp",
                                     "all": "all", "-1": "all"}


def _port(value: int | None, where: str) -> int:
    if value is None or not 0 <= value <= 65535:
        raise TranslationError(f"{where}: {value!r} is not a port (0-65535)")
    return value


def _icmp(value: int | None, where: str) -> int | None:
    if value is None or value == -1:
        return None
    if not 0 <= value <= 255:
        raise TranslationError(f"{where}: {value!r} is not an ICMP type/code (0-255, -1 for any)")
    return value


def rule_of(item: IpPortAndProto, where: str) -> SgRule | None:
    """One wire rule as an :class:`SgRule`, or None when it has no CIDRs."""
    proto = _PROTOCOLS.get((item.proto or "").strip().lower())
    if proto is None:
        raise TranslationError(f"{where}.proto: {str(item.proto)[:20]!r} is not tcp, udp, icmp or all")
    cidrs = item.allowedCidrs or []
    if len(cidrs) > MAX_CIDRS:
        raise TranslationError(f"{where}.allowedCidrs: more than {MAX_CIDRS} CIDRs")
    checked: list[str] = []
    for j, cidr in enumerate(cidrs):
        try:
            checked.append(str(parse_cidr(cidr, f"{where}.allowedCidrs[{j}]")))
        except InvalidRequest as exc:
            raise TranslationError(str(exc)) from None
    if not checked:
        return None
    if proto in ("tcp", "udp"):
        start = _port(item.startPort, f"{where}.startPort")
        end = _port(item.endPort, f"{where}.endPort")
        if start > end:
            raise TranslationError(f"{where}: startPort {start} is above endPort {end}")
        return SgRule(proto, tuple(checked), ports=(start, end))
    if proto == "icmp":
        icmp_type = _icmp(item.startPort, f"{where}.startPort")
        icmp_code = _icmp(item.endPort, f"{where}.endPort")
        if icmp_type is None and icmp_code is not None:
            raise TranslationError(f"{where}: an ICMP code ({icmp_code}) needs a type (startPort)")
        return SgRule("icmp", tuple(checked), icmp_type=icmp_type, icmp_code=icmp_code)
    return SgRule("all", tuple(checked))


def _rules(items: list[IpPortAndProto] | None, field: str) -> tuple[SgRule, ...]:
    items = items or []
    if len(items) > MAX_RULES:
        raise TranslationError(f"{field}: more than {MAX_RULES} rules")
    out = [rule_of(item, f"{field}[{i}]") for i, item in enumerate(items)]
    return tuple(r for r in out if r is not None)


def policy_of(cmd: SecurityGroupRulesCmd) -> tuple[str, NicPolicy]:
    """(VM name, policy) of the command; TranslationError naming the field otherwise."""
    name = vm_name(cmd.vmName)
    if not cmd.guestMac:
        raise TranslationError("guestMac: the command names no NIC (MAC address missing)")
    try:
        mac = normalise_mac(cmd.guestMac)
    except TranslationError:
        raise TranslationError(f"guestMac: {cmd.guestMac[:40]!r} is not a MAC address") from None
    ips = nic_ips(cmd.guestIp, cmd.secIps, fields=("guestIp", "secIps"))
    seq = cmd.seqNum if cmd.seqNum is not None else 0
    if not 0 <= seq <= MAX_SEQ:
        raise TranslationError(f"seqNum: {seq} is not a sequence number")
    policy = NicPolicy(mac=mac, ips=ips, ingress=_rules(cmd.ingressRuleSet, "ingressRuleSet"),
                       egress=_rules(cmd.egressRuleSet, "egressRuleSet"), seq=seq)
    try:
        check_policy(policy)
    except InvalidRequest as exc:
        raise TranslationError(str(exc)) from None
    return name, policy
