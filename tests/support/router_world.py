"""A zone with a VXLAN physical network, hosts and an isolated network offering as database rows,
and ``RouterHosts``: an AgentSender whose hosts keep routers in memory, as the simulator's router
runtime does. A DomainRouter StartCommand creates (or restarts) the router, StopCommand with
``expungeVM`` forgets it, router commands for a router the host does not hold answer
``result=false`` "does not exist". Every command is recorded, so tests check what was sent, in
which order, with which accessDetails.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hvcloud.server.db.models import (
    Cluster,
    DomainRouter,
    GuestVnet,
    Host,
    Network,
    NetworkOffering,
    Nic,
    PhysicalNetwork,
    PhysicalNetworkTrafficType,
    Pod,
    ServiceOffering,
    User,
    VlanIpRange,
    VMInstance,
    Zone,
)
from hvcloud.server.orchestration.agents import HostNotConnected
from hvcloud.server.orchestration.networks import implement as N
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm import wire as vm_wire
from hvcloud.server.orchestration.vm.steps import Steps
from hvcloud.server.state import ServerState
from hvcloud.wire import answers as A
from hvcloud.wire import commands as C
from hvcloud.wire import routing as R
from hvcloud.wire.base import Answer, Command

VR_SERVICES = json.dumps({"Dhcp": ["VirtualRouter"], "Dns": ["VirtualRouter"], "UserData": ["VirtualRouter"],
                          "SourceNat": ["VirtualRouter"]})


@dataclass
class RouterHosts:
    """Hosts holding routers in memory, recording every command (see the module docstring)."""

    sent: list[tuple[str, Command]] = field(default_factory=list)
    routers: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    server_id: str | None = None

    def owned_host_ids(self) -> frozenset[str]:
        return frozenset()

    async def reconnect(self, host_id: str) -> None:
        return None

    async def send(self, host_id: str, command: Command, wait: float | None = None) -> Answer:
        self.sent.append((host_id, command))
        await asyncio.sleep(0)
        if host_id in self.down:
            raise HostNotConnected(f"host {host_id} is not connected")
        held = self.routers.setdefault(host_id, {})
        if isinstance(command, C.StartCommand):
            assert command.vm.type == "DomainRouter"
            held.setdefault(command.vm.name or "", {"leases": {}, "data": {}, "passwords": {}})
            return A.StartAnswer(vm=command.vm)
        if isinstance(command, C.StopCommand):
            if command.expungeVM:
                held.pop(command.vmName, None)
            return A.StopAnswer()
        if isinstance(command, C.RebootCommand):
            return A.RebootAnswer()
        assert isinstance(command, R.NetworkElementCommand)
        name = command.router_name() or ""
        router = held.get(name)
        if router is None:
            return Answer(result=False, details=f"router {name} does not exist on this host")
        if isinstance(command, R.DhcpEntryCommand):
            if command.remove:
                router["leases"].pop(command.vmMac, None)
            else:
                router["leases"][command.vmMac] = (command.vmIpAddress, command.vmName)
        elif isinstance(command, R.VmDataCommand):
            router["data"][command.vmIpAddress] = command.vmData
        elif isinstance(command, R.SavePasswordCommand):
            router["passwords"][command.vmIpAddress] = command.password
        return Answer()

    def of_type(self, kind: type[Command]) -> list[tuple[str, Any]]:
        return [(h, c) for h, c in self.sent if isinstance(c, kind)]

    def leases(self, host_id: str, router: str) -> dict[str, Any]:
        return dict(self.routers.get(host_id, {}).get(router, {}).get("leases", {}))


@dataclass
class World:
    state: ServerState
    zone: str
    hosts: list[str]
    pn: str
    offering: str
    #: the AgentSender the world's steps use: in-memory RouterHosts unless a test gives another
    agents: Any
    number: int = 100

    def steps(self) -> Steps:
        return Steps(self.state.sessions, self.agents, self.state.box)

    def tx(self, fn: Any, *args: Any) -> Any:
        with self.state.sessions.begin() as db:
            return fn(db, *args)

    def network(self, name: str = "net", cidr: str = "10.1.1.0/24", guest_type: str = N.ISOLATED,
                offering: str | None = None, owner: str = "admin") -> str:
        """A network owned by the account of the user named ``owner``."""
        def make(db: Session) -> str:
            admin = db.scalars(select(User).where(User.username == owner)).one()
            net = Network(name=name, display_text=name, zone_id=self.zone,
                          network_offering_id=offering or self.offering, account_id=admin.account_id,
                          domain_id=admin.account.domain_id, guest_type=guest_type,
                          cidr=cidr, gateway=cidr.rsplit(".", 1)[0] + ".1", network_domain="tenant.internal",
                          acl_type="Account" if guest_type == N.ISOLATED else "Domain",
                          broadcast_uri="vlan://500" if guest_type == N.SHARED else None)
            db.add(net)
            db.flush()
            return net.id
        return str(self.tx(make))

    def vm(self, network_id: str | None, state: str = S.STARTING) -> str:
        self.number += 1
        number = self.number

        def make(db: Session) -> str:
            admin = db.scalars(select(User).where(User.username == "admin")).one()
            offering = db.scalars(select(ServiceOffering)).first()
            if offering is None:
                offering = ServiceOffering(name="small", display_text="Small Instance", cpu_number=1, cpu_speed=500,
                                           memory=512)
                db.add(offering)
                db.flush()
            vm = VMInstance(name=f"web{number}", display_name=f"web{number}", instance_name=f"i-2-{number}-VM",
                            vm_number=number, account_id=admin.account_id, user_id=admin.id, zone_id=self.zone,
                            service_offering_id=offering.id, cpu_number=1, cpu_speed=500, memory=512,
                            state=state, user_data="I2Nsb3VkLWNvbmZpZw==")
            db.add(vm)
            db.flush()
            ip = None
            if network_id is not None:
                net = db.get(Network, network_id)
                assert net is not None and net.cidr is not None
                held = db.scalar(select(func.count()).select_from(Nic).where(Nic.network_id == network_id)) or 0
                ip = f"{net.cidr.rsplit('.', 1)[0]}.{held + 10}"
            db.add(Nic(vm_id=vm.id, network_id=network_id, mac_address=vm_wire.mac_for(number), ip4_address=ip,
                       ip_key=f"{network_id}/{ip}" if ip else None, netmask="255.255.255.0" if ip else None,
                       is_default=True, device_id=0, state="Reserved", network_label=None if network_id else "guest"))
            return vm.id
        return str(self.tx(make))

    def set_vm_state(self, vm_id: str, state: str) -> None:
        def change(db: Session) -> None:
            vm = db.get(VMInstance, vm_id)
            assert vm is not None
            vm.state = state
        self.tx(change)

    def set_host_status(self, host_id: str, status: str) -> None:
        def change(db: Session) -> None:
            host = db.get(Host, host_id)
            assert host is not None
            host.status = status
        self.tx(change)

    def routers(self, network_id: str, *, live: bool = True) -> list[DomainRouter]:
        with self.state.sessions() as db:
            stmt = select(DomainRouter).where(DomainRouter.network_id == network_id)
            if live:
                stmt = stmt.where(DomainRouter.removed.is_(None))
            return list(db.scalars(stmt.order_by(DomainRouter.created, DomainRouter.vm_number)))

    def net_row(self, network_id: str) -> Network:
        with self.state.sessions() as db:
            net = db.get(Network, network_id)
            assert net is not None
            return net

    def public_range(self, start: str = "198.51.100.10", end: str = "198.51.100.20", *, vlan: str = "untagged",
                     label: str = "cloudbr-pub") -> str:
        """Public traffic (bridge ``label``) on the world's physical network and a public range of the zone."""
        def make(db: Session) -> str:
            if db.scalar(select(PhysicalNetworkTrafficType.id).where(
                    PhysicalNetworkTrafficType.physical_network_id == self.pn,
                    PhysicalNetworkTrafficType.traffic_type == "Public")) is None:
                db.add(PhysicalNetworkTrafficType(physical_network_id=self.pn, traffic_type="Public",
                                                  kvm_label=label, hyperv_label="vSwitchPublic"))
            rng = VlanIpRange(zone_id=self.zone, physical_network_id=self.pn, vlan_tag=vlan, gateway="198.51.100.1",
                              netmask="255.255.255.0", start_ip=start, end_ip=end, for_virtual_network=True)
            db.add(rng)
            db.flush()
            return rng.id
        return str(self.tx(make))

    def full_offering(self, *, egress_allow: bool = False) -> str:
        """An isolated offering with every router service (source/static NAT, forwards, firewall, LB)."""
        def make(db: Session) -> str:
            services = {s: ["VirtualRouter"] for s in ("Dhcp", "Dns", "UserData", "SourceNat", "StaticNat",
                                                        "PortForwarding", "Firewall", "Lb")}
            row = NetworkOffering(name=f"full-{egress_allow}", display_text="full", guest_ip_type="Isolated",
                                  state="Enabled", services_json=json.dumps(services),
                                  egress_default_policy=egress_allow)
            db.add(row)
            db.flush()
            return row.id
        return str(self.tx(make))

    def vnets(self) -> list[tuple[int, str | None]]:
        with self.state.sessions() as db:
            return [(v.vnet, v.network_id) for v in db.scalars(select(GuestVnet).order_by(GuestVnet.vnet))]


def build_world(state: ServerState, *, vnet_range: str = "5000-5009", hosts: int = 2,
                agents: Any = None) -> World:
    def make(db: Session) -> World:
        zone = Zone(name="zone1", network_type="Advanced", dns1="192.0.2.53", dns2="192.0.2.54",
                    internal_dns1="10.0.0.1", allocation_state="Enabled")
        db.add(zone)
        db.flush()
        pod = Pod(zone_id=zone.id, name="p")
        db.add(pod)
        db.flush()
        cluster = Cluster(zone_id=zone.id, pod_id=pod.id, name="c", hypervisor="Simulator")
        db.add(cluster)
        db.flush()
        host_ids = []
        for i in range(hosts):
            host = Host(name=f"h{i}", guid=f"g{i}", zone_id=zone.id, pod_id=pod.id, cluster_id=cluster.id,
                        status="Up", hypervisor="Simulator", url=f"http://10.0.0.{i + 1}")
            db.add(host)
            db.flush()
            host_ids.append(host.id)
        pn = PhysicalNetwork(name="phys-vx", zone_id=zone.id, state="Enabled", isolation_methods="VXLAN",
                             vnet_range=vnet_range)
        db.add(pn)
        db.flush()
        db.add(PhysicalNetworkTrafficType(physical_network_id=pn.id, traffic_type="Guest", kvm_label="cloudbr1",
                                          hyperv_label="vSwitch1"))
        offering = NetworkOffering(name="DefaultIsolated", display_text="isolated", guest_ip_type="Isolated",
                                   state="Enabled", services_json=VR_SERVICES)
        db.add(offering)
        db.flush()
        return World(state, zone.id, host_ids, pn.id, offering.id, agents if agents is not None else RouterHosts())
    with state.sessions.begin() as db:
        return make(db)
