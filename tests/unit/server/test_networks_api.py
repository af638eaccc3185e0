"""Guest networks through the API: isolated per account (default CIDR), shared by an admin with a
segment and a range, L2; CloudStack's listNetworks filters and visibility; update and delete rules."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server.db.models import Domain, GuestVnet, Network, Nic
from hvcloud.server.orchestration.networks import routing
from hvcloud.server.orchestration.vm.steps import StepFailed, Steps
from hvcloud.server.state import ServerState
from tests.support.network_setup import add_physical_network, offering_id
from tests.support.server_api import Caller, build_zone
from tests.unit.server.network_checks import hold_address, refused

SNAT = "DefaultIsolatedNetworkOfferingWithSourceNatService"
SHARED = "DefaultSharedNetworkOffering"


@pytest.fixture
def cloud(admin: Caller) -> dict[str, Any]:
    ids = build_zone(admin)
    admin.ok("updateZone", id=ids["zoneid"], allocationstate="Enabled")
    pn = add_physical_network(admin, ids["zoneid"], method="VXLAN", vlan="5000-5099")
    offerings = {o["name"]: o["id"] for o in admin.ok("listNetworkOfferings")["networkoffering"]}
    return {**ids, "pn": pn["id"], "offerings": offerings}


def _caller(admin: Caller, name: str) -> Caller:
    account = admin.ok("createAccount", username=name, password="pw-123456", firstname=name, lastname="X",
                       accounttype=0)["account"]
    keys = admin.ok("registerUserKeys", id=account["user"][0]["id"])["userkeys"]
    return Caller(admin.http, keys["apikey"], keys["secretkey"])


def _shared(admin: Caller, cloud: dict[str, Any], name: str = "shared", vlan: str = "5050",
            subnet: str = "192.168.50") -> dict[str, Any]:
    return admin.ok("createNetwork", name=name, zoneid=cloud["zoneid"], networkofferingid=cloud["offerings"][SHARED],
                    vlan=vlan, gateway=f"{subnet}.1", netmask="255.255.255.0", startip=f"{subnet}.10",
                    endip=f"{subnet}.200")["network"]  # type: ignore[no-any-return]


def test_isolated_network_defaults(state: ServerState, user_caller: Caller, cloud: dict[str, Any]) -> None:
    network = user_caller.ok("createNetwork", name="web", zoneid=cloud["zoneid"],
                             networkofferingid=cloud["offerings"][SNAT])["network"]
    assert network["cidr"] == "10.1.1.0/24" and network["gateway"] == "10.1.1.1"
    assert network["netmask"] == "255.255.255.0" and network["displaytext"] == "web"
    assert network["state"] == "Allocated" and network["type"] == "Isolated" and network["acltype"] == "Account"
    assert network["account"] == "alice" and network["domain"] == "ROOT" and network["traffictype"] == "Guest"
    assert network["broadcastdomaintype"] == "Vxlan" and network["physicalnetworkid"] == cloud["pn"]
    assert network["networkofferingname"] == SNAT and network["dns1"] == "8.8.8.8"
    assert network["networkdomain"].endswith("cloud.internal") and network["related"] == network["id"]
    assert "SourceNat" in {s["name"] for s in network["service"]}
    assert "vlan" not in network and "broadcasturi" not in network
    with state.sessions() as db:
        row = db.get(Network, network["id"])
        assert row is not None and row.vnet is None and row.broadcast_uri is None


def test_isolated_network_takes_the_zone_cidr(admin: Caller) -> None:
    zone = admin.ok("createZone", name="z-cidr", networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.1",
                    guestcidraddress="10.20.0.0/22", allocationstate="Enabled")["zone"]
    add_physical_network(admin, zone["id"], vlan="10-20")
    network = admin.ok("createNetwork", name="n", zoneid=zone["id"], networkdomain="Corp.Example.",
                       networkofferingid=offering_id(admin, SNAT))["network"]
    assert network["cidr"] == "10.20.0.0/22" and network["gateway"] == "10.20.0.1"
    assert network["networkdomain"] == "corp.example"


def test_isolated_network_with_its_own_cidr(admin: Caller, cloud: dict[str, Any]) -> None:
    network = admin.ok("createNetwork", name="n", zoneid=cloud["zoneid"], networkofferingid=cloud["offerings"][SNAT],
                       gateway="172.16.5.254", netmask="255.255.254.0")["network"]
    assert network["cidr"] == "172.16.4.0/23" and network["gateway"] == "172.16.5.254"


@pytest.mark.parametrize(("params", "field"), [
    ({"gateway": "10.2.0.0", "netmask": "255.255.255.0"}, "gateway"),
    ({"gateway": "10.2.0.255", "netmask": "255.255.255.0"}, "gateway"),
    ({"gateway": "10.2.0.1"}, "netmask"),
    ({"netmask": "255.255.255.0"}, "gateway"),
    ({"gateway": "10.2.0.1", "netmask": "255.255.255.252"}, "netmask"),
    ({"gateway": "10.2.0.1", "netmask": "255.0.255.0"}, "netmask"),
    ({"gateway": "10.2.0.1", "netmask": "255.0.0.0.0"}, "netmask"),
    ({"gateway": "10.2.0.1", "netmask": "128.0.0.0"}, "netmask"),
    ({"gateway": "8.8.8.1", "netmask": "255.255.255.0"}, "gateway"),
    ({"gateway": "not-an-ip", "netmask": "255.255.255.0"}, "gateway"),
    ({"gateway": "fe80::1", "netmask": "255.255.255.0"}, "gateway"),
    ({"startip": "10.1.2.5"}, "startip"),
    ({"startip": "10.1.1.50", "endip": "10.1.1.40"}, "endip"),
    ({"networkdomain": "bad domain!"}, "networkdomain"),
    ({"networkdomain": "-x.example"}, "networkdomain"),
    ({"networkdomain": ("a" * 64) + ".example"}, "networkdomain"),
    ({"vlan": "5010"}, "vlan"),
    ({"acltype": "Domain"}, "acltype"),
    ({"acltype": "Galaxy"}, "acltype"),
    ({"subdomainaccess": "true"}, "subdomainaccess"),
    ({"projectid": "11111111-2222-3333-4444-555555555555"}, "projectid"),
    ({"vpcid": "11111111-2222-3333-4444-555555555555"}, "vpcid"),
    ({"account": "nobody", "domainid": "00000000-0000-0000-0000-000000000000"}, "domainid"),
    ({"account": "nobody"}, "domainid"),
    ({"physicalnetworkid": "00000000-0000-0000-0000-000000000000"}, "physicalnetworkid"),
    ({"networkofferingid": "00000000-0000-0000-0000-000000000000"}, "networkofferingid"),
    ({"zoneid": "00000000-0000-0000-0000-000000000000"}, "zoneid"),
])
def test_create_network_refuses_bad_input(state: ServerState, admin: Caller, cloud: dict[str, Any],
                                          params: dict[str, str], field: str) -> None:
    base = {"name": "bad", "zoneid": cloud["zoneid"], "networkofferingid": cloud["offerings"][SNAT], **params}
    refused(state, admin, "createNetwork", field=field, **base)


def test_network_offering_and_zone_rules(state: ServerState, admin: Caller, user_caller: Caller,
                                         cloud: dict[str, Any]) -> None:
    zoneid, offerings = cloud["zoneid"], cloud["offerings"]
    disabled = admin.ok("createNetworkOffering", name="off", guestiptype="Isolated", traffictype="Guest",
                        supportedservices="Dhcp")["networkoffering"]
    refused(state, admin, "createNetwork", field="networkofferingid", name="n", zoneid=zoneid,
            networkofferingid=disabled["id"])
    refused(state, user_caller, "createNetwork", field="networkofferingid", name="n", zoneid=zoneid,
            networkofferingid=offerings[SHARED], vlan="5001", gateway="192.168.1.1", netmask="255.255.255.0",
            startip="192.168.1.5")
    refused(state, admin, "createNetwork", field="vlan", name="n", zoneid=zoneid,
            networkofferingid=offerings["DefaultIsolatedNetworkOffering"])
    refused(state, user_caller, "createNetwork", field="vlan", name="n", zoneid=zoneid, vlan="5002",
            networkofferingid=offerings["DefaultIsolatedNetworkOffering"])
    basic = admin.ok("createZone", name="basic", networktype="Basic", dns1="8.8.8.8", internaldns1="10.0.0.1",
                     allocationstate="Enabled")["zone"]
    refused(state, admin, "createNetwork", field="networkofferingid", name="n", zoneid=basic["id"],
            networkofferingid=offerings[SNAT])
    bare = admin.ok("createZone", name="bare", networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.1",
                    allocationstate="Enabled")["zone"]
    refused(state, admin, "createNetwork", field="zoneid", name="n", zoneid=bare["id"],
            networkofferingid=offerings[SNAT])
    other = add_physical_network(admin, bare["id"], vlan="10-20")
    refused(state, admin, "createNetwork", field="physicalnetworkid", name="n", zoneid=zoneid,
            physicalnetworkid=other["id"], networkofferingid=offerings[SNAT])
    admin.ok("updateZone", id=bare["id"], allocationstate="Disabled")
    refused(state, user_caller, "createNetwork", code=531, field="disabled", name="n", zoneid=bare["id"],
            networkofferingid=offerings[SNAT])
    # a specified segment for an isolated network (admin, specifyvlan offering): held from creation
    held = admin.ok("createNetwork", name="n", zoneid=zoneid, vlan="vxlan://5003",
                    networkofferingid=offerings["DefaultIsolatedNetworkOffering"])["network"]
    assert held["vlan"] == "5003" and held["broadcasturi"] == "vxlan://5003"
    refused(state, admin, "createNetwork", field="vlan", name="n", zoneid=zoneid, vlan="vlan://5004",
            networkofferingid=offerings["DefaultIsolatedNetworkOffering"])
    refused(state, admin, "createNetwork", field="vlan", name="n", zoneid=zoneid, vlan="untagged",
            networkofferingid=offerings["DefaultIsolatedNetworkOffering"])


def test_shared_network(state: ServerState, admin: Caller, user_caller: Caller, cloud: dict[str, Any]) -> None:
    shared = _shared(admin, cloud)
    assert shared["type"] == "Shared" and shared["acltype"] == "Domain" and "account" not in shared
    assert shared["vlan"] == "5050" and shared["broadcasturi"] == "vxlan://5050"
    assert shared["cidr"] == "192.168.50.0/24" and shared["specifyipranges"] is True
    with state.sessions() as db:
        vnet = db.get(GuestVnet, (cloud["pn"], 5050))
        assert vnet is not None and vnet.network_id == shared["id"]
    ranges = admin.ok("listVlanIpRanges", networkid=shared["id"])["vlaniprange"]
    assert [(r["startip"], r["endip"], r["vlan"]) for r in ranges] == [("192.168.50.10", "192.168.50.200",
                                                                      "vxlan://5050")]
    seen = user_caller.ok("listNetworks", id=shared["id"])["network"][0]
    assert "vlan" not in seen and "broadcasturi" not in seen and seen["gateway"] == "192.168.50.1"
    base = {"name": "s2", "zoneid": cloud["zoneid"], "networkofferingid": cloud["offerings"][SHARED]}
    refused(state, admin, "createNetwork", field="vlan", vlan="5050", gateway="192.168.60.1",
            netmask="255.255.255.0", startip="192.168.60.10", **base)
    refused(state, admin, "createNetwork", field="vlan", vlan="6000", gateway="192.168.60.1",
            netmask="255.255.255.0", startip="192.168.60.10", **base)
    refused(state, admin, "createNetwork", field="vlan", vlan="4095", gateway="192.168.60.1",
            netmask="255.255.255.0", startip="192.168.60.10", **base)
    refused(state, admin, "createNetwork", field="vlan", gateway="192.168.60.1", netmask="255.255.255.0",
            startip="192.168.60.10", **base)
    refused(state, admin, "createNetwork", field="startip", vlan="5051", gateway="192.168.60.1",
            netmask="255.255.255.0", **base)
    refused(state, admin, "createNetwork", field="startip", vlan="5051", gateway="192.168.50.1",
            netmask="255.255.255.0", startip="192.168.50.100", endip="192.168.50.220", **base)
    refused(state, admin, "createNetwork", field="gateway", vlan="5051", gateway="192.168.60.15",
            netmask="255.255.255.0", startip="192.168.60.10", endip="192.168.60.20", **base)
    refused(state, admin, "createNetwork", field="startip", vlan="5051", gateway="192.168.60.1",
            netmask="255.255.255.0", startip="192.168.61.10", **base)
    untagged = admin.ok("createNetwork", vlan="untagged", gateway="192.168.70.1", netmask="255.255.255.0",
                        startip="192.168.70.10", **base)["network"]
    assert untagged["broadcasturi"] == "vlan://untagged" and untagged["broadcastdomaintype"] == "Vlan"


def test_l2_network(state: ServerState, admin: Caller, user_caller: Caller, cloud: dict[str, Any]) -> None:
    l2 = user_caller.ok("createNetwork", name="l2", zoneid=cloud["zoneid"],
                        networkofferingid=cloud["offerings"]["DefaultL2NetworkOffering"])["network"]
    assert l2["type"] == "L2" and "cidr" not in l2 and "gateway" not in l2 and "networkdomain" not in l2
    assert l2["service"] == [] and "dns1" not in l2
    refused(state, user_caller, "createNetwork", field="gateway", name="l2b", zoneid=cloud["zoneid"],
            gateway="10.9.9.1", netmask="255.255.255.0",
            networkofferingid=cloud["offerings"]["DefaultL2NetworkOffering"])
    tagged = admin.ok("createNetwork", name="l2v", zoneid=cloud["zoneid"], vlan="5077",
                      networkofferingid=cloud["offerings"]["DefaultL2NetworkOfferingVlan"])["network"]
    assert tagged["broadcasturi"] == "vxlan://5077"


def test_visibility_and_ownership(state: ServerState, admin: Caller, user_caller: Caller,
                                  cloud: dict[str, Any]) -> None:
    bob = _caller(admin, "bob")
    mine = user_caller.ok("createNetwork", name="alice-net", zoneid=cloud["zoneid"],
                          networkofferingid=cloud["offerings"][SNAT])["network"]
    his = bob.ok("createNetwork", name="bob-net", zoneid=cloud["zoneid"],
                 networkofferingid=cloud["offerings"][SNAT])["network"]
    shared = _shared(admin, cloud)
    admin_own = admin.ok("createNetwork", name="admin-net", zoneid=cloud["zoneid"],
                         networkofferingid=cloud["offerings"][SNAT])["network"]
    hidden = admin.ok("createNetwork", name="hidden", zoneid=cloud["zoneid"], displaynetwork="false",
                      networkofferingid=cloud["offerings"][SNAT], account="alice",
                      domainid=mine["domainid"])["network"]
    assert hidden["account"] == "alice"
    names = {n["name"] for n in user_caller.ok("listNetworks")["network"]}
    assert names == {"alice-net", "shared"}
    assert user_caller.ok("listNetworks", listall="true")["count"] == 2
    assert user_caller.ok("listNetworks", id=his["id"]) == {}
    assert {n["name"] for n in admin.ok("listNetworks")["network"]} == {"shared", "admin-net"}
    assert admin.ok("listNetworks", listall="true")["count"] == 5
    assert {n["name"] for n in admin.ok("listNetworks", account="bob", domainid=his["domainid"])["network"]} == {
        "bob-net"}
    assert {n["id"] for n in admin.ok("listNetworks", ids=f"{mine['id']},{his['id']}", listall="true")[
        "network"]} == {mine["id"], his["id"]}
    refused(state, user_caller, "listNetworks", code=531, account="bob", domainid=his["domainid"])
    refused(state, user_caller, "deleteNetwork", field="id", id=his["id"])
    refused(state, user_caller, "updateNetwork", field="id", id=his["id"], name="stolen")
    refused(state, user_caller, "deleteNetwork", code=531, id=shared["id"])
    refused(state, user_caller, "createNetwork", code=531, name="x", zoneid=cloud["zoneid"],
            networkofferingid=cloud["offerings"][SNAT], account="bob", domainid=his["domainid"])
    refused(state, user_caller, "createNetwork", field="displaynetwork", name="x", zoneid=cloud["zoneid"],
            networkofferingid=cloud["offerings"][SNAT], displaynetwork="false")
    assert bob.job("deleteNetwork", id=his["id"])["jobstatus"] == 1
    assert admin.ok("listNetworks", id=his["id"], listall="true") == {}
    assert admin_own["account"] == "admin"


def test_list_filters(admin: Caller, cloud: dict[str, Any]) -> None:
    iso = admin.ok("createNetwork", name="iso-a", displaytext="front end", zoneid=cloud["zoneid"],
                   networkofferingid=cloud["offerings"][SNAT])["network"]
    shared = _shared(admin, cloud)
    l2 = admin.ok("createNetwork", name="l2-a", zoneid=cloud["zoneid"],
                  networkofferingid=cloud["offerings"]["DefaultL2NetworkOffering"])["network"]
    cases: list[tuple[dict[str, str], set[str]]] = [
        ({"type": "isolated"}, {iso["id"]}), ({"type": "Shared"}, {shared["id"]}), ({"type": "l2"}, {l2["id"]}),
        ({"type": "all"}, {iso["id"], shared["id"], l2["id"]}),
        ({"supportedservices": "SourceNat"}, {iso["id"]}),
        ({"supportedservices": "Dhcp,UserData"}, {iso["id"], shared["id"]}),
        ({"acltype": "domain"}, {shared["id"]}), ({"keyword": "front"}, {iso["id"]}),
        ({"zoneid": cloud["zoneid"], "physicalnetworkid": cloud["pn"]}, {iso["id"], shared["id"], l2["id"]}),
        ({"networkofferingid": cloud["offerings"][SHARED]}, {shared["id"]}),
        ({"specifyipranges": "true"}, {shared["id"]}), ({"restartrequired": "false", "name": "l2-a"}, {l2["id"]}),
        ({"issystem": "true"}, set()), ({"forvpc": "true"}, set()), ({"canusefordeploy": "false"}, set()),
        ({"traffictype": "Guest", "displaynetwork": "true"}, {iso["id"], shared["id"], l2["id"]}),
        ({"tags[0].key": "a", "tags[0].value": "b"}, set()),
    ]
    for params, expected in cases:
        listed = admin.ok("listNetworks", listall="true", **params)
        assert {n["id"] for n in listed.get("network", [])} == expected, params
    page = admin.ok("listNetworks", listall="true", page=2, pagesize=2)
    assert page["count"] == 3 and len(page["network"]) == 1
    for bad in ({"type": "Weird"}, {"supportedservices": "Teleport"}, {"acltype": "x"}, {"traffictype": "x"},
                {"ids": ",".join(["11111111-2222-3333-4444-555555555555"] * 501)}):
        status, body = admin.call("listNetworks", **bad)
        assert status == 431, (bad, body)


def test_update_network(state: ServerState, admin: Caller, user_caller: Caller, cloud: dict[str, Any]) -> None:
    network = user_caller.ok("createNetwork", name="n", zoneid=cloud["zoneid"],
                             networkofferingid=cloud["offerings"][SNAT])["network"]
    answer = user_caller.ok("updateNetwork", id=network["id"], name="renamed", displaytext="Renamed",
                            networkdomain="app.internal")
    job = user_caller.wait(answer["jobid"])
    updated = job["jobresult"]["network"]
    assert updated["name"] == "renamed" and updated["displaytext"] == "Renamed"
    assert updated["networkdomain"] == "app.internal" and updated["restartrequired"] is False
    refused(state, user_caller, "updateNetwork", field="guestvmcidr", id=network["id"], guestvmcidr="10.1.1.0/25")
    refused(state, user_caller, "updateNetwork", field="networkdomain", id=network["id"], networkdomain="a..b")
    refused(state, user_caller, "updateNetwork", field="displaynetwork", id=network["id"], displaynetwork="false")
    refused(state, user_caller, "updateNetwork", field="networkofferingid", id=network["id"],
            networkofferingid=cloud["offerings"]["DefaultL2NetworkOffering"])
    refused(state, user_caller, "updateNetwork", field="networkofferingid", id=network["id"],
            networkofferingid=cloud["offerings"]["DefaultIsolatedNetworkOffering"])
    other = admin.ok("createNetworkOffering", name="iso-2", guestiptype="Isolated", traffictype="Guest",
                     supportedservices="Dhcp,Dns,SourceNat", enable="true")["networkoffering"]
    with state.sessions.begin() as db:
        row = db.get(Network, network["id"])
        assert row is not None
        row.state = "Implemented"
    moved = user_caller.job("updateNetwork", id=network["id"], networkofferingid=other["id"])["jobresult"]["network"]
    assert moved["networkofferingid"] == other["id"] and moved["restartrequired"] is True


def test_delete_network(state: ServerState, admin: Caller, user_caller: Caller, cloud: dict[str, Any]) -> None:
    network = user_caller.ok("createNetwork", name="n", zoneid=cloud["zoneid"],
                             networkofferingid=cloud["offerings"][SNAT])["network"]
    nic = hold_address(state, admin, {"zoneid": cloud["zoneid"]}, network["id"], "10.1.1.20")
    refused(state, user_caller, "deleteNetwork", field="NIC", id=network["id"])
    refused(state, user_caller, "deleteNetwork", field="forced", id=network["id"], forced="true")
    with state.sessions.begin() as db:
        row = db.get(Nic, nic)
        assert row is not None
        row.removed, row.ip_key = row.created, None
    answer = user_caller.ok("deleteNetwork", id=network["id"])
    assert set(answer) == {"jobid"}
    job = user_caller.wait(answer["jobid"])
    assert job["jobstatus"] == 1 and job["jobresult"] == {"success": True}
    with state.sessions() as db:
        row_net = db.get(Network, network["id"])
        assert row_net is not None and row_net.state == "Destroy" and row_net.removed is not None
        assert list(db.scalars(select(GuestVnet).where(GuestVnet.network_id == network["id"]))) == []
    refused(state, user_caller, "deleteNetwork", field="id", id=network["id"])
    assert user_caller.ok("listNetworks") == {}


def test_domain_networks_and_subdomain_access(state: ServerState, admin: Caller, user_caller: Caller,
                                              cloud: dict[str, Any]) -> None:
    """A domain-wide (shared) network is seen by the accounts of its domain, and by those of its
    subdomains when it gives them access; never by a parent domain's accounts."""
    with state.sessions.begin() as db:
        root = db.scalars(select(Domain).where(Domain.path == "ROOT")).one()
        child = Domain(name="sales", path="ROOT/sales", parent_id=root.id, level=1)
        db.add(child)
        db.flush()
        root_id, child_id = root.id, child.id
    account = admin.ok("createAccount", username="carol", password="pw-123456", firstname="C", lastname="C",
                       accounttype=0, domainid=child_id)["account"]
    keys = admin.ok("registerUserKeys", id=account["user"][0]["id"])["userkeys"]
    carol = Caller(admin.http, keys["apikey"], keys["secretkey"])
    _shared(admin, cloud, "root-only", "5051", "192.168.51")
    reaching = admin.ok("createNetwork", name="root-down", zoneid=cloud["zoneid"], vlan="5052",
                        networkofferingid=cloud["offerings"][SHARED], gateway="192.168.52.1",
                        netmask="255.255.255.0", startip="192.168.52.10", domainid=root_id,
                        subdomainaccess="true")["network"]
    assert reaching["subdomainaccess"] is True and reaching["domainid"] == root_id
    sales = admin.ok("createNetwork", name="sales-only", zoneid=cloud["zoneid"], vlan="5053",
                     networkofferingid=cloud["offerings"][SHARED], gateway="192.168.53.1",
                     netmask="255.255.255.0", startip="192.168.53.10", domainid=child_id)["network"]
    assert sales["domain"] == "sales" and sales["domainpath"] == "ROOT/sales"
    assert {n["name"] for n in carol.ok("listNetworks")["network"]} == {"root-down", "sales-only"}
    assert {n["name"] for n in user_caller.ok("listNetworks")["network"]} == {"root-only", "root-down"}
    assert user_caller.ok("listNetworks", id=sales["id"]) == {}
    refused(state, user_caller, "listNetworks", code=531, domainid=child_id)
    assert {n["name"] for n in admin.ok("listNetworks", domainid=root_id, isrecursive="true")["network"]} == {
        "root-only", "root-down", "sales-only"}
    assert {n["name"] for n in admin.ok("listNetworks", domainid=child_id)["network"]} == {"sales-only"}
    mine = carol.ok("createNetwork", name="carol-net", zoneid=cloud["zoneid"],
                    networkofferingid=cloud["offerings"][SNAT])["network"]
    assert mine["domainid"] == child_id and mine["account"] == "carol"


def _network_state(db: Session, network_id: str) -> str | None:
    row = db.get(Network, network_id)
    return None if row is None or row.removed is not None else row.state


def test_delete_shuts_the_network_down_first(state: ServerState, user_caller: Caller, cloud: dict[str, Any],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The job asks the routing contract to shut the network down (router destroyed) before it releases
    anything; a router that cannot be reached leaves the network whole, and a later delete retries."""
    network = user_caller.ok("createNetwork", name="n", zoneid=cloud["zoneid"],
                             networkofferingid=cloud["offerings"][SNAT])["network"]
    calls: list[tuple[str, bool, str | None]] = []
    fail = [True]

    async def shutdown(steps: Steps, network_id: str, *, destroy: bool) -> None:
        row_state = await steps.tx(_network_state, network_id)
        calls.append((network_id, destroy, row_state))
        if fail[0]:
            raise StepFailed("router host unreachable")

    monkeypatch.setattr(routing, "shutdown_network", shutdown)
    job = user_caller.job("deleteNetwork", id=network["id"])
    assert job["jobstatus"] == 2 and job["jobresultcode"] == 530
    assert "router host unreachable" in job["jobresult"]["errortext"]
    assert user_caller.ok("listNetworks", id=network["id"])["count"] == 1
    fail[0] = False
    assert user_caller.job("deleteNetwork", id=network["id"])["jobstatus"] == 1
    assert calls == [(network["id"], True, "Allocated"), (network["id"], True, "Allocated")]
    assert user_caller.ok("listNetworks", id=network["id"]) == {}
