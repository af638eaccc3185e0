"""apache-libcloud's CloudStack driver against ``hvcloud server run`` (SQLite) and a simulator agent
process serving two hosts: an Advanced zone whose physical network carries Guest and Public traffic
with the VirtualRouter enabled and a public range, driven only through libcloud — catalog, key
pairs, an isolated network and nodes on it (the router runs on a simulated host), volumes, public
IPs with firewall, egress and port-forwarding rules, security groups and tags. What libcloud says is
checked against the API (``cs``) and the simulated hosts; a user account's driver sees only its own.

Known libcloud limits, not hvcloud gaps: ``ex_list_network_offerings`` and ``ex_list_routers``
index fields CloudStack leaves out (``serviceofferingid`` of default offerings, ``vpcid`` of a
non-VPC router), ``ex_list_egress_firewall_rules`` fails on an empty list, and ``create_node``
asks for ``startvm=False`` unless given ``ex_start_vm=True``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cs import CloudStack
from libcloud.common.types import ProviderError
from libcloud.compute.base import Node, NodeDriver, StorageVolume
from libcloud.compute.drivers.cloudstack import CloudStackNetwork, CloudStackNetworkOffering
from libcloud.compute.providers import get_driver
from libcloud.compute.types import NodeState, Provider, StorageVolumeState

from tests.support.vm_stack import Cloud, simulator_cloud

HOSTS = 2
PUBLIC = "198.51.100"
#: an ed25519 public key made for these tests (no private half is kept anywhere)
IMPORTED_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIsj3mwq5+Ykfxf2EvC4M2GlFGGKmeDd3L3z+wjHFa8l "
                "libcloud@hvcloud-tests")


def _public_networking(cs: CloudStack, zone: str) -> None:
    """The zone wizard's networking: a physical network carrying Guest and Public traffic, the
    VirtualRouter provider enabled, and a public range for source NAT and allocated IPs."""
    pn = cs.createPhysicalNetwork(zoneid=zone, name="lc-pn", isolationmethods="VLAN",
                                  vlan="100-199")["physicalnetwork"]
    cs.addTrafficType(physicalnetworkid=pn["id"], traffictype="Guest", kvmnetworklabel="cloudbr-guest")
    cs.addTrafficType(physicalnetworkid=pn["id"], traffictype="Public", kvmnetworklabel="cloudbr1")
    nsp = cs.listNetworkServiceProviders(physicalnetworkid=pn["id"], name="VirtualRouter")["networkserviceprovider"][0]
    element = cs.listVirtualRouterElements(nspid=nsp["id"])["virtualrouterelement"][0]
    cs.configureVirtualRouterElement(id=element["id"], enabled=True)
    cs.updateNetworkServiceProvider(id=nsp["id"], state="Enabled")
    cs.updatePhysicalNetwork(id=pn["id"], state="Enabled")
    cs.createVlanIpRange(zoneid=zone, physicalnetworkid=pn["id"], vlan="untagged", gateway=f"{PUBLIC}.1",
                         netmask="255.255.255.0", startip=f"{PUBLIC}.10", endip=f"{PUBLIC}.40",
                         forvirtualnetwork=True)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with simulator_cloud(tmp_path_factory.mktemp("libcloud"), HOSTS) as (made, _images):
        cs = made.cs
        _public_networking(cs, made.zone["id"])
        cs.createServiceOffering(name="lc-small", displaytext="lc-small", cpunumber=1, cpuspeed=500, memory=256)
        yield made


def _driver(cloud: Cloud, key: str, secret: str) -> NodeDriver:
    cls = get_driver(Provider.CLOUDSTACK)
    driver: NodeDriver = cls(key, secret, host="127.0.0.1", port=cloud.server.port, path="/client/api",
                             secure=False)
    driver.connection.poll_interval = 0.2  # libcloud polls queryAsyncJobResult once a second by default
    return driver


@pytest.fixture(scope="module")
def lc(cloud: Cloud) -> NodeDriver:
    return _driver(cloud, cloud.server.keys["apikey"], cloud.server.keys["secretkey"])


@pytest.fixture(scope="module")
def network(cloud: Cloud, lc: Any) -> Iterator[CloudStackNetwork]:
    """An isolated network with source NAT, made through libcloud. The offering is read with ``cs``:
    libcloud's ``ex_list_network_offerings`` indexes ``serviceofferingid``, which CloudStack leaves
    out of its default offerings."""
    found = cloud.cs.listNetworkOfferings(name="DefaultIsolatedNetworkOfferingWithSourceNatService")
    raw = found["networkoffering"][0]
    offering = CloudStackNetworkOffering(raw["name"], raw["displaytext"], raw["guestiptype"], raw["id"], None,
                                         raw["forvpc"], lc)
    net = lc.ex_create_network("libcloud net", "lc-net", offering, lc.list_locations()[0])
    yield net
    for node in lc.list_nodes():
        if node.extra["nics:"] and node.extra["nics:"][0]["networkid"] == net.id:
            lc.destroy_node(node, ex_expunge=True)
    lc.ex_delete_network(net)


def _size(lc: Any) -> Any:
    return next(s for s in lc.list_sizes() if s.name == "lc-small")


def _deploy(cloud: Cloud, lc: Any, network: CloudStackNetwork, name: str, **kw: Any) -> Node:
    return lc.create_node(name=name, size=_size(lc), image=lc.list_images()[0], location=lc.list_locations()[0],
                          networks=[network], ex_start_vm=True, **kw)


@pytest.fixture(scope="module")
def node(cloud: Cloud, lc: Any, network: CloudStackNetwork) -> Node:
    lc.create_key_pair("lc-node-key")
    return _deploy(cloud, lc, network, "lc-web", ex_keyname="lc-node-key", ex_displayname="libcloud web")


def _api_vm(cloud: Cloud, vm_id: str) -> dict[str, Any]:
    return dict(cloud.cs.listVirtualMachines(id=vm_id, listall=True)["virtualmachine"][0])


def _agent_disks(cloud: Cloud, instance: str) -> list[str]:
    """The disk files (names, as volumes' ``path``) of a VM on the simulated host that holds it."""
    for state in (cloud.agent.data_dir / "hosts").glob("*/vms.json"):
        found = json.loads(state.read_text()).get("vms", {}).get(instance)
        if found is not None:
            return [Path(d["path"]).name for d in found["spec"]["disks"] if d["device"] != "cdrom"]
    raise AssertionError(f"no simulated host has VM {instance}")


def test_catalog(cloud: Cloud, lc: Any) -> None:
    sizes = {s.name: s for s in lc.list_sizes()}
    assert sizes["lc-small"].ram == 256 and sizes["lc-small"].extra["cpu"] == 1
    (image,) = lc.list_images()
    assert (image.id, image.name) == (cloud.template["id"], "tiny") and image.extra["hypervisor"] == "Simulator"
    (location,) = lc.list_locations()
    assert (location.id, location.name) == (cloud.zone["id"], cloud.zone["name"])
    assert [image.id] == [i.id for i in lc.list_images(location=location)]


def test_key_pairs(cloud: Cloud, lc: Any) -> None:
    made = lc.create_key_pair("lc-made")
    assert made.private_key.startswith("-----BEGIN") and made.fingerprint
    imported = lc.import_key_pair_from_string("lc-imported", IMPORTED_KEY)
    listed = {k.name: k for k in lc.list_key_pairs()}
    assert listed["lc-made"].fingerprint == made.fingerprint
    assert listed["lc-imported"].fingerprint == imported.fingerprint
    api = {k["name"]: k for k in cloud.cs.listSSHKeyPairs()["sshkeypair"]}
    assert api["lc-imported"]["fingerprint"] == imported.fingerprint
    assert lc.get_key_pair("lc-imported").fingerprint == imported.fingerprint
    with pytest.raises(ProviderError):
        lc.import_key_pair_from_string("lc-imported", IMPORTED_KEY)  # the name is taken
    with pytest.raises(ProviderError):
        lc.import_key_pair_from_string("lc-garbage", "ssh-rsa not-a-key ' OR 1=1 --")
    assert lc.delete_key_pair(made) is True and lc.delete_key_pair(imported) is True
    names = {k.name for k in lc.list_key_pairs()}
    assert not names & {"lc-made", "lc-imported"}
    with pytest.raises(ProviderError):
        lc.delete_key_pair(made)  # deleted twice


def test_network_listed(cloud: Cloud, lc: Any, network: CloudStackNetwork) -> None:
    listed = {n.id: n for n in lc.ex_list_networks()}
    assert listed[network.id].name == "lc-net" and listed[network.id].extra["type"] == "Isolated"
    assert cloud.cs.listNetworks(id=network.id)["network"][0]["networkofferingid"] == network.networkofferingid


def test_node_lifecycle(cloud: Cloud, lc: Any, network: CloudStackNetwork, node: Node) -> None:
    assert node.state == NodeState.RUNNING and node.name == "lc-web"
    assert node.extra["key_name"] == "lc-node-key" and node.extra["size_name"] == "lc-small"
    api = _api_vm(cloud, node.id)
    assert api["state"] == "Running" and api["keypairs"] == "lc-node-key" and api["displayname"] == "libcloud web"
    assert api["nic"][0]["networkid"] == network.id and node.private_ips == [api["nic"][0]["ipaddress"]]
    assert api["instancename"] in cloud.running_on_agent()
    routers = cloud.cs.listRouters(networkid=network.id, listall=True)["router"]
    assert [r["state"] for r in routers] == ["Running"], "the network's router runs on a simulated host"
    nat = cloud.cs.listPublicIpAddresses(associatednetworkid=network.id, issourcenat=True)["publicipaddress"]
    assert routers[0]["publicip"] == nat[0]["ipaddress"] and nat[0]["ipaddress"].startswith(f"{PUBLIC}.")

    assert node.id in {n.id for n in lc.list_nodes()}
    assert lc.reboot_node(node) is True
    assert _api_vm(cloud, node.id)["state"] == "Running"
    assert lc.ex_stop(node) == "Stopped"
    assert lc.ex_get_node(node.id).state == NodeState.STOPPED
    assert _api_vm(cloud, node.id)["state"] == "Stopped" and api["instancename"] not in cloud.running_on_agent()
    with pytest.raises(Exception, match=r"Unable to reboot VM .*: it is Stopped"):  # the job fails
        lc.reboot_node(node)
    assert lc.ex_start(node) == "Running"
    assert lc.ex_get_node(node.id).state == NodeState.RUNNING and api["instancename"] in cloud.running_on_agent()


def test_stopped_node_by_default(cloud: Cloud, lc: Any, network: CloudStackNetwork) -> None:
    """libcloud sends ``startvm=False`` unless told otherwise: the VM is made but not started."""
    made = lc.create_node(name="lc-cold", size=_size(lc), image=lc.list_images()[0], networks=[network])
    assert made.state == NodeState.STOPPED and _api_vm(cloud, made.id)["state"] == "Stopped"
    assert lc.destroy_node(made, ex_expunge=True) is True
    assert not cloud.cs.listVirtualMachines(id=made.id, listall=True).get("virtualmachine")


def test_volumes(cloud: Cloud, lc: Any, node: Node) -> None:
    volume = lc.create_volume(1, "lc-data", location=lc.list_locations()[0])
    assert volume.size == 1
    listed = {v.id: v for v in lc.list_volumes()}
    assert listed[volume.id].size == 1024 ** 3 and listed[volume.id].state == StorageVolumeState.AVAILABLE
    assert lc.attach_volume(node, volume) is True
    on_node = {v.id: v for v in lc.list_volumes(node)}
    assert volume.id in on_node and on_node[volume.id].state == StorageVolumeState.INUSE
    api = cloud.cs.listVolumes(id=volume.id)["volume"][0]
    assert api["virtualmachineid"] == node.id and api["type"] == "DATADISK"
    instance = _api_vm(cloud, node.id)["instancename"]
    assert api["path"] in _agent_disks(cloud, instance), "the running VM got the disk"
    with pytest.raises(ProviderError):
        lc.destroy_volume(volume)  # attached volumes cannot be deleted
    assert lc.detach_volume(volume) is True
    assert "virtualmachineid" not in cloud.cs.listVolumes(id=volume.id)["volume"][0]
    assert api["path"] not in _agent_disks(cloud, instance)
    assert lc.destroy_volume(volume) is True
    assert volume.id not in {v.id for v in lc.list_volumes()}
    with pytest.raises(ProviderError):
        lc.destroy_volume(volume)  # deleted twice
    with pytest.raises(ProviderError):
        lc.attach_volume(node, StorageVolume(str(uuid.uuid4()), "ghost", 1, lc))


def test_public_ips_and_rules(cloud: Cloud, lc: Any, network: CloudStackNetwork, node: Node) -> None:
    address = lc.ex_allocate_public_ip(network_id=network.id)
    assert address.address.startswith(f"{PUBLIC}.")
    listed = {a.id: a for a in lc.ex_list_public_ips()}
    assert listed[address.id].address == address.address and listed[address.id].associated_network_id == network.id
    web = lc.ex_create_firewall_rule(address, "0.0.0.0/0", "tcp", start_port=80, end_port=80)
    forward = lc.ex_create_port_forwarding_rule(node, address, 22, 2222, "tcp")
    rules = {(r.protocol, r.start_port) for r in lc.ex_list_firewall_rules() if r.address.id == address.id}
    assert rules == {("tcp", 80), ("tcp", 2222)}, "openfirewall opened the forward's public port"
    (pf,) = [r for r in lc.ex_list_port_forwarding_rules() if r.id == forward.id]
    assert (pf.public_port, pf.private_port, pf.node.id) == ("2222", "22", node.id)
    (seen,) = [n for n in lc.list_nodes() if n.id == node.id]
    assert address.address in seen.public_ips and [r.id for r in seen.extra["port_forwarding_rules"]] == [forward.id]
    assert address.address in lc.ex_get_node(node.id).public_ips

    cidr = cloud.cs.listNetworks(id=network.id)["network"][0]["cidr"]
    egress = lc.ex_create_egress_firewall_rule(network.id, cidr, "tcp", start_port=443, end_port=443)
    assert [(r.network_id, r.start_port) for r in lc.ex_list_egress_firewall_rules()] == [(network.id, 443)]
    assert lc.ex_delete_egress_firewall_rule(egress) is True
    with pytest.raises(Exception, match=r"10\.250|not within|cidr"):
        lc.ex_create_egress_firewall_rule(network.id, "10.250.0.0/16", "tcp", start_port=80, end_port=80)

    assert lc.ex_delete_port_forwarding_rule(node, forward) is True
    assert not cloud.cs.listPortForwardingRules(ipaddressid=address.id).get("portforwardingrule")
    assert lc.ex_delete_firewall_rule(web) is True
    assert not cloud.cs.listFirewallRules(ipaddressid=address.id).get("firewallrule"), \
        "the forward's firewall rule went with it"
    assert lc.ex_release_public_ip(address) is True
    assert address.id not in {a.id for a in lc.ex_list_public_ips()}
    with pytest.raises(Exception):  # noqa: B017 (libcloud raises a bare Exception for a failed job)
        lc.ex_release_public_ip(address)


def test_security_groups(cloud: Cloud, lc: Any) -> None:
    made = lc.ex_create_security_group("lc-sg", description="from libcloud")
    assert made["name"] == "lc-sg" and made["description"] == "from libcloud"
    lc.ex_authorize_security_group_ingress("lc-sg", "TCP", "10.0.0.0/8", 22, 23)
    (group,) = [g for g in lc.ex_list_security_groups() if g["name"] == "lc-sg"]
    (rule,) = group["ingressrule"]
    assert (rule["protocol"], rule["startport"], rule["endport"], rule["cidr"]) == ("tcp", 22, 23, "10.0.0.0/8")
    api = cloud.cs.listSecurityGroups(securitygroupname="lc-sg")["securitygroup"][0]
    assert api["id"] == made["id"] and len(api["ingressrule"]) == 1
    with pytest.raises(ProviderError, match="already exists"):
        lc._sync_request("createSecurityGroup", params={"name": "lc-sg"})  # the name is taken (libcloud
        # itself refuses a known name before asking)
    with pytest.raises(ProviderError):
        lc.ex_delete_security_group("default")  # an account's default group stays
    assert lc.ex_delete_security_group("lc-sg") is not False
    assert "lc-sg" not in {g["name"] for g in lc.ex_list_security_groups()}
    with pytest.raises(ProviderError):
        lc.ex_delete_security_group("lc-sg")  # deleted twice


def test_tags(cloud: Cloud, lc: Any, node: Node) -> None:
    assert lc.ex_create_tags([node.id], "UserVm", {"env": "test", "owner": "zoë", "q": "' OR 1=1 --"}) is True
    (seen,) = [n for n in lc.list_nodes() if n.id == node.id]
    assert seen.extra["tags"] == {"env": "test", "owner": "zoë", "q": "' OR 1=1 --"}
    api = cloud.cs.listTags(resourceid=node.id, resourcetype="UserVm")["tag"]
    assert {(t["key"], t["value"]) for t in api} == {("env", "test"), ("owner", "zoë"), ("q", "' OR 1=1 --")}
    assert lc.ex_delete_tags([node.id], "UserVm", ["env", "q"]) is True
    assert lc.ex_get_node(node.id).extra["tags"] == {"owner": "zoë"}
    with pytest.raises(Exception):  # noqa: B017 (libcloud raises a bare Exception for a failed job)
        lc.ex_create_tags([str(uuid.uuid4())], "UserVm", {"env": "x"})
    lc.ex_delete_tags([node.id], "UserVm", ["owner"])
    assert not cloud.cs.listTags(resourceid=node.id).get("tag")


def test_a_user_drives_only_its_own(cloud: Cloud, lc: Any, node: Node) -> None:
    cs = cloud.cs
    account = cs.createAccount(accounttype=0, email="lc@example.com", firstname="Lib", lastname="Cloud",
                               password="lc-password-1", username=f"lc-{uuid.uuid4().hex[:6]}")["account"]
    keys = cs.registerUserKeys(id=account["user"][0]["id"])["userkeys"]
    mine = _driver(cloud, keys["apikey"], keys["secretkey"])
    assert mine.list_nodes() == [] and mine.list_key_pairs() == []
    assert node.id not in {n.id for n in mine.list_nodes()}
    with pytest.raises(Exception, match="not found"):
        mine.ex_get_node(node.id)  # another account's VM is not listed to it
    with pytest.raises(Exception):  # noqa: B017 (an async refusal is a bare Exception in libcloud)
        mine.ex_stop(node)
    assert _api_vm(cloud, node.id)["state"] == "Running"
    with pytest.raises(ProviderError) as exc:
        mine.ex_create_tags([node.id], "UserVm", {"stolen": "yes"})
    assert exc.value.http_code in (431, 531)
    assert not cs.listTags(resourceid=node.id, key="stolen").get("tag")
    bad = _driver(cloud, keys["apikey"], "not-the-secret")
    with pytest.raises(Exception, match="credentials"):
        bad.list_nodes()


def test_destroy_node(cloud: Cloud, lc: Any, network: CloudStackNetwork) -> None:
    doomed = _deploy(cloud, lc, network, "lc-doomed")
    instance = _api_vm(cloud, doomed.id)["instancename"]
    assert lc.destroy_node(doomed) is True
    assert _api_vm(cloud, doomed.id)["state"] == "Destroyed" and instance not in cloud.running_on_agent()
    (seen,) = [n for n in lc.list_nodes() if n.id == doomed.id]
    assert seen.state == NodeState.TERMINATED
    assert lc.destroy_node(doomed, ex_expunge=True) is True
    assert doomed.id not in {n.id for n in lc.list_nodes()}
    with pytest.raises(ProviderError):
        lc.destroy_node(doomed)  # gone
