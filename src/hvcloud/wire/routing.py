"""The virtual router's commands (``com.cloud.agent.api.routing``), as CloudStack sends them to the
host that runs a router. Field names follow the Java classes' Gson shapes.

Every one of them is a ``NetworkElementCommand``: ``accessDetails`` names the router the command is
for (``router.name``) and the network it serves (``router.guest.ip``, ``guest.network.cidr``, …);
the constants below are CloudStack's keys.
"""

from __future__ import annotations

from typing import ClassVar

from hvcloud.wire.base import Answer, Command, JInt, JLong, StrMap, WireModel, answer, command

ROUTER_NAME = "router.name"
ROUTER_IP = "router.ip"
ROUTER_GUEST_IP = "router.guest.ip"
ZONE_NETWORK_TYPE = "zone.network.type"
GUEST_NETWORK_CIDR = "guest.network.cidr"
GUEST_NETWORK_GATEWAY = "guest.network.gateway"
GUEST_VLAN_TAG = "guest.vlan.tag"
GUEST_BRIDGE = "guest.bridge"
ACCOUNT_ID = "account.id"
NETWORK_PUB_LAST_IP = "network.public.last.ip"


class NetworkElementCommand(Command):
    """``com.cloud.agent.api.routing.NetworkElementCommand`` (abstract)."""

    accessDetails: StrMap | None = None

    def router_name(self) -> str | None:
        return (self.accessDetails or {}).get(ROUTER_NAME)


@command
class DhcpEntryCommand(NetworkElementCommand):
    """One VM's static lease and DNS name on the router (``remove`` withdraws them)."""

    FQCN: ClassVar[str] = "com.cloud.agent.api.routing.DhcpEntryCommand"

    vmMac: str | None = None
    vmIpAddress: str | None = None
    vmName: str | None = None
    dns: str | None = None
    gateway: str | None = None
    nextServer: str | None = None
    defaultRouter: str | None = None
    staticRoutes: str | None = None
    defaultDns: str | None = None
    vmIp6Address: str | None = None
    ip6Gateway: str | None = None
    duid: str | None = None
    isDefault: bool | None = None
    executeInSequence: bool | None = None
    remove: bool | None = None


@command
class VmDataCommand(NetworkElementCommand):
    """What the router's metadata service serves to one VM: ``vmData`` is a list of
    ``[folder, file, contents]`` triples (``["userdata", "user-data", …]``,
    ``["metadata", "public-keys", …]``, …), as CloudStack's ``List<String[]>``."""

    FQCN: ClassVar[str] = "com.cloud.agent.api.routing.VmDataCommand"

    vmIpAddress: str | None = None
    vmName: str | None = None
    executeInSequence: bool | None = None
    vmData: list[list[str | None]] | None = None


@command
class SavePasswordCommand(NetworkElementCommand):
    """The password the router's password server (port 8080) hands to one VM, once."""

    FQCN: ClassVar[str] = "com.cloud.agent.api.routing.SavePasswordCommand"

    password: str | None = None
    vmIpAddress: str | None = None
    vmName: str | None = None
    executeInSequence: bool | None = None


class DhcpTO(WireModel):
    """``com.cloud.agent.api.to.DhcpTO``: one subnet the router's DHCP serves."""

    routerIp: str | None = None
    gateway: str | None = None
    netmask: str | None = None
    startIpOfSubnet: str | None = None


@command
class DnsMasqConfigCommand(NetworkElementCommand):
    FQCN: ClassVar[str] = "com.cloud.agent.api.routing.DnsMasqConfigCommand"

    dhcpTOs: list[DhcpTO] | None = None


class IpAddressTO(WireModel):
    """``com.cloud.agent.api.to.IpAddressTO``: an address the router takes (or gives up)."""

    accountId: JLong | None = None
    publicIp: str | None = None
    sourceNat: bool | None = None
    add: bool | None = None
    oneToOneNat: bool | None = None
    firstIP: bool | None = None
    broadcastUri: str | None = None
    vlanGateway: str | None = None
    vlanNetmask: str | None = None
    vifMacAddress: str | None = None
    networkRate: JInt | None = None
    trafficType: str | None = None
    networkName: str | None = None
    newNic: bool | None = None
    details: StrMap | None = None


@command
class IpAssocCommand(NetworkElementCommand):
    FQCN: ClassVar[str] = "com.cloud.agent.api.routing.IpAssocCommand"

    ipAddresses: list[IpAddressTO] | None = None


@answer
class IpAssocAnswer(Answer):
    """``results``: one entry per address, the address or ``"Failed"``, as CloudStack reads it."""

    FQCN: ClassVar[str] = "com.cloud.agent.api.routing.IpAssocAnswer"

    results: list[str] | None = None
