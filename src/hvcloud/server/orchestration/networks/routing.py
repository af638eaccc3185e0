"""What a VM's life asks of its networks' virtual routers.

The VM manager calls these around its own steps; they implement a network the first time one of
its VMs starts (segment id taken, router started on a host) and keep the router's entries (lease,
DNS name, metadata, password) in step with the VM.

A VM whose NICs are all on no network (zones without guest networks) costs one small query and
sends nothing. The work is in :mod:`.routers` (router lifecycle) and :mod:`.implement` (segment ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import Host, Network, Nic, VMInstance
from hvcloud.server.orchestration.networks import implement as N
from hvcloud.server.orchestration.networks import routers as RT
from hvcloud.server.orchestration.networks import rule_jobs
from hvcloud.server.orchestration.networks.vm_data import password_delivered, pending_password, vm_data_triples
from hvcloud.server.orchestration.vm.steps import StepFailed, Steps
from hvcloud.wire import routing as R
from hvcloud.wire.base import Command

log = logs.get(__name__)


def _routed_networks(db: Session, vm_id: str) -> list[str]:
    """The networks of the VM's live NICs that need a router, in device order."""
    out: list[str] = []
    rows = db.execute(select(Nic.network_id).where(Nic.vm_id == vm_id, Nic.removed.is_(None),
                                                   Nic.network_id.is_not(None)).order_by(Nic.device_id)).all()
    for (network_id,) in rows:
        network = db.get(Network, network_id)
        if network is not None and network.id not in out and N.needs_router(network):
            out.append(network.id)
    return out


@dataclass(frozen=True)
class _Publish:
    """One network of a starting VM: where its router runs and the VM's entries for it, or
    ``ref`` None when the network must be implemented (or its router started) first."""

    network_id: str
    ref: RT.RouterRef | None
    commands: list[Command]


@dataclass(frozen=True)
class StartPlan:
    """What publishing a starting VM needs (:func:`start_plan`): its routed networks and whether a
    password is pending. ``ready``: every network's router runs, so nothing is implemented and the
    VM's NICs already have their segments (its StartCommand can be built in the same read)."""

    items: tuple[_Publish, ...]
    password: bool

    @property
    def ready(self) -> bool:
        return all(item.ref is not None for item in self.items)


def start_plan(db: Session, box: SecretBox, vm_id: str) -> StartPlan:
    """One read for a starting VM: for each routed network of its NICs, its router if it runs (with
    the VM's entries), and whether a password is pending. Each network row is read with a shared
    lock (PostgreSQL: a shutdown's update waits, and a shutdown already committed is seen; SQLite
    runs one writer, and the VM became Starting before this read, so a shutdown either saw it or is
    seen here), as :func:`routers._claim` takes it exclusively."""
    vm = db.get(VMInstance, vm_id)
    if vm is None:
        return StartPlan((), False)
    out: list[_Publish] = []
    for network_id in _routed_networks(db, vm_id):
        network = db.scalars(select(Network).where(Network.id == network_id).with_for_update(read=True)
                             .execution_options(populate_existing=True)).first()
        router = RT.live_router(db, network_id) if network is not None and network.removed is None else None
        host = db.get(Host, router.host_id) if router is not None and router.host_id else None
        if network is None or router is None or host is None or router.state != RT.RUNNING \
                or network.state != N.IMPLEMENTED or not RT.can_run_routers(host, ()):
            out.append(_Publish(network_id, None, []))
            continue
        ref = RT.ref_of(db, network, router)
        out.append(_Publish(network_id, ref, RT.vm_entries_on(db, box, ref, network, vm)))
    return StartPlan(tuple(out), bool(vm.password_pending))


async def prepare_vm_start(steps: Steps, vm_id: str, host_id: str) -> None:
    """Before the VM's StartCommand goes to ``host_id``: implement each network of the VM's NICs that
    is not implemented yet (segment id, router running) and publish the VM's entries on each
    network's router. Raises ``StepFailed`` when a router cannot be reached or refuses."""
    await publish_start(steps, await steps.tx(start_plan, steps.box, vm_id), vm_id, host_id)


async def publish_start(steps: Steps, plan: StartPlan, vm_id: str, host_id: str) -> bool:
    """:func:`prepare_vm_start` with the plan read already. The usual case, a network whose router
    runs, costs no transaction but the plan's; the rest (and a router found gone) goes through
    :func:`routers.publish_vm`. True when every network took the usual path (nothing was
    implemented or restarted since the plan was read)."""
    usual = True
    for item in plan.items:
        if item.ref is None:
            usual = False
            await RT.publish_vm(steps, item.network_id, vm_id, host_id)
            continue
        try:
            await RT.send_all(steps, item.ref, item.commands)
        except StepFailed as exc:
            if not await steps.tx(RT.router_lost, item.ref, exc):
                raise
            usual = False
            await RT.publish_vm(steps, item.network_id, vm_id, host_id)
    if plan.items and plan.password:
        await steps.tx(password_delivered, vm_id)
    return usual


async def withdraw_vm(steps: Steps, vm_id: str, nic_ids: Sequence[str] | None = None) -> None:
    """After the VM (or the NICs ``nic_ids``) left its networks: withdraw their entries from the
    routers. Best effort: a router that cannot be reached is corrected on its next restart. The VM
    also loses its port forwards, static NAT and load balancer memberships on those networks."""
    await rule_jobs.forget_vm(steps, vm_id, list(nic_ids) if nic_ids is not None else None)
    for ref, commands in await steps.tx(_withdrawals, vm_id, list(nic_ids) if nic_ids is not None else None):
        try:
            for command in commands:
                await steps.send(ref.host_id, command, f"router {ref.name}: withdrawing {vm_id}")
        except StepFailed as exc:  # best effort: the router is corrected on its next restart
            log.warning("router_withdraw_failed", router=ref.name, vm=vm_id, reason=exc.text[:300])


async def refresh_vm_data(steps: Steps, vm_id: str) -> None:
    """The VM's user data, SSH keys or password changed: push its metadata (and password) again to
    the routers of its networks, if they run. Best effort, as :func:`withdraw_vm`: a router that
    cannot be reached gets everything again when it is next (re)started."""
    refreshes = await steps.tx(_refreshes, steps.box, vm_id)
    delivered = bool(refreshes)
    for ref, commands in refreshes:
        try:
            for command in commands:
                await steps.send(ref.host_id, command, f"router {ref.name}: refreshing {vm_id}")
        except StepFailed as exc:
            delivered = False
            log.warning("router_refresh_failed", router=ref.name, vm=vm_id, reason=exc.text[:300])
    if delivered:
        await steps.tx(password_delivered, vm_id)


async def shutdown_network(steps: Steps, network_id: str, *, destroy: bool) -> None:
    """Stop the network's router and give its segment id back (the network returns to Allocated);
    ``destroy``: the router is destroyed too (deleteNetwork, network garbage collection)."""
    await RT.shutdown(steps, network_id, destroy=destroy)


def _withdrawals(db: Session, vm_id: str, nic_ids: list[str] | None) -> list[tuple[RT.RouterRef, list[Command]]]:
    stmt = select(Nic).where(Nic.vm_id == vm_id, Nic.network_id.is_not(None))
    if nic_ids is not None:
        stmt = stmt.where(Nic.id.in_(nic_ids))
    vm = db.get(VMInstance, vm_id)
    out: list[tuple[RT.RouterRef, list[Command]]] = []
    for nic in db.scalars(stmt.order_by(Nic.device_id)):
        ref = RT.running_ref(db, nic.network_id or "")
        if ref is None:
            continue
        name = vm.name if vm is not None else None
        commands: list[Command] = [R.DhcpEntryCommand(vmMac=nic.mac_address, vmIpAddress=nic.ip4_address, vmName=name,
                                                      remove=True, executeInSequence=False, accessDetails=ref.access)]
        if nic.ip4_address:
            commands.append(R.VmDataCommand(vmIpAddress=nic.ip4_address, vmName=name, vmData=[],
                                            executeInSequence=False, accessDetails=ref.access))
        out.append((ref, commands))
    return out


def _refreshes(db: Session, box: SecretBox, vm_id: str) -> list[tuple[RT.RouterRef, list[Command]]]:
    vm = db.get(VMInstance, vm_id)
    if vm is None or vm.removed is not None:
        return []
    out: list[tuple[RT.RouterRef, list[Command]]] = []
    for nic in db.scalars(select(Nic).where(Nic.vm_id == vm_id, Nic.removed.is_(None), Nic.network_id.is_not(None))
                          .order_by(Nic.device_id)):
        ref = RT.running_ref(db, nic.network_id or "")
        if ref is None or not nic.ip4_address:
            continue
        commands: list[Command] = [R.VmDataCommand(vmIpAddress=nic.ip4_address, vmName=vm.name,
                                                   vmData=vm_data_triples(db, vm, nic), executeInSequence=False,
                                                   accessDetails=ref.access)]
        password = pending_password(db, box, vm)
        if password:
            commands.append(R.SavePasswordCommand(password=password, vmIpAddress=nic.ip4_address, vmName=vm.name,
                                                  executeInSequence=False, accessDetails=ref.access))
        out.append((ref, commands))
    return out
