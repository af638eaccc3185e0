"""A zone's guest networking set up through the API, as CloudStack's zone wizard does it: a physical
network with a segment range, Guest (and Public) traffic with the bridge labels, the VirtualRouter
element configured and its provider enabled, the physical network enabled."""

from __future__ import annotations

from typing import Any

from tests.support.server_api import Caller


def job_result(caller: Caller, command: str, **params: Any) -> dict[str, Any]:
    """Run an async command and return its ``jobresult``, asserting the job succeeded."""
    job = caller.job(command, **params)
    assert job["jobstatus"] == 1, job
    result: dict[str, Any] = job["jobresult"]
    return result


def add_physical_network(admin: Caller, zoneid: str, *, name: str = "pn1", method: str = "VXLAN",
                         vlan: str = "100-199", guest_label: str = "cloudbr0",
                         public: bool = True) -> dict[str, Any]:
    """A ready physical network (``physicalnetwork`` object) carrying Guest (and Public) traffic."""
    pn = job_result(admin, "createPhysicalNetwork", zoneid=zoneid, name=name, isolationmethods=method,
                    vlan=vlan)["physicalnetwork"]
    job_result(admin, "addTrafficType", physicalnetworkid=pn["id"], traffictype="Guest",
               kvmnetworklabel=guest_label, hypervnetworklabel=f"{guest_label}-switch")
    if public:
        job_result(admin, "addTrafficType", physicalnetworkid=pn["id"], traffictype="Public",
                   kvmnetworklabel="cloudbr1")
    vr = admin.ok("listNetworkServiceProviders", physicalnetworkid=pn["id"], name="VirtualRouter")
    nsp = vr["networkserviceprovider"][0]
    element = admin.ok("listVirtualRouterElements", nspid=nsp["id"])["virtualrouterelement"][0]
    job_result(admin, "configureVirtualRouterElement", id=element["id"], enabled=True)
    job_result(admin, "updateNetworkServiceProvider", id=nsp["id"], state="Enabled")
    return job_result(admin, "updatePhysicalNetwork", id=pn["id"], state="Enabled")["physicalnetwork"]  # type: ignore[no-any-return]


def offering_id(caller: Caller, name: str) -> str:
    found = caller.ok("listNetworkOfferings", name=name)["networkoffering"]
    assert len(found) == 1
    return str(found[0]["id"])


SG_OFFERING = "DefaultSharedNetworkOfferingWithSGService"


def build_basic_zone(admin: Caller, name: str = "basic1", *, subnet: str = "192.168.100") -> dict[str, str]:
    """A ``networktype=Basic`` zone as CloudStack's wizard makes it: pod and cluster, a physical network
    carrying Guest traffic with the VirtualRouter and SecurityGroupProvider enabled, the zone's one
    shared guest network (``DefaultSharedNetworkOfferingWithSGService``, untagged), its pod range
    ``<subnet>.10-.200`` (gateway ``<subnet>.1``), the zone enabled. Returns zoneid, podid, clusterid,
    networkid and physicalnetworkid."""
    zone = admin.ok("createZone", name=name, networktype="Basic", dns1="8.8.8.8", internaldns1="10.0.0.1")["zone"]
    pod = admin.ok("createPod", name=f"{name}-pod", zoneid=zone["id"], gateway="10.3.0.1", netmask="255.255.255.0",
                   startip="10.3.0.10", endip="10.3.0.50")["pod"]
    cluster = admin.ok("addCluster", clustername=f"{name}-cl", clustertype="CloudManaged", hypervisor="Simulator",
                       podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    pn = add_physical_network(admin, zone["id"], name=f"{name}-pn", method="VLAN", vlan="100-199", public=False)
    sgp = admin.ok("listNetworkServiceProviders", physicalnetworkid=pn["id"],
                   name="SecurityGroupProvider")["networkserviceprovider"][0]
    job_result(admin, "updateNetworkServiceProvider", id=sgp["id"], state="Enabled")
    network = admin.ok("createNetwork", name="defaultGuestNetwork", displaytext="defaultGuestNetwork",
                       zoneid=zone["id"], networkofferingid=offering_id(admin, SG_OFFERING))["network"]
    admin.ok("createVlanIpRange", podid=pod["id"], networkid=network["id"], gateway=f"{subnet}.1",
             netmask="255.255.255.0", startip=f"{subnet}.10", endip=f"{subnet}.200", forvirtualnetwork=False)
    admin.ok("updateZone", id=zone["id"], allocationstate="Enabled")
    return {"zoneid": zone["id"], "podid": pod["id"], "clusterid": cluster["id"], "networkid": network["id"],
            "physicalnetworkid": pn["id"]}


def add_public_range(admin: Caller, zoneid: str, physicalnetworkid: str, *, start: str = "198.51.100.10",
                     end: str = "198.51.100.40", gateway: str = "198.51.100.1", netmask: str = "255.255.255.0",
                     vlan: str = "untagged") -> dict[str, Any]:
    """The zone's public range (``vlan`` object): ``createVlanIpRange forvirtualnetwork=true`` on the
    physical network that carries Public traffic (``add_physical_network(public=True)``)."""
    return admin.ok("createVlanIpRange", zoneid=zoneid, physicalnetworkid=physicalnetworkid, vlan=vlan,
                    gateway=gateway, netmask=netmask, startip=start, endip=end,
                    forvirtualnetwork=True)["vlan"]  # type: ignore[no-any-return]
