"""The virtual router's commands through the agent's real HTTP app (simulator driver), against an
in-memory RouterHost: what reaches the runtime, and clean ``result:false`` answers (never a 500) for
hostile input."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from hvcloud.agent.handlers.host import vm_state_report
from hvcloud.agent.handlers.router import NO_ROUTERS, recover_routers
from hvcloud.router.api import DhcpEntry, RouterError, RouterSpec, Segment
from hvcloud.wire import routing as R
from tests.support.agent_harness import AgentHarness
from tests.support.fake_routers import FakeRouterHost
from tests.support.wire_samples import sample

START = "com.cloud.agent.api.StartCommand"
STOP = "com.cloud.agent.api.StopCommand"
REBOOT = "com.cloud.agent.api.RebootCommand"
CHECK = "com.cloud.agent.api.CheckVirtualMachineCommand"
ROUTER = "r-12-VM"


@pytest.fixture
def routers(agent: AgentHarness) -> FakeRouterHost:
    fake = FakeRouterHost()
    agent.host.routers = fake
    return fake


@pytest.fixture
def running(agent: AgentHarness, routers: FakeRouterHost) -> FakeRouterHost:
    cls, fields = agent.answer(START, sample("StartCommand-router"))
    assert cls == "com.cloud.agent.api.StartAnswer" and fields["result"] is True, fields
    return routers


def refused(agent: AgentHarness, fqcn: str, body: Any) -> str:
    r = agent.post(fqcn, body)
    assert r.status_code == 200, r.text
    ((_cls, fields),) = r.json()[0].items()
    assert fields["result"] is False, fields
    details: str = fields["details"]
    return details


# --------------------------------------------------------------------------- start, stop, state


def test_router_start_reaches_the_runtime_with_the_translated_spec(agent: AgentHarness,
                                                                  routers: FakeRouterHost) -> None:
    body = sample("StartCommand-router")
    cls, fields = agent.answer(START, body)
    assert cls == "com.cloud.agent.api.StartAnswer" and fields["result"] is True
    assert fields["vm"]["name"] == ROUTER and "Running" in fields["details"]
    assert routers.calls == [("start", RouterSpec(
        name=ROUTER, segment=Segment(trunk="cloudbr1", vlan=None, vxlan=5001), mac="02:00:7c:1e:00:01",
        address="10.1.1.1", prefix=24, domain="net1.internal", dns=("192.0.2.53", "192.0.2.54"),
        network_id="7c1e6d2a-3b4f-4a5e-8d9c-0a1b2c3d4e5f"))]
    # the hypervisor never saw it
    assert agent.host.driver.list_vms() == []
    # the same start again is success (the runtime is idempotent)
    assert agent.answer(START, body)[1]["result"] is True


def test_router_state_stop_reboot_and_expunge(agent: AgentHarness, running: FakeRouterHost) -> None:
    assert agent.answer(CHECK, {"vmName": ROUTER})[1]["state"] == "PowerOn"
    assert vm_state_report(agent.host)[ROUTER] == "PowerOn"
    startup = agent.post("com.cloud.agent.api.StartupCommand", sample("StartupCommand")).json()
    assert startup[0]["com.cloud.agent.api.StartupRoutingCommand"]["vms"][ROUTER]["state"] == "Running"

    cls, fields = agent.answer(REBOOT, {"vmName": ROUTER})
    assert cls == "com.cloud.agent.api.RebootAnswer" and fields["result"] is True
    assert [c[0] for c in running.calls] == ["start", "stop", "start"]

    cls, fields = agent.answer(STOP, {"vmName": ROUTER, "expungeVM": False})
    assert cls == "com.cloud.agent.api.StopAnswer" and fields["result"] is True
    assert running.held[ROUTER].state == "Stopped"
    assert agent.answer(CHECK, {"vmName": ROUTER})[1]["state"] == "PowerOff"
    assert vm_state_report(agent.host)[ROUTER] == "PowerOff"

    fields = agent.answer(STOP, {"vmName": ROUTER, "expungeVM": True})[1]
    assert fields["result"] is True and "destroyed" in fields["details"]
    assert ROUTER not in running.held
    assert ROUTER not in vm_state_report(agent.host)
    # a router that is gone is an ordinary missing VM now
    assert agent.answer(STOP, {"vmName": ROUTER})[1]["result"] is True
    assert agent.answer(CHECK, {"vmName": ROUTER})[1]["state"] == "PowerOff"


def test_ordinary_vms_are_untouched_by_the_router_runtime(agent: AgentHarness, running: FakeRouterHost) -> None:
    body = sample("StartCommand")
    assert agent.answer(START, body)[1]["result"] is True
    assert agent.answer(CHECK, {"vmName": "i-2-17-VM"})[1]["state"] == "PowerOn"
    assert agent.answer(STOP, {"vmName": "i-2-17-VM"})[1]["result"] is True
    assert [c[0] for c in running.calls] == ["start"]
    assert set(vm_state_report(agent.host)) == {ROUTER}


def test_host_without_routers_refuses_clearly(agent: AgentHarness) -> None:
    agent.host.routers = None
    assert NO_ROUTERS in refused(agent, START, sample("StartCommand-router"))
    for name in ("DhcpEntryCommand", "VmDataCommand", "SavePasswordCommand", "DnsMasqConfigCommand"):
        fqcn = getattr(R, name).FQCN
        assert NO_ROUTERS in refused(agent, fqcn, sample(name)), name
    # VMs are unaffected
    assert agent.answer(START, sample("StartCommand"))[1]["result"] is True
    assert agent.answer(CHECK, {"vmName": ROUTER})[1]["state"] == "PowerOff"


def start_with(agent: AgentHarness, change: Any) -> str:
    body = copy.deepcopy(sample("StartCommand-router"))
    change(body["vm"])
    return refused(agent, START, body)


@pytest.mark.parametrize("change,needle", [
    (lambda vm: vm.update(nics=[]), "no NIC"),
    (lambda vm: vm.update(name="../../etc/r-1"), "invalid router name"),
    (lambda vm: vm.update(bootArgs="name=r-99-VM type=router"), "name router 'r-99-VM'"),
    (lambda vm: vm.update(bootArgs="type=consoleproxy"), "not a router"),
    (lambda vm: vm.update(bootArgs="dns1=1.1.1.1 dns1=8.8.8.8"), "given twice"),
    (lambda vm: vm.update(bootArgs="dns1=not-an-ip"), "dns1"),
    (lambda vm: vm.update(bootArgs="domain=bad_domain!"), "invalid network domain"),
    (lambda vm: vm.update(bootArgs="eth0ip=10.1.1.2"), "differs"),
    (lambda vm: vm.update(bootArgs="eth0mask=255.255.0.0"), "differs"),
    (lambda vm: vm.update(bootArgs="x" * 20000), "longer than"),
    (lambda vm: vm.update(bootArgs="domain=a\x00b"), "control characters"),
    (lambda vm: vm["nics"][0].update(mac="02:00:zz:1e:00:01"), "invalid MAC"),
    (lambda vm: vm["nics"][0].update(ip="10.1.1.300"), "not an IPv4 address"),
    (lambda vm: vm["nics"][0].update(netmask="255.0.255.0"), "invalid netmask"),
    (lambda vm: (vm["nics"][0].update(netmask="255.255.255.254"),
                 vm.update(bootArgs="eth0mask=255.255.255.254")), "no room"),
    (lambda vm: vm["nics"][0].update(broadcastUri="vxlan://16777216", isolationUri=None), "out of range"),
    (lambda vm: vm["nics"][0].update(broadcastUri="gre://4"), "unsupported network isolation"),
    (lambda vm: vm["nics"][0].update(name="cloudbr1; reboot"), "traffic label"),
])
def test_hostile_router_starts_are_refused(agent: AgentHarness, routers: FakeRouterHost, change: Any,
                                           needle: str) -> None:
    assert needle in start_with(agent, change)
    assert routers.calls == []


# --------------------------------------------------------------------------- routing commands


def with_router(name: str, router: str | None = ROUTER, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(sample(name))
    if router is None:
        del body["accessDetails"]["router.name"]
    else:
        body["accessDetails"]["router.name"] = router
    body.update(fields)
    return body


def test_dhcp_entries_reach_the_runtime(agent: AgentHarness, running: FakeRouterHost) -> None:
    cls, fields = agent.answer(R.DhcpEntryCommand.FQCN, with_router("DhcpEntryCommand", vmMac="02-00-3A-5E-00-07"))
    assert cls == "com.cloud.agent.api.Answer" and fields["result"] is True
    assert running.held[ROUTER].entries == {"02:00:3a:5e:00:07": DhcpEntry("02:00:3a:5e:00:07", "10.1.1.23", "web-1")}
    agent.answer(R.DhcpEntryCommand.FQCN, with_router("DhcpEntryCommand", vmMac="02:00:3a:5e:00:08", vmName="db-1",
                                                      vmIpAddress="10.1.1.24", isDefault=False))
    assert running.held[ROUTER].entries["02:00:3a:5e:00:08"].default is False
    fields = agent.answer(R.DhcpEntryCommand.FQCN, with_router("DhcpEntryCommand", remove=True))[1]
    assert fields["result"] is True and "removed" in fields["details"]
    assert set(running.held[ROUTER].entries) == {"02:00:3a:5e:00:08"}


def test_vm_data_and_password_reach_the_runtime(agent: AgentHarness, running: FakeRouterHost) -> None:
    fields = agent.answer(R.VmDataCommand.FQCN, with_router("VmDataCommand"))[1]
    assert fields["result"] is True
    data = running.held[ROUTER].vm_data["10.1.1.23"]
    assert ("metadata", "local-hostname", "web-1") in data and ("metadata", "public-hostname", None) in data
    assert len(data) == len(sample("VmDataCommand")["vmData"])
    # empty data withdraws
    agent.answer(R.VmDataCommand.FQCN, with_router("VmDataCommand", vmData=[]))
    assert "10.1.1.23" not in running.held[ROUTER].vm_data

    fields = agent.answer(R.SavePasswordCommand.FQCN, with_router("SavePasswordCommand"))[1]
    assert fields["result"] is True and "fN8ecqwx" not in fields["details"]
    assert running.held[ROUTER].passwords == {"10.1.1.23": "fN8ecqwx"}


def test_dnsmasq_config_is_checked_against_the_router(agent: AgentHarness, running: FakeRouterHost) -> None:
    fields = agent.answer(R.DnsMasqConfigCommand.FQCN, with_router("DnsMasqConfigCommand"))[1]
    assert fields["result"] is True and "10.1.1.1/24" in fields["details"]
    other = with_router("DnsMasqConfigCommand")
    other["dhcpTOs"][0]["netmask"] = "255.255.0.0"
    assert "serves 10.1.1.1/24, not 10.1.1.1/16" in refused(agent, R.DnsMasqConfigCommand.FQCN, other)
    assert "does not exist" in refused(agent, R.DnsMasqConfigCommand.FQCN,
                                       with_router("DnsMasqConfigCommand", router="r-99-VM"))
    assert [c[0] for c in running.calls] == ["start"]


def test_ip_assoc_reaches_the_runtime_one_result_per_address(agent: AgentHarness, running: FakeRouterHost) -> None:
    body = sample("IpAssocCommand")
    body["ipAddresses"].append(dict(body["ipAddresses"][0], publicIp="192.0.2.41", sourceNat=False))
    body["ipAddresses"].append(dict(body["ipAddresses"][0], publicIp="192.0.2.42", add=False))
    cls, fields = agent.answer(R.IpAssocCommand.FQCN, body)
    assert cls == "com.cloud.agent.api.routing.IpAssocAnswer"
    assert fields["result"] is True and fields["results"] == ["192.0.2.40", "192.0.2.41", "192.0.2.42"]
    ((_, (name, change)),) = [c for c in running.calls if c[0] == "apply"]
    assert name == ROUTER and [a.ip for a in change.addresses] == ["192.0.2.40", "192.0.2.41"]
    assert change.addresses[0].source_nat and change.release == ("192.0.2.42",)
    bad = sample("IpAssocCommand")
    bad["ipAddresses"][0]["vlanNetmask"] = "255.0.255.0"
    cls, fields = agent.answer(R.IpAssocCommand.FQCN, bad)
    assert fields["result"] is False and fields["results"] == ["Failed"] and "vlanNetmask" in fields["details"]


@pytest.mark.parametrize("name,router,fields,needle", [
    ("DhcpEntryCommand", None, {}, "names no router"),
    ("DhcpEntryCommand", "r-1-VM/../../x", {}, "invalid router name"),
    ("DhcpEntryCommand", "r-99-VM", {}, "does not exist"),
    ("DhcpEntryCommand", ROUTER, {"vmMac": "02:00:3a:5e:00"}, "invalid MAC"),
    ("DhcpEntryCommand", ROUTER, {"vmMac": None}, "invalid MAC"),
    ("DhcpEntryCommand", ROUTER, {"vmIpAddress": "10.1.1.1\nserver=6.6.6.6"}, "not an IPv4 address"),
    ("DhcpEntryCommand", ROUTER, {"vmIpAddress": "fe80::1"}, "not an IPv4 address"),
    ("DhcpEntryCommand", ROUTER, {"vmName": "web-1,set:evil"}, "invalid host name"),
    ("DhcpEntryCommand", ROUTER, {"vmName": "web 1"}, "invalid host name"),
    ("DhcpEntryCommand", ROUTER, {"vmName": "a" * 64}, "invalid host name"),
    ("VmDataCommand", None, {}, "names no router"),
    ("VmDataCommand", ROUTER, {"vmIpAddress": "garbage"}, "not an IPv4 address"),
    ("VmDataCommand", ROUTER, {"vmData": [["../etc", "passwd", "x"]]}, "invalid vmData folder"),
    ("VmDataCommand", ROUTER, {"vmData": [["metadata", "a/b", "x"]]}, "invalid vmData folder"),
    ("VmDataCommand", ROUTER, {"vmData": [["metadata", "x"]]}, "triple"),
    ("VmDataCommand", ROUTER, {"vmData": [["metadata", None, "x"]]}, "invalid vmData folder"),
    ("VmDataCommand", ROUTER, {"vmData": [["metadata", "x", "1"], ["metadata", "x", "2"]]}, "twice"),
    ("VmDataCommand", ROUTER, {"vmData": [["metadata", f"k{i}", ""] for i in range(300)]}, "at most 256"),
    ("VmDataCommand", "r-99-VM", {}, "does not exist"),
    ("SavePasswordCommand", ROUTER, {"password": ""}, "password is missing"),
    ("SavePasswordCommand", ROUTER, {"password": "a\nb"}, "control characters"),
    ("SavePasswordCommand", ROUTER, {"password": "p" * 5000}, "too long"),
    ("SavePasswordCommand", ROUTER, {"vmIpAddress": None}, "address is missing"),
    ("DnsMasqConfigCommand", ROUTER, {"dhcpTOs": [{"routerIp": "x", "netmask": "255.255.255.0"}]},
     "not an IPv4 address"),
    ("DnsMasqConfigCommand", ROUTER, {"dhcpTOs": [{"routerIp": "10.1.1.1"}]}, "netmask is missing"),
])
def test_hostile_routing_commands_are_refused_cleanly(agent: AgentHarness, running: FakeRouterHost, name: str,
                                                      router: str | None, fields: dict[str, Any],
                                                      needle: str) -> None:
    fqcn = getattr(R, name).FQCN
    details = refused(agent, fqcn, with_router(name, router, **fields))
    assert needle in details, details
    assert details.startswith(f"{name} failed: ")
    held = running.held[ROUTER]
    assert not held.entries and not held.vm_data and not held.passwords


def test_huge_vm_data_is_refused_by_size(tmp_path: Path) -> None:
    agent = AgentHarness(tmp_path / "big", max_body=8 * 1024 * 1024)
    fake = FakeRouterHost()
    agent.host.routers = fake
    assert agent.answer(START, sample("StartCommand-router"))[1]["result"] is True
    blob = "A" * (1024 * 1024)
    body = with_router("VmDataCommand", vmData=[["userdata", "user-data", blob], ["metadata", "a", blob],
                                                ["metadata", "b", blob]])
    assert "larger than" in refused(agent, R.VmDataCommand.FQCN, body)
    assert [c[0] for c in fake.calls] == ["start"]


def test_a_body_over_the_agent_limit_is_not_a_500(agent: AgentHarness, running: FakeRouterHost) -> None:
    body = with_router("VmDataCommand", vmData=[["userdata", "user-data", "A" * (2 * 1024 * 1024)]])
    r = agent.post(R.VmDataCommand.FQCN, body)
    assert r.status_code == 413
    assert [c[0] for c in running.calls] == ["start"]


def test_malformed_routing_bodies_answer_in_band(agent: AgentHarness, running: FakeRouterHost) -> None:
    r = agent.post(R.VmDataCommand.FQCN, {"vmData": "not a list", "accessDetails": {"router.name": ROUTER}})
    assert r.status_code == 200
    fields = r.json()[0]["com.cloud.agent.api.Answer"]
    assert fields["result"] is False and "invalid request" in fields["details"]


# --------------------------------------------------------------------------- recovery


def test_recovery_reports_names_and_survives_a_failing_runtime(agent: AgentHarness,
                                                               running: FakeRouterHost) -> None:
    assert recover_routers(agent.host) == [ROUTER]

    class Broken(FakeRouterHost):
        def recover(self) -> list[str]:
            raise RouterError("state directory unreadable")

    agent.host.routers = Broken()
    assert recover_routers(agent.host) == []
    agent.host.routers = None
    assert recover_routers(agent.host) == []


@pytest.mark.parametrize("value", [12345, 1e300, ["r-12-VM"], {"a": 1}, True])
def test_router_name_that_is_not_text_is_refused(agent: AgentHarness, running: FakeRouterHost, value: Any) -> None:
    """Found by fuzzing: accessDetails is a map of anything on the wire."""
    body = with_router("DhcpEntryCommand")
    body["accessDetails"]["router.name"] = value
    assert "is not a string" in refused(agent, R.DhcpEntryCommand.FQCN, body)
