"""``SecurityGroupRulesCmd``: a VM NIC's whole security-group rule set, enforced at its port.

The answer is CloudStack's ``SecurityGroupRuleAnswer``: ``logSequenceNumber`` and ``vmId`` echo the
command, ``reason`` is ``NONE`` on success, ``CANNOT_BRIDGE_FIREWALL`` when this host cannot enforce
security groups at all (the driver lacks the capability), ``PROGRAMMING_FAILED`` when enforcing
failed (the server retries those), and ``UNKNOWN`` for a command the agent refuses to translate (a
malformed CIDR, port or MAC: retrying it cannot help); the details name the field.
"""

from __future__ import annotations

from hvcloud import logs
from hvcloud.agent import sg_translate
from hvcloud.agent.context import HostContext
from hvcloud.agent.dispatch import handles
from hvcloud.agent.translate import TranslationError, vm_name
from hvcloud.host_errors import HostError
from hvcloud.hypervisor.driver import NotSupported
from hvcloud.wire.base import Answer
from hvcloud.wire.security_groups import (
    FAILURE_CANNOT_BRIDGE_FIREWALL,
    FAILURE_NONE,
    FAILURE_PROGRAMMING_FAILED,
    FAILURE_UNKNOWN,
    SecurityGroupRuleAnswer,
    SecurityGroupRulesCmd,
)

log = logs.get(__name__)
WHAT = "SecurityGroupRulesCmd"


def _vm_of(cmd: SecurityGroupRulesCmd) -> str | None:
    """The lock key: the VM name when it is one the agent accepts (else no lock: it is refused)."""
    try:
        return vm_name(cmd.vmName)
    except TranslationError:
        return None


@handles(SecurityGroupRulesCmd, SecurityGroupRuleAnswer, vm=_vm_of)
def security_group_rules(ctx: HostContext, cmd: SecurityGroupRulesCmd) -> Answer:
    def answer(result: bool, reason: str, details: str) -> SecurityGroupRuleAnswer:
        return SecurityGroupRuleAnswer(result=result, details=details, reason=reason,
                                       logSequenceNumber=cmd.seqNum, vmId=cmd.vmId)

    try:
        name, policy = sg_translate.policy_of(cmd)
    except TranslationError as exc:
        return answer(False, FAILURE_UNKNOWN, f"{WHAT} failed: {exc}")
    try:
        ctx.driver.apply_security_groups(name, policy)
    except NotSupported as exc:
        return answer(False, FAILURE_CANNOT_BRIDGE_FIREWALL, f"{WHAT} failed: {exc}")
    except HostError as exc:
        log.warning("sg.apply_failed", vm=name, mac=policy.mac, seq=policy.seq, error=str(exc))
        return answer(False, FAILURE_PROGRAMMING_FAILED, f"{WHAT} failed: {exc}")
    return answer(True, FAILURE_NONE,
                  f"security groups of {name} NIC {policy.mac} at seq {policy.seq}: "
                  f"{len(policy.ingress)} ingress, {len(policy.egress)} egress rules")
