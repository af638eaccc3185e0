"""NICs and their addresses through the API, without agents: deploy's network parameters and the
default network, IPAM (isolated CIDRs, shared ranges, explicit addresses, a full network), the NIC
commands on stopped VMs, address release on expunge, and the legacy NIC of zones without networks.
Networks are rows here (their own API is tested elsewhere)."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from hvcloud.agent import translate
from hvcloud.server import resource_types as R
from hvcloud.server.db.models import (
    Account,
    DomainRouter,
    Host,
    Network,
    Nic,
    ResourceCount,
    TemplateStoreRef,
    User,
    VMInstance,
    VMTemplate,
    utcnow,
)
from hvcloud.server.errors import CloudError
from hvcloud.server.orchestration.networks import addresses
from hvcloud.server.orchestration.vm import steps as vm_steps
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
    assert status == 431 and "nic is default" in body["errortext"]
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


def _host(db: Any, cloud: dict[str, Any], name: str, hypervisor: str) -> str:
    host = Host(name=name, guid=f"guid-{name}", zone_id=cloud["zoneid"], pod_id=cloud["podid"],
                cluster_id=cloud["clusterid"], status="Up", hypervisor=hypervisor, url=f"http://{name}")
    db.add(host)
    db.flush()
    return host.id


def test_the_start_command_carries_each_live_nic_as_the_agent_reads_it(
        state: ServerState, user_caller: Caller, cloud: dict[str, Any]) -> None:
    nets = cloud["nets"]
    vm = _vm(user_caller, cloud, networkids=f"{nets['alice']},{nets['shared']},{nets['l2']}")
    listed = {n["networkid"]: n for n in vm["nic"]}
    with state.sessions.begin() as db:
        kvm, hyperv = _host(db, cloud, "kvm1", "KVM"), _host(db, cloud, "hv1", "Hyperv")
    with state.sessions() as db, pytest.raises(vm_steps.StepFailed) as refused:
        vm_steps.start_vm_to(db, state.box, vm["id"], None, kvm)
    assert "not implemented" in refused.value.text and not refused.value.host_fault
    with state.sessions.begin() as db:  # what router orchestration writes when it implements the network
        net = db.get_one(Network, nets["alice"])
        net.broadcast_uri, net.state = "vxlan://5001", "Implemented"
        db.add(DomainRouter(name="r-9-VM", vm_number=900009, network_id=net.id, zone_id=cloud["zoneid"],
                            account_id=net.account_id, domain_id=net.domain_id, guest_ip="10.1.1.1",
                            guest_mac="02:00:aa:00:00:09", state="Running"))
    with state.sessions() as db:
        to = vm_steps.start_vm_to(db, state.box, vm["id"], None, kvm)
        on_hyperv = vm_steps.start_vm_to(db, state.box, vm["id"], None, hyperv)
    assert to.nics is not None and on_hyperv.nics is not None
    isolated, shared, l2 = to.nics
    mine = listed[nets["alice"]]
    assert (isolated.deviceId, isolated.defaultNic, isolated.uuid, isolated.mac) == (0, True, mine["id"],
                                                                                    mine["macaddress"])
    assert (isolated.ip, isolated.netmask, isolated.gateway) == (mine["ipaddress"], "255.255.255.0", "10.1.1.1")
    assert (isolated.broadcastUri, isolated.broadcastType, isolated.type) == ("vxlan://5001", "Vxlan", "Guest")
    assert isolated.name == G.KVM_LABEL and isolated.dns1 == "10.1.1.1", "the router serves DNS"
    assert (shared.deviceId, shared.defaultNic, shared.broadcastUri, shared.broadcastType) == (1, False, "vlan://300",
                                                                                              "Vlan")
    assert shared.dns1 == "8.8.8.8", "a network without a router: the zone's DNS"
    assert (l2.ip, l2.broadcastType, l2.broadcastUri) == (None, "Vxlan", "vxlan://5050")
    assert [n.name for n in on_hyperv.nics] == [G.HYPERV_LABEL] * 3
    wire = json.loads(json.dumps(to.to_json_obj()))
    assert type(to).model_validate(wire) == to, "the NICs survive the wire unchanged"
    # the agent's reading of a VLAN NIC (VXLAN segments are the agent side's part of issue 15)
    spec = translate.nic_spec(shared, 1)
    assert (spec.mac, spec.network, spec.vlan) == (shared.mac, G.KVM_LABEL, 300)


def test_router_addresses_are_not_given_to_vms(state: ServerState, user_caller: Caller,
                                               cloud: dict[str, Any]) -> None:
    nets = cloud["nets"]  # alice2: 10.7.0.0/29, gateway .1; a router holding .2 leaves .3-.6
    with state.sessions.begin() as db:
        net = db.get_one(Network, nets["alice2"])
        db.add(DomainRouter(name="r-8-VM", vm_number=900008, network_id=net.id, zone_id=cloud["zoneid"],
                            account_id=net.account_id, domain_id=net.domain_id, guest_ip="10.7.0.2",
                            guest_mac="02:00:aa:00:00:08", state="Running"))
    status, body = _deploy(user_caller, cloud, networkids=nets["alice2"], ipaddress="10.7.0.2")
    assert status == 431 and "ipaddress" in body["errortext"]
    got = [_vm(user_caller, cloud, networkids=nets["alice2"])["nic"][0]["ipaddress"] for _ in range(4)]
    assert got == ["10.7.0.3", "10.7.0.4", "10.7.0.5", "10.7.0.6"], "the lowest free address first"
    status, body = _deploy(user_caller, cloud, networkids=nets["alice2"])
    assert status == 533 and "no free address" in body["errortext"]


def test_a_lost_address_race_takes_the_next_address_or_refuses_an_explicit_one(
        state: ServerState, user_caller: Caller, cloud: dict[str, Any]) -> None:
    """Two transactions that read the same free address: the database's unique ip_key lets one
    write it; the other takes the next one in a savepoint (its transaction stays usable), or, for an
    address the caller asked for, is refused with 431."""
    vm_ids = [_vm(user_caller, cloud, networkids=cloud["nets"]["l2"])["id"] for _ in range(4)]

    def nic(vm_id: str, n: int) -> Nic:
        return Nic(vm_id=vm_id, device_id=1, mac_address=f"02:aa:00:00:00:{n:02x}")

    first, second = state.sessions(), state.sessions()
    try:
        nets = [db.get_one(Network, cloud["nets"]["alice"]) for db in (first, second)]
        prepared = [addresses.prepare(db, net) for db, net in zip((first, second), nets, strict=True)]
        a, b = nic(vm_ids[0], 1), nic(vm_ids[1], 2)
        addresses.assign(first, a, prepared[0])
        first.commit()
        addresses.assign(second, b, prepared[1])
        second.commit()
        assert (a.ip4_address, b.ip4_address) == ("10.1.1.2", "10.1.1.3")
        prepared = [addresses.prepare(db, db.get_one(Network, cloud["nets"]["alice"])) for db in (first, second)]
        c, d = nic(vm_ids[2], 3), nic(vm_ids[3], 4)
        addresses.assign(first, c, prepared[0], "10.1.1.9")
        first.commit()
        with pytest.raises(CloudError) as lost:
            addresses.assign(second, d, prepared[1], "10.1.1.9")
        assert lost.value.code == 431 and "in use" in lost.value.text
        second.rollback()
    finally:
        first.close()
        second.close()
    with state.sessions() as db:
        keys = db.scalars(select(Nic.ip_key).where(Nic.network_id == cloud["nets"]["alice"])).all()
        assert sorted(k.split("/")[1] for k in keys if k) == ["10.1.1.2", "10.1.1.3", "10.1.1.9"]


def test_a_chosen_mac_never_blocks_a_later_vm(user_caller: Caller, cloud: dict[str, Any]) -> None:
    """VMs' default MACs derive from their numbers; a caller may choose the MAC a later VM's number
    gives, and that VM then takes another one instead of failing."""
    net = cloud["nets"]["alice"]
    first = _vm(user_caller, cloud, networkids=net)["nic"][0]["macaddress"]
    number = int(first.replace(":", "")[4:], 16)
    upcoming = [f"02:00:{(n >> 24) & 255:02x}:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}"
                for n in (number + 2, number + 3)]
    chosen = [_vm(user_caller, cloud, networkids=net, macaddress=m.upper())["nic"][0]["macaddress"] for m in upcoming]
    assert chosen == upcoming, "a chosen MAC is stored in canonical form"
    later = [_vm(user_caller, cloud, networkids=net)["nic"][0]["macaddress"] for _ in range(2)]
    assert len({first, *chosen, *later}) == 5


def test_pools_of_odd_networks(state: ServerState, cloud: dict[str, Any]) -> None:
    """Address ranges as stored: reversed or malformed ranges give nothing, several ranges give the
    lowest address first, tiny CIDRs have no address to give, a shared network without ranges is full."""
    with state.sessions.begin() as db:
        alice = db.query(Account).filter_by(name="alice").one()
        phys = db.get_one(Network, cloud["nets"]["alice"]).physical_network_id
        assert phys is not None
        odd = {
            "reversed": G.network(db, cloud["zoneid"], phys, alice, "rev", guest_type="Shared", cidr=None,
                                  gateway="10.3.0.1", ranges=(("10.3.0.20", "10.3.0.10"), ("x.y", "10.3.0.9"),
                                                              ("10.3.0.40", "10.3.0.41"), ("10.3.0.30", "10.3.0.30"))),
            "slash32": G.network(db, cloud["zoneid"], phys, alice, "s32", cidr="10.4.0.7/32", gateway=None),
            "slash30": G.network(db, cloud["zoneid"], phys, alice, "s30", cidr="10.4.1.0/30", gateway="10.4.1.1"),
            "empty": G.network(db, cloud["zoneid"], phys, alice, "empty", guest_type="Shared", cidr=None,
                               gateway=None),
        }
    with state.sessions() as db:
        def pool(name: str) -> list[str]:
            p = addresses.pool_of(db, db.get_one(Network, odd[name]))
            return [str(ipaddress.IPv4Address(ip)) for ip in p.candidates()]

        assert pool("reversed") == ["10.3.0.30", "10.3.0.40", "10.3.0.41"], "the lowest address first"
        assert pool("slash32") == [] and pool("empty") == []
        assert pool("slash30") == ["10.4.1.2"], "network, broadcast and gateway are never given"
        for name, ip in (("reversed", "10.3.0.15"), ("slash32", "10.4.0.7"), ("slash30", "10.4.1.3")):
            with pytest.raises(CloudError) as refused:
                addresses.check_requested(db, db.get_one(Network, odd[name]), ip, "ipaddress")
            assert refused.value.code == 431 and "ipaddress" in refused.value.text


def test_an_admin_deploys_for_an_account_on_its_network(state: ServerState, admin: Caller, user_caller: Caller,
                                                        cloud: dict[str, Any]) -> None:
    """deployVirtualMachine's ``account`` + ``domainid`` (CloudStack's finalizeOwner): the VM, its
    address and its charge belong to that account; the network must be one that account may use."""
    alice = admin.ok("listAccounts", name="alice")["account"][0]
    vm = _vm(admin, cloud, account="alice", domainid=alice["domainid"], networkids=cloud["nets"]["alice"])
    assert vm["account"] == "alice" and vm["domainid"] == alice["domainid"]
    assert vm["nic"][0]["networkid"] == cloud["nets"]["alice"]
    assert [v["id"] for v in user_caller.ok("listVirtualMachines")["virtualmachine"]] == [vm["id"]]
    with state.sessions() as db:
        row = db.get_one(VMInstance, vm["id"])
        assert row.account.name == "alice"
        assert db.get_one(User, row.user_id).account.name == "admin", "the caller stays the VM's user"
        counted = db.scalar(select(ResourceCount.count).where(ResourceCount.account_id == row.account_id,
                                                              ResourceCount.resource_type == R.USER_VM))
        assert counted == 1
    before = _footprint(state)
    hostile: list[tuple[dict[str, str], int, str]] = [
        ({"account": "alice"}, 431, "domainid"),                                  # account without domainid
        ({"domainid": alice["domainid"]}, 431, "account"),                        # domainid without account
        ({"account": "nobody", "domainid": alice["domainid"]}, 431, "nobody"),
        ({"account": "alice", "domainid": OTHER_UUID}, 431, "domainid"),
        ({"account": "alice", "domainid": "not-a-uuid"}, 431, "domainid"),
        ({"account": "alice' OR '1'='1", "domainid": alice["domainid"]}, 431, "account"),
        ({"account": "a" * 5000, "domainid": alice["domainid"]}, 431, ""),
        # the admin's own isolated network is not alice's to use
        ({"account": "alice", "domainid": alice["domainid"], "networkids": cloud["nets"]["admin"]}, 431, "networkids"),
    ]
    for params, code, needle in hostile:
        status, body = _deploy(admin, cloud, **params)
        assert status == code, (params, body)
        assert needle.lower() in body["errortext"].lower(), (params, body["errortext"])
        assert _footprint(state) == before, params
    # a plain user may name only itself; another account is refused (531) and nothing changes
    status, body = _deploy(user_caller, cloud, account="admin", domainid=alice["domainid"],
                           networkids=cloud["nets"]["alice"])
    assert status == 531, body
    assert _footprint(state) == before
    mine = _vm(user_caller, cloud, account="alice", domainid=alice["domainid"], networkids=cloud["nets"]["alice2"])
    assert mine["account"] == "alice"
