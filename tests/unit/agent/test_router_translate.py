"""Wire → driver and router values: segments (VLAN, VXLAN), boot arguments, a router's spec."""

from __future__ import annotations

from typing import Any

import pytest

from hvcloud.agent import router_translate as RT
from hvcloud.agent import translate
from hvcloud.router.api import Segment
from hvcloud.wire.to import NicTO, VirtualMachineTO
from tests.support.wire_samples import sample


@pytest.mark.parametrize("uri,expected", [
    (None, (None, None)),
    ("", (None, None)),
    ("vlan://untagged", (None, None)),
    ("vlan://261", (261, None)),
    ("VLAN://4094", (4094, None)),
    ("vxlan://5001", (None, 5001)),
    ("VXLAN://1", (None, 1)),
    (" vxlan://16777215 ", (None, 16777215)),
])
def test_segments(uri: str | None, expected: tuple[int | None, int | None]) -> None:
    assert translate.segment_of(uri) == expected


@pytest.mark.parametrize("uri,needle", [
    ("vxlan://0", "out of range"),
    ("vxlan://16777216", "out of range"),
    ("vxlan://99999999", "out of range"),
    ("vxlan://123456789", "unsupported"),
    ("vxlan://-1", "unsupported"),
    ("vxlan://5001/extra", "unsupported"),
    ("vxlan://", "unsupported"),
    ("vlan://0", "out of range"),
    ("vlan://5000", "out of range"),
    ("gre://4", "unsupported"),
    ("vxlan://50\n01", "unsupported"),
])
def test_bad_segments_are_refused(uri: str, needle: str) -> None:
    with pytest.raises(translate.TranslationError, match=needle):
        translate.segment_of(uri)


def nic(**fields: Any) -> NicTO:
    base: dict[str, Any] = {"deviceId": 1, "mac": "02:00:2b:44:00:05", "name": "cloudbr1"}
    base.update(fields)
    return NicTO.model_validate(base)


def test_nic_spec_maps_vxlan_from_either_uri() -> None:
    spec = translate.nic_spec(nic(broadcastUri="vxlan://5001"), 0)
    assert (spec.vlan, spec.vxlan, spec.network, spec.device_id) == (None, 5001, "cloudbr1", 1)
    spec = translate.nic_spec(nic(isolationUri="vxlan://77"), 0)
    assert (spec.vlan, spec.vxlan) == (None, 77)
    spec = translate.nic_spec(nic(broadcastUri="vlan://261"), 0)
    assert (spec.vlan, spec.vxlan) == (261, None)
    assert translate.nic_spec(nic(deviceId=None), 3).device_id == 3
    with pytest.raises(translate.TranslationError, match="device id"):
        translate.nic_spec(nic(deviceId=-1), 0)
    with pytest.raises(translate.TranslationError, match="device id"):
        translate.nic_spec(nic(deviceId=64), 0)


@pytest.mark.parametrize("text,expected", [
    (None, {}),
    ("", {}),
    ("   ", {}),
    ("name=r-1-VM type=router", {"name": "r-1-VM", "type": "router"}),
    ("type=router\tname=r-1-VM\n", {"name": "r-1-VM", "type": "router"}),
    ("type=router name=r-1-VM", {"type": "router", "name": "r-1-VM"}),
    ("template=domP novalue dns2= key=a=b", {"template": "domP", "key": "a=b"}),
    ("dns1=1.1.1.1 dns1=1.1.1.1", {"dns1": "1.1.1.1"}),
])
def test_boot_args(text: str | None, expected: dict[str, str]) -> None:
    assert RT.parse_boot_args(text) == expected


@pytest.mark.parametrize("text,needle", [
    ("a=1 a=2", "given twice"),
    ("=value", "invalid boot argument name"),
    ("1abc=x", "invalid boot argument name"),
    ("k" * 70 + "=x", "invalid boot argument name"),
    ("a=\x1b[31m", "control characters"),
    ("a=1 " * 300, "more than 256"),
    (" ".join(f"k{i}=v" for i in range(300)), "more than 256"),
    ("x" * 17000, "longer than"),
])
def test_bad_boot_args(text: str, needle: str) -> None:
    with pytest.raises(translate.TranslationError, match=needle):
        RT.parse_boot_args(text)


def router_vm(**changes: Any) -> VirtualMachineTO:
    body = sample("StartCommand-router")["vm"]
    body.update(changes)
    return VirtualMachineTO.model_validate(body)


def test_router_spec_takes_the_guest_nic_even_when_it_is_not_first() -> None:
    body = sample("StartCommand-router")["vm"]
    body["nics"].reverse()
    spec = RT.router_spec(VirtualMachineTO.model_validate(body))
    assert spec.mac == "02:00:7c:1e:00:01" and spec.address == "10.1.1.1" and spec.prefix == 24
    assert spec.segment == Segment(trunk="cloudbr1", vlan=None, vxlan=5001)


def test_router_spec_defaults_from_the_nic_when_boot_args_are_silent() -> None:
    vm = router_vm(bootArgs="")
    spec = RT.router_spec(vm)
    assert spec.dns == ("192.0.2.53", "192.0.2.54") and spec.domain == "cloud.internal"
    body = sample("StartCommand-router")["vm"]
    body["bootArgs"] = "eth0ip=10.9.9.1 eth0mask=255.255.255.0 domain=Example.ORG."
    body["nics"][0].update(ip=None, netmask=None, broadcastUri="vlan://untagged", isolationUri=None, name=None)
    spec = RT.router_spec(VirtualMachineTO.model_validate(body))
    assert (spec.address, spec.prefix, spec.domain) == ("10.9.9.1", 24, "example.org")
    assert spec.segment == Segment(trunk=None)
    # no traffic label: the host's default bridge, as its VM NICs get
    assert RT.router_spec(VirtualMachineTO.model_validate(body), "cloudbr0").segment == Segment(trunk="cloudbr0")
    assert RT.router_spec(router_vm(), "cloudbr0").segment.trunk == "cloudbr1"


def test_is_router() -> None:
    assert RT.is_router(router_vm())
    assert not RT.is_router(router_vm(type="User"))
    assert not RT.is_router(router_vm(type=None))
    assert not RT.is_router(None)
