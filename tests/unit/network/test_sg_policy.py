"""NicPolicy validation: what every enforcer refuses, with the field named."""

from __future__ import annotations

import pytest

from hvcloud.network.security_groups import NicPolicy, SgRule
from hvcloud.network.sg_policy import MAX_CIDRS, MAX_RULES, PolicyError, check_ips, check_policy, split_cidrs

MAC = "02:00:00:00:00:01"


def pol(*ingress: SgRule, egress: tuple[SgRule, ...] = (), mac: str = MAC, ips: tuple[str, ...] = ("10.0.0.5",),
        seq: int = 1) -> NicPolicy:
    return NicPolicy(mac=mac, ips=ips, ingress=ingress, egress=egress, seq=seq)


def test_a_sound_policy_passes() -> None:
    p = pol(SgRule("tcp", ("10.0.0.0/8", "2001:db8::/32"), (22, 22)), SgRule("icmp", ("0.0.0.0/0",), None, 8, 0),
            SgRule("icmp", ("0.0.0.0/0",)), SgRule("all", ("192.0.2.1",)),
            egress=(SgRule("udp", ("0.0.0.0/0",), (0, 65535)),))
    assert check_policy(p) is p


@pytest.mark.parametrize(("policy", "field"), [
    (pol(mac="02:00:00:00:00"), "mac"),
    (pol(mac="01:00:5e:00:00:01"), "mac"),
    (pol(mac="02:00:00:00:00:0G"), "mac"),
    (pol(ips=("10.0.0.256",)), r"ips\[0\]"),
    (pol(ips=("10.0.0.5", "0.0.0.0")), r"ips\[1\]"),
    (pol(ips=("224.0.0.1",)), r"ips\[0\]"),
    (pol(ips=("::1",)), r"ips\[0\]"),
    (pol(seq=-1), "seq"),
    (pol(SgRule("tcp", ("10.0.0.0/33",), (1, 2))), r"ingress\[0\]\.cidrs\[0\]"),
    (pol(SgRule("tcp", ("",), (1, 2))), r"ingress\[0\]\.cidrs\[0\]"),
    (pol(SgRule("tcp", ("x" * 5000,), (1, 2))), r"ingress\[0\]\.cidrs\[0\]"),
    (pol(SgRule("tcp", (), (1, 2))), r"ingress\[0\]\.cidrs"),
    (pol(SgRule("tcp", ("0.0.0.0/0",), (80, 22))), r"ingress\[0\]\.ports"),
    (pol(SgRule("tcp", ("0.0.0.0/0",), (1, 65536))), r"ingress\[0\]\.ports"),
    (pol(SgRule("udp", ("0.0.0.0/0",), (-1, 5))), r"ingress\[0\]\.ports"),
    (pol(SgRule("tcp", ("0.0.0.0/0",), None, 8)), r"ingress\[0\]"),
    (pol(SgRule("icmp", ("0.0.0.0/0",), (1, 2))), r"ingress\[0\]\.ports"),
    (pol(SgRule("icmp", ("0.0.0.0/0",), None, 256)), r"ingress\[0\]\.icmp_type"),
    (pol(SgRule("icmp", ("0.0.0.0/0",), None, None, 3)), r"ingress\[0\]\.icmp_code"),
    (pol(SgRule("all", ("0.0.0.0/0",), (1, 1))), r"ingress\[0\]\.ports"),
    (pol(SgRule("gre", ("0.0.0.0/0",))), r"ingress\[0\]\.protocol"),  # type: ignore[arg-type]
    (pol(egress=(SgRule("tcp", ("1.2.3.4/-1",), (1, 1)),)), r"egress\[0\]\.cidrs\[0\]"),
])
def test_refusals_name_the_field(policy: NicPolicy, field: str) -> None:
    with pytest.raises(PolicyError, match=field):
        check_policy(policy)


def test_oversized_policies_are_refused() -> None:
    with pytest.raises(PolicyError, match="ingress: more than"):
        check_policy(pol(*[SgRule("all", ("10.0.0.1",))] * (MAX_RULES + 1)))
    many = tuple(f"10.{i // 256 % 256}.{i % 256}.0/24" for i in range(MAX_CIDRS // 2 + 1))
    with pytest.raises(PolicyError, match="cidrs:"):
        check_policy(pol(SgRule("all", many), SgRule("all", many)))
    with pytest.raises(PolicyError, match="ips: more than"):
        check_ips([f"10.0.1.{i}" for i in range(1, 100)])


def test_cidrs_are_split_by_family_and_merged() -> None:
    v4, v6 = split_cidrs(["10.0.0.0/24", "10.0.0.5", "10.0.1.0/24", "10.0.0.7/24", "::/0", "2001:db8::1"])
    assert v4 == ["10.0.0.0/23"]
    assert v6 == ["::/0"]


def test_ips_are_deduplicated_in_order() -> None:
    assert check_ips(["10.0.0.2", "10.0.0.1", "10.0.0.2"]) == ("10.0.0.2", "10.0.0.1")
