"""Security groups: the groups of an account, their rules, which VMs are in them, and CloudStack's
rules for all three (``SecurityGroupManagerImpl``).

A group belongs to one account; each account has a group named ``default`` (made when first needed:
no ingress rule, so nothing may reach its VMs; no egress rule, so they may go anywhere). A rule admits
traffic of one protocol and port range (icmp: type and code) from (ingress) or to (egress) a CIDR or
the current members of another group. Rules are checked and written in the API request, so a refused
request changes nothing; what reaches the hosts is :mod:`.sg_sync`'s work.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server import errors
from hvcloud.server.db.models import (
    Account,
    Network,
    Nic,
    SecurityGroup,
    SecurityGroupRule,
    SecurityGroupVmMap,
    User,
    VMInstance,
    Zone,
    new_id,
    utcnow,
)
from hvcloud.server.orchestration import events
from hvcloud.server.orchestration import resource_tags as tags
from hvcloud.server.orchestration.networks.offerings import has_service

log = logs.get(__name__)

DEFAULT_GROUP = "default"
DEFAULT_DESCRIPTION = "Default Security Group"
INGRESS = "ingress"
EGRESS = "egress"
RULE_TYPES = (INGRESS, EGRESS)
TCP, UDP, ICMP, ALL = "tcp", "udp", "icmp", "all"
#: bounds on one request's lists (CloudStack has none; ours keeps a request's work bounded)
MAX_CIDRS = 256
MAX_GROUP_REFS = 64
MAX_GROUPS_PER_VM = 32


# ---------------------------------------------------------------------- groups


def find_group(db: Session, account_id: str, name: str) -> SecurityGroup | None:
    return db.scalar(select(SecurityGroup).where(SecurityGroup.account_id == account_id, SecurityGroup.name == name))


def default_group(db: Session, account: Account) -> SecurityGroup:
    """The account's ``default`` group, made now if it has none. ``INSERT … ON CONFLICT DO NOTHING`` on
    the unique (account, name) index: a concurrent maker's row wins and is read back. (No savepoint:
    pysqlite commits a SAVEPOINT taken before the transaction's first write when it is released, so a
    request refused afterwards would keep the row.)"""
    group = find_group(db, account.id, DEFAULT_GROUP)
    if group is not None:
        return group
    insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    db.execute(insert(SecurityGroup).values(id=new_id(), name=DEFAULT_GROUP, description=DEFAULT_DESCRIPTION,
                                            account_id=account.id, domain_id=account.domain_id, created=utcnow())
               .on_conflict_do_nothing(index_elements=["account_id", "name"]))
    found = find_group(db, account.id, DEFAULT_GROUP)
    assert found is not None
    log.info("security_group_default", account=account.id, group=found.id)
    return found


def create_group(db: Session, actor: User, owner: Account, name: str, description: str | None) -> SecurityGroup:
    name = name.strip()
    if not name:
        raise errors.param_error("Invalid name: Security group name cannot be empty")
    if name.lower() == DEFAULT_GROUP:
        # the cloud makes the default group; every account has it (made when first needed)
        raise errors.param_error(f"Unable to create security group, a group with name {name} already exists.")
    if db.scalar(select(SecurityGroup.id).where(SecurityGroup.account_id == owner.id,
                                                func.lower(SecurityGroup.name) == name.lower())) is not None:
        raise errors.param_error(f"Unable to create security group, a group with name {name} already exists.")
    group = SecurityGroup(name=name, description=description, account_id=owner.id, domain_id=owner.domain_id)
    db.add(group)
    db.flush()
    events.record(db, actor, "SG.CREATE", f"creating security group {name}", resource_type="SecurityGroup",
                  resource_id=group.id)
    return group


def members(db: Session, group_id: str) -> list[str]:
    """Ids of the live VMs in the group."""
    return list(db.scalars(select(SecurityGroupVmMap.vm_id).join(VMInstance, VMInstance.id == SecurityGroupVmMap.vm_id)
                           .where(SecurityGroupVmMap.security_group_id == group_id, VMInstance.removed.is_(None))
                           .order_by(VMInstance.created, VMInstance.id)))


def delete_group(db: Session, actor: User, group: SecurityGroup) -> None:
    """CloudStack's refusals: the default group (431), a group other rules allow or VMs use (536)."""
    if group.name.lower() == DEFAULT_GROUP:
        raise errors.param_error("The network group default is reserved")
    allowing = db.scalar(select(func.count()).select_from(SecurityGroupRule).where(
        SecurityGroupRule.allowed_group_id == group.id, SecurityGroupRule.security_group_id != group.id)) or 0
    if allowing:
        raise errors.in_use("Cannot delete group when there are security rules that allow this group")
    if members(db, group.id):
        raise errors.in_use("Cannot delete group when it's in use by virtual machines")
    db.execute(delete(SecurityGroupRule).where(or_(SecurityGroupRule.security_group_id == group.id,
                                                   SecurityGroupRule.allowed_group_id == group.id)))
    db.execute(delete(SecurityGroupVmMap).where(SecurityGroupVmMap.security_group_id == group.id))
    tags.forget(db, tags.SECURITY_GROUP, [group.id])
    db.delete(group)
    db.flush()
    events.record(db, actor, "SG.DELETE", f"deleting security group {group.name}", resource_type="SecurityGroup",
                  resource_id=group.id)


# ---------------------------------------------------------------------- rules


@dataclass(frozen=True)
class RuleSpec:
    """authorizeSecurityGroupIngress/Egress's parameters as given (None: not given)."""

    protocol: str | None
    start_port: int | None
    end_port: int | None
    icmp_type: int | None
    icmp_code: int | None
    cidrs: Sequence[str]
    #: ``usersecuritygrouplist``: (account name, group name)
    groups: Sequence[tuple[str | None, str | None]]


@dataclass(frozen=True)
class Checked:
    protocol: str
    start: int
    end: int
    cidrs: tuple[str, ...]
    groups: tuple[SecurityGroup, ...]


def check_cidr(raw: str) -> str:
    """An IPv4 or IPv6 CIDR with its prefix (CloudStack's isValidIp4Cidr/isValidIp6Cidr), in network form."""
    text = raw.strip()
    if "/" not in text or len(text) > 64:
        raise errors.param_error(f"Invalid cidrlist: Invalid cidr {text[:64]}")
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise errors.param_error(f"Invalid cidrlist: Invalid cidr {text[:64]}") from None


def _protocol(raw: str | None) -> tuple[str, bool]:
    """The protocol as stored, and whether it was given as ICMP's number (1)."""
    protocol = (raw or ALL).strip().lower()
    if protocol.isdigit():
        number = int(protocol[:4]) if len(protocol) <= 4 else 256
        if number == 1:
            return ICMP, True
        if number > 255:
            raise errors.param_error(f"Invalid protocol: Invalid protocol number: {protocol[:16]}")
        return str(number), False
    if protocol not in (TCP, UDP, ICMP, ALL):
        raise errors.param_error(f"Invalid protocol: Invalid protocol {protocol[:32]}")
    return protocol, False


def check_rule(db: Session, group: SecurityGroup, spec: RuleSpec) -> Checked:
    """CloudStack's checks of a new rule (authorizeSecurityGroupRule), each refusal naming its field."""
    if not spec.cidrs and not spec.groups:
        raise errors.param_error("At least one cidr or at least one security group needs to be specified "
                                 "(cidrlist, usersecuritygrouplist)")
    if len(spec.cidrs) > MAX_CIDRS:
        raise errors.param_error(f"Invalid cidrlist: at most {MAX_CIDRS} CIDRs per rule")
    if len(spec.groups) > MAX_GROUP_REFS:
        raise errors.param_error(f"Invalid usersecuritygrouplist: at most {MAX_GROUP_REFS} groups per rule")
    cidrs = tuple(dict.fromkeys(check_cidr(c) for c in spec.cidrs))
    protocol, numbered_icmp = _protocol(spec.protocol)
    icmp_type, icmp_code = (-1, -1) if numbered_icmp else (spec.icmp_type, spec.icmp_code)
    if protocol != ICMP and (spec.icmp_type is not None or spec.icmp_code is not None):
        raise errors.param_error(f"Invalid icmptype: icmptype and icmpcode apply to protocol icmp only, not "
                                 f"{protocol}")
    if protocol == ICMP:
        if spec.start_port is not None or spec.end_port is not None:
            raise errors.param_error("Invalid startport: protocol icmp takes icmptype and icmpcode, not ports")
        if icmp_type is None or icmp_code is None:
            raise errors.param_error(f"Invalid icmptype: Invalid ICMP type/code specified, icmpType = {icmp_type}, "
                                     f"icmpCode = {icmp_code}")
        if icmp_type == -1 and icmp_code != -1:
            raise errors.param_error("Invalid icmpcode: Invalid icmp code")
        if icmp_type != -1 and icmp_code == -1:
            raise errors.param_error("Invalid icmpcode: Invalid icmp code: need non-negative icmp code ")
        if not (-1 <= icmp_type <= 255 and -1 <= icmp_code <= 255):
            raise errors.param_error("Invalid icmptype: Invalid icmp type/code ")
        start, end = icmp_type, icmp_code
    elif protocol in (TCP, UDP):
        if spec.start_port is None or spec.end_port is None:
            raise errors.param_error(f"Invalid startport: Invalid port range specified, startPort = "
                                     f"{spec.start_port}, endPort = {spec.end_port}")
        start, end = spec.start_port, spec.end_port
        if start == 0 and end == 0:
            end = 65535
        if not (0 <= start <= 65535 and 0 <= end <= 65535):
            raise errors.param_error(f"Invalid startport: Invalid port numbers {start}:{end}")
        if start > end:
            raise errors.param_error(f"Invalid startport: Invalid port range {start}:{end}")
    else:
        if spec.start_port is not None or spec.end_port is not None:
            raise errors.param_error("Invalid startport: Cannot specify startPort or endPort without specifying "
                                     "protocol")
        start, end = 0, 0
    groups: list[SecurityGroup] = []
    for i, (account_name, group_name) in enumerate(spec.groups):
        if not account_name or not group_name:
            raise errors.param_error(
                f"Invalid usersecuritygrouplist[{i}]: Invalid user group specified, fields 'group' and 'account' "
                "cannot be null, please specify groups in the form:  userGroupList[0].group=XXX&"
                "userGroupList[0].account=YYY")
        account = db.scalar(select(Account).where(Account.name == account_name, Account.domain_id == group.domain_id,
                                                  Account.removed.is_(None)))
        if account is None:
            raise errors.param_error(f"Invalid usersecuritygrouplist[{i}].account: Nonexistent account: "
                                     f"{account_name[:64]}")
        allowed = find_group(db, account.id, group_name)
        if allowed is None:
            raise errors.param_error(f"Invalid usersecuritygrouplist[{i}].group: Nonexistent group "
                                     f"{group_name[:64]} for account {account_name[:64]}")
        if allowed not in groups:
            groups.append(allowed)
    return Checked(protocol, start, end, cidrs, tuple(groups))


def authorize(db: Session, actor: User, group: SecurityGroup, rule_type: str,
              spec: RuleSpec) -> list[SecurityGroupRule]:
    """Write the rules a request asks for (one per CIDR and per group). A rule the group already has
    is refused, as is a request none of whose rules is new: nothing is written then."""
    checked = check_rule(db, group, spec)
    # one writer per group at a time (CloudStack's lock table), so two requests cannot both add a rule
    db.scalar(select(SecurityGroup.id).where(SecurityGroup.id == group.id).with_for_update())
    existing = {(r.allowed_cidr, r.allowed_group_id) for r in db.scalars(select(SecurityGroupRule).where(
        SecurityGroupRule.security_group_id == group.id, SecurityGroupRule.rule_type == rule_type,
        SecurityGroupRule.protocol == checked.protocol, SecurityGroupRule.start_port == checked.start,
        SecurityGroupRule.end_port == checked.end))}
    wanted = [(c, None) for c in checked.cidrs] + [(None, g.id) for g in checked.groups]
    duplicate = [w for w in wanted if w in existing]
    if duplicate:
        cidr, group_id = duplicate[0]
        what = f"cidr {cidr}" if cidr else f"group {next(g.name for g in checked.groups if g.id == group_id)}"
        field = "cidrlist" if cidr else "usersecuritygrouplist"
        raise errors.param_error(f"Invalid {field}: Failed to authorize security group {rule_type} rule(s): a rule "
                                 f"for {checked.protocol} {checked.start}:{checked.end} from {what} already exists "
                                 f"in group {group.name}")
    rules = [SecurityGroupRule(security_group_id=group.id, rule_type=rule_type, protocol=checked.protocol,
                               start_port=checked.start, end_port=checked.end, allowed_cidr=cidr,
                               allowed_group_id=group_id) for cidr, group_id in wanted]
    db.add_all(rules)
    db.flush()
    kind = "INGRESS" if rule_type == INGRESS else "EGRESS"
    events.record(db, actor, f"SG.AUTH.{kind}", f"Adding {rule_type} rule(s) to security group {group.name}",
                  resource_type="SecurityGroup", resource_id=group.id)
    return rules


def revoke(db: Session, actor: User, rule: SecurityGroupRule, rule_type: str) -> SecurityGroup:
    if rule.rule_type != rule_type:
        raise errors.param_error(f"Invalid id: Mismatch in rule type for security rule with id {rule.id}")
    group = db.get(SecurityGroup, rule.security_group_id)
    assert group is not None
    db.delete(rule)
    db.flush()
    kind = "INGRESS" if rule_type == INGRESS else "EGRESS"
    events.record(db, actor, f"SG.REVOKE.{kind}", f"Revoking {rule_type} rule from security group {group.name}",
                  resource_type="SecurityGroup", resource_id=group.id)
    return group


# ---------------------------------------------------------------------- VMs


def sg_network(network: Network | None) -> bool:
    """Whether the network's offering has the SecurityGroup service (its NICs are filtered on the host)."""
    return network is not None and network.offering is not None and has_service(network.offering, "SecurityGroup")


def vm_sg_nics(db: Session, vm_id: str) -> list[Nic]:
    """The VM's live NICs on security-group networks, in device order."""
    out = []
    for nic in db.scalars(select(Nic).where(Nic.vm_id == vm_id, Nic.removed.is_(None), Nic.network_id.is_not(None))
                          .order_by(Nic.device_id)):
        if sg_network(db.get(Network, nic.network_id)):
            out.append(nic)
    return out


def groups_for_deploy(db: Session, owner: Account, zone: Zone, networks: Sequence[Network | None],
                      ids: Sequence[str], names: Sequence[str]) -> list[SecurityGroup] | None:
    """The groups a new VM joins (``securitygroupids`` or ``securitygroupnames``; an empty list: the
    owner's ``default`` group, made by :func:`join`), None when none of its networks has security
    groups; CloudStack's refusals. Reads only (a deploy writes after taking its numbers)."""
    if ids and names:
        raise errors.param_error("Invalid securitygroupids: securitygroupids and securitygroupnames are mutually "
                                 "exclusive")
    param = "securitygroupids" if ids else "securitygroupnames"
    wanted = list(ids or names)
    with_sg = any(sg_network(n) for n in networks)
    if not with_sg:
        if wanted:
            raise errors.param_error(f"Invalid {param}: security groups are not supported on the network(s) of the "
                                     f"VM in zone {zone.name} (Can't create vm with security groups; security group "
                                     "feature is not enabled)")
        return None
    if len(wanted) > MAX_GROUPS_PER_VM:
        raise errors.param_error(f"Invalid {param}: at most {MAX_GROUPS_PER_VM} security groups per virtual machine")
    if not wanted:
        return []
    out: list[SecurityGroup] = []
    for raw in wanted:
        group = db.get(SecurityGroup, raw) if ids else find_group(db, owner.id, raw)
        if group is None or group.account_id != owner.id:
            # another account's group is as unknown as a missing one (CloudStack checks access)
            raise errors.param_error(f"Invalid {param}: Unable to find security group {raw[:64]} of account "
                                     f"{owner.name}")
        if group not in out:
            out.append(group)
    return out


def join(db: Session, vm: VMInstance, groups: Sequence[SecurityGroup] | None) -> None:
    """The new VM joins ``groups`` (:func:`groups_for_deploy`'s answer)."""
    if groups is None:
        return
    account = db.get(Account, vm.account_id)
    assert account is not None
    for group in groups or [default_group(db, account)]:
        db.add(SecurityGroupVmMap(security_group_id=group.id, vm_id=vm.id))
    db.flush()


def groups_of_vm(db: Session, vm_id: str) -> list[SecurityGroup]:
    return list(db.scalars(select(SecurityGroup).join(SecurityGroupVmMap, SecurityGroupVmMap.security_group_id ==
                                                      SecurityGroup.id)
                           .where(SecurityGroupVmMap.vm_id == vm_id).order_by(SecurityGroup.name)))


def leave_all(db: Session, vm_id: str) -> None:
    """An expunged VM leaves its groups (CloudStack's removeInstanceFromGroups)."""
    db.execute(delete(SecurityGroupVmMap).where(SecurityGroupVmMap.vm_id == vm_id))
