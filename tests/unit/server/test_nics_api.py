"""NICs and their addresses through the API, without agents: deploy's network parameters and the
default network, IPAM (isolated CIDRs, shared ranges, explicit addresses, a full network), the NIC
commands on stopped VMs, address release on expunge, and the legacy NIC of zones without networks.
Networks are rows here (their own API is tested elsewhere)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from sqlalchemy import func, select

from hvcloud.server.db.models import (
    Account,
    Network,
    Nic,
    ResourceCount,
    TemplateStoreRef,
    VMInstance,
    VMTemplate,
    utcnow,
)
from hvcloud.server.state import ServerState
from tests.support import guest_networks as G
from tests.support.server_api import Caller, build_zone

OTHER_UUID = "0b7e3c3e-0000-4000-8000-000000000000"


@pytest.fixture
def cloud(state: ServerState, admin: Caller, user_caller: Caller) -> dict[str, Any]:
    ids = build_zone(admin)
    other_zone = build_zone(admin, "zone2")["zoneid"]
    with state.sessions.begin() as db:
        owner = db.query(Account).filter_by(name="admin").one()
        alice = db.query(Account).filter_by(name="alice").one()
        ready = VMTemplate(name="ready", display_text="ready", format="QCOW2", hypervisor="Simulator",
                           account_id=owner.id, is_public=True)
        db.add(ready)
        db.flush()
        db.add(TemplateStoreRef(template_id=ready.id, zone_id=ids["zoneid"], download_state="DOWNLOADED",
                                install_path="template/tmpl/2/1/t.qcow2", size=1 << 30))
        phys = G.guest_physical_network(db, ids["zoneid"])
        phys2 = G.guest_physical_network(db, other_zone)
        nets = {
            "alice": G.network(db, ids["zoneid"], phys, alice, "alice-net"),
            "alice2": G.network(db, ids["zoneid"], phys, alice, "alice-net2", cidr="10.7.0.0/29",
                                gateway="10.7.0.1"),
            "admin": G.network(db, ids["zoneid"], phys, owner, "admin-net"),
            "shared": G.network(db, ids["zoneid"], phys, owner, "shared-net", guest_type="Shared",
                                cidr="10.2.0.0/24", gateway="10.2.0.1", broadcast_uri="vlan://300",
                                ranges=(("10.2.0.10", "10.2.0.12"),)),
            "l2": G.network(db, ids["zoneid"], phys, alice, "alice-l2", guest_type="L2", cidr=None, gateway=None,
                            broadcast_uri="vxlan://5050"),
            "elsewhere": G.network(db, other_zone, phys2, alice, "alice-far"),
        }
        template = ready.id
    offering = admin.ok("listServiceOfferings", name="Small Instance")["serviceoffering"][0]["id"]
    return {**ids, "template": template, "offering": offering, "nets": nets}


def _deploy(caller: Caller, cloud: dict[str, Any], **kw: Any) -> tuple[int, dict[str, Any]]:
    params = {"serviceofferingid": cloud["offering"], "templateid": cloud["template"], "zoneid": cloud["zoneid"],
              "startvm": "false", **kw}
    return caller.call("deployVirtualMachine", **params)


def _vm(caller: Caller, cloud: dict[str, Any], **kw: Any) -> dict[str, Any]:
    status, body = _deploy(caller, cloud, **kw)
    assert status == 200, body
    job = caller.wait(body["jobid"])
    assert job["jobstatus"] == 1, job
    return job["jobresult"]["virtualmachine"]  # type: ignore[no-any-return]


def _footprint(state: ServerState) -> tuple[Any, ...]:
    """What a refused request must leave as it was."""
    with state.sessions() as db:
        return (db.scalar(select(func.count()).select_from(VMInstance)),
                db.scalar(select(func.count()).select_from(Nic)),
                tuple(db.execute(select(ResourceCount.account_id, ResourceCount.resource_type, ResourceCount.count)
                                 .order_by(ResourceCount.id)).all()))


def test_default_network_gives_an_address_of_the_account_isolated_network(
        state: ServerState, admin: Caller, user_caller: Caller, cloud: dict[str, Any]) -> None:
    with state.sessions.begin() as db:  # alice keeps one isolated network
        db.get_one(Network, cloud["nets"]["alice2"]).removed = utcnow()
    vm = _vm(user_caller, cloud)
    (nic,) = vm["nic"]
    assert nic["networkid"] == cloud["nets"]["alice"] and nic["networkname"] == "alice-net"
    assert nic["type"] == "Isolated" and nic["isdefault"] is True and nic["deviceid"] == "0"
    assert nic["gateway"] == "10.1.1.1" and nic["netmask"] == "255.255.255.0"
    assert ipaddress.IPv4Address(nic["ipaddress"]) in ipaddress.IPv4Network("10.1.1.0/24")
    assert nic["ipaddress"] not in ("10.1.1.0", "10.1.1.1", "10.1.1.255")
    assert nic["virtualmachineid"] == vm["id"] and nic["traffictype"] == "Guest"
    listed = user_caller.ok("listNics", virtualmachineid=vm["id"])
    assert listed["count"] == 1 and listed["nic"][0] == nic
    second = _vm(user_caller, cloud)
    assert second["nic"][0]["ipaddress"] != nic["ipaddress"], "two live NICs never share an address"


def test_default_network_choice_follows_cloudstack(state: ServerState, admin: Caller, user_caller: Caller,
                                                   cloud: dict[str, Any]) -> None:
    before = _footprint(state)
    status, body = _deploy(user_caller, cloud)
    assert status == 431 and "More than 1 default Isolated networks" in body["errortext"]
    assert _footprint(state) == before
    # the admin account has one isolated network of its own; without it, the domain's shared network
    assert _vm(admin, cloud)["nic"][0]["networkid"] == cloud["nets"]["admin"]
    with state.sessions.begin() as db:
        db.get_one(Network, cloud["nets"]["admin"]).removed = utcnow()
    shared = _vm(admin, cloud)["nic"][0]
    assert shared["networkid"] == cloud["nets"]["shared"] and shared["type"] == "Shared"
    assert shared["ipaddress"] == "10.2.0.10" and shared["broadcasturi"] == "vlan://300"
    with state.sessions.begin() as db:
        db.get_one(Network, cloud["nets"]["shared"]).removed = utcnow()
    status, body = _deploy(admin, cloud)
    assert status == 431 and "Unable to find a default network" in body["errortext"]


def test_networkids_order_makes_device_ids_and_the_default(user_caller: Caller, cloud: dict[str, Any]) -> None:
    nets = cloud["nets"]
    vm = _vm(user_caller, cloud, networkids=f"{nets['alice2']},{nets['shared']},{nets['l2']}",
             ipaddress="10.7.0.5")
    first, second, third = vm["nic"]
    assert (first["networkid"], first["deviceid"], first["isdefault"]) == (nets["alice2"], "0", True)
    assert first["ipaddress"] == "10.7.0.5"
    assert (second["networkid"], second["deviceid"], second["isdefault"]) == (nets["shared"], "1", False)
    assert second["ipaddress"] in ("10.2.0.10", "10.2.0.11", "10.2.0.12")
    assert third["type"] == "L2" and "ipaddress" not in third and third["broadcasturi"] == "vxlan://5050"
    assert len({n["macaddress"] for n in vm["nic"]}) == 3
    only_shared = user_caller.ok("listNics", virtualmachineid=vm["id"], networkid=nets["shared"])
    assert [n["id"] for n in only_shared["nic"]] == [second["id"]]
    page = user_caller.ok("listNics", virtualmachineid=vm["id"], page="2", pagesize="2")
    assert page["count"] == 3 and [n["id"] for n in page["nic"]] == [third["id"]]


def test_iptonetworklist_places_each_address(user_caller: Caller, cloud: dict[str, Any]) -> None:
    nets = cloud["nets"]
    vm = _vm(user_caller, cloud, **{"iptonetworklist[0].networkid": nets["alice"],
                                    "iptonetworklist[0].ip": "10.1.1.77",
                                    "iptonetworklist[1].networkid": nets["shared"],
                                    "iptonetworklist[1].ip": "10.2.0.12"})
    assert [(n["networkid"], n["ipaddress"]) for n in vm["nic"]] == [(nets["alice"], "10.1.1.77"),
                                                                   (nets["shared"], "10.2.0.12")]


def _bad_inputs(nets: dict[str, str]) -> list[tuple[dict[str, str], str]]:
    return [
        ({"networkids": OTHER_UUID}, "networkids"),
        ({"networkids": "not-a-uuid"}, "networkids"),
        ({"networkids": nets["admin"]}, "networkids"),  # another account's isolated network
        ({"networkids": nets["elsewhere"]}, "another zone"),
        ({"networkids": f"{nets['alice']},{nets['alice']}"}, "more than once"),
        ({"networkids": ",".join([nets["alice"]] * 17)}, "networkids"),
        ({"networkids": nets["alice"], "ipaddress": "10.9.9.9"}, "ipaddress"),
        ({"networkids": nets["alice"], "ipaddress": "10.1.1.1"}, "ipaddress"),  # the gateway
        ({"networkids": nets["alice"], "ipaddress": "10.1.1.0"}, "ipaddress"),
        ({"networkids": nets["alice"], "ipaddress": "10.1.1.255"}, "ipaddress"),
        ({"networkids": nets["alice"], "ipaddress": "10.1.1.5; DROP TABLE nic"}, "ipaddress"),
        ({"networkids": nets["alice"], "ipaddress": "::1"}, "ipaddress"),
        ({"networkids": nets["alice"], "ipaddress": "1" * 5000}, "ipaddress"),
        ({"networkids": nets["shared"], "ipaddress": "10.2.0.50"}, "ipaddress"),  # in the CIDR, not the range
        ({"networkids": nets["l2"], "ipaddress": "10.1.1.5"}, "ipaddress"),
        ({"networkids": nets["alice"], "macaddress": "zz:00:00:00:00:01"}, "macaddress"),
        ({"networkids": nets["alice"], "macaddress": "01:00:5e:00:00:01"}, "macaddress"),  # multicast
        ({"networkids": nets["alice"], "securitygroupids": OTHER_UUID}, "security groups are not supported"),
        ({"networkids": nets["alice"], "iptonetworklist[0].networkid": nets["alice"]}, "iptonetworklist"),
        ({"iptonetworklist[0].networkid": nets["alice"], "iptonetworklist[0].ip": "10.1.2.3"},
         "iptonetworklist[0].ip"),
        ({"iptonetworklist[0].ip": "10.1.1.3"}, "iptonetworklist[0].networkid"),
        ({"iptonetworklist[0].networkid": nets["alice"], "iptonetworklist[0].bogus": "x"}, "iptonetworklist"),
        ({"iptonetworklist[3].networkid": nets["alice"], "iptonetworklist[1].networkid": nets["alice"]},
         "more than once"),
    ]


def test_bad_network_input_is_refused_with_431_naming_the_field_and_changes_nothing(
        state: ServerState, user_caller: Caller, cloud: dict[str, Any]) -> None:
    before = _footprint(state)
    for params, needle in _bad_inputs(cloud["nets"]):
        status, body = _deploy(user_caller, cloud, **params)
        assert status == 431, (params, body)
        assert needle.lower() in body["errortext"].lower(), (params, body["errortext"])
        assert _footprint(state) == before, params


def test_addresses_in_use_and_a_full_range(state: ServerState, admin: Caller, user_caller: Caller,
                                           cloud: dict[str, Any]) -> None:
    shared = cloud["nets"]["shared"]
    taken = _vm(user_caller, cloud, networkids=shared, ipaddress="10.2.0.11")["nic"][0]
    status, body = _deploy(admin, cloud, networkids=shared, ipaddress="10.2.0.11")
    assert status == 431 and "ipaddress" in body["errortext"] and "in use" in body["errortext"]
    status, body = _deploy(admin, cloud, networkids=shared, macaddress=taken["macaddress"])
    assert status == 431 and "macaddress" in body["errortext"]
    rest = {_vm(admin, cloud, networkids=shared)["nic"][0]["ipaddress"] for _ in range(2)}
    assert rest == {"10.2.0.10", "10.2.0.12"}
    before = _footprint(state)
    status, body = _deploy(admin, cloud, networkids=shared)
    assert status == 533 and "no free address in network shared-net" in body["errortext"]
    assert _footprint(state) == before


def test_expunge_gives_the_address_back_but_a_destroyed_vm_keeps_it(state: ServerState, admin: Caller,
                                                                     cloud: dict[str, Any]) -> None:
    shared = cloud["nets"]["shared"]
    vm = _vm(admin, cloud, networkids=shared, ipaddress="10.2.0.12")
    admin.job("destroyVirtualMachine", id=vm["id"])
    status, _ = _deploy(admin, cloud, networkids=shared, ipaddress="10.2.0.12")
    assert status == 431, "a destroyed (recoverable) VM keeps its address"
    admin.job("expungeVirtualMachine", id=vm["id"])
    with state.sessions() as db:
        old = db.scalars(select(Nic).where(Nic.vm_id == vm["id"])).one()
        assert old.removed is not None and old.ip_key is None and old.state == "Deallocating"
    again = _vm(admin, cloud, networkids=shared, ipaddress="10.2.0.12")
    assert again["nic"][0]["ipaddress"] == "10.2.0.12"


def test_nic_commands_on_a_stopped_vm(state: ServerState, user_caller: Caller, cloud: dict[str, Any]) -> None:
    nets = cloud["nets"]
    vm = _vm(user_caller, cloud, networkids=nets["alice"])
    (first,) = vm["nic"]
    status, body = user_caller.call("removeNicFromVirtualMachine", virtualmachineid=vm["id"], nicid=first["id"])
    assert status == 431 and "only NIC" in body["errortext"]
    status, body = user_caller.call("addNicToVirtualMachine", virtualmachineid=vm["id"], networkid=nets["alice"])
    assert status == 431 and "already has a NIC" in body["errortext"]
    for bad in ({"networkid": OTHER_UUID}, {"networkid": nets["admin"]}, {"networkid": nets["elsewhere"]},
                {"networkid": nets["shared"], "ipaddress": "10.2.0.99"},
                {"networkid": nets["shared"], "macaddress": first["macaddress"]},
                {"networkid": nets["shared"], "dhcpoptions[0].key": "x"}):
        before = _footprint(state)
        status, body = user_caller.call("addNicToVirtualMachine", virtualmachineid=vm["id"], **bad)
        assert status == 431, (bad, body)
        assert _footprint(state) == before
    added = user_caller.job("addNicToVirtualMachine", virtualmachineid=vm["id"], networkid=nets["shared"],
                            ipaddress="10.2.0.10")["jobresult"]["virtualmachine"]
    second = next(n for n in added["nic"] if n["networkid"] == nets["shared"])
    assert (second["deviceid"], second["isdefault"], second["ipaddress"]) == ("1", False, "10.2.0.10")
    status, body = user_caller.call("removeNicFromVirtualMachine", virtualmachineid=vm["id"], nicid=first["id"])
    assert status == 431 and "default NIC" in body["errortext"]
    status, body = user_caller.call("updateDefaultNicForVirtualMachine", virtualmachineid=vm["id"],
                                    nicid=first["id"])
    assert status == 431 and "already the default" in body["errortext"]
    switched = user_caller.job("updateDefaultNicForVirtualMachine", virtualmachineid=vm["id"],
                               nicid=second["id"])["jobresult"]["virtualmachine"]
    assert {n["id"]: n["isdefault"] for n in switched["nic"]} == {first["id"]: False, second["id"]: True}
    left = user_caller.job("removeNicFromVirtualMachine", virtualmachineid=vm["id"],
                           nicid=first["id"])["jobresult"]["virtualmachine"]
    assert [n["id"] for n in left["nic"]] == [second["id"]]
    assert user_caller.ok("listNics", virtualmachineid=vm["id"])["count"] == 1
    status, body = user_caller.call("listNics", virtualmachineid=vm["id"], nicid=first["id"])
    assert status == 200 and body.get("count", 0) == 0
    status, body = user_caller.call("removeNicFromVirtualMachine", virtualmachineid=vm["id"], nicid=first["id"])
    assert status == 431, "a removed NIC is gone"
    # the removed NIC's address is free again: the network takes it back
    readded = user_caller.job("addNicToVirtualMachine", virtualmachineid=vm["id"], networkid=nets["alice"],
                              ipaddress=first["ipaddress"])["jobresult"]["virtualmachine"]
    back = next(n for n in readded["nic"] if n["networkid"] == nets["alice"])
    assert back["ipaddress"] == first["ipaddress"] and back["deviceid"] == "0", "the lowest free device id"
    assert back["isdefault"] is False


def test_nics_of_other_accounts_vms_are_not_visible(admin: Caller, user_caller: Caller,
                                                    cloud: dict[str, Any]) -> None:
    vm = _vm(admin, cloud, networkids=cloud["nets"]["admin"])
    status, _ = user_caller.call("listNics", virtualmachineid=vm["id"])
    assert status == 431
    status, _ = user_caller.call("addNicToVirtualMachine", virtualmachineid=vm["id"],
                                 networkid=cloud["nets"]["shared"])
    assert status == 431
    status, body = user_caller.call("listNics")
    assert status == 431 and "virtualmachineid" in body["errortext"]


def test_a_zone_without_guest_networks_keeps_the_legacy_nic(state: ServerState, admin: Caller) -> None:
    ids = build_zone(admin, "legacy")
    admin.ok("updateZone", id=ids["zoneid"], **{"details[0].key": "guest.network.label",
                                                "details[0].value": "cloudbr-legacy"})
    with state.sessions.begin() as db:
        owner = db.query(Account).filter_by(name="admin").one()
        ready = VMTemplate(name="t", display_text="t", format="QCOW2", hypervisor="Simulator", account_id=owner.id,
                           is_public=True)
        db.add(ready)
        db.flush()
        db.add(TemplateStoreRef(template_id=ready.id, zone_id=ids["zoneid"], download_state="DOWNLOADED",
                                install_path="t.qcow2", size=1 << 30))
        template = ready.id
    offering = admin.ok("listServiceOfferings", name="Small Instance")["serviceoffering"][0]["id"]
    legacy = {"template": template, "offering": offering, "zoneid": ids["zoneid"]}
    vm = _vm(admin, legacy)
    (nic,) = vm["nic"]
    assert nic["networkname"] == "cloudbr-legacy" and "networkid" not in nic and "ipaddress" not in nic
    assert nic["broadcasturi"] == "vlan://untagged" and nic["isdefault"] is True
    for params in ({"networkids": OTHER_UUID}, {"ipaddress": "10.0.0.5"}, {"securitygroupids": OTHER_UUID}):
        status, body = _deploy(admin, legacy, **params)
        assert status == 431, (params, body)
