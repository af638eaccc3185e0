"""Bridge helpers against the real kernel (needs CAP_NET_ADMIN; skipped otherwise)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from hvcloud.network.bridges import Bridges, NetworkError, vlan_bridge_name, vlan_device_name


@pytest.fixture
def trunk() -> Iterator[str]:
    name = f"hvn{uuid.uuid4().hex[:8]}"
    b = Bridges()
    try:
        b.ensure_bridge(name)
    except NetworkError as exc:
        pytest.skip(f"cannot create bridges here: {exc}")
    yield name
    b.remove_vlan_bridge(name, 261)
    b.delete(name)


def test_bridge_is_created_once_and_removed(trunk: str) -> None:
    b = Bridges()
    assert b.is_bridge(trunk)
    b.ensure_bridge(trunk)
    assert b.ports(trunk) == []
    b.delete(trunk)
    assert not b.exists(trunk)
    b.delete(trunk)


def test_vlan_bridge_on_a_real_trunk(trunk: str) -> None:
    b = Bridges()
    try:
        name = b.ensure_vlan_bridge(trunk, 261)
    except NetworkError as exc:
        if "not supported" in str(exc).lower() or "unknown device type" in str(exc).lower():
            pytest.skip(f"this kernel cannot make VLAN devices: {exc}")
        raise
    assert name == vlan_bridge_name(trunk, 261) and b.is_bridge(name)
    assert b.ports(name) == [vlan_device_name(trunk, 261)]
    assert b.ensure_vlan_bridge(trunk, 261) == name
