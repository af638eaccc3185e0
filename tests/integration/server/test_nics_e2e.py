"""NICs of VMs that run, against a real simulator agent process: a VM on a shared network starts
with the NIC the API lists (its MAC, the traffic label's bridge, the network's VLAN), a NIC added to
it while it runs is hot-plugged (PlugNicCommand) and is there on its next start, a removed one is
unplugged (UnPlugNicCommand), and expunge gives the addresses back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from hvcloud.server.db.models import Account
from tests.support import guest_networks as G
from tests.support.vm_stack import Cloud, simulator_cloud

HOSTS = 2


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with simulator_cloud(tmp_path_factory.mktemp("nics"), HOSTS) as (made, _images):
        yield made


@pytest.fixture(scope="module")
def nets(cloud: Cloud) -> dict[str, str]:
    zone = cloud.zone["id"]
    with cloud.sessions().begin() as db:
        admin = db.query(Account).filter_by(name="admin").one()
        phys = G.guest_physical_network(db, zone)
        return {name: G.network(db, zone, phys, admin, name, guest_type="Shared", cidr=f"10.{70 + vlan % 10}.0.0/24",
                                gateway=f"10.{70 + vlan % 10}.0.1", broadcast_uri=f"vlan://{vlan}",
                                ranges=((f"10.{70 + vlan % 10}.0.10", f"10.{70 + vlan % 10}.0.20"),))
                for name, vlan in (("front", 300), ("back", 301))}


def _agent_nics(cloud: Cloud, instance: str) -> list[dict[str, Any]]:
    for state in (cloud.agent.data_dir / "hosts").glob("*/vms.json"):
        found = json.loads(state.read_text()).get("vms", {}).get(instance)
        if found is not None:
            return list(found["spec"]["nics"])
    raise AssertionError(f"no simulated host has VM {instance}")


def test_nics_of_a_running_vm(cloud: Cloud, nets: dict[str, str]) -> None:
    cs = cloud.cs
    offering = cs.createServiceOffering(name="nic-vm", displaytext="nic-vm", cpunumber=1, cpuspeed=500,
                                        memory=256)["serviceoffering"]["id"]
    vm = cs.deployVirtualMachine(serviceofferingid=offering, templateid=cloud.template["id"],
                                 zoneid=cloud.zone["id"], networkids=nets["front"])["virtualmachine"]
    assert vm["state"] == "Running"
    (front,) = vm["nic"]
    assert front["ipaddress"] == "10.70.0.10" and front["broadcasturi"] == "vlan://300"
    (on_host,) = _agent_nics(cloud, vm["instancename"])
    assert (on_host["mac"], on_host["network"], on_host["vlan"]) == (front["macaddress"], G.KVM_LABEL, 300)

    added = cs.addNicToVirtualMachine(virtualmachineid=vm["id"], networkid=nets["back"],
                                      ipaddress="10.71.0.15")["virtualmachine"]
    back = next(n for n in added["nic"] if n["networkid"] == nets["back"])
    assert (back["deviceid"], back["ipaddress"], back["isdefault"]) == ("1", "10.71.0.15", False)

    def on_agent() -> list[tuple[str, int]]:
        return sorted(((n["mac"], n["vlan"]) for n in _agent_nics(cloud, vm["instancename"])), key=lambda t: t[1])

    both = [(front["macaddress"], 300), (back["macaddress"], 301)]
    assert on_agent() == both, "hot-plugged into the running VM (PlugNicCommand)"
    cs.stopVirtualMachine(id=vm["id"])
    cs.startVirtualMachine(id=vm["id"])
    assert on_agent() == both, "and the next start carries both"

    left = cs.removeNicFromVirtualMachine(virtualmachineid=vm["id"], nicid=back["id"])["virtualmachine"]
    assert [n["id"] for n in left["nic"]] == [front["id"]]
    assert on_agent() == [(front["macaddress"], 300)], "unplugged from the running VM (UnPlugNicCommand)"
    cs.stopVirtualMachine(id=vm["id"])
    cs.startVirtualMachine(id=vm["id"])
    assert on_agent() == [(front["macaddress"], 300)]

    cs.destroyVirtualMachine(id=vm["id"], expunge=True)
    again = cs.deployVirtualMachine(serviceofferingid=offering, templateid=cloud.template["id"],
                                    zoneid=cloud.zone["id"], networkids=nets["front"], ipaddress="10.70.0.10",
                                    startvm=False)["virtualmachine"]
    assert again["nic"][0]["ipaddress"] == "10.70.0.10", "expunge gave the address back"
