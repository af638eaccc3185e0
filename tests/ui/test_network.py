"""The Network pages in a real browser: a tenant creates an isolated network, acquires public
addresses, adds a port forward, a firewall rule and a load balancer with a member, enables static NAT,
and makes a security group with an ingress rule; an API refusal (an overlapping forward) is shown in
the dialog. An operator sees the network's router. The zone gets a physical network carrying Guest
and Public traffic and a public range through the API, as the zone wizard would."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cs import CloudStack

from tests.support.ui import TENANT_PASSWORD, Ui, UiCloud

PASSWORD = TENANT_PASSWORD


@dataclass
class Net:
    username: str
    client: CloudStack
    offering: str  # DefaultIsolatedNetworkOfferingWithSourceNatService
    service_offering: str


@pytest.fixture(scope="module")
def net(cloud: UiCloud) -> Net:
    cs = cloud.cloud.cs
    zone = cloud.cloud.zone["id"]
    pn = cs.createPhysicalNetwork(zoneid=zone, name="ui-pn", isolationmethods="VXLAN",
                                  vlan="5000-5099")["physicalnetwork"]
    cs.addTrafficType(physicalnetworkid=pn["id"], traffictype="Guest", kvmnetworklabel="cloudbr-guest")
    cs.addTrafficType(physicalnetworkid=pn["id"], traffictype="Public", kvmnetworklabel="cloudbr-public")
    nsp = cs.listNetworkServiceProviders(physicalnetworkid=pn["id"], name="VirtualRouter")["networkserviceprovider"][0]
    element = cs.listVirtualRouterElements(nspid=nsp["id"])["virtualrouterelement"][0]
    cs.configureVirtualRouterElement(id=element["id"], enabled="true")
    cs.updateNetworkServiceProvider(id=nsp["id"], state="Enabled")
    cs.updatePhysicalNetwork(id=pn["id"], state="Enabled")
    cs.createVlanIpRange(zoneid=zone, physicalnetworkid=pn["id"], forvirtualnetwork="true", vlan="untagged",
                         gateway="198.51.100.1", netmask="255.255.255.0", startip="198.51.100.10",
                         endip="198.51.100.40")
    cs.updateTemplatePermissions(id=cloud.cloud.template["id"], ispublic=True)
    made = cloud.tenant("net")
    name, client = made.name, made.cs
    offering = cs.listNetworkOfferings(name="DefaultIsolatedNetworkOfferingWithSourceNatService")["networkoffering"][0]
    service = cs.createServiceOffering(name="ui-net", displaytext="ui-net", cpunumber=1, cpuspeed=500,
                                       memory=256)["serviceoffering"]
    return Net(name, client, offering["id"], service["id"])


def _hash_id(ui: Ui, page: str) -> str:
    ui.browser.wait_js(f"the {page} page", f"location.hash.startsWith('#/{page}/')")
    ui.settled()
    return str(ui.browser.js("return decodeURIComponent(location.hash.split('/')[2]);"))


def _cell(ui: Ui, text: str) -> None:
    """Wait for a table cell that reads exactly ``text``."""
    ui.browser.wait_js(f"a cell {text!r}", "[...document.querySelectorAll('table.list td')]"
                       f".some(td => td.innerText.trim() === {text!r})")


def _no_console_errors(ui: Ui) -> None:
    severe = [e for e in ui.browser.console_log() if e.get("level") == "SEVERE"
              and "/client/api" not in str(e.get("message"))]  # refused calls the test provokes log a 4xx/5xx
    assert not severe, severe


def test_a_tenant_builds_a_network_with_addresses_rules_and_security_groups(ui: Ui, cloud: UiCloud, net: Net) -> None:
    ui.login(net.username, PASSWORD)

    # an isolated network
    ui.go("networks")
    ui.wait_text("No networks yet")
    ui.click("Create network")
    ui.fill("Name", "web")
    ui.fill("Description", "web tier")
    ui.fill("Zone", cloud.cloud.zone["name"])
    ui.fill("Network offering", net.offering)
    ui.submit("Create")
    network_id = _hash_id(ui, "network")
    ui.wait_text("Network web")
    ui.wait_text("No VMs on this network.")

    # two VMs on it (the deploy is another page's business): the network is implemented, with a source NAT address
    vms = [net.client.deployVirtualMachine(serviceofferingid=net.service_offering, zoneid=cloud.cloud.zone["id"],
                                           templateid=cloud.cloud.template["id"], networkids=network_id,
                                           name=f"vm{i}")["virtualmachine"] for i in (1, 2)]
    ui.go("network", network_id)
    ui.row("vm1")
    ui.row("vm2")
    ui.row("Yes")  # the source NAT address in the network's public addresses
    ui.screenshot("network-detail")

    # acquire two more addresses
    ui.go("publicips")
    for _ in range(2):
        ui.click("Acquire public IP")
        ui.fill("Network", network_id)
        ui.submit("Acquire")
        ui.toast("ok")
    ips = net.client.listPublicIpAddresses(issourcenat="false")["publicipaddress"]
    assert len(ips) == 2
    forward_ip, nat_ip = sorted(ips, key=lambda ip: ip["ipaddress"])
    ui.go("publicips")
    ui.row(nat_ip["ipaddress"])
    ui.screenshot("public-ips")

    # a port forward, a firewall rule and a load balancer with a member on one address
    ui.go("publicip", forward_ip["id"])
    ui.click("Add port forward")
    ui.fill("Protocol", "tcp")
    ui.fill("Public start port", "2222")
    ui.fill("Private start port", "22")
    ui.fill("VM", vms[0]["id"])
    ui.submit("Add")
    ui.row("2222")
    ui.toast("ok")
    # the same public port again: the API's conflict is shown in the dialog, which stays open
    ui.click("Add port forward")
    ui.fill("Public start port", "2222")
    ui.fill("Private start port", "2022")
    ui.fill("VM", vms[1]["id"])
    ui.submit("Add")
    error = ui.dialog_error()
    assert error and "conflict" in error.lower(), error
    ui.screenshot("port-forward-conflict")
    ui.click("Cancel")

    ui.click("Add firewall rule")
    ui.fill("Protocol", "tcp")
    ui.fill("Start port", "80")
    ui.fill("Source CIDRs", "203.0.113.0/24")
    ui.submit("Add")
    ui.row("203.0.113.0/24")

    ui.click("Add load balancer")
    ui.fill("Name", "web-lb")
    ui.fill("Public port", "8080")
    ui.fill("Private port", "80")
    ui.submit("Add")
    ui.row("web-lb")
    ui.wait_text("Members of load balancer web-lb")
    ui.click("Add VM")
    ui.fill("VM", vms[1]["id"])
    ui.submit("Add")
    _cell(ui, "vm2")
    ui.screenshot("public-ip-rules")
    members = net.client.listLoadBalancerRuleInstances(
        id=net.client.listLoadBalancerRules()["loadbalancerrule"][0]["id"])["loadbalancerruleinstance"]
    assert [m["id"] for m in members] == [vms[1]["id"]]
    forwards = net.client.listPortForwardingRules(ipaddressid=forward_ip["id"])["portforwardingrule"]
    assert [(f["publicport"], f["privateport"], f["virtualmachineid"]) for f in forwards] == [
        ("2222", "22", vms[0]["id"])]
    firewall = net.client.listFirewallRules(ipaddressid=forward_ip["id"])["firewallrule"]
    assert sorted((f["startport"], f["cidrlist"]) for f in firewall) == [
        (80, "203.0.113.0/24"), (2222, "0.0.0.0/0"), (8080, "0.0.0.0/0")]

    # static NAT on the other address
    ui.go("publicip", nat_ip["id"])
    ui.click("Enable static NAT")
    ui.fill("VM", vms[1]["id"])
    ui.submit("Enable")
    ui.wait_text("Static NAT to")
    ui.wait_text("Port forwards and load balancers cannot be added on a static NAT address.")
    ui.screenshot("static-nat")
    assert net.client.listPublicIpAddresses(id=nat_ip["id"])["publicipaddress"][0]["virtualmachineid"] == vms[1]["id"]

    # an egress rule of the network
    ui.go("network", network_id)
    ui.click("Add egress rule")
    ui.fill("Protocol", "udp")
    ui.fill("Start port", "53")
    ui.submit("Add")
    _cell(ui, "53")

    # a security group with an ingress rule
    ui.go("securitygroups")
    ui.click("Create security group")
    ui.fill("Name", "web-sg")
    ui.fill("Description", "web servers")
    ui.submit("Create")
    group_id = _hash_id(ui, "securitygroup")
    ui.wait_text("No ingress rules: nothing may reach the group's VMs.")
    ui.click("Add ingress rule")
    ui.fill("Protocol", "tcp")
    ui.fill("Start port", "443")
    ui.fill("Source CIDRs", "0.0.0.0/0")
    ui.submit("Add")
    ui.row("0.0.0.0/0")
    ui.screenshot("security-group")
    rules = net.client.listSecurityGroups(id=group_id)["securitygroup"][0]["ingressrule"]
    assert [(r["protocol"], r["startport"], r["cidr"]) for r in rules] == [("tcp", 443, "0.0.0.0/0")]
    ui.go("securitygroups")
    ui.row("web-sg")
    ui.screenshot("security-groups")

    # the only refusal was the provoked conflict (537)
    assert [c["errorcode"] for c in ui.api_calls() if not c["ok"]] == [537]
    assert ui.refused_calls(allowed=(537,)) == []
    _no_console_errors(ui)


def test_an_operator_sees_the_router_and_every_account(ui: Ui, cloud: UiCloud, net: Net) -> None:
    network = net.client.listNetworks(name="web")["network"][0]
    ui.login("admin", cloud.admin_password)
    ui.go("network", network["id"])
    ui.wait_text("Virtual router")
    ui.row("Running")
    ui.screenshot("network-router")
    ui.go("networks")
    ui.row(net.username)
    ui.go("publicips")
    ui.row(net.username)
    assert ui.refused_calls() == []
    _no_console_errors(ui)
