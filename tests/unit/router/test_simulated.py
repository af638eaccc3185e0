"""The simulator's router host: the RouterHost contract in memory, validating as the real one."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from hvcloud.router.api import DhcpEntry, InvalidRouterRequest, RouterError, RouterNotFound, RouterSpec, Segment
from hvcloud.router.simulated import SimulatedRouterHost


def spec(name: str = "r-1-VM", prefix: int = 24) -> RouterSpec:
    return RouterSpec(name=name, segment=Segment("br0", vxlan=5001), mac="02:00:00:00:00:01", address="10.1.1.1",
                      prefix=prefix, domain="cs1.internal")


A = DhcpEntry("02:00:00:00:00:0a", "10.1.1.10", "vm-a")
B = DhcpEntry("02:00:00:00:00:0b", "10.1.1.11", "vm-b", default=False)


def test_lifecycle_is_idempotent() -> None:
    host = SimulatedRouterHost()
    first = host.start(spec())
    assert first.state == "Running" and host.start(spec()) == first
    host.dhcp_entry("r-1-VM", A)
    host.stop("r-1-VM")
    host.stop("r-1-VM")
    host.stop("never-started")
    assert host.status("r-1-VM").state == "Stopped" and host.status("r-1-VM").leases == 1
    assert host.lease("r-1-VM", A.mac) is None
    assert host.start(spec()).leases == 1
    assert host.lease("r-1-VM", A.mac.upper()) == A
    host.destroy("r-1-VM")
    host.destroy("r-1-VM")
    assert host.routers() == []
    with pytest.raises(RouterNotFound):
        host.status("r-1-VM")
    with pytest.raises(RouterNotFound):
        host.dhcp_entry("r-1-VM", A)


def test_entries_reload_never_restart_and_replace_by_mac_and_address() -> None:
    host = SimulatedRouterHost()
    host.start(spec())
    host.dhcp_entry("r-1-VM", A)
    host.dhcp_entry("r-1-VM", A)
    host.dhcp_entry("r-1-VM", DhcpEntry("02:00:00:00:00:0c", A.ip, "vm-c"))
    assert host.lease("r-1-VM", A.mac) is None
    assert host.status("r-1-VM").details == {"services": "up", "reloads": "2", "restarts": "1"}
    host.dhcp_entry("r-1-VM", DhcpEntry("02:00:00:00:00:0c", A.ip, "vm-c"), remove=True)
    assert host.status("r-1-VM").leases == 0


@pytest.mark.parametrize("bad", [DhcpEntry("02:00:00:00:00:0a", "10.1.1.10", "vm\nx"),
                                 DhcpEntry("nope", "10.1.1.10", "vm"),
                                 DhcpEntry("02:00:00:00:00:0a", "10.2.1.10", "vm"),
                                 DhcpEntry("02:00:00:00:00:0a", "10.1.1.1", "vm")])
def test_refuses_what_the_namespace_host_refuses(bad: DhcpEntry) -> None:
    host = SimulatedRouterHost()
    host.start(spec())
    with pytest.raises(InvalidRouterRequest):
        host.dhcp_entry("r-1-VM", bad)
    with pytest.raises(InvalidRouterRequest):
        host.vm_data("r-1-VM", "10.1.1.10", [("metadata", "../x", "y")])
    with pytest.raises(InvalidRouterRequest):
        host.vm_data("r-1-VM", "10.9.9.9", [("metadata", "x", "y")])
    with pytest.raises(InvalidRouterRequest):
        host.save_password("r-1-VM", "10.1.1.10", "a\nb")
    with pytest.raises(InvalidRouterRequest):
        host.start(spec(name="bad name"))
    assert host.status("r-1-VM").leases == 0


def test_guest_view_metadata_and_password() -> None:
    host = SimulatedRouterHost()
    host.start(spec())
    host.vm_data("r-1-VM", "10.1.1.10", [("metadata", "instance-id", "i-1"),
                                          ("userdata", "user-data", base64.b64encode(b"#cloud-config").decode())])
    assert host.metadata("r-1-VM", "10.1.1.10", "/latest/meta-data/instance-id") == b"i-1"
    assert host.metadata("r-1-VM", "10.1.1.10", "/latest/user-data") == b"#cloud-config"
    assert host.metadata("r-1-VM", "10.1.1.11", "/latest/meta-data/instance-id") is None
    host.save_password("r-1-VM", "10.1.1.10", "pw")
    assert host.password_request("r-1-VM", "10.1.1.11", "send_my_password") == "saved_password"
    assert host.password_request("r-1-VM", "10.1.1.10", "send_my_password") == "pw"
    assert host.password_request("r-1-VM", "10.1.1.10", "saved_password") == "saved_password"
    assert host.password_request("r-1-VM", "10.1.1.10", "send_my_password") == "saved_password"
    host.vm_data("r-1-VM", "10.1.1.10", [])
    assert host.metadata("r-1-VM", "10.1.1.10", "/latest/meta-data/instance-id") is None


def test_reconfigure_keeps_entries_inside_the_new_subnet() -> None:
    host = SimulatedRouterHost()
    host.start(spec())
    host.dhcp_entry("r-1-VM", A)
    host.dhcp_entry("r-1-VM", DhcpEntry("02:00:00:00:00:0d", "10.1.1.200", "vm-d"))
    status = host.start(spec(prefix=25))
    assert status.leases == 1 and status.spec.prefix == 25 and status.details["restarts"] == "2"


def test_persisted_state_survives_a_restart_and_recover_brings_back_only_running(tmp_path: Path) -> None:
    host = SimulatedRouterHost(tmp_path)
    host.start(spec())
    host.start(spec(name="r-2-VM"))
    host.dhcp_entry("r-1-VM", A)
    host.dhcp_entry("r-1-VM", B)
    host.vm_data("r-1-VM", "10.1.1.10", [("metadata", "instance-id", "i-1")])
    host.save_password("r-1-VM", "10.1.1.10", "pw")
    host.stop("r-2-VM")
    again = SimulatedRouterHost(tmp_path)
    assert again.lease("r-1-VM", A.mac) is None
    assert again.recover() == ["r-1-VM"]
    assert again.recover() == ["r-1-VM"]
    assert again.status("r-1-VM").details["restarts"] == "1"
    assert again.lease("r-1-VM", B.mac) == B
    assert again.metadata("r-1-VM", "10.1.1.10", "/latest/instance-id") == b"i-1"
    assert again.password_request("r-1-VM", "10.1.1.10", "send_my_password") == "pw"
    assert [r.state for r in again.routers()] == ["Running", "Stopped"]
    with pytest.raises(RouterError):
        again.password_request("r-2-VM", "10.1.1.10", "send_my_password")
    (tmp_path / "r-3-VM.json").write_text('{"spec": {"name": "x"}}')
    with pytest.raises(RouterError):
        SimulatedRouterHost(tmp_path)


def test_thousands_of_routers_fit_in_one_host() -> None:
    host = SimulatedRouterHost()
    for i in range(3000):
        host.start(spec(name=f"r-{i}-VM"))
        host.dhcp_entry(f"r-{i}-VM", A)
    assert len(host.routers()) == 3000
    assert host.recover()[:2] == ["r-0-VM", "r-1-VM"]


def test_both_hosts_implement_the_protocol(tmp_path: Path) -> None:
    from hvcloud.router.api import RouterHost
    from hvcloud.router.namespace import NamespaceRouterHost

    hosts: list[RouterHost] = [SimulatedRouterHost(), NamespaceRouterHost(tmp_path)]
    for host in hosts:
        assert host.routers() == [] and host.recover() == []
