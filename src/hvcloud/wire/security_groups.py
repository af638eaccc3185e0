"""Security groups on the wire (``com.cloud.agent.api.SecurityGroupRulesCmd``), as CloudStack's
management server sends them to the host of each VM whose NIC is on a security-group network.

The command carries a VM NIC's **whole** rule set (never a delta): ingress rules say who may reach
the VM, egress rules where it may go; each ``IpPortAndProto`` is a protocol (``tcp``, ``udp``,
``icmp``, ``all``), a port range (for ``icmp``: type and code, ``-1`` for any) and the CIDRs it
admits (a rule naming another group arrives as that group's members' addresses, ``/32``).
``seqNum`` orders commands for one VM: a host ignores a command older than the last it applied.
Empty ingress means nothing may reach the VM; empty egress means the VM may go anywhere (CloudStack's
default when a group has no egress rule).
"""

from __future__ import annotations

from typing import ClassVar

from hvcloud.wire.base import Answer, Command, JInt, JLong, WireModel, answer, command


class IpPortAndProto(WireModel):
    proto: str | None = None
    startPort: JInt | None = None
    endPort: JInt | None = None
    allowedCidrs: list[str] | None = None


@command
class SecurityGroupRulesCmd(Command):
    FQCN: ClassVar[str] = "com.cloud.agent.api.SecurityGroupRulesCmd"

    guestIp: str | None = None
    guestIp6: str | None = None
    vmName: str | None = None
    guestMac: str | None = None
    signature: str | None = None
    seqNum: JLong | None = None
    vmId: JLong | None = None
    msId: JLong | None = None
    ingressRuleSet: list[IpPortAndProto] | None = None
    egressRuleSet: list[IpPortAndProto] | None = None
    secIps: list[str] | None = None


#: ``SecurityGroupRuleAnswer.FailureReason``
FAILURE_NONE = "NONE"
FAILURE_UNKNOWN = "UNKNOWN"
FAILURE_PROGRAMMING_FAILED = "PROGRAMMING_FAILED"
FAILURE_CANNOT_BRIDGE_FIREWALL = "CANNOT_BRIDGE_FIREWALL"


@answer
class SecurityGroupRuleAnswer(Answer):
    FQCN: ClassVar[str] = "com.cloud.agent.api.SecurityGroupRuleAnswer"

    logSequenceNumber: JLong | None = None
    vmId: JLong | None = None
    reason: str | None = None
