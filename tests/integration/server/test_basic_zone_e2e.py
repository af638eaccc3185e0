"""A ``networktype=Basic`` zone end to end against a real simulator agent process, set up through the
API as CloudStack's wizard does: VMs deployed without networks land on the zone's shared network
in their account's ``default`` group, start with their router, and a rule change reaches their
hosts (``SecurityGroupRulesCmd``, answered by the agent's security-group handler)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

import hvcloud.agent.handlers  # noqa: F401  (fills the dispatch table)
from hvcloud.agent.dispatch import HANDLERS
from hvcloud.server.db.models import VmRulesetLog
from hvcloud.wire.security_groups import SecurityGroupRulesCmd
from tests.support.vm_stack import Cloud, job_result, simulator_cloud

HOSTS = 2
LABEL = "cloudbr-guest"

pytestmark = pytest.mark.skipif(SecurityGroupRulesCmd.FQCN not in HANDLERS,
                                reason="the agent has no SecurityGroupRulesCmd handler yet (host side of issue 16)")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with simulator_cloud(tmp_path_factory.mktemp("basic"), HOSTS, guest_label=LABEL,
                         network_type="Basic") as (made, _images):
        yield made


def _job(cloud: Cloud, answer: dict[str, Any]) -> dict[str, Any]:
    job = job_result(cloud.cs, answer["jobid"])
    assert job["jobstatus"] == 1, job
    return job["jobresult"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def network(cloud: Cloud) -> str:
    """The wizard's steps: physical network, Guest traffic, providers, the SG network, its pod range."""
    cs = cloud.cs
    zone = cloud.zone["id"]
    pn = _job(cloud, cs.createPhysicalNetwork(zoneid=zone, name="basic-pn", isolationmethods="VLAN",
                                              vlan="100-199", fetch_result=False))["physicalnetwork"]
    _job(cloud, cs.addTrafficType(physicalnetworkid=pn["id"], traffictype="Guest", kvmnetworklabel=LABEL,
                                  fetch_result=False))
    for provider in ("VirtualRouter", "SecurityGroupProvider"):
        nsp = cs.listNetworkServiceProviders(physicalnetworkid=pn["id"], name=provider)["networkserviceprovider"][0]
        if provider == "VirtualRouter":
            element = cs.listVirtualRouterElements(nspid=nsp["id"])["virtualrouterelement"][0]
            _job(cloud, cs.configureVirtualRouterElement(id=element["id"], enabled=True, fetch_result=False))
        _job(cloud, cs.updateNetworkServiceProvider(id=nsp["id"], state="Enabled", fetch_result=False))
    _job(cloud, cs.updatePhysicalNetwork(id=pn["id"], state="Enabled", fetch_result=False))
    offering = cs.listNetworkOfferings(name="DefaultSharedNetworkOfferingWithSGService")["networkoffering"][0]
    net = cs.createNetwork(name="defaultGuestNetwork", displaytext="defaultGuestNetwork", zoneid=zone,
                           networkofferingid=offering["id"])["network"]
    pod = cs.listPods(zoneid=zone)["pod"][0]
    cs.createVlanIpRange(podid=pod["id"], networkid=net["id"], gateway="192.168.60.1", netmask="255.255.255.0",
                         startip="192.168.60.10", endip="192.168.60.100", forvirtualnetwork=False)
    return str(net["id"])


def test_a_basic_zone_deploys_onto_its_network_with_security_groups(cloud: Cloud, network: str) -> None:
    cs = cloud.cs
    assert cs.listZones(id=cloud.zone["id"])["zone"][0]["securitygroupsenabled"] is True
    offering = cs.createServiceOffering(name="sg-vm", displaytext="sg-vm", cpunumber=1, cpuspeed=500,
                                        memory=256)["serviceoffering"]["id"]
    web = cs.createSecurityGroup(name="web")["securitygroup"]
    plain = cs.deployVirtualMachine(serviceofferingid=offering, templateid=cloud.template["id"],
                                    zoneid=cloud.zone["id"])["virtualmachine"]
    server = cs.deployVirtualMachine(serviceofferingid=offering, templateid=cloud.template["id"],
                                     zoneid=cloud.zone["id"], securitygroupids=web["id"])["virtualmachine"]
    for vm, group in ((plain, "default"), (server, "web")):
        assert vm["state"] == "Running", vm
        (nic,) = vm["nic"]
        assert nic["networkid"] == network and nic["ipaddress"].startswith("192.168.60.")
        assert [g["name"] for g in vm["securitygroup"]] == [group]
    (router,) = cs.listRouters(networkid=network, listall=True)["router"]
    assert router["state"] == "Running"
    job = _job(cloud, cs.authorizeSecurityGroupIngress(securitygroupid=web["id"], protocol="tcp", startport=80,
                                                       endport=80, cidrlist="0.0.0.0/0", fetch_result=False))
    assert job["securitygroup"]["ingressrule"][0]["startport"] == 80
    with cloud.sessions()() as db:
        seqs = {vm_id: seq for vm_id, seq in db.execute(select(VmRulesetLog.vm_id, VmRulesetLog.seq))}
    assert seqs[server["id"]] >= 2, "the start's set, then the rule change's"
    assert seqs[plain["id"]] >= 1
