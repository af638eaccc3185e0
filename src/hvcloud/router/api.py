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

    def recover(self) -> list[str]:
        """After an agent restart: bring every router that was running back (namespace, address,
        services) from its saved state without touching what still runs. Returns their names."""
