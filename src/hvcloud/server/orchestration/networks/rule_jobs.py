"""Applying a change of a network's public side to its router: the job every rule, address and
static NAT API queues (``network.rules.apply``, keyed ``Network:<id>`` so one network's changes
and router jobs run in order), and the replay of the whole public side when a router (re)starts.

Rows come first: the API writes new rules in state Add, marks deleted ones Revoke (addresses being
released Releasing) and queues the job. The job sends just that change to the network's running
router (:func:`router_rules.change_batch`); when the router answered, Add rules become Active and
revoked ones are deleted. A network without a running router stores the change (rules Active, to be
sent when the network is implemented: :func:`replay` sends everything after the router's DHCP
entries). A router that refuses, or answers ``Failed`` for a rule, leaves the rows as they were
(Add, Revoke) and the job fails with its text; a router found gone is marked so and gets everything
at its next start.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server.db.models import (
    FirewallRule,
    LoadBalancerVmMap,
    LoadBalancingRule,
    Network,
    Nic,
    PortForwardingRule,
    UserIpAddress,
)
from hvcloud.server.errors import INTERNAL_ERROR, PARAM_ERROR
from hvcloud.server.jobs.handlers import JobContext, JobFailure, register
from hvcloud.server.orchestration.networks import public_ips as IP
from hvcloud.server.orchestration.networks import router_rules as RR
from hvcloud.server.orchestration.networks import routers as RT
from hvcloud.server.orchestration.vm.steps import StepFailed, Steps
from hvcloud.wire import routing as R
from hvcloud.wire.base import Command

log = logs.get(__name__)

JOB_APPLY = "network.rules.apply"


def applied(db: Session, network_id: str, change: RR.Change, held: RR.Snapshot | None = None) -> None:
    """The router holds the change (or there is no router to hold it yet): Add → Active, revoked
    rules and members gone, released addresses back to the zone, disabled static NAT cleared.
    ``held``: the rows as the batch sent them; a row changed since (a rule deleted while its
    creation was on its way) is left for its own job."""
    def unchanged(rule_id: str, state: str) -> bool:
        return held is None or held.rules.get(rule_id) == state

    rule_ids = list(change.rule_ids)
    if change.lb:
        rule_ids += list(db.scalars(select(LoadBalancingRule.id).join(FirewallRule, FirewallRule.id ==
                                                                      LoadBalancingRule.id)
                                    .where(FirewallRule.network_id == network_id)))
        members = db.execute(select(LoadBalancerVmMap).join(FirewallRule, FirewallRule.id ==
                                                            LoadBalancerVmMap.load_balancer_id)
                             .where(FirewallRule.network_id == network_id)).scalars().all()
        for member in members:
            if held is not None and held.members.get(member.id) != member.revoke:
                continue
            if member.revoke:
                db.delete(member)
            elif member.state == RR.ADD:
                member.state = RR.ACTIVE
    if rule_ids:
        states = dict(db.execute(select(FirewallRule.id, FirewallRule.state)
                                 .where(FirewallRule.id.in_(rule_ids))).all())
        adds = [r for r, st in states.items() if st == RR.ADD and unchanged(r, st)]
        if adds:
            db.execute(update(FirewallRule).where(FirewallRule.id.in_(adds)).values(state=RR.ACTIVE)
                       .execution_options(synchronize_session=False))
        IP.delete_rules(db, [r for r, st in states.items() if st == RR.REVOKE and unchanged(r, st)])
    for ip_id in change.nat_disable:
        ip = db.get(UserIpAddress, ip_id)
        if ip is not None and ip.removed is None:
            ip.one_to_one_nat, ip.vm_id, ip.vm_ip = False, None, None
    for ip_id in change.ip_ids:
        ip = db.get(UserIpAddress, ip_id)
        if ip is None or ip.removed is not None:
            continue
        if ip.state == IP.RELEASING:
            IP.release(db, ip)
        elif ip.state == IP.ALLOCATING:
            ip.state = IP.ALLOCATED


def not_applied(db: Session, change: RR.Change) -> None:
    """The router refused: new rules stay Add, revoked ones Revoke; static NAT being enabled is
    undone (as CloudStack reverts it)."""
    for ip_id in change.nat_enable:
        ip = db.get(UserIpAddress, ip_id)
        if ip is not None:
            ip.one_to_one_nat, ip.vm_id, ip.vm_ip = False, None, None


def _what(command: Command) -> str:
    return type(command).__name__


async def send_batch(steps: Steps, ref: RT.RouterRef, commands: list[Command]) -> None:
    """Send a batch; a ``Failed`` entry in an answer fails it like a refusal. A batch begun with
    ``AggregationControlCommand`` Start is cleaned up on the router when a command of it fails."""
    aggregated = bool(commands) and isinstance(commands[0], R.AggregationControlCommand)
    try:
        for command in commands:
            answer = await steps.send(ref.host_id, command, f"router {ref.name}: {_what(command)}")
            failed = RR.failed_results(answer)
            if failed:
                raise StepFailed(f"router {ref.name}: {_what(command)} failed for {len(failed)} rule(s): "
                                 f"{answer.details or 'Failed'}", host_fault=False)
    except StepFailed:
        if aggregated:
            try:
                await steps.send(ref.host_id, R.AggregationControlCommand(action=R.AGGREGATION_CLEANUP,
                                                                          accessDetails=ref.access),
                                 f"router {ref.name}: cleanup")
            except StepFailed as exc:
                log.warning("router_aggregation_cleanup_failed", router=ref.name, reason=exc.text[:300])
        raise


async def apply_change(steps: Steps, network_id: str, change: RR.Change) -> None:
    ref = await steps.tx(RT.running_ref, network_id)
    held: RR.Snapshot | None = None
    if ref is not None:
        commands, held = await steps.tx(_change_with_snapshot, ref, change)
        try:
            await send_batch(steps, ref, commands)
        except StepFailed as exc:
            if not await steps.tx(RT.router_lost, ref, exc):
                await steps.tx(not_applied, change)
                raise JobFailure(INTERNAL_ERROR, exc.text) from None
            log.warning("rules_router_lost", network=network_id, router=ref.name)
            held = None  # the router is gone: what it held no longer matters
    await steps.tx(applied, network_id, change, held)


def _change_with_snapshot(db: Session, ref: RT.RouterRef, change: RR.Change) -> tuple[list[Command], RR.Snapshot]:
    return RR.change_batch(db, ref, change), RR.snapshot(db, ref.network_id, change)


async def replay(steps: Steps, ref: RT.RouterRef) -> None:
    """After a router's entries: its network's whole public side in one aggregated batch; then what
    the batch held is applied (Add → Active, revoked rows gone, released addresses back)."""
    commands, held = await steps.tx(RR.full_batch_with_snapshot, ref)
    if not commands:
        return
    log.info("router_public_replay", router=ref.name, commands=len(commands))
    await send_batch(steps, ref, commands)
    await steps.tx(_snapshot_applied, ref.network_id, held)


def _snapshot_applied(db: Session, network_id: str, held: RR.Snapshot) -> None:
    """Move on exactly the rows the batch held, in the state it held them."""
    applied(db, network_id, RR.Change(rule_ids=list(held.rules), ip_ids=held.releasing, lb=True), held)


# ---------------------------------------------------------------------- a VM leaves


def _vm_rules(db: Session, vm_id: str, nic_ids: list[str] | None) -> list[tuple[str, RR.Change]]:
    """Mark what points at the VM (``nic_ids``: at those NICs' networks) for removal, per network: its
    port forwards (and the firewall rules opened for them) Revoke, its static NAT to disable, its
    load balancer memberships revoked."""
    only: set[str] | None = None
    if nic_ids is not None:
        only = {n for n in db.scalars(select(Nic.network_id).where(Nic.id.in_(nic_ids))) if n is not None}
        if not only:
            return []
    out: dict[str, RR.Change] = {}
    for rule in db.scalars(select(FirewallRule).join(PortForwardingRule, PortForwardingRule.id == FirewallRule.id)
                           .where(PortForwardingRule.vm_id == vm_id)):
        if only is not None and rule.network_id not in only:
            continue
        change = out.setdefault(rule.network_id, RR.Change())
        rule.state = RR.REVOKE
        change.rule_ids.append(rule.id)
        for related in db.scalars(select(FirewallRule).where(FirewallRule.related_id == rule.id)):
            related.state = RR.REVOKE
            change.rule_ids.append(related.id)
    for ip in db.scalars(select(UserIpAddress).where(UserIpAddress.vm_id == vm_id, UserIpAddress.removed.is_(None))):
        if ip.network_id is not None and (only is None or ip.network_id in only):
            out.setdefault(ip.network_id, RR.Change()).nat_disable[ip.id] = ip.vm_ip or ""
    for member, network_id in db.execute(
            select(LoadBalancerVmMap, FirewallRule.network_id)
            .join(FirewallRule, FirewallRule.id == LoadBalancerVmMap.load_balancer_id)
            .where(LoadBalancerVmMap.vm_id == vm_id)).all():
        if only is not None and network_id not in only:
            continue
        member.revoke = True
        out.setdefault(network_id, RR.Change()).lb = True
    return list(out.items())


async def forget_vm(steps: Steps, vm_id: str, nic_ids: list[str] | None = None) -> None:
    """The VM is expunged (or the NICs ``nic_ids`` removed): its forwards, static NAT and load
    balancer memberships (on those NICs' networks) go, as CloudStack removes them. Best effort
    towards the routers: the rows go anyway, and a router that could not be told holds only what
    the database says after its next restart."""
    for network_id, change in await steps.tx(_vm_rules, vm_id, nic_ids):
        try:
            await apply_change(steps, network_id, change)
        except JobFailure as exc:
            log.warning("vm_rules_withdraw_failed", vm=vm_id, network=network_id, reason=str(exc)[:300])
            await steps.tx(applied, network_id, change)


# ---------------------------------------------------------------------- the job


def _steps(jctx: JobContext) -> Steps:
    return Steps(jctx.sessions, jctx.agents, jctx.state.box, jctx.state.config.instance_name_suffix)


def _check_network(db: Session, network_id: str) -> None:
    network = db.get(Network, network_id)
    if network is None:
        raise JobFailure(PARAM_ERROR, f"Network {network_id} does not exist")


async def run_apply(jctx: JobContext) -> dict[str, Any]:
    network_id = str(jctx.params["network_id"])
    change = RR.Change.of_params(jctx.params)
    steps = _steps(jctx)
    await steps.tx(_check_network, network_id)
    try:
        await apply_change(steps, network_id, change)
    except StepFailed as exc:
        raise JobFailure(INTERNAL_ERROR, exc.text) from None
    return _result(jctx)


def _result(jctx: JobContext) -> dict[str, Any]:
    from hvcloud.server.views import public_ips as views

    kind = jctx.params.get("result_kind")
    object_id = jctx.params.get("result_id")
    if not isinstance(kind, str) or not isinstance(object_id, str):
        return {"success": True}
    with jctx.sessions() as db:
        view = views.render(db, kind, object_id)
    if view is None:
        raise JobFailure(INTERNAL_ERROR, f"The {kind} {object_id} is gone")
    return {kind: view}


register(JOB_APPLY, run_apply, resumable=True)
