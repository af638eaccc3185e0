"""The virtual router's commands (``com.cloud.agent.api.routing``), as CloudStack sends them to the
host that runs a router. Field names follow the Java classes' Gson shapes.

Every one of them is a ``NetworkElementCommand``: ``accessDetails`` names the router the command is
for (``router.name``) and the network it serves (``router.guest.ip``, ``guest.network.cidr``, …);
the constants below are CloudStack's keys.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from hvcloud.wire.base import Answer, Command, JInt, JLong, StrMap, WireModel, answer, command
from hvcloud.wire.to import NicTO

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


# --------------------------------------------------------------------------- part 2: public side
#: ``FirewallRuleTO.purpose`` (``FirewallRule.Purpose``)
PURPOSE_FIREWALL = "Firewall"
PURPOSE_PORT_FORWARDING = "PortForwarding"
PURPOSE_STATIC_NAT = "StaticNat"
PURPOSE_LOAD_BALANCING = "LoadBalancing"
#: ``FirewallRuleTO.trafficType`` (``FirewallRule.TrafficType``)
TRAFFIC_INGRESS = "Ingress"
TRAFFIC_EGRESS = "Egress"


@command
class SetSourceNatCommand(NetworkElementCommand):
    """Make ``ipAddress`` the router's source NAT address (``add`` False: stop using it)."""

    FQCN: ClassVar[str] = "com.cloud.agent.api.routing.SetSourceNatCommand"

    ipAddress: IpAddressTO | None = None
    add: bool | None = None


class FirewallRuleTO(WireModel):
    """``com.cloud.agent.api.to.FirewallRuleTO``: one rule on a public address (ingress) or on the
    guest network's way out (egress, ``trafficType`` ``Egress``, ``srcIp`` None). ``srcPortRange`` is
    ``[start]`` or ``[start, end]``; ``revoked`` asks the router to drop the rule, ``alreadyAdded``
    says it was applied before (sent again for completeness). ``sourceCidrList``: who may reach the
    address (ingress); ``destCidrList``: where guests may go (egress). ``defaultEgressPolicy``: the
    network offering's egress default (True: allow), sent with egress rules."""

    id: JLong | None = None
    srcVlanTag: str | None = None
    srcIp: str | None = None
    protocol: str | None = None
    srcPortRange: list[JInt] | None = None
    revoked: bool | None = None
    alreadyAdded: bool | None = None
    sourceCidrList: list[str] | None = None
    destCidrList: list[str] | None = None
    purpose: str | None = None
    icmpType: JInt | None = None
    icmpCode: JInt | None = None
    trafficType: str | None = None
    guestCidr: str | None = None
    defaultEgressPolicy: bool | None = None
    type: str | None = None


class PortForwardingRuleTO(FirewallRuleTO):
    """``srcIp:srcPortRange`` → ``dstIp:dstPortRange`` (ranges of equal length)."""

    dstIp: str | None = None
    dstPortRange: list[JInt] | None = None


class StaticNatRuleTO(FirewallRuleTO):
    """One-to-one NAT of ``srcIp`` (public) to ``dstIp`` (the VM's guest address), both ways."""

    dstIp: str | None = None
    shouldApplyCrossNetworkSnat: bool | None = None


@command
class SetPortForwardingRulesCommand(NetworkElementCommand):
    FQCN: ClassVar[str] = "com.cloud.agent.api.routing.SetPortForwardingRulesCommand"

    rules: list[PortForwardingRuleTO] | None = None


@command
class SetStaticNatRulesCommand(NetworkElementCommand):
    FQCN: ClassVar[str] = "com.cloud.agent.api.routing.SetStaticNatRulesCommand"

    rules: list[StaticNatRuleTO] | None = None
    vpcId: JLong | None = None


@command
class SetFirewallRulesCommand(NetworkElementCommand):
    """Ingress rules on public addresses or the network's egress rules (never both in one)."""

    FQCN: ClassVar[str] = "com.cloud.agent.api.routing.SetFirewallRulesCommand"

    rules: list[FirewallRuleTO] | None = None


class DestinationTO(WireModel):
    """``LoadBalancerTO.DestinationTO``: one backend (a VM's guest address and port)."""

    destIp: str | None = None
    destPort: JInt | None = None
    revoked: bool | None = None
    alreadyAdded: bool | None = None
    monitorState: str | None = None


class LoadBalancerTO(WireModel):
    """``com.cloud.agent.api.to.LoadBalancerTO``: ``srcIp:srcPort`` spread over ``destinations`` by
    ``algorithm`` (``roundrobin``, ``leastconn``, ``source``)."""

    uuid: str | None = None
    srcIp: str | None = None
    srcPort: JInt | None = None
    protocol: str | None = None
    lbProtocol: str | None = None
    algorithm: str | None = None
    revoked: bool | None = None
    alreadyAdded: bool | None = None
    inline: bool | None = None
    srcIpVlan: str | None = None
    srcIpGateway: str | None = None
    srcIpNetmask: str | None = None
    networkId: JLong | None = None
    destinations: list[DestinationTO] | None = None


@command
class LoadBalancerConfigCommand(NetworkElementCommand):
    """Every load balancer rule of the router (CloudStack sends the whole set each time)."""

    FQCN: ClassVar[str] = "com.cloud.agent.api.routing.LoadBalancerConfigCommand"

    loadBalancers: list[LoadBalancerTO] | None = None
    lbStatsVisibility: str | None = None
    lbStatsPublicIP: str | None = None
    lbStatsPrivateIP: str | None = None
    lbStatsGuestIP: str | None = None
    lbStatsPort: str | None = None
    lbStatsSrcCidrs: str | None = None
    lbStatsAuth: str | None = Field(None, repr=False)
    lbStatsUri: str | None = None
    maxconn: str | None = None
    lbProtocol: str | None = None
    keepAliveEnabled: bool | None = None
    nic: NicTO | None = None
    vpcId: JLong | None = None
    isTransparent: bool | None = None
    networkCidr: str | None = None


#: ``AggregationControlCommand.action``
AGGREGATION_START = "Start"
AGGREGATION_FINISH = "Finish"
AGGREGATION_CLEANUP = "Cleanup"


@command
class AggregationControlCommand(NetworkElementCommand):
    """Brackets a batch of router commands: after ``Start`` the router queues what it is sent and
    applies it all at ``Finish`` (one configuration load); ``Cleanup`` drops the queue."""

    FQCN: ClassVar[str] = "com.cloud.agent.api.routing.AggregationControlCommand"

    action: str | None = None


@answer
class SetPortForwardingRulesAnswer(Answer):
    """``results``: one entry per rule, in the command's order; ``"Failed"`` for a rule not applied."""

    FQCN: ClassVar[str] = "com.cloud.agent.api.routing.SetPortForwardingRulesAnswer"

    results: list[str] | None = None


@answer
class SetStaticNatRulesAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.routing.SetStaticNatRulesAnswer"

    results: list[str] | None = None


@answer
class SetFirewallRulesAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.routing.SetFirewallRulesAnswer"

    results: list[str] | None = None
