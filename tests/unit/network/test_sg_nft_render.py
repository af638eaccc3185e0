"""The nftables enforcer without a kernel: what it loads, how often, and what it reads back."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from hvcloud.network.security_groups import NicPolicy, SgRule
from hvcloud.network.sg_nft import NftSecurityGroups, SgError, parse_port_comment, port_comment, render_port
from hvcloud.network.sg_policy import PolicyError

MAC = "02:00:00:00:00:01"
LINK = json.dumps([{"ifname": "tap1", "master": "br0", "linkinfo": {"info_slave_kind": "bridge"}}])
BRIDGE = json.dumps([{"ifname": "br0", "linkinfo": {"info_kind": "bridge",
                                                     "info_data": {"nf_call_iptables": 1, "nf_call_ip6tables": 1}}}])


class FakeKernel:
    """Answers the enforcer's ``ip``/``nft`` calls; records what it loads."""

    def __init__(self, bridge_json: str = '{"nftables": []}', table_json: str = '{"nftables": []}') -> None:
        self.loaded: list[str] = []
        self.bridge_json, self.table_json = bridge_json, table_json
        self.fail_next = False
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], stdin: str | None) -> str:
        args = list(argv)
        self.calls.append(args)
        if args[:3] == ["ip", "-j", "-d"]:
            return LINK if args[-1].startswith("tap") else BRIDGE
        if args[:2] == ["nft", "-f"]:
            assert stdin is not None
            if self.fail_next:
                self.fail_next = False
                raise SgError("nft: No such file or directory")
            self.loaded.append(stdin)
            return ""
        if args[:3] == ["nft", "-j", "-t"]:
            return self.bridge_json if args[-2] == "bridge" else self.table_json
        raise AssertionError(f"unexpected command {args}")


def pol(*ingress: SgRule, seq: int = 1, egress: tuple[SgRule, ...] = ()) -> NicPolicy:
    return NicPolicy(mac=MAC, ips=("10.0.0.5",), ingress=ingress, egress=egress, seq=seq)


def test_one_policy_is_one_load_whatever_its_size() -> None:
    k = FakeKernel()
    sg = NftSecurityGroups(runner=k)
    cidrs = tuple(f"10.{i // 128}.{i % 128 * 2}.0/24" for i in range(1000))   # none adjacent: no merging
    assert sg.apply_policy("tap1", pol(SgRule("tcp", cidrs, (80, 80)), SgRule("udp", cidrs, (53, 53))))
    assert len(k.loaded) == 1 and sg.loads == 1
    script = k.loaded[0]
    # two sets, a handful of rules: the CIDRs are set elements, not rules
    assert script.count("add set inet hvsg in1r") == 2
    assert script.count("add rule inet hvsg in1 ") == 4   # dhcp reply, tcp, udp, drop
    assert "10.7.206.0/24" in script and script.count("10.0.2.0/24") == 2


def test_older_seq_is_ignored_and_loads_nothing() -> None:
    k = FakeKernel()
    sg = NftSecurityGroups(runner=k)
    assert sg.apply_policy("tap1", pol(seq=5))
    assert not sg.apply_policy("tap1", pol(SgRule("all", ("0.0.0.0/0",)), seq=4))
    assert len(k.loaded) == 1
    assert sg.apply_policy("tap1", pol(seq=5))
    assert len(k.loaded) == 2


def test_a_change_replaces_the_old_sets_and_keeps_the_port_number() -> None:
    k = FakeKernel()
    sg = NftSecurityGroups(runner=k)
    sg.apply_defaults("tap1", MAC, ["10.0.0.5"])
    sg.apply_defaults("tap2", "02:00:00:00:00:02", [])
    assert sg.apply_policy("tap1", pol(SgRule("tcp", ("10.0.0.0/8", "fd00::/8"), (22, 22)), seq=2))
    assert sg.ports()["tap1"].sets == ["in1r0", "in1r06"]
    assert sg.apply_policy("tap1", pol(seq=3))
    last = k.loaded[-1]
    assert "delete set inet hvsg in1r0\n" in last and "delete set inet hvsg in1r06\n" in last
    assert sg.ports()["tap1"].n == 1 and sg.ports()["tap2"].n == 2
    assert sg.ports()["tap1"].sets == []


def test_removal_and_reuse_of_the_number() -> None:
    k = FakeKernel()
    sg = NftSecurityGroups(runner=k)
    sg.apply_defaults("tap1", MAC, ["10.0.0.5"])
    sg.remove("tap1")
    assert "delete chain bridge hvsg p1-out" in k.loaded[-1]
    loads = len(k.loaded)
    sg.remove("tap1")
    assert len(k.loaded) == loads
    sg.apply_defaults("tap3", MAC, [])
    assert sg.ports()["tap3"].n == 1


def test_a_failed_load_is_retried_once_after_reading_the_kernel() -> None:
    k = FakeKernel()
    sg = NftSecurityGroups(runner=k)
    sg.apply_defaults("tap1", MAC, ["10.0.0.5"])
    k.fail_next = True
    assert sg.apply_policy("tap1", pol(seq=2))
    # the retry starts from the kernel's (empty) state: no delete of what is not there
    assert "delete set bridge hvsg p1-ips" not in k.loaded[-1]
    assert "flush chain inet hvsg forward" in k.loaded[-1]


def test_state_is_read_back_from_the_kernel() -> None:
    bridge = {"nftables": [{"metainfo": {}},
                           {"set": {"name": "p3-ips", "comment": port_comment("tap7", MAC, 41)}},
                           {"set": {"name": "p4-ips", "comment": "hostile \" comment"}},
                           {"set": {"name": "p5-ips"}},
                           {"set": {"name": "x9-ips", "comment": port_comment("tap9", MAC, 1)}},
                           "garbage", {"chain": {"name": "p3-out"}}]}
    table = {"nftables": [{"set": {"name": "in3r0"}}, {"set": {"name": "eg3r1"}}, {"set": {"name": "in9r0"}},
                          {"set": {"name": "p3-ips"}}, {"chain": {"name": "in3"}}]}
    sg = NftSecurityGroups(runner=FakeKernel(json.dumps(bridge), json.dumps(table)))
    state = sg.ports()
    assert list(state) == ["tap7"]
    assert (state["tap7"].n, state["tap7"].seq, state["tap7"].mac) == (3, 41, MAC)
    assert sorted(state["tap7"].sets) == ["eg3r1", "in3r0"]
    assert not sg.apply_policy("tap7", pol(seq=40))


def test_a_change_adds_no_element_to_shared_maps() -> None:
    """nft fetches every set's elements before an ``add element``: a change must not do one."""
    k = FakeKernel()
    sg = NftSecurityGroups(runner=k)
    sg.apply_defaults("tap1", MAC, ["10.0.0.5"])
    assert "add element" in k.loaded[-1]
    assert sg.apply_policy("tap1", pol(SgRule("tcp", ("10.0.0.0/8",), (22, 22)), seq=2))
    assert "add element" not in k.loaded[-1] and "delete element" not in k.loaded[-1]


def test_garbage_from_nft_is_an_error_not_a_crash() -> None:
    sg = NftSecurityGroups(runner=FakeKernel("{not json"))
    with pytest.raises(SgError, match="JSON"):
        sg.ports()


@pytest.mark.parametrize("tap", ["", "a" * 16, "tap 1", 'tap"1', "tap;1", "../x"])
def test_hostile_tap_names_are_refused(tap: str) -> None:
    k = FakeKernel()
    sg = NftSecurityGroups(runner=k)
    with pytest.raises(Exception, match="interface name"):
        sg.apply_defaults(tap, MAC, [])
    assert k.loaded == []


def test_invalid_policy_loads_nothing() -> None:
    k = FakeKernel()
    sg = NftSecurityGroups(runner=k)
    with pytest.raises(PolicyError, match=r"ingress\[0\]\.cidrs\[0\]"):
        sg.apply_policy("tap1", pol(SgRule("tcp", ("10.0.0.0/40",), (1, 2))))
    with pytest.raises(PolicyError, match="mac"):
        sg.apply_defaults("tap1", "zz", [])
    assert k.loaded == []


def test_bad_netns_name_is_refused() -> None:
    with pytest.raises(SgError):
        NftSecurityGroups("bad name; rm -rf /")


def test_comment_round_trip() -> None:
    assert parse_port_comment(port_comment("tap1", MAC, -1)) == ("tap1", MAC, -1)
    assert parse_port_comment("tap=t mac=x seq=1") is None
    assert parse_port_comment("tap=t mac=02:00:00:00:00:01 seq=1" + "0" * 30) is None
    assert parse_port_comment('tap=t" mac=02:00:00:00:00:01 seq=1') is None


def test_icmp_and_egress_rules_render_to_the_expected_matches() -> None:
    from hvcloud.network.sg_nft import PortState

    stmts, sets = render_port(None, PortState("tap1", 4, MAC, 1), ["10.0.0.5"],
                              [SgRule("icmp", ("0.0.0.0/0", "::/0"), None, 8, 0)],
                              [SgRule("tcp", ("192.0.2.0/24",), (443, 443))])
    text = "\n".join(stmts)
    assert "ip saddr @in4r0 meta l4proto icmp icmp type 8 icmp code 0 accept" in text
    assert "ip6 saddr @in4r06 meta l4proto ipv6-icmp icmpv6 type 8 icmpv6 code 0 accept" in text
    assert "ip daddr @eg4r0 meta l4proto tcp th dport 443 return" in text
    assert text.rstrip().count("add rule inet hvsg eg4 drop") == 1
    assert sets == ["in4r0", "in4r06", "eg4r0"]
    assert "meta mark set meta mark & 0xffff0000 | 0x4" in text
    assert "0x40000 : jump in4" in text
