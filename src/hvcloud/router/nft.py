"""The router's public side in nftables: one table ``ip hvr`` in the router's namespace.

Layout (``eth0`` guest side, ``eth1`` public side)::

    set  pubaddrs     the public addresses the router holds
    map  pf           daddr . l4proto . dport -> guest addr . port   (single ports and shifted ranges: one
                      exact element a port)
    map  pfk          daddr . l4proto . dport range -> guest addr    (ranges kept as they are: one element)
    map  static_in    public -> guest (DNAT)      map static_out  guest -> public (SNAT)
    map  srcnat       guest CIDR -> the source NAT address
    chain ingress     prerouting filter: established/related pass, new connections to a public address
                      go through fw_in (one rule per firewall rule, in fwi_0..31), the rest is dropped
    chain forward_    guest -> outside: fw_out (one rule per egress rule, in fwo_0..31, verdict in
                      egress_exc), then egress_dflt (one rule: the default)

Port forwards and static NAT are map elements. Firewall rules are chain rules (one each, found
again by the ``fw:<id>`` comment and removed by handle) because their match intervals may overlap,
which an interval set refuses. Either way a change is one ``nft -f`` transaction whose size is
what the change holds, never what the router holds; the full ruleset is written only when a
router starts or is recovered (or when the kernel's table no longer matches the book).
"""

from __future__ import annotations

import json
import subprocess
import zlib
from dataclasses import dataclass, field

from hvcloud.router.api import FirewallRule, PortForward, RouterError, RouterSpec
from hvcloud.router.public import PublicBook, Touched
from hvcloud.router.validation import network

TABLE = "hvr"
GUEST_IF = "eth0"
PUBLIC_IF = "eth1"
#: firewall rules are spread over this many chains per direction (by a hash of the rule id), all
#: jumped to in turn: matching is the same, but learning the handle of an added rule (to remove
#: it later) lists one bucket's rules, not all of them
BUCKETS = 32


def _pf_elements(f: PortForward) -> tuple[str, list[str]]:
    """(``pf`` or ``pfk``, its elements) of one port forward. A single port, or a range shifted to
    other ports, is exact-match elements of ``pf`` (a hash: adding one costs the same whatever the
    map holds); a range kept as it is, one interval element of ``pfk``."""
    (ps, pe), (qs, _) = f.public_ports, f.private_ports
    if ps == qs and ps != pe:
        return "pfk", [f"{f.public_ip} . {f.protocol} . {ps}-{pe} : {f.private_ip}"]
    return "pf", [f"{f.public_ip} . {f.protocol} . {p} : {f.private_ip} . {qs + p - ps}" for p in range(ps, pe + 1)]


def _pf_keys(f: PortForward) -> tuple[str, list[str]]:
    m, elements = _pf_elements(f)
    return m, [e.split(" : ")[0] for e in elements]


def _proto_match(r: FirewallRule) -> str:
    if r.protocol == "all":
        return ""
    parts = [f"meta l4proto {r.protocol}"]
    if r.ports is not None:
        a, b = r.ports
        parts.append(f"th dport {a}" if a == b else f"th dport {a}-{b}")
    if r.icmp_type is not None:
        parts.append(f"icmp type {r.icmp_type}")
        if r.icmp_code is not None:
            parts.append(f"icmp code {r.icmp_code}")
    return " ".join(parts)


def _cidr_match(key: str, cidrs: tuple[str, ...]) -> str:
    if "0.0.0.0/0" in cidrs:
        return ""
    return f"{key} {{ {', '.join(cidrs)} }}"


def bucket(rule_id: str) -> int:
    return zlib.crc32(rule_id.encode()) % BUCKETS


def firewall_rule(r: FirewallRule) -> tuple[str, str]:
    """(chain, rule text) of one firewall rule: ``fwi_<bucket>`` (ingress) or ``fwo_<bucket>``."""
    if r.direction == "ingress":
        parts = [f"ip daddr {r.public_ip}", _cidr_match("ip saddr", r.cidrs), _proto_match(r), "accept"]
        chain = f"fwi_{bucket(r.rule_id)}"
    else:
        parts = [_cidr_match("ip daddr", r.cidrs), _proto_match(r), "goto egress_exc"]
        chain = f"fwo_{bucket(r.rule_id)}"
    body = " ".join(p for p in parts if p)
    return chain, f'{body} comment "fw:{r.rule_id}"'


def _verdict(allow: bool) -> str:
    return "accept" if allow else "drop"


def full(spec: RouterSpec, book: PublicBook) -> str:
    """The whole table, replacing any previous one in the same transaction."""
    guest = network(spec)
    elements: dict[str, list[str]] = {"pubaddrs": list(book.addresses), "pf": [], "pfk": [],
                                      "static_in": [], "static_out": [], "srcnat": []}
    for f in book.forwards.values():
        m, items = _pf_elements(f)
        elements[m] += items
    for s in book.statics.values():
        elements["static_in"].append(f"{s.public_ip} : {s.private_ip}")
        elements["static_out"].append(f"{s.private_ip} : {s.public_ip}")
    snat = book.source_nat()
    if snat is not None:
        elements["srcnat"].append(f"{guest} : {snat.ip}")

    def els(name: str) -> str:
        return f"elements = {{ {', '.join(elements[name])} }}" if elements[name] else ""

    chains: dict[str, list[str]] = {f"{d}_{i}": [] for d in ("fwi", "fwo") for i in range(BUCKETS)}
    for r in book.firewall.values():
        chain, text = firewall_rule(r)
        chains[chain].append(text)
    bucket_lines = []
    for chain, rules in chains.items():
        bucket_lines += [f"  chain {chain} {{", *[f"    {r}" for r in rules], "  }"]
    allow = book.egress_default_allow
    lines = [
        f"table ip {TABLE} {{}}",
        f"delete table ip {TABLE}",
        f"table ip {TABLE} {{",
        f"  set pubaddrs {{ type ipv4_addr; {els('pubaddrs')} }}",
        f"  map pf {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; {els('pf')} }}",
        f"  map pfk {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr; flags interval; {els('pfk')} }}",
        f"  map static_in {{ type ipv4_addr : ipv4_addr; {els('static_in')} }}",
        f"  map static_out {{ type ipv4_addr : ipv4_addr; {els('static_out')} }}",
        f"  map srcnat {{ type ipv4_addr : ipv4_addr; flags interval; {els('srcnat')} }}",
        *bucket_lines,
        "  chain fw_in {",
        *[f"    jump fwi_{i}" for i in range(BUCKETS)],
        "  }",
        "  chain fw_out {",
        *[f"    jump fwo_{i}" for i in range(BUCKETS)],
        "  }",
        f"  chain egress_exc {{ {_verdict(not allow)}; }}",
        f"  chain egress_dflt {{ {_verdict(allow)}; }}",
        "  chain ingress {",
        "    type filter hook prerouting priority -150; policy accept;",
        f'    iifname "{PUBLIC_IF}" ip daddr @pubaddrs ct state established,related accept',
        f'    iifname "{PUBLIC_IF}" ip daddr @pubaddrs ct state new jump fw_in',
        f'    iifname "{PUBLIC_IF}" ip daddr @pubaddrs drop',
        "  }",
        "  chain dnat_ {",
        "    type nat hook prerouting priority dstnat; policy accept;",
        f'    iifname "{PUBLIC_IF}" meta l4proto {{ tcp, udp }} dnat ip to ip daddr . meta l4proto . th dport map @pf',
        f'    iifname "{PUBLIC_IF}" meta l4proto {{ tcp, udp }} dnat ip to ip daddr . meta l4proto . th dport map @pfk',
        f'    iifname "{PUBLIC_IF}" dnat ip to ip daddr map @static_in',
        "  }",
        "  chain snat_ {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        f'    oifname "{PUBLIC_IF}" snat ip to ip saddr map @static_out',
        f'    oifname "{PUBLIC_IF}" snat ip to ip saddr map @srcnat',
        "  }",
        "  chain forward_ {",
        "    type filter hook forward priority filter; policy drop;",
        "    ct state established,related accept",
        f'    iifname "{GUEST_IF}" oifname "{PUBLIC_IF}" ip saddr {guest} ct state new jump fw_out',
        f'    iifname "{GUEST_IF}" oifname "{PUBLIC_IF}" ip saddr {guest} ct state new goto egress_dflt',
        f'    iifname "{PUBLIC_IF}" oifname "{GUEST_IF}" ct status dnat accept',
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class Delta:
    """One change as nft commands; ``removed_rules``/``added_rules``: firewall rule ids whose chain
    rules go (by handle) or come (their handles are read when they are next removed)."""

    commands: list[str] = field(default_factory=list)
    removed_rules: list[str] = field(default_factory=list)
    added_rules: list[str] = field(default_factory=list)


def delta(spec: RouterSpec, old: PublicBook, new: PublicBook, touched: Touched,
          handles: dict[str, int]) -> Delta:
    """The commands that turn the table of ``old`` into that of ``new``; only ``touched`` keys
    are compared. Raises KeyError when a firewall rule to remove has no known handle (the caller
    renders the full ruleset then)."""
    out = Delta()
    cmds = out.commands
    guest = network(spec)

    def elem(verb: str, name: str, items: list[str]) -> None:
        if items:
            cmds.append(f"{verb} element ip {TABLE} {name} {{ {', '.join(items)} }}")

    for ip in sorted(touched.addresses):
        if ip in old.addresses and ip not in new.addresses:
            elem("delete", "pubaddrs", [ip])
        elif ip in new.addresses and ip not in old.addresses:
            elem("add", "pubaddrs", [ip])
    old_snat, new_snat = old.source_nat(), new.source_nat()
    if (old_snat and old_snat.ip) != (new_snat and new_snat.ip):
        if old_snat is not None:
            elem("delete", "srcnat", [str(guest)])
        if new_snat is not None:
            elem("add", "srcnat", [f"{guest} : {new_snat.ip}"])
    for rid in sorted(touched.forwards):
        before, after = old.forwards.get(rid), new.forwards.get(rid)
        if before == after:
            continue
        if before is not None:
            m, keys = _pf_keys(before)
            elem("delete", m, keys)
        if after is not None:
            m, els = _pf_elements(after)
            elem("add", m, els)
    for ip in sorted(touched.statics):
        s0, s1 = old.statics.get(ip), new.statics.get(ip)
        if s0 == s1:
            continue
        if s0 is not None:
            elem("delete", "static_in", [s0.public_ip])
            elem("delete", "static_out", [s0.private_ip])
        if s1 is not None:
            elem("add", "static_in", [f"{s1.public_ip} : {s1.private_ip}"])
            elem("add", "static_out", [f"{s1.private_ip} : {s1.public_ip}"])
    for rid in sorted(touched.firewall):
        r0, r1 = old.firewall.get(rid), new.firewall.get(rid)
        if r0 == r1:
            continue
        if r0 is not None:
            chain = firewall_rule(r0)[0]
            cmds.append(f"delete rule ip {TABLE} {chain} handle {handles[rid]}")
            out.removed_rules.append(rid)
        if r1 is not None:
            chain, text = firewall_rule(r1)
            cmds.append(f"add rule ip {TABLE} {chain} {text}")
            out.added_rules.append(rid)
    if touched.egress_default:
        allow = new.egress_default_allow
        cmds += [f"flush chain ip {TABLE} egress_exc", f"add rule ip {TABLE} egress_exc {_verdict(not allow)}",
                 f"flush chain ip {TABLE} egress_dflt", f"add rule ip {TABLE} egress_dflt {_verdict(allow)}"]
    return out


class Nft:
    """Runs ``nft`` in a namespace."""

    def __init__(self, binary: str = "nft") -> None:
        self._nft = binary

    def _run(self, ns: str, args: list[str], script: str | None = None) -> str:
        argv = ["ip", "netns", "exec", ns, self._nft, *args]
        proc = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=120,  # noqa: S603
                              check=False)
        if proc.returncode != 0:
            raise RouterError(f"nft failed in {ns}: {proc.stderr.strip()[-600:]}")
        return proc.stdout

    def load(self, ns: str, script: str) -> None:
        """One transaction."""
        if script.strip():
            self._run(ns, ["-f", "-"], script)

    def handles(self, ns: str, chain: str | None = None) -> dict[str, int]:
        """The firewall rules' handles by rule id: of one chain, or of the whole table."""
        what = ["chain", "ip", TABLE, chain] if chain else ["table", "ip", TABLE]
        out = self._run(ns, ["-j", "-a", "list", *what])
        found: dict[str, int] = {}
        for item in json.loads(out or "{}").get("nftables", []):
            rule = item.get("rule")
            comment = str((rule or {}).get("comment", ""))
            if rule and comment.startswith("fw:"):
                found[comment[3:]] = int(rule["handle"])
        return found

    def delete_table(self, ns: str) -> None:
        self.load(ns, f"table ip {TABLE} {{}}\ndelete table ip {TABLE}\n")
