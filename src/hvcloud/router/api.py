"""What a host that runs virtual routers offers the agent.

A router serves one guest network segment: it holds the network's gateway address on a port of the
segment's bridge, hands out static DHCP leases (one per VM NIC), answers DNS for the VMs' names in
the network domain (forwarding the rest to the zone's DNS servers), serves each VM its own metadata
and user data over HTTP on port 80 (what cloud-init's CloudStack datasource reads) and its password
on port 8080 (CloudStack's password server protocol).

Implementations: the namespace runtime on Linux hosts and the simulator's in-memory one. Both keep
each router's state so that an agent restart rebuilds it (:meth:`RouterHost.recover`) without
disturbing guests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from hvcloud.host_errors import HostError, InvalidRequest

RouterState = Literal["Running", "Stopped"]


class RouterError(HostError):
    """A router could not be set up or changed; the message says what failed."""


class RouterNotFound(RouterError):
    def __init__(self, name: str) -> None:
        super().__init__(f"router {name} does not exist on this host")
        self.name = name


class InvalidRouterRequest(InvalidRequest):
    """A router command's content is invalid (an address outside the network, a bad MAC …)."""


@dataclass(frozen=True)
class Segment:
    """The L2 segment a router port (or a VM NIC) joins: the trunk named by the zone's traffic label
    (a Linux bridge or interface) and at most one of a VLAN id or a VXLAN VNI."""

    trunk: str | None
    vlan: int | None = None
    vxlan: int | None = None


@dataclass(frozen=True)
class RouterSpec:
    """A router as its start command describes it.

    ``address``/``prefix``: the router's address on the guest network (the network's gateway).
    ``dns``: the zone's DNS servers, used upstream. ``domain``: the network domain VMs' names live in.
    """

    name: str
    segment: Segment
    mac: str
    address: str
    prefix: int
    domain: str
    dns: tuple[str, ...] = ()
    network_id: str | None = None


@dataclass(frozen=True)
class DhcpEntry:
    """One VM NIC's static lease. ``default`` False: no default route or DNS from this network
    (a VM's non-default NIC), as CloudStack's ``isDefault``."""

    mac: str
    ip: str
    hostname: str
    default: bool = True


#: ``[folder, file, contents]`` triples, as in ``VmDataCommand.vmData``
VmData = Sequence[tuple[str, str, str | None]]


# --------------------------------------------------------------------------- part 2: the public side
Protocol_ = Literal["tcp", "udp", "icmp", "all"]
#: an inclusive port range
PortRange = tuple[int, int]
LbAlgorithm = Literal["roundrobin", "leastconn", "source"]


@dataclass(frozen=True)
class PublicAddress:
    """An address of the zone's public range the router holds on its public interface (``eth1``,
    made by the first address on ``segment``: the Public traffic label's bridge, the range's VLAN).
    ``gateway`` becomes the router's default route; ``source_nat``: guests leave through it."""

    ip: str
    prefix: int
    gateway: str
    mac: str
    segment: Segment
    source_nat: bool = False


@dataclass(frozen=True)
class PortForward:
    """``public_ip:public_ports`` → ``private_ip:private_ports`` (ranges of equal length).
    ``rule_id``: the server's id of the rule, how it is removed."""

    rule_id: str
    public_ip: str
    protocol: Literal["tcp", "udp"]
    public_ports: PortRange
    private_ip: str
    private_ports: PortRange
    source_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class StaticNat:
    """One-to-one NAT: traffic to ``public_ip`` goes to ``private_ip``; what ``private_ip`` sends
    out leaves from ``public_ip`` (not from the source NAT address)."""

    public_ip: str
    private_ip: str


@dataclass(frozen=True)
class FirewallRule:
    """``ingress``: who (``cidrs``, sources) may reach ``public_ip`` on ``protocol``/``ports``
    (port forwards, static NAT and load balancers are reachable only through such rules, default
    deny). ``egress``: where (``cidrs``, destinations) guests may go; whether that allows or denies
    depends on the router's egress default (the rules are the exceptions to it). ``ports`` None: all
    ports; for ``icmp``, ``icmp_type``/``icmp_code`` (None: any)."""

    rule_id: str
    direction: Literal["ingress", "egress"]
    protocol: Protocol_
    cidrs: tuple[str, ...]
    public_ip: str | None = None
    ports: PortRange | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None


@dataclass(frozen=True)
class LoadBalancer:
    """``public_ip:public_port`` spread over ``backends`` (guest addresses, all on
    ``private_port``) by ``algorithm``; a backend that does not answer is skipped."""

    rule_id: str
    public_ip: str
    public_port: int
    private_port: int
    protocol: Literal["tcp", "udp"]
    algorithm: LbAlgorithm
    backends: tuple[str, ...]


@dataclass(frozen=True)
class RuleChange:
    """One atomic change of a router's public side: everything in it is applied in one
    configuration load (one nftables transaction), or nothing is. Removals name rule ids (port
    forwards, firewall rules, load balancers), public addresses (static NAT) or addresses
    (``release``: the address and every rule on it). Adding what exists replaces it; removing what
    does not exist is not an error. ``load_balancers``, when not None, is the whole set (CloudStack
    sends every rule each time). ``egress_default_allow`` None keeps the current default."""

    addresses: tuple[PublicAddress, ...] = ()
    release: tuple[str, ...] = ()
    port_forwards: tuple[PortForward, ...] = ()
    remove_port_forwards: tuple[str, ...] = ()
    static_nats: tuple[StaticNat, ...] = ()
    remove_static_nats: tuple[str, ...] = ()
    firewall: tuple[FirewallRule, ...] = ()
    remove_firewall: tuple[str, ...] = ()
    load_balancers: tuple[LoadBalancer, ...] | None = None
    egress_default_allow: bool | None = None


@dataclass(frozen=True)
class PublicState:
    """What a router's public side holds now (for replays, tests and ``status().details``)."""

    addresses: tuple[PublicAddress, ...] = ()
    port_forwards: tuple[PortForward, ...] = ()
    static_nats: tuple[StaticNat, ...] = ()
    firewall: tuple[FirewallRule, ...] = ()
    load_balancers: tuple[LoadBalancer, ...] = ()
    egress_default_allow: bool = True


@dataclass(frozen=True)
class RouterStatus:
    name: str
    state: RouterState
    spec: RouterSpec
    leases: int = 0
    details: dict[str, str] = field(default_factory=dict)


class RouterHost(Protocol):
    """The routers one host runs. Every method is idempotent: sending the same command again
    leaves the same state (the management server retries)."""

    def start(self, spec: RouterSpec) -> RouterStatus:
        """Create (or re-create after a stop) the router and start its services; a router that
        already runs with another spec is reconfigured, keeping its entries."""

    def stop(self, name: str) -> None:
        """Stop its services and unplug it; its entries are kept for the next start."""

    def destroy(self, name: str) -> None:
        """Stop it and forget everything it held. Destroying an unknown router is not an error."""

    def status(self, name: str) -> RouterStatus:
        """Raises :class:`RouterNotFound`."""

    def routers(self) -> list[RouterStatus]:
        """Every router this host holds, running or stopped."""

    def dhcp_entry(self, name: str, entry: DhcpEntry, *, remove: bool = False) -> None:
        """Add (or replace, by MAC and by IP) or withdraw one static lease and its DNS name; the
        DHCP server reloads, it is never restarted."""

    def vm_data(self, name: str, ip: str, data: VmData) -> None:
        """Replace what the metadata service serves to the VM at ``ip``; an empty ``data``
        withdraws it."""

    def save_password(self, name: str, ip: str, password: str) -> None:
        """The password the VM at ``ip`` is handed once by the password server."""

    def apply(self, name: str, change: RuleChange) -> PublicState:
        """Apply one change of the router's public side atomically (validated first: an invalid
        change raises :class:`InvalidRouterRequest` and changes nothing) and keep it in the
        router's saved state, so that :meth:`recover` and a restart bring it back. The cost of a
        change must not grow with the number of rules the router already holds."""

    def public_state(self, name: str) -> PublicState:
        """Raises :class:`RouterNotFound`."""

    def recover(self) -> list[str]:
        """After an agent restart: bring every router that was running back (namespace, address,
        services) from its saved state without touching what still runs. Returns their names."""
