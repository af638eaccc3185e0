"""Security groups enforced at each VM's bridge port with nftables, as CloudStack's KVM agent
enforces them with iptables/ebtables (``security_group.py``).

**Why two tables.** Anti-spoofing needs the bridge port and the Ethernet header, which only the
``bridge`` family sees; admitting *new* connections while letting replies through needs conntrack,
which the ``bridge`` family only has with ``nf_conntrack_bridge`` (absent from many kernels,
including the one these tests run on). So, as CloudStack does with ``br_netfilter``:

* ``table bridge hvsg``: ``prerouting`` sends frames *from* a VM port (``iifname`` in the map
  ``from_vm``) to its chain ``p<n>-out``: the frame must carry the NIC's MAC, ARP must claim its
  MAC and one of its addresses (or 0.0.0.0, a DHCP client's probe), IPv4 must come from one of its
  addresses (set ``p<n>-ips``) or be a DHCP request from 0.0.0.0; everything else (other
  ethertypes, IPv6, VLAN tags) is dropped. The chain also writes the port's number ``n`` into the
  low 16 bits of the packet mark. ``forward`` writes ``n << 16`` for frames going *to* a VM port
  (map ``to_vm``), so the IP layer knows both ports.
* ``table inet hvsg``: the bridge's ``nf_call_iptables``/``nf_call_ip6tables`` options (set per
  bridge, only on bridges with a security-group port) make ``br_netfilter`` pass bridged IP
  packets through the ``inet`` hooks *with conntrack*. ``forward``: packets without our mark are
  not ours; established/related ones pass; a new one runs the sender's egress chain ``eg<n>``
  (``return`` when allowed, ``drop`` otherwise; an empty policy egress allows everything) and then
  the receiver's ingress chain ``in<n>`` (DHCP replies, then the rules, then ``drop``: default
  deny). ``input`` applies the sender's egress rules to packets for the host itself.

A rule's CIDRs are one interval set per family (``in<n>r<k>``, ``in<n>r<k>6``), so a policy of
a thousand CIDRs is a handful of rules, and a policy change is **one** ``nft -f`` transaction that
replaces the port's chains and sets whole: packets see the old policy or the new, never half.
The port's address set ``bridge hvsg p<n>-ips`` carries its tap, MAC and policy ``seq`` in the
set's comment, so a restarted agent finds the state in the kernel, which is the only truth.

**Why no ``add element`` on a change.** ``nft`` fetches the elements of the table's sets before it
adds an element to any existing set or map (about 140 ms with 200 ports of 100 CIDRs each, growing
with the ruleset), while a set created whole with its elements costs the same at any size. So a
change recreates the port's sets (deleted and added in the same transaction) and touches the
shared maps only when a port is new or goes away.

Not covered: packets the host itself sends to a VM (they leave through the bridge's output hook,
which has no conntrack here) are not filtered by the VM's ingress rules; guests get no IPv6.
The marks' 32 bits are ours on packets bridged from or to a security-group port.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from hvcloud import logs
from hvcloud.host_errors import HostError
from hvcloud.network.bridges import validate_ifname
from hvcloud.network.security_groups import NicPolicy, SgRule
from hvcloud.network.sg_policy import check_ips, check_mac, check_policy, split_cidrs

log = logs.get(__name__)

TABLE = "hvsg"
MAX_PORTS = 0xFFFF
#: runs an argument list with optional stdin and returns stdout; raises SgError on failure
Runner = Callable[[Sequence[str], str | None], str]
_SET_NAME = re.compile(r"^(in|eg)(\d+)r(\d+)6?$")


class SgError(HostError):
    """nftables or ``ip`` refused what the enforcer asked; the message carries their complaint."""


def run_command(argv: Sequence[str], stdin: str | None = None) -> str:
    try:
        proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False,  # noqa: S603
                              timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SgError(f"{' '.join(argv[:4])} failed: {exc}") from None
    if proc.returncode != 0:
        raise SgError(f"{' '.join(argv[:4])} failed: {proc.stderr.strip()[:2000]}")
    return proc.stdout


@dataclass
class PortState:
    """What the enforcer knows of one VM port (all of it is also in the kernel's ruleset)."""

    tap: str
    n: int
    mac: str
    seq: int = -1
    #: names of the rule sets in the inet table that belong to this port now
    sets: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- rendering (pure)


def base_ruleset() -> list[str]:
    """The tables, base chains and maps; every statement is idempotent (``add``)."""
    b, i = f"bridge {TABLE}", f"inet {TABLE}"
    return [
        f"add table {b}",
        f"add map {b} from_vm {{ type ifname : verdict; }}",
        f"add map {b} to_vm {{ type ifname : verdict; }}",
        f"add chain {b} prerouting {{ type filter hook prerouting priority -300; policy accept; }}",
        f"add chain {b} forward {{ type filter hook forward priority -200; policy accept; }}",
        f"add table {i}",
        f"add map {i} egress {{ type mark : verdict; }}",
        f"add map {i} ingress {{ type mark : verdict; }}",
        f"add chain {i} forward {{ type filter hook forward priority 0; policy accept; }}",
        f"add chain {i} input {{ type filter hook input priority 0; policy accept; }}",
    ]


def base_rules() -> list[str]:
    """The base chains' rules, written once when the tables are made (after a flush of each)."""
    b, i = f"bridge {TABLE}", f"inet {TABLE}"
    return [
        f"flush chain {b} prerouting", f"add rule {b} prerouting iifname vmap @from_vm",
        f"flush chain {b} forward", f"add rule {b} forward oifname vmap @to_vm",
        f"flush chain {i} forward",
        f"add rule {i} forward meta mark 0 return",
        f"add rule {i} forward ct state established,related accept",
        f"add rule {i} forward ct state invalid drop",
        f"add rule {i} forward meta mark & 0x0000ffff vmap @egress",
        f"add rule {i} forward meta mark & 0xffff0000 vmap @ingress",
        f"flush chain {i} input",
        f"add rule {i} input meta mark & 0x0000ffff == 0 return",
        f"add rule {i} input ct state established,related accept",
        f"add rule {i} input meta mark & 0x0000ffff vmap @egress",
    ]


def _q(text: str) -> str:
    """An nft string literal; callers pass validated interface names and comments only."""
    if '"' in text or "\\" in text or "\n" in text:
        raise SgError(f"refusing to quote {text[:40]!r}")
    return f'"{text}"'


def port_comment(tap: str, mac: str, seq: int) -> str:
    return f"tap={tap} mac={mac} seq={seq}"


def parse_port_comment(text: str) -> tuple[str, str, int] | None:
    m = re.fullmatch(r"tap=([A-Za-z0-9_.:-]{1,15}) mac=([0-9a-f:]{17}) seq=(-?\d{1,19})", text or "")
    return (m.group(1), m.group(2), int(m.group(3))) if m else None


def _match(rule: SgRule, family: str, direction: str, set_name: str) -> str:
    """The match part of one rule for one address family (``ip``/``ip6``)."""
    side = "saddr" if direction == "in" else "daddr"
    parts = [f"{family} {side} @{set_name}"]
    if rule.protocol in ("tcp", "udp"):
        parts.append(f"meta l4proto {rule.protocol}")
        if rule.ports is not None:
            start, end = rule.ports
            parts.append(f"th dport {start}" if start == end else f"th dport {start}-{end}")
    elif rule.protocol == "icmp":
        proto = "icmp" if family == "ip" else "icmpv6"
        parts.append(f"meta l4proto {'icmp' if family == 'ip' else 'ipv6-icmp'}")
        if rule.icmp_type is not None:
            parts.append(f"{proto} type {rule.icmp_type}")
        if rule.icmp_code is not None:
            parts.append(f"{proto} code {rule.icmp_code}")
    return " ".join(parts)


def render_rules(n: int, direction: str, rules: Sequence[SgRule]) -> tuple[list[str], list[str]]:
    """(statements, set names) filling chain ``in<n>``/``eg<n>`` and its sets. The chain must
    already exist and be flushed."""
    i = f"inet {TABLE}"
    chain = f"{direction}{n}"
    verdict = "accept" if direction == "in" else "return"
    out: list[str] = []
    sets: list[str] = []
    if direction == "in":
        out.append(f"add rule {i} {chain} meta l4proto udp th sport 67 th dport 68 accept")
    else:
        out.append(f"add rule {i} {chain} meta l4proto udp th sport 68 th dport 67 return")
    for k, rule in enumerate(rules):
        v4, v6 = split_cidrs(rule.cidrs)
        for family, nets, suffix, typ in (("ip", v4, "", "ipv4_addr"), ("ip6", v6, "6", "ipv6_addr")):
            if not nets:
                continue
            name = f"{chain}r{k}{suffix}"
            sets.append(name)
            out.append(f"add set {i} {name} {{ type {typ}; flags interval; elements = {{ {', '.join(nets)} }}; }}")
            out.append(f"add rule {i} {chain} {_match(rule, family, direction, name)} {verdict}")
    if direction == "in" or rules:
        out.append(f"add rule {i} {chain} drop")
    return out, sets


def render_port(old: PortState | None, new: PortState, ips: Sequence[str],
                ingress: Sequence[SgRule], egress: Sequence[SgRule]) -> tuple[list[str], list[str]]:
    """One port's whole state as one transaction (after :func:`base_ruleset`): its chains are
    flushed and refilled, its sets deleted and made again with their elements, the shared maps
    written only for a new port. Returns (statements, the port's new rule-set names)."""
    b, i = f"bridge {TABLE}", f"inet {TABLE}"
    n, tap, mac = new.n, _q(new.tap), new.mac
    out = [f"add chain {b} p{n}-out", f"flush chain {b} p{n}-out",
           f"add chain {b} p{n}-in", f"flush chain {b} p{n}-in",
           f"add chain {i} in{n}", f"flush chain {i} in{n}",
           f"add chain {i} eg{n}", f"flush chain {i} eg{n}"]
    if old is not None:
        out.append(f"delete set {b} p{n}-ips")
        out += [f"delete set {i} {name}" for name in old.sets]
    elements = f" elements = {{ {', '.join(ips)} }};" if ips else ""
    out.append(f"add set {b} p{n}-ips {{ type ipv4_addr; comment {_q(port_comment(new.tap, mac, new.seq))};"
               f"{elements} }}")
    out += [
        f"add rule {b} p{n}-out ether saddr != {mac} drop",
        f"add rule {b} p{n}-out meta mark set meta mark & 0xffff0000 | {n:#x}",
        f"add rule {b} p{n}-out ether type arp arp saddr ether != {mac} drop",
        f"add rule {b} p{n}-out ether type arp arp saddr ip @p{n}-ips accept",
        f"add rule {b} p{n}-out ether type arp arp saddr ip 0.0.0.0 accept",
        f"add rule {b} p{n}-out ether type ip ip saddr @p{n}-ips accept",
        f"add rule {b} p{n}-out ether type ip ip saddr 0.0.0.0 ip daddr 255.255.255.255 "
        "udp sport 68 udp dport 67 accept",
        f"add rule {b} p{n}-out drop",
        f"add rule {b} p{n}-in meta mark set meta mark & 0x0000ffff | {n << 16:#x}",
    ]
    ing, ing_sets = render_rules(n, "in", ingress)
    eg, eg_sets = render_rules(n, "eg", egress)
    out += ing + eg
    if old is None:
        out += [
            f"add element {b} from_vm {{ {tap} : jump p{n}-out }}",
            f"add element {b} to_vm {{ {tap} : jump p{n}-in }}",
            f"add element {i} egress {{ {n:#x} : jump eg{n} }}",
            f"add element {i} ingress {{ {n << 16:#x} : jump in{n} }}",
        ]
    return out, ing_sets + eg_sets


def render_removal(port: PortState) -> list[str]:
    b, i = f"bridge {TABLE}", f"inet {TABLE}"
    n, tap = port.n, _q(port.tap)
    return [
        f"delete element {b} from_vm {{ {tap} }}", f"delete element {b} to_vm {{ {tap} }}",
        f"delete element {i} egress {{ {n:#x} }}", f"delete element {i} ingress {{ {n << 16:#x} }}",
        f"flush chain {b} p{n}-out", f"delete chain {b} p{n}-out",
        f"flush chain {b} p{n}-in", f"delete chain {b} p{n}-in",
        f"delete set {b} p{n}-ips",
        f"flush chain {i} in{n}", f"delete chain {i} in{n}",
        f"flush chain {i} eg{n}", f"delete chain {i} eg{n}",
        *[f"delete set {i} {name}" for name in port.sets],
    ]


# --------------------------------------------------------------------------- the enforcer


class NftSecurityGroups:
    """The host's security-group ports. Thread-safe; each change is one ``nft -f``.

    ``netns`` runs every command inside that network namespace (tests and benches use one as the
    "host"); production passes None.
    """

    def __init__(self, netns: str | None = None, runner: Runner = run_command) -> None:
        if netns is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", netns):
            raise SgError(f"invalid network namespace name {netns!r}")
        self._prefix = ["ip", "netns", "exec", netns] if netns else []
        self._run = runner
        self._lock = threading.Lock()
        self._ports: dict[str, PortState] | None = None
        self._base_done = False
        #: how many nft transactions this object loaded (benches and tests read it)
        self.loads = 0

    # ---------------------------------------------------------------- kernel I/O

    def _nft(self, script: str) -> None:
        self._run([*self._prefix, "nft", "-f", "-"], script)
        self.loads += 1

    def _nft_json(self, *args: str) -> list[dict[str, object]]:
        try:
            out = self._run([*self._prefix, "nft", "-j", *args], None)
        except SgError:
            return []
        try:
            doc = json.loads(out or "{}")
        except json.JSONDecodeError:
            raise SgError("nft printed JSON that does not parse") from None
        items = doc.get("nftables", []) if isinstance(doc, dict) else []
        return [x for x in items if isinstance(x, dict)]

    def _load_state(self) -> dict[str, PortState]:
        """Ports as the kernel holds them: the comments of the ``p<n>-ips`` sets, and the rule sets."""
        ports: dict[str, PortState] = {}
        by_n: dict[int, PortState] = {}
        for item in self._nft_json("-t", "list", "table", "bridge", TABLE):
            s = item.get("set")
            if not isinstance(s, dict):
                continue
            m = re.fullmatch(r"p(\d{1,5})-ips", str(s.get("name", "")))
            parsed = parse_port_comment(str(s.get("comment", "")))
            if m is None or parsed is None:
                continue
            state = PortState(tap=parsed[0], n=int(m.group(1)), mac=parsed[1], seq=parsed[2])
            ports[state.tap] = state
            by_n[state.n] = state
        for item in self._nft_json("-t", "list", "table", "inet", TABLE):
            s = item.get("set")
            if isinstance(s, dict) and isinstance(s.get("name"), str):
                m2 = _SET_NAME.match(str(s["name"]))
                if m2 and int(m2.group(2)) in by_n:
                    by_n[int(m2.group(2))].sets.append(str(s["name"]))
        return ports

    def _state(self) -> dict[str, PortState]:
        if self._ports is None:
            self._ports = self._load_state()
        return self._ports

    def _bridge_of(self, tap: str) -> str:
        out = self._run([*self._prefix, "ip", "-j", "-d", "link", "show", "dev", validate_ifname(tap)], None)
        try:
            info = json.loads(out or "[]")[0]
        except (json.JSONDecodeError, IndexError, KeyError, TypeError):
            raise SgError(f"port {tap}: ip printed no link") from None
        master = info.get("master")
        if not master or info.get("linkinfo", {}).get("info_slave_kind") != "bridge":
            raise SgError(f"port {tap} is not a bridge port")
        return str(master)

    def _enable_bridge_netfilter(self, bridge: str) -> None:
        """Bridged IP packets of this bridge go through the inet hooks (with conntrack)."""
        out = self._run([*self._prefix, "ip", "-j", "-d", "link", "show", "dev", validate_ifname(bridge)], None)
        try:
            data = json.loads(out or "[]")[0]["linkinfo"]["info_data"]
        except (json.JSONDecodeError, IndexError, KeyError, TypeError):
            data = {}
        if data.get("nf_call_iptables") == 1 and data.get("nf_call_ip6tables") == 1:
            return
        self._run([*self._prefix, "ip", "link", "set", "dev", bridge, "type", "bridge",
                   "nf_call_iptables", "1", "nf_call_ip6tables", "1"], None)

    # ---------------------------------------------------------------- operations

    def ports(self) -> dict[str, PortState]:
        """A copy of every port's state."""
        with self._lock:
            return {k: PortState(v.tap, v.n, v.mac, v.seq, list(v.sets)) for k, v in self._state().items()}

    def resync(self) -> None:
        """Forget what this object knows and read the kernel again."""
        with self._lock:
            self._ports = None
            self._base_done = False

    def _free_n(self, ports: Iterable[PortState]) -> int:
        used = {p.n for p in ports}
        for n in range(1, MAX_PORTS + 1):
            if n not in used:
                return n
        raise SgError(f"more than {MAX_PORTS} security-group ports on this host")

    def _apply(self, tap: str, mac: str, ips: Sequence[str], ingress: Sequence[SgRule],
               egress: Sequence[SgRule], seq: int, reset: bool) -> bool:
        validate_ifname(tap)
        self._enable_bridge_netfilter(self._bridge_of(tap))
        for attempt in (0, 1):
            ports = self._state()
            old = ports.get(tap)
            if old is not None and not reset and seq < old.seq:
                log.info("sg.policy_ignored", tap=tap, seq=seq, in_force=old.seq)
                return False
            n = old.n if old is not None else self._free_n(ports.values())
            new = PortState(tap=tap, n=n, mac=mac, seq=seq)
            stmts, sets = render_port(old, new, ips, ingress, egress)
            # the base tables once per enforcer (or after a failure): a ruleset flushed behind our
            # back makes the load fail, and the retry below writes them again
            head = [] if self._base_done else base_ruleset() + base_rules()
            try:
                self._nft("\n".join(head + stmts) + "\n")
            except SgError:
                if attempt:
                    raise
                # the kernel's ruleset is not what we thought (flushed by hand, another agent):
                # read it again and retry once
                self._ports = None
                self._base_done = False
                continue
            self._base_done = True
            new.sets = sets
            ports[tap] = new
            return True
        return False  # pragma: no cover - the loop returns or raises

    def apply_defaults(self, tap: str, mac: str, ips: Sequence[str]) -> None:
        """Anti-spoofing and default deny for a port that has just appeared (VM start, NIC plug):
        whatever the port had before (a previous VM's tap of that name) is replaced."""
        check_mac(mac)
        addrs = check_ips(ips)
        with self._lock:
            self._apply(tap, mac, addrs, (), (), seq=-1, reset=True)
        log.info("sg.defaults_applied", tap=tap, mac=mac)

    def apply_policy(self, tap: str, policy: NicPolicy) -> bool:
        """Enforce ``policy`` on ``tap``; False (nothing changed) when a newer one is in force."""
        check_policy(policy)
        addrs = check_ips(policy.ips)
        with self._lock:
            applied = self._apply(tap, policy.mac, addrs, policy.ingress, policy.egress, policy.seq, reset=False)
        if applied:
            log.info("sg.policy_applied", tap=tap, seq=policy.seq, ingress=len(policy.ingress),
                     egress=len(policy.egress))
        return applied

    def remove(self, tap: str) -> None:
        """Drop the port's rules; a port we do not hold is not an error."""
        with self._lock:
            ports = self._state()
            port = ports.get(tap)
            if port is None:
                return
            try:
                self._nft("\n".join(render_removal(port)) + "\n")
            except SgError:
                self._ports = None
                if tap in self._state():
                    raise
            ports.pop(tap, None)
        log.info("sg.port_removed", tap=tap)

    def follow_bridge(self, tap: str) -> None:
        """The tap joined another bridge: give that bridge the netfilter options (a port we do not
        hold is left alone)."""
        if self.holds(tap):
            self._enable_bridge_netfilter(self._bridge_of(tap))

    def holds(self, tap: str) -> bool:
        """Whether ``tap`` has security-group rules (read from the kernel the first time)."""
        with self._lock:
            return tap in self._state()

    def seq_of(self, tap: str) -> int | None:
        with self._lock:
            port = self._state().get(tap)
            return None if port is None else port.seq
