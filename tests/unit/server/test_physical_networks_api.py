"""Physical networks, traffic types, network service providers, the VirtualRouter element and IP
ranges through the API: CloudStack's shapes and rules, every refusal a 431 that changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from hvcloud.server.db.models import GuestVnet, Nic, VlanIpRange
from hvcloud.server.orchestration.networks import physical
from hvcloud.server.state import ServerState
from tests.support.network_setup import add_physical_network, job_result, offering_id
from tests.support.server_api import Caller, build_zone
from tests.unit.server.network_checks import hold_address, refused


@pytest.fixture
def zone(admin: Caller) -> dict[str, str]:
    ids = build_zone(admin)
    admin.ok("updateZone", id=ids["zoneid"], allocationstate="Enabled")
    return ids


def _create_pn(admin: Caller, zoneid: str, **params: Any) -> dict[str, Any]:
    return job_result(admin, "createPhysicalNetwork", zoneid=zoneid, **params)["physicalnetwork"]  # type: ignore[no-any-return]


def test_create_physical_network_adds_its_providers_as_cloudstack(admin: Caller, zone: dict[str, str]) -> None:
    answer = admin.ok("createPhysicalNetwork", zoneid=zone["zoneid"], name="pn-a", isolationmethods="vxlan",
                      vlan="5000-5999, 7000-7010", networkspeed="10G", tags="fast")
    assert set(answer) == {"id", "jobid"}
    job = admin.wait(answer["jobid"])
    pn = job["jobresult"]["physicalnetwork"]
    assert pn["id"] == answer["id"]
    assert pn["isolationmethods"] == "VXLAN" and pn["vlan"] == "5000-5999,7000-7010"
    assert pn["state"] == "Disabled" and pn["broadcastdomainrange"] == "ZONE" and pn["tags"] == "fast"
    assert pn["zonename"] == "zone1" and pn["networkspeed"] == "10G"
    listed = admin.ok("listPhysicalNetworks", zoneid=zone["zoneid"])
    assert listed["count"] == 1 and listed["physicalnetwork"][0] == pn
    nsps = admin.ok("listNetworkServiceProviders", physicalnetworkid=pn["id"])["networkserviceprovider"]
    by_name = {p["name"]: p for p in nsps}
    assert set(by_name) == {"VirtualRouter", "SecurityGroupProvider"}
    assert all(p["state"] == "Disabled" for p in nsps)
    assert "Dhcp" in by_name["VirtualRouter"]["servicelist"] and by_name["SecurityGroupProvider"]["servicelist"] == [
        "SecurityGroup"]
    elements = admin.ok("listVirtualRouterElements", nspid=by_name["VirtualRouter"]["id"])["virtualrouterelement"]
    assert len(elements) == 1 and elements[0]["enabled"] is False


@pytest.mark.parametrize(("params", "field"), [
    ({"isolationmethods": "GRE"}, "isolationmethods"),
    ({"isolationmethods": "VLAN,VXLAN"}, "isolationmethods"),
    ({"vlan": "0-10"}, "vlan"),
    ({"vlan": "4000-4095"}, "vlan"),
    ({"vlan": "10-5"}, "vlan"),
    ({"vlan": "abc"}, "vlan"),
    ({"vlan": "10-20,15-30"}, "vlan"),
    ({"vlan": "1-2-3"}, "vlan"),
    ({"vlan": ",".join(f"{i}-{i}" for i in range(1, 200, 2))}, "vlan"),
    ({"vlan": "99999999999-1"}, "vlan"),
    ({"isolationmethods": "VXLAN", "vlan": "16777000-16777215"}, "vlan"),
    ({"broadcastdomainrange": "POD"}, "broadcastdomainrange"),
    ({"broadcastdomainrange": "EVERYWHERE"}, "broadcastdomainrange"),
    ({"tags": "a,b"}, "tags"),
])
def test_create_physical_network_refuses_bad_input(state: ServerState, admin: Caller, zone: dict[str, str],
                                                   params: dict[str, str], field: str) -> None:
    refused(state, admin, "createPhysicalNetwork", field=field, zoneid=zone["zoneid"], name="bad", **params)


def test_physical_network_ranges_do_not_overlap_in_a_zone(state: ServerState, admin: Caller,
                                                          zone: dict[str, str]) -> None:
    _create_pn(admin, zone["zoneid"], name="one", vlan="100-199")
    refused(state, admin, "createPhysicalNetwork", field="vlan", zoneid=zone["zoneid"], name="two", vlan="150-250")
    other = build_zone(admin, "zone2")
    assert _create_pn(admin, other["zoneid"], name="elsewhere", vlan="150-250")["vlan"] == "150-250"
    refused(state, admin, "createPhysicalNetwork", field="zoneid", zoneid="00000000-0000-0000-0000-000000000000",
            name="nowhere")


def test_user_cannot_touch_infrastructure(state: ServerState, admin: Caller, user_caller: Caller,
                                          zone: dict[str, str]) -> None:
    pn = _create_pn(admin, zone["zoneid"], name="pn")
    for command, params in (("createPhysicalNetwork", {"zoneid": zone["zoneid"], "name": "x"}),
                            ("listPhysicalNetworks", {}), ("deletePhysicalNetwork", {"id": pn["id"]}),
                            ("addTrafficType", {"physicalnetworkid": pn["id"], "traffictype": "Guest"}),
                            ("listVlanIpRanges", {}), ("listNetworkServiceProviders", {})):
        status, _ = user_caller.call(command, **params)
        assert status in (401, 432), command


def test_update_physical_network_range_keeps_segments_in_use(state: ServerState, admin: Caller,
                                                             zone: dict[str, str]) -> None:
    pn = add_physical_network(admin, zone["zoneid"], method="VLAN", vlan="100-199")
    shared = admin.ok("createNetwork", name="sh", zoneid=zone["zoneid"], vlan="150", gateway="192.168.9.1",
                      netmask="255.255.255.0", startip="192.168.9.10", endip="192.168.9.20",
                      networkofferingid=offering_id(admin, "DefaultSharedNetworkOffering"))["network"]
    refused(state, admin, "updatePhysicalNetwork", field="150", id=pn["id"], vlan="100-149")
    refused(state, admin, "updatePhysicalNetwork", field="150", id=pn["id"], removevlan="140-160")
    refused(state, admin, "updatePhysicalNetwork", field="state", id=pn["id"], state="Sideways")
    grown = job_result(admin, "updatePhysicalNetwork", id=pn["id"], vlan="100-160,300-310")["physicalnetwork"]
    assert grown["vlan"] == "100-160,300-310"
    cut = job_result(admin, "updatePhysicalNetwork", id=pn["id"], removevlan="300-305,100-109")["physicalnetwork"]
    assert cut["vlan"] == "110-160,306-310"
    refused(state, admin, "deletePhysicalNetwork", code=530, field="networks", id=pn["id"])
    assert admin.job("deleteNetwork", id=shared["id"])["jobstatus"] == 1
    disabled = job_result(admin, "updatePhysicalNetwork", id=pn["id"], state="disabled", tags="gold",
                          networkspeed="25G")["physicalnetwork"]
    assert disabled["state"] == "Disabled" and disabled["tags"] == "gold" and disabled["networkspeed"] == "25G"
    untagged = job_result(admin, "updatePhysicalNetwork", id=pn["id"], tags="")["physicalnetwork"]
    assert "tags" not in untagged and untagged["vlan"] == "110-160,306-310"
    assert job_result(admin, "deletePhysicalNetwork", id=pn["id"]) == {"success": True}
    assert admin.ok("listPhysicalNetworks", zoneid=zone["zoneid"]) == {}
    assert admin.ok("listNetworkServiceProviders", physicalnetworkid=pn["id"]) == {}
    refused(state, admin, "updatePhysicalNetwork", field="id", id=pn["id"], state="Enabled")


def test_traffic_types(state: ServerState, admin: Caller, zone: dict[str, str]) -> None:
    pn = _create_pn(admin, zone["zoneid"], name="pn", vlan="10-20")
    guest = job_result(admin, "addTrafficType", physicalnetworkid=pn["id"], traffictype="guest",
                       kvmnetworklabel="br-guest", hypervnetworklabel="vSwitch0")["traffictype"]
    assert guest["traffictype"] == "Guest" and guest["kvmnetworklabel"] == "br-guest"
    assert guest["hypervnetworklabel"] == "vSwitch0" and guest["physicalnetworkid"] == pn["id"]
    refused(state, admin, "addTrafficType", code=530, field="Guest", physicalnetworkid=pn["id"], traffictype="Guest")
    refused(state, admin, "addTrafficType", field="traffictype", physicalnetworkid=pn["id"], traffictype="Control")
    refused(state, admin, "addTrafficType", field="isolationmethod", physicalnetworkid=pn["id"],
            traffictype="Public", isolationmethod="VXLAN")
    refused(state, admin, "addTrafficType", field="kvmnetworklabel", physicalnetworkid=pn["id"],
            traffictype="Public", kvmnetworklabel="x" * 300)
    second = _create_pn(admin, zone["zoneid"], name="pn2", vlan="30-40")
    refused(state, admin, "addTrafficType", code=530, field="tags", physicalnetworkid=second["id"],
            traffictype="Guest")
    job_result(admin, "addTrafficType", physicalnetworkid=pn["id"], traffictype="Management")
    refused(state, admin, "addTrafficType", code=530, field="Management", physicalnetworkid=second["id"],
            traffictype="Management")
    tagged = _create_pn(admin, zone["zoneid"], name="pn3", vlan="50-60", tags="fast")
    assert job_result(admin, "addTrafficType", physicalnetworkid=tagged["id"], traffictype="Guest")[
        "traffictype"]["traffictype"] == "Guest"
    # a network lands on the physical network tagged like its offering, else on the untagged one
    fast = admin.ok("createNetworkOffering", name="fast", guestiptype="L2", traffictype="Guest", tags="fast",
                    enable="true")["networkoffering"]
    slow = admin.ok("createNetworkOffering", name="slow", guestiptype="L2", traffictype="Guest", tags="slow",
                    enable="true")["networkoffering"]
    on_fast = admin.ok("createNetwork", name="f", zoneid=zone["zoneid"], networkofferingid=fast["id"])["network"]
    assert on_fast["physicalnetworkid"] == tagged["id"]
    refused(state, admin, "createNetwork", field="tagged", name="s", zoneid=zone["zoneid"],
            networkofferingid=slow["id"])
    plain = admin.ok("createNetwork", name="p", zoneid=zone["zoneid"],
                     networkofferingid=offering_id(admin, "DefaultL2NetworkOffering"))["network"]
    assert plain["physicalnetworkid"] == pn["id"]
    for made in (on_fast, plain):
        admin.job("deleteNetwork", id=made["id"])
    listed = admin.ok("listTrafficTypes", physicalnetworkid=pn["id"])
    assert [t["traffictype"] for t in listed["traffictype"]] == ["Guest", "Management"]
    updated = job_result(admin, "updateTrafficType", id=guest["id"], kvmnetworklabel="br-new")["traffictype"]
    assert updated["kvmnetworklabel"] == "br-new" and updated["hypervnetworklabel"] == "vSwitch0"
    isolated = admin.ok("createNetwork", name="iso", zoneid=zone["zoneid"], physicalnetworkid=pn["id"],
                        networkofferingid=offering_id(admin, "DefaultIsolatedNetworkOfferingWithSourceNatService"))
    assert isolated["network"]["physicalnetworkid"] == pn["id"]
    refused(state, admin, "deleteTrafficType", field="network", id=guest["id"])
    admin.job("deleteNetwork", id=isolated["network"]["id"])
    assert job_result(admin, "deleteTrafficType", id=guest["id"]) == {"success": True}
    assert [t["traffictype"] for t in admin.ok("listTrafficTypes", physicalnetworkid=pn["id"])["traffictype"]] == [
        "Management"]


def test_enabling_the_virtual_router_needs_its_element(state: ServerState, admin: Caller,
                                                       zone: dict[str, str]) -> None:
    pn = _create_pn(admin, zone["zoneid"], name="pn")
    vr = admin.ok("listNetworkServiceProviders", physicalnetworkid=pn["id"], name="VirtualRouter")[
        "networkserviceprovider"][0]
    refused(state, admin, "updateNetworkServiceProvider", code=530, field="configure", id=vr["id"], state="Enabled")
    refused(state, admin, "updateNetworkServiceProvider", field="servicelist", id=vr["id"],
            servicelist="Dhcp,SecurityGroup")
    refused(state, admin, "updateNetworkServiceProvider", field="state", id=vr["id"], state="On")
    sg = admin.ok("listNetworkServiceProviders", physicalnetworkid=pn["id"], name="SecurityGroupProvider")[
        "networkserviceprovider"][0]
    refused(state, admin, "updateNetworkServiceProvider", field="servicelist", id=sg["id"],
            servicelist="SecurityGroup")
    element = admin.ok("listVirtualRouterElements", nspid=vr["id"])["virtualrouterelement"][0]
    configured = job_result(admin, "configureVirtualRouterElement", id=element["id"], enabled="true")
    assert configured["virtualrouterelement"] == {"id": element["id"], "nspid": vr["id"], "enabled": True}
    assert admin.ok("listVirtualRouterElements", enabled="true")["count"] == 1
    enabled = job_result(admin, "updateNetworkServiceProvider", id=vr["id"], state="Enabled",
                         servicelist="Dhcp,Dns,UserData")["networkserviceprovider"]
    assert enabled["state"] == "Enabled" and enabled["servicelist"] == ["Dhcp", "Dns", "UserData"]
    assert admin.ok("listNetworkServiceProviders", state="Enabled")["count"] == 1


# ---------------------------------------------------------------------------- IP ranges


@pytest.fixture
def pn(admin: Caller, zone: dict[str, str]) -> dict[str, Any]:
    return add_physical_network(admin, zone["zoneid"], method="VLAN", vlan="100-199")


def test_public_ranges(state: ServerState, admin: Caller, zone: dict[str, str], pn: dict[str, Any]) -> None:
    made = admin.ok("createVlanIpRange", zoneid=zone["zoneid"], forvirtualnetwork="true", vlan="vlan://20",
                    gateway="203.0.113.1", netmask="255.255.255.0", startip="203.0.113.10",
                    endip="203.0.113.50")["vlan"]
    assert made["vlan"] == "vlan://20" and made["physicalnetworkid"] == pn["id"] and made["forvirtualnetwork"]
    assert made["cidr"] == "203.0.113.0/24" and made["description"] == "203.0.113.10-203.0.113.50"
    base = {"zoneid": zone["zoneid"], "forvirtualnetwork": "true", "netmask": "255.255.255.0"}
    refused(state, admin, "createVlanIpRange", field="startip", gateway="203.0.113.1", startip="203.0.113.50",
            endip="203.0.113.60", **base)
    refused(state, admin, "createVlanIpRange", field="gateway", gateway="198.51.100.1", startip="203.0.113.60",
            endip="203.0.113.70", **base)
    refused(state, admin, "createVlanIpRange", field="gateway", gateway="203.0.113.65", startip="203.0.113.60",
            endip="203.0.113.70", **base)
    refused(state, admin, "createVlanIpRange", field="endip", gateway="203.0.113.1", startip="203.0.113.90",
            endip="203.0.113.80", **base)
    refused(state, admin, "createVlanIpRange", field="endip", gateway="203.0.113.1", startip="203.0.113.90",
            endip="203.0.114.80", **base)
    refused(state, admin, "createVlanIpRange", field="vlan", gateway="203.0.113.1", startip="203.0.113.90",
            vlan="150", **base)
    refused(state, admin, "createVlanIpRange", field="vlan", gateway="203.0.113.1", startip="203.0.113.90",
            vlan="5000", **base)
    refused(state, admin, "createVlanIpRange", field="vlan", gateway="203.0.113.1", startip="203.0.113.90",
            vlan="vxlan://30", **base)
    refused(state, admin, "createVlanIpRange", field="netmask", gateway="203.0.113.1", startip="203.0.113.90",
            zoneid=zone["zoneid"], forvirtualnetwork="true", netmask="255.0.255.0")
    refused(state, admin, "createVlanIpRange", field="startip", gateway="203.0.113.1", startip="203.0.113.999",
            **base)
    refused(state, admin, "createVlanIpRange", field="networkid", gateway="203.0.113.1", startip="203.0.113.90",
            zoneid=zone["zoneid"], forvirtualnetwork="false", netmask="255.255.255.0")
    refused(state, admin, "createVlanIpRange", field="zoneid", startip="203.0.113.90")
    listed = admin.ok("listVlanIpRanges", zoneid=zone["zoneid"], forvirtualnetwork="true", vlan="20")
    assert listed["count"] == 1 and listed["vlaniprange"][0]["id"] == made["id"]
    assert admin.ok("deleteVlanIpRange", id=made["id"]) == {"success": "true"}
    assert admin.ok("listVlanIpRanges", zoneid=zone["zoneid"]) == {}
    refused(state, admin, "deleteVlanIpRange", field="id", id=made["id"])


def test_public_range_needs_public_traffic(state: ServerState, admin: Caller, zone: dict[str, str]) -> None:
    add_physical_network(admin, zone["zoneid"], public=False)
    refused(state, admin, "createVlanIpRange", field="physicalnetworkid", zoneid=zone["zoneid"],
            forvirtualnetwork="true", gateway="203.0.113.1", netmask="255.255.255.0", startip="203.0.113.10")


def test_shared_network_ranges(state: ServerState, admin: Caller, zone: dict[str, str], pn: dict[str, Any]) -> None:
    shared = admin.ok("createNetwork", name="sh", zoneid=zone["zoneid"], vlan="120", gateway="192.168.10.1",
                      netmask="255.255.255.0", startip="192.168.10.10", endip="192.168.10.20",
                      networkofferingid=offering_id(admin, "DefaultSharedNetworkOffering"))["network"]
    first = admin.ok("listVlanIpRanges", networkid=shared["id"])["vlaniprange"]
    assert len(first) == 1 and first[0]["vlan"] == "vlan://120" and not first[0]["forvirtualnetwork"]
    more = admin.ok("createVlanIpRange", networkid=shared["id"], startip="192.168.10.100",
                    endip="192.168.10.150")["vlan"]
    assert more["networkid"] == shared["id"] and more["gateway"] == "192.168.10.1" and more["vlan"] == "vlan://120"
    refused(state, admin, "createVlanIpRange", field="startip", networkid=shared["id"], startip="192.168.10.15",
            endip="192.168.10.30")
    refused(state, admin, "createVlanIpRange", field="gateway", networkid=shared["id"], gateway="192.168.10.2",
            startip="192.168.10.200")
    refused(state, admin, "createVlanIpRange", field="netmask", networkid=shared["id"], netmask="255.255.0.0",
            startip="192.168.10.200")
    refused(state, admin, "createVlanIpRange", field="vlan", networkid=shared["id"], vlan="121",
            startip="192.168.10.200")
    refused(state, admin, "createVlanIpRange", field="startip", networkid=shared["id"], startip="192.168.11.200")
    refused(state, admin, "createVlanIpRange", field="forvirtualnetwork", networkid=shared["id"],
            forvirtualnetwork="true", startip="192.168.10.200")
    isolated = admin.ok("createNetwork", name="iso", zoneid=zone["zoneid"],
                        networkofferingid=offering_id(admin, "DefaultIsolatedNetworkOfferingWithSourceNatService"))
    refused(state, admin, "createVlanIpRange", field="networkid", networkid=isolated["network"]["id"],
            startip="10.1.1.50")
    # an address of the range held by a NIC: the range stays
    hold_address(state, admin, zone, shared["id"], "192.168.10.120")
    refused(state, admin, "deleteVlanIpRange", field="in use", id=more["id"])
    assert admin.ok("deleteVlanIpRange", id=first[0]["id"]) == {"success": "true"}


def test_deleted_network_gives_back_its_segment_and_ranges(state: ServerState, admin: Caller,
                                                            zone: dict[str, str], pn: dict[str, Any]) -> None:
    offering = offering_id(admin, "DefaultSharedNetworkOffering")
    params = {"zoneid": zone["zoneid"], "vlan": "130", "gateway": "192.168.20.1", "netmask": "255.255.255.0",
              "startip": "192.168.20.10", "networkofferingid": offering}
    shared = admin.ok("createNetwork", name="a", **params)["network"]
    with state.sessions() as db:
        assert db.get(GuestVnet, (pn["id"], 130)) is not None
    refused(state, admin, "createNetwork", field="vlan", name="b", **params)
    nic = hold_address(state, admin, zone, shared["id"], "192.168.20.10")
    refused(state, admin, "deleteNetwork", field="NIC", id=shared["id"])
    with state.sessions.begin() as db:
        row = db.get(Nic, nic)
        assert row is not None
        row.removed, row.ip_key = row.created, None
    job = admin.job("deleteNetwork", id=shared["id"])
    assert job["jobstatus"] == 1 and job["jobresult"] == {"success": True}
    with state.sessions() as db:
        assert db.get(GuestVnet, (pn["id"], 130)) is None
        assert all(r.removed is not None for r in db.scalars(select(VlanIpRange)))
    again = admin.ok("createNetwork", name="b", **params)["network"]
    assert again["vlan"] == "130"


def test_a_deleted_physical_network_takes_its_public_ranges(admin: Caller, zone: dict[str, str],
                                                            pn: dict[str, Any]) -> None:
    made = admin.ok("createVlanIpRange", zoneid=zone["zoneid"], forvirtualnetwork="true", gateway="203.0.113.1",
                    netmask="255.255.255.0", startip="203.0.113.10")["vlan"]
    assert made["endip"] == "203.0.113.10" and made["vlan"] == "vlan://untagged"
    assert job_result(admin, "deletePhysicalNetwork", id=pn["id"]) == {"success": True}
    assert admin.ok("listVlanIpRanges", zoneid=zone["zoneid"]) == {}


def test_traffic_label_per_hypervisor(state: ServerState, admin: Caller, zone: dict[str, str]) -> None:
    pn = add_physical_network(admin, zone["zoneid"], guest_label="br-g")
    with state.sessions() as db:
        assert physical.traffic_label(db, pn["id"], "KVM") == "br-g"
        assert physical.traffic_label(db, pn["id"], "Hyperv") == "br-g-switch"
        assert physical.traffic_label(db, pn["id"], "Simulator") == "br-g"
        assert physical.traffic_label(db, pn["id"], "KVM", "Public") == "cloudbr1"
        assert physical.traffic_label(db, pn["id"], "KVM", "Storage") is None
        guest_pn = physical.guest_physical_network(db, zone["zoneid"])
        assert guest_pn is not None and guest_pn.id == pn["id"]


def test_calls_on_deleted_objects_are_refused(state: ServerState, admin: Caller, zone: dict[str, str]) -> None:
    pn = add_physical_network(admin, zone["zoneid"], vlan="10-20")
    nsp = admin.ok("listNetworkServiceProviders", physicalnetworkid=pn["id"])["networkserviceprovider"][0]
    element = admin.ok("listVirtualRouterElements")["virtualrouterelement"][0]
    traffic = admin.ok("listTrafficTypes", physicalnetworkid=pn["id"])["traffictype"][0]
    job_result(admin, "deletePhysicalNetwork", id=pn["id"])
    refused(state, admin, "addTrafficType", field="physicalnetworkid", physicalnetworkid=pn["id"],
            traffictype="Storage")
    refused(state, admin, "updateNetworkServiceProvider", field="id", id=nsp["id"], state="Enabled")
    refused(state, admin, "configureVirtualRouterElement", field="id", id=element["id"], enabled="true")
    refused(state, admin, "updateTrafficType", field="id", id=traffic["id"], kvmnetworklabel="x")
    refused(state, admin, "deletePhysicalNetwork", field="id", id=pn["id"])
    refused(state, admin, "createNetwork", field="physicalnetworkid", name="n", zoneid=zone["zoneid"],
            physicalnetworkid=pn["id"], networkofferingid=offering_id(admin, "DefaultL2NetworkOffering"))
    refused(state, admin, "createVlanIpRange", field="physicalnetworkid", zoneid=zone["zoneid"],
            physicalnetworkid=pn["id"], forvirtualnetwork="true", gateway="203.0.113.1", netmask="255.255.255.0",
            startip="203.0.113.10")
