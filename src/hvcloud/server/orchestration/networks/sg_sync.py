"""What the hosts enforce for security groups: each VM NIC's whole rule set, sent as CloudStack's
``SecurityGroupRulesCmd`` to the VM's host.

A NIC's ingress set is the union of its VM's groups' ingress rules, one entry per protocol and port
range with every CIDR that may use it; a rule naming another group stands for that group's members'
current addresses (``/32``, members Starting or Running). Egress likewise (an empty egress set lets
the VM go anywhere). ``seqNum`` grows per VM (``vm_ruleset_log``), so a host drops a set older than
the one it holds and a resent set is harmless; ``signature`` is the md5 of CloudStack's
``stringifyRules`` text.

The set is sent: when the VM starts (its own, and the sets of Running VMs whose rules name one of
its groups, whose expansions now hold its address), when it stops or is expunged (those VMs again),
and on every rule change to the group's Running members (a job, :data:`JOB_APPLY`).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server.db.models import (
    Network,
    Nic,
    SecurityGroupRule,
    SecurityGroupVmMap,
    VMInstance,
    VmRulesetLog,
)
from hvcloud.server.errors import INTERNAL_ERROR
from hvcloud.server.jobs.handlers import JobContext, JobFailure, register
from hvcloud.server.orchestration.networks import security_groups as SG
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm.steps import StepFailed, Steps
from hvcloud.wire.security_groups import IpPortAndProto, SecurityGroupRulesCmd

log = logs.get(__name__)

JOB_APPLY = "securitygroup.apply"
#: VMs whose addresses count as a group's members in other groups' rules
MEMBER_STATES = (S.STARTING, S.RUNNING)
#: sends a rule change tries per VM NIC when its host does not answer
SEND_ATTEMPTS = 3
RETRY_PAUSE_SECONDS = 0.5

Key = tuple[str, int, int]


def _cidr_order(cidr: str) -> tuple[int, str]:
    """CloudStack's CidrComparator: longer prefixes first, then by text."""
    return (-int(cidr.rsplit("/", 1)[1]), cidr)


def _member_cidrs(db: Session, group_ids: Iterable[str]) -> dict[str, set[str]]:
    """Per group: its members' addresses on security-group networks, as ``/32`` (``/128``)."""
    ids = list(group_ids)
    out: dict[str, set[str]] = {g: set() for g in ids}
    if not ids:
        return out
    rows = db.execute(select(SecurityGroupVmMap.security_group_id, Nic.ip4_address, Nic.network_id)
                      .join(VMInstance, VMInstance.id == SecurityGroupVmMap.vm_id)
                      .join(Nic, Nic.vm_id == VMInstance.id)
                      .where(SecurityGroupVmMap.security_group_id.in_(ids), VMInstance.state.in_(MEMBER_STATES),
                             VMInstance.removed.is_(None), Nic.removed.is_(None), Nic.ip4_address.is_not(None))).all()
    sg_nets: dict[str, bool] = {}
    for group_id, address, network_id in rows:
        if network_id is None:
            continue
        if network_id not in sg_nets:
            sg_nets[network_id] = SG.sg_network(db.get(Network, network_id))
        if sg_nets[network_id] and address:
            bits = ipaddress.ip_address(address).max_prefixlen
            out[group_id].add(f"{address}/{bits}")
    return out


def vm_group_ids(db: Session, vm_id: str) -> tuple[str, ...]:
    return tuple(sorted(db.scalars(select(SecurityGroupVmMap.security_group_id)
                                   .where(SecurityGroupVmMap.vm_id == vm_id))))


def rules_for_vm(db: Session, vm_id: str, rule_type: str) -> dict[Key, list[str]]:
    """The VM's rule set of one direction: {(protocol, start, end): CIDRs}, entries without CIDRs left out."""
    return rules_for_groups(db, vm_group_ids(db, vm_id), rule_type)


def rules_for_groups(db: Session, group_ids: Sequence[str], rule_type: str) -> dict[Key, list[str]]:
    """The rule set of one direction of a VM in ``group_ids`` (what :func:`rules_for_vm` computes)."""
    if not group_ids:
        return {}
    rules = list(db.scalars(select(SecurityGroupRule).where(SecurityGroupRule.security_group_id.in_(group_ids),
                                                            SecurityGroupRule.rule_type == rule_type)))
    expansions = _member_cidrs(db, {r.allowed_group_id for r in rules if r.allowed_group_id})
    allowed: dict[Key, set[str]] = {}
    for rule in rules:
        cidrs = allowed.setdefault((rule.protocol, rule.start_port, rule.end_port), set())
        if rule.allowed_group_id is not None:
            cidrs |= expansions.get(rule.allowed_group_id, set())
        elif rule.allowed_cidr:
            cidrs.add(rule.allowed_cidr)
    return {key: sorted(cidrs, key=_cidr_order) for key, cidrs in sorted(allowed.items()) if cidrs}


def _as_wire(rules: dict[Key, list[str]]) -> list[IpPortAndProto]:
    return [IpPortAndProto(proto=proto, startPort=start, endPort=end, allowedCidrs=list(cidrs))
            for (proto, start, end), cidrs in rules.items()]


def stringify(ingress: Sequence[IpPortAndProto], egress: Sequence[IpPortAndProto]) -> str:
    """CloudStack's ``SecurityGroupRulesCmd.stringifyRules``: ``I:proto;start;end;cidr,…,NEXT `` per
    ingress entry, then ``E:`` likewise per egress entry."""
    out: list[str] = []
    for prefix, entries in (("I:", ingress), ("E:", egress)):
        for entry in entries:
            out.append(f"{prefix}{entry.proto};{entry.startPort};{entry.endPort};")
            out.extend(f"{cidr}," for cidr in entry.allowedCidrs or [])
            out.append("NEXT ")
    return "".join(out)


def next_seq(db: Session, vm_id: str) -> int:
    """Bump the VM's rule-set sequence number (one atomic UPDATE; the first one inserts)."""
    for _ in range(3):
        bumped = db.execute(update(VmRulesetLog).where(VmRulesetLog.vm_id == vm_id)
                            .values(seq=VmRulesetLog.seq + 1).returning(VmRulesetLog.seq)).scalar()
        if bumped is not None:
            return int(bumped)
        try:
            with db.begin_nested():
                db.add(VmRulesetLog(vm_id=vm_id, seq=1))
                db.flush()
            return 1
        except IntegrityError:
            continue
    raise RuntimeError(f"could not bump the rule-set sequence of VM {vm_id}")


RuleSets = tuple[list[IpPortAndProto], list[IpPortAndProto]]


def command_for(db: Session, vm: VMInstance, nic: Nic,
                cache: dict[tuple[str, ...], RuleSets] | None = None) -> SecurityGroupRulesCmd:
    """The NIC's whole rule set as the host gets it (takes the VM's next ``seqNum``). ``cache``: rule
    sets already computed in this transaction, by group set (a group's members share theirs)."""
    groups = vm_group_ids(db, vm.id)
    sets = cache.get(groups) if cache is not None else None
    if sets is None:
        sets = (_as_wire(rules_for_groups(db, groups, SG.INGRESS)), _as_wire(rules_for_groups(db, groups, SG.EGRESS)))
        if cache is not None:
            cache[groups] = sets
    ingress, egress = sets
    signature = hashlib.md5(stringify(ingress, egress).encode(), usedforsecurity=False).hexdigest()
    return SecurityGroupRulesCmd(guestIp=nic.ip4_address, vmName=vm.instance_name, guestMac=nic.mac_address,
                                 signature=signature, seqNum=next_seq(db, vm.id), vmId=vm.vm_number,
                                 ingressRuleSet=ingress, egressRuleSet=egress, secIps=[])


@dataclass(frozen=True)
class Push:
    """One command to one host, and the VM it is for (for messages)."""

    host_id: str
    vm_name: str
    command: SecurityGroupRulesCmd


def _pushes(db: Session, vm_ids: Iterable[str], starting: dict[str, str] | None = None) -> list[Push]:
    """Commands for the VMs among ``vm_ids`` that run (``starting``: VM id → the host it starts on)."""
    out: list[Push] = []
    cache: dict[tuple[str, ...], RuleSets] = {}
    for vm_id in dict.fromkeys(vm_ids):
        vm = db.get(VMInstance, vm_id)
        if vm is None or vm.removed is not None:
            continue
        host_id = (starting or {}).get(vm_id)
        if host_id is None and vm.state == S.RUNNING:
            host_id = vm.host_id
        if host_id is None:
            continue
        out.extend(Push(host_id, vm.instance_name, command_for(db, vm, nic, cache))
                   for nic in SG.vm_sg_nics(db, vm_id))
    return out


def running_members(db: Session, group_ids: Iterable[str]) -> list[str]:
    ids = list(group_ids)
    if not ids:
        return []
    found = db.scalars(select(VMInstance.id).join(SecurityGroupVmMap, SecurityGroupVmMap.vm_id == VMInstance.id)
                       .where(SecurityGroupVmMap.security_group_id.in_(ids), VMInstance.state == S.RUNNING,
                              VMInstance.removed.is_(None))
                       .order_by(VMInstance.vm_number))
    return list(dict.fromkeys(found))  # a VM in several of the groups once


def _referencing_members(db: Session, group_ids: Sequence[str], exclude: str) -> list[str]:
    """Running VMs of the groups whose rules name one of ``group_ids`` (their expansions hold those members)."""
    if not group_ids:
        return []
    referencing = set(db.scalars(select(SecurityGroupRule.security_group_id)
                                 .where(SecurityGroupRule.allowed_group_id.in_(group_ids))))
    return [v for v in running_members(db, referencing) if v != exclude]


async def _send(steps: Steps, push: Push) -> str | None:
    """Send one rule set; retried while the host does not answer. Returns the failure's text, or None."""
    text = ""
    for attempt in range(SEND_ATTEMPTS):
        try:
            await steps.send(push.host_id, push.command, f"security group rules of VM {push.vm_name}")
            return None
        except StepFailed as exc:
            text = exc.text
            if not exc.unanswered:
                return text
        if attempt + 1 < SEND_ATTEMPTS:
            await asyncio.sleep(RETRY_PAUSE_SECONDS * (attempt + 1))
    return text


async def push_all(steps: Steps, pushes: Sequence[Push]) -> list[str]:
    """Send every command (a host at a time in order, hosts in parallel); the failures' texts."""
    by_host: dict[str, list[Push]] = {}
    for push in pushes:
        by_host.setdefault(push.host_id, []).append(push)

    async def one_host(items: list[Push]) -> list[str]:
        failures = []
        for item in items:
            failure = await _send(steps, item)
            if failure is not None:
                failures.append(failure)
        return failures

    results = await asyncio.gather(*(one_host(items) for items in by_host.values()))
    return [text for failures in results for text in failures]


# ---------------------------------------------------------------------- the VM's life


def _vm_plan(db: Session, vm_id: str, host_id: str | None) -> tuple[list[Push], list[Push]]:
    group_ids = list(vm_group_ids(db, vm_id))
    if not group_ids:  # the usual VM: one small query
        return [], []
    vm = db.get(VMInstance, vm_id)
    if vm is None:
        return [], []
    if vm.removed is not None or vm.state in (S.EXPUNGING, S.DESTROYED):
        SG.leave_all(db, vm_id)
        db.flush()
    own = _pushes(db, [vm_id], {vm_id: host_id}) if host_id is not None else []
    peers = _pushes(db, _referencing_members(db, group_ids, vm_id))
    return own, peers


async def vm_changed(steps: Steps, vm_id: str, host_id: str | None = None) -> None:
    """The VM started on ``host_id`` (given while it starts), stopped, or was expunged: send its own
    rule set (start: a host's refusal raises ``StepFailed``, so the start fails there) and those of the
    Running VMs whose rules name one of its groups (best effort: logged, corrected by the next change)."""
    own, peers = await steps.tx(_vm_plan, vm_id, host_id)
    if own:
        failures = await push_all(steps, own)
        if failures:
            raise StepFailed(failures[0])
    for failure in await push_all(steps, peers):
        log.warning("security_group_peer_push_failed", vm=vm_id, reason=failure[:300])


# ---------------------------------------------------------------------- rule changes


async def apply_groups(steps: Steps, group_ids: Sequence[str]) -> None:
    """Send the rule sets of the groups' Running members; a host that refuses or never answers fails
    with its text (a rerun sends everything again: newer seqNums, the same rules)."""
    pushes = await steps.tx(lambda db: _pushes(db, running_members(db, group_ids)))
    failures = await push_all(steps, pushes)
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise JobFailure(INTERNAL_ERROR, f"{failures[0]}{more}")


async def run_apply(jctx: JobContext) -> dict[str, Any]:
    steps = Steps(jctx.sessions, jctx.agents, jctx.state.box, jctx.state.config.instance_name_suffix)
    await apply_groups(steps, [str(g) for g in jctx.params.get("group_ids", [])])
    result = jctx.params.get("result")
    return dict(result) if isinstance(result, dict) else {"success": True}


register(JOB_APPLY, run_apply, resumable=True)
