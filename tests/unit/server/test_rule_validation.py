"""The rule parameter checks (``orchestration/networks/rules.py``) and the wire ids of rules, without
a server: malformed, oversized and hostile values are refused with 431 naming the field."""

from __future__ import annotations

import pytest

from hvcloud.server.errors import PARAM_ERROR, CloudError
from hvcloud.server.orchestration.networks import router_rules as RR
from hvcloud.server.orchestration.networks import rules


@pytest.mark.parametrize("values, expected", [
    (["10.0.0.0/8"], ("10.0.0.0/8",)),
    (["10.0.0.1/24", "10.0.0.0/24"], ("10.0.0.0/24",)),  # host bits dropped, duplicates once
    ([" 192.0.2.7/32 "], ("192.0.2.7/32",)),
    ([], ()),
])
def test_cidr_lists_normalise(values: list[str], expected: tuple[str, ...]) -> None:
    assert rules.cidr_list(values) == expected


@pytest.mark.parametrize("value", ["10.0.0.0", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0/8", "fe80::/64", "", "/8",
                                   "10.0.0.0/8/8", "10.0.0.0/ 8", "x" * 5000, "10.0.0.0/8\x00", "0x0a000000/8",
                                   "10.0.0.0/٨"])
def test_bad_cidrs_are_refused_naming_the_field(value: str) -> None:
    with pytest.raises(CloudError) as err:
        rules.cidr_list([value], "destcidrlist")
    assert err.value.code == PARAM_ERROR and "destcidrlist" in err.value.text
    assert len(err.value.text) < 300, "a hostile value is not echoed whole"


def test_too_many_cidrs_are_refused() -> None:
    with pytest.raises(CloudError) as err:
        rules.cidr_list([f"10.0.{i}.0/24" for i in range(rules.MAX_CIDRS + 1)])
    assert "at most" in err.value.text


@pytest.mark.parametrize("start, end, expected", [(22, None, (22, 22)), (1, 65535, (1, 65535)), (None, None,
                                                                                                (None, None))])
def test_port_ranges(start: int | None, end: int | None, expected: tuple[int | None, int | None]) -> None:
    assert rules.port_range(start, end, "startport", "endport") == expected


@pytest.mark.parametrize("start, end, field", [(0, None, "startport"), (65536, None, "startport"),
                                               (-5, None, "startport"), (30, 20, "startport"),
                                               (None, 20, "endport"), (20, 70000, "endport")])
def test_bad_port_ranges(start: int | None, end: int | None, field: str) -> None:
    with pytest.raises(CloudError) as err:
        rules.port_range(start, end, "startport", "endport")
    assert err.value.code == PARAM_ERROR and field in err.value.text


def test_forward_ranges_must_be_as_long_as_each_other() -> None:
    with pytest.raises(CloudError) as err:
        rules.forward_ports(8080, 8081, 80, None)
    assert "privateport" in err.value.text
    assert rules.forward_ports(8080, 8081, 80, 81) == (8080, 8081, 80, 81)


@pytest.mark.parametrize("proto, start, icmp_type, icmp_code, field", [
    ("icmp", 22, None, None, "startport"), ("all", 22, None, None, "startport"), ("tcp", 22, 8, None, "icmptype"),
    ("udp", None, None, 0, "icmpcode"), ("icmp", None, 256, None, "icmptype"), ("icmp", None, 8, -2, "icmpcode"),
    ("icmp", None, None, 3, "icmpcode"), ("gre", None, None, None, "protocol"), ("TCP\x00", None, None, None,
                                                                                  "protocol")])
def test_protocol_and_port_combinations_that_make_no_sense(proto: str, start: int | None, icmp_type: int | None,
                                                           icmp_code: int | None, field: str) -> None:
    with pytest.raises(CloudError) as err:
        rules.firewall_spec(proto, rules.EGRESS_PROTOCOLS, start, None, icmp_type, icmp_code, [])
    assert err.value.code == PARAM_ERROR and field in err.value.text


def test_icmp_defaults_to_any_type_and_code() -> None:
    spec = rules.firewall_spec("ICMP", rules.FIREWALL_PROTOCOLS, None, None, None, None, [])
    assert (spec.protocol, spec.icmp_type, spec.icmp_code, spec.start) == ("icmp", -1, -1, None)
    assert rules.firewall_spec("icmp", rules.FIREWALL_PROTOCOLS, None, None, 8, None, []).icmp_code == -1


def test_wire_ids_are_stable_positive_longs() -> None:
    uuid = "0f3c2a4e-9b1d-4c6e-8f00-123456789abc"
    assert RR.wire_id(uuid) == RR.wire_id(uuid) > 0
    assert RR.wire_id(uuid) < 2 ** 63
    assert RR.wire_id("ffffffff-ffff-ffff-ffff-ffffffffffff") < 2 ** 63


def test_change_params_survive_a_round_trip_and_hostile_shapes() -> None:
    change = RR.Change(rule_ids=["a"], ip_ids=["b"], nat_enable=["c"], nat_disable={"d": "10.1.1.5"}, lb=True)
    assert RR.Change.of_params(change.as_params()) == change
    assert RR.Change.of_params({"rules": "not-a-list", "nat_disable": ["x"], "lb": 0}) == RR.Change()
