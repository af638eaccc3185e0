"""An AgentSender whose hosts answer ``SecurityGroupRulesCmd`` as CloudStack's KVM agent does (and
accept routers, their entries and NIC plugs without keeping them) and
keep what they were sent: per host, per guest MAC, the newest rule set (an older ``seqNum`` is
ignored). Hosts can refuse (``result=false`` with a ``SecurityGroupRuleAnswer.reason``) or be
unreachable for their next N sends. Every command is recorded in order."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hvcloud.server.orchestration.agents import HostNotConnected
from hvcloud.wire import answers as A
from hvcloud.wire import commands as C
from hvcloud.wire import routing as R
from hvcloud.wire.base import Answer, Command
from hvcloud.wire.security_groups import FAILURE_CANNOT_BRIDGE_FIREWALL, SecurityGroupRuleAnswer, SecurityGroupRulesCmd


@dataclass
class SgHosts:
    sent: list[tuple[str, Command]] = field(default_factory=list)
    #: host → guest MAC → the rule set in force
    policies: dict[str, dict[str, SecurityGroupRulesCmd]] = field(default_factory=dict)
    #: hosts that answer result=false (CloudStack's CANNOT_BRIDGE_FIREWALL)
    refusing: set[str] = field(default_factory=set)
    #: host → how many of its next sends find it unreachable
    unreachable: dict[str, int] = field(default_factory=dict)
    server_id: str | None = None

    def owned_host_ids(self) -> frozenset[str]:
        return frozenset()

    async def reconnect(self, host_id: str) -> None:
        return None

    async def send(self, host_id: str, command: Command, wait: float | None = None) -> Answer:
        self.sent.append((host_id, command))
        await asyncio.sleep(0)
        if self.unreachable.get(host_id, 0) > 0:
            self.unreachable[host_id] -= 1
            raise HostNotConnected(f"host {host_id} is not connected")
        if isinstance(command, C.StopCommand):
            return A.StopAnswer()
        if isinstance(command, C.StartCommand):  # a router (user VMs start elsewhere in these tests)
            return A.StartAnswer(vm=command.vm)
        if isinstance(command, C.PlugNicCommand):
            return A.PlugNicAnswer()
        if isinstance(command, R.NetworkElementCommand):  # the router's DHCP and metadata entries
            return Answer()
        assert isinstance(command, SecurityGroupRulesCmd), f"unexpected {type(command).__name__}"
        if host_id in self.refusing:
            return SecurityGroupRuleAnswer(result=False, details="bridge firewall is not available on this host",
                                           reason=FAILURE_CANNOT_BRIDGE_FIREWALL, vmId=command.vmId,
                                           logSequenceNumber=command.seqNum)
        held = self.policies.setdefault(host_id, {})
        mac = command.guestMac or ""
        current = held.get(mac)
        if current is None or (current.seqNum or 0) < (command.seqNum or 0):
            held[mac] = command
        return SecurityGroupRuleAnswer(vmId=command.vmId, logSequenceNumber=command.seqNum)

    def rules_sent(self) -> list[tuple[str, SecurityGroupRulesCmd]]:
        return [(h, c) for h, c in self.sent if isinstance(c, SecurityGroupRulesCmd)]

    def policy(self, host_id: str, mac: str) -> SecurityGroupRulesCmd | None:
        return self.policies.get(host_id, {}).get(mac)
