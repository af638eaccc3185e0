"""Virtual routers: starting one for a network (and implementing the network), keeping its entries,
moving it when its host is gone or it was destroyed by hand, stopping, rebooting and destroying it.

A router is a ``DomainRouter`` row and, on its host, whatever the agent's router runtime keeps (a
network namespace on a Linux host, the simulator's state). Every command sent to a router is
idempotent on the agent, so a job that runs these steps again after a crash converges. A router's
entries (lease, DNS name, metadata, password) are replayed whenever it is (re)started, from the
rows: the database is the truth, the router a cache of it.

Crash safety: the router row is created (``Starting``, on its host) in the transaction that takes
the network's segment id and moves the network to ``Implementing``; a rerun finds it and sends the
same StartCommand again. Every transaction that changes a network or its router holds the network's
lock (:func:`implement.lock_network`), so concurrent first deploys start one router.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hvcloud import logs
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import DomainRouter, Host, Network, Nic, VMInstance, Zone, utcnow
from hvcloud.server.db.sequences import Sequences
from hvcloud.server.errors import INTERNAL_ERROR, PARAM_ERROR
from hvcloud.server.jobs.handlers import JobContext, JobFailure, register
from hvcloud.server.orchestration.agents import HOST_UP
from hvcloud.server.orchestration.networks import implement as N
from hvcloud.server.orchestration.networks import public_ips as IP
from hvcloud.server.orchestration.networks.vm_data import pending_password, vm_data_triples
from hvcloud.server.orchestration.vm import states as VS
from hvcloud.server.orchestration.vm.steps import StepFailed, Steps
from hvcloud.wire import commands as C
from hvcloud.wire import routing as R
from hvcloud.wire.base import Command
from hvcloud.wire.to import NicTO, VirtualMachineTO

log = logs.get(__name__)

# router states (CloudStack's VirtualMachine.State for a DomainRouter)
STARTING = "Starting"
RUNNING = "Running"
STOPPING = "Stopping"
STOPPED = "Stopped"
DESTROYED = "Destroyed"

ROUTER_CPUS = 1
ROUTER_SPEED_MHZ = 500
ROUTER_RAM_MB = 256
MiB = 1024 * 1024
#: hosts a router start is tried on before the step fails
START_ATTEMPTS = 3
#: a network with a VM in one of these states is in use (the network GC leaves it)
ACTIVE_VM_STATES = (VS.STARTING, VS.RUNNING, VS.STOPPING, VS.MIGRATING)
#: a (re)started router gets the entries of every live NIC but those of VMs in these states
UNPUBLISHED_VM_STATES = (VS.DESTROYED, VS.EXPUNGING, VS.ERROR)
#: a router Stopping longer than this was left so by a crash: a start takes it over
STOPPING_TAKEOVER = timedelta(seconds=120)
#: how often a start waiting for a router's stop looks again
STOPPING_POLL_SECONDS = 0.2
#: hypervisors whose hosts run no routers yet (Hyper-V gets a router system VM in a later issue)
NO_ROUTER_HYPERVISORS = ("hyperv",)
#: what an agent answers when the router it was asked about is not there (``RouterNotFound``)
_ROUTER_GONE = re.compile(r"does not exist|not found|no such router|unknown router", re.IGNORECASE)

JOB_START = "router.start"
JOB_STOP = "router.stop"
JOB_REBOOT = "router.reboot"
JOB_DESTROY = "router.destroy"
JOB_RESTART_NETWORK = "network.restart"


@dataclass(frozen=True)
class RouterRef:
    """A router as the commands to it need it: where it runs and the access details naming it."""

    id: str
    name: str
    host_id: str
    network_id: str
    access: dict[str, str]
    #: the router was just (re)started and holds every entry of the network's active VMs
    replayed: bool = False


@dataclass(frozen=True)
class _Claim:
    """The outcome of :func:`_claim`: ``ref`` None when a router number must be taken first;
    ``start`` the StartCommand to send when the router is not running where ``ref`` says."""

    ref: RouterRef | None
    start: C.StartCommand | None = None
    #: the router is being stopped (network shutdown, stopRouter): wait for that to finish
    busy: bool = False


def router_mac(number: int) -> str:
    """A locally administered unicast MAC from the router's number (VM NICs use ``02:xx``)."""
    n = number & 0xFFFFFFFF
    return "1e:00:" + ":".join(f"{(n >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))


def access_details(network: Network, router: DomainRouter, zone: Zone | None) -> dict[str, str]:
    """``NetworkElementCommand.accessDetails``: the router the command is for and its network."""
    gateway = router.guest_ip or network.gateway or ""
    return {R.ROUTER_NAME: router.name, R.ROUTER_IP: gateway, R.ROUTER_GUEST_IP: gateway,
            R.GUEST_NETWORK_CIDR: network.cidr or "",
            R.ZONE_NETWORK_TYPE: (zone.network_type if zone is not None else None) or "Advanced"}


def live_router(db: Session, network_id: str) -> DomainRouter | None:
    """The network's router (one per network), unless destroyed."""
    return db.scalars(select(DomainRouter).where(DomainRouter.network_id == network_id,
                                                 DomainRouter.removed.is_(None), DomainRouter.state != DESTROYED)
                      .order_by(DomainRouter.created.desc(), DomainRouter.vm_number.desc())).first()


def running_ref(db: Session, network_id: str) -> RouterRef | None:
    """The network's router if it runs on an Up host (where commands can go now)."""
    network = db.get(Network, network_id)
    router = live_router(db, network_id) if network is not None else None
    if network is None or router is None or router.state != RUNNING or router.host_id is None:
        return None
    host = db.get(Host, router.host_id)
    if host is None or host.status != HOST_UP:
        return None
    return ref_of(db, network, router)


def can_run_routers(host: Host | None, avoid: Collection[str]) -> bool:
    return host is not None and host.status == HOST_UP and host.resource_state == "Enabled" \
        and host.id not in avoid and host.hypervisor.lower() not in NO_ROUTER_HYPERVISORS


def pick_host(db: Session, zone_id: str, preferred: Sequence[str | None], avoid: Collection[str]) -> Host | None:
    """Where a router runs: the first of ``preferred`` that is Up and can run routers, else the Up
    host of the zone running the fewest routers."""
    for host_id in preferred:
        host = db.get(Host, host_id) if host_id else None
        if host is not None and host.zone_id == zone_id and can_run_routers(host, avoid):
            return host
    hosts = [h for h in db.scalars(select(Host).where(Host.zone_id == zone_id, Host.status == HOST_UP,
                                                      Host.host_type == "Routing").order_by(Host.name, Host.id))
             if can_run_routers(h, avoid)]
    if not hosts:
        return None
    load: dict[str, int] = {}
    for host_id in db.scalars(select(DomainRouter.host_id).where(DomainRouter.removed.is_(None),
                                                                 DomainRouter.host_id.in_([h.id for h in hosts]))):
        if host_id is not None:
            load[host_id] = load.get(host_id, 0) + 1
    return min(hosts, key=lambda h: load.get(h.id, 0))


def start_command(db: Session, network: Network, router: DomainRouter, host: Host, zone: Zone | None) -> C.StartCommand:
    """The DomainRouter StartCommand: its guest NIC holds the network's gateway on the segment."""
    netmask = N.netmask_of(network) or "255.255.255.0"
    gateway = router.guest_ip or network.gateway or ""
    domain = N.domain_of(network, zone)
    boot = [f"name={router.name}", "type=router", f"eth0ip={gateway}", f"eth0mask={netmask}", f"domain={domain}"]
    dns = [d for d in ((zone.dns1, zone.dns2) if zone is not None else ()) if d]
    boot += [f"dns{i}={d}" for i, d in enumerate(dns, start=1)]
    uri = network.broadcast_uri or "vlan://untagged"
    nic = NicTO(deviceId=0, mac=router.guest_mac, ip=gateway, netmask=netmask, gateway=gateway,
                broadcastUri=uri, isolationUri=uri,
                broadcastType="Vxlan" if uri.startswith("vxlan://") else "Vlan", type="Guest", defaultNic=True,
                name=N.traffic_label(db, network, host.hypervisor), uuid=router.id, nicUuid=router.id,
                dns1=dns[0] if dns else None, dns2=dns[1] if len(dns) > 1 else None)
    vm = VirtualMachineTO(id=router.vm_number, name=router.name, uuid=router.id, type="DomainRouter",
                          cpus=ROUTER_CPUS, speed=ROUTER_SPEED_MHZ, minSpeed=ROUTER_SPEED_MHZ,
                          maxSpeed=ROUTER_SPEED_MHZ, minRam=ROUTER_RAM_MB * MiB, maxRam=ROUTER_RAM_MB * MiB,
                          hostName=router.name, bootloader="HVM", bootArgs=" ".join(boot), enableHA=False,
                          limitCpuUse=False, disks=[], nics=[nic])
    return C.StartCommand(vm=vm)


def ref_of(db: Session, network: Network, router: DomainRouter) -> RouterRef:
    return RouterRef(router.id, router.name, router.host_id or "", network.id,
                     access_details(network, router, db.get(Zone, network.zone_id)))


def _set_state(router: DomainRouter, state: str) -> None:
    if router.state != state:
        router.state, router.state_changed = state, utcnow()


def _claim(db: Session, network_id: str, preferred_host: str | None, avoid: list[str],
           number: int | None, suffix: str = "VM") -> _Claim:
    """Under the network's lock: the network's router where it runs (nothing to send), or booked to
    (re)start on a host (the StartCommand to send). A network without a router takes its segment id
    and a new router row (numbered ``number``; without one, asks for it)."""
    network = N.lock_network(db, network_id)
    if network is None or network.removed is not None:
        raise JobFailure(PARAM_ERROR, f"Network {network_id} does not exist")
    zone = db.get(Zone, network.zone_id)
    router = live_router(db, network_id)
    if router is not None:
        if router.state == STOPPING and utcnow() - router.state_changed < STOPPING_TAKEOVER:
            return _Claim(None, busy=True)
        host = db.get(Host, router.host_id) if router.host_id else None
        usable = can_run_routers(host, avoid)
        if router.state == RUNNING and usable and network.state == N.IMPLEMENTED:
            return _Claim(ref_of(db, network, router))
        target = host if usable else pick_host(db, network.zone_id, [preferred_host, router.last_host_id], avoid)
    else:
        if number is None:
            return _Claim(None)
        target = pick_host(db, network.zone_id, [preferred_host], avoid)
    if target is None:
        raise StepFailed(f"no Up host of zone {network.zone_id} can run the router of network {network.name}"
                         + (f" (tried {', '.join(avoid)})" if avoid else ""), host_fault=False)
    N.take_segment(db, network)
    IP.ensure_source_nat(db, network)
    if router is None:
        assert number is not None
        router = DomainRouter(name=f"r-{number}-{suffix}", vm_number=number, network_id=network.id,
                              zone_id=network.zone_id, account_id=network.account_id, domain_id=network.domain_id,
                              host_id=target.id, state=STARTING, guest_ip=network.gateway,
                              guest_mac=router_mac(number), version="hvcloud-1")
        db.add(router)
        db.flush()
        log.info("router_created", router=router.name, network=network.id, host=target.id)
    router.host_id = target.id
    _set_state(router, STARTING)
    if network.state != N.IMPLEMENTED:
        network.state = N.IMPLEMENTING
    return _Claim(ref_of(db, network, router), start_command(db, network, router, target, zone))


def locked_router(db: Session, router_id: str) -> DomainRouter | None:
    """The router row read after taking its network's lock (so what it says is current)."""
    network_id = db.scalar(select(DomainRouter.network_id).where(DomainRouter.id == router_id))
    if network_id is None:
        return None
    N.lock_network(db, network_id)
    return db.scalars(select(DomainRouter).where(DomainRouter.id == router_id)
                      .execution_options(populate_existing=True)).first()


def _start_failed(db: Session, router_id: str, host_id: str, reason: str) -> None:
    router = locked_router(db, router_id)
    if router is None or router.state != STARTING or router.host_id != host_id:
        return  # another job moved it on meanwhile (started it, or is stopping it)
    router.last_host_id, router.host_id = host_id, None
    _set_state(router, STOPPED)
    log.warning("router_start_failed", router=router.name, host=host_id, reason=reason[:300])


def _running(db: Session, router_id: str, host_id: str) -> None:
    router = locked_router(db, router_id)
    if router is None or router.state not in (STARTING, RUNNING) or router.host_id != host_id:
        return  # a stop (or a start elsewhere) came in meanwhile: that job's outcome stands
    network = db.get(Network, router.network_id)
    router.last_host_id = host_id
    _set_state(router, RUNNING)
    if network is not None and network.state in (N.ALLOCATED, N.IMPLEMENTING, N.SHUTDOWN):
        network.state = N.IMPLEMENTED
        network.restart_required = False


def _next_router_number(sessions: sessionmaker[Session]) -> int:
    """The next number of the sequence VMs use (router and VM names never share a number)."""
    return Sequences(sessions, {}).next("vm")


async def ensure_router(steps: Steps, network_id: str, preferred_host: str | None, *,
                        exclude_vm: str | None = None) -> RouterRef:
    """The network implemented and its router running (started, or moved to another Up host when
    its own is gone); a router (re)started gets the entries of every live NIC of the network but
    ``exclude_vm``'s (its caller publishes those)."""
    avoid: list[str] = []
    number: int | None = None
    last_error = ""
    for _attempt in range(START_ATTEMPTS):
        while True:
            claim = await steps.tx(_claim, network_id, preferred_host, avoid, number, steps.name_suffix)
            if claim.busy:
                await asyncio.sleep(STOPPING_POLL_SECONDS)
            elif claim.ref is None:
                number = await asyncio.to_thread(_next_router_number, steps.sessions)
            else:
                break
        ref = claim.ref
        assert ref is not None
        if claim.start is None:
            return ref
        try:
            await steps.send(ref.host_id, claim.start, f"starting router {ref.name}")
        except StepFailed as exc:
            last_error = exc.text
            await steps.tx(_start_failed, ref.id, ref.host_id, exc.text)
            if not exc.host_fault:
                raise
            avoid.append(ref.host_id)
            continue
        await steps.tx(_running, ref.id, ref.host_id)
        log.info("router_started", router=ref.name, host=ref.host_id, network=network_id)
        await replay(steps, ref, exclude_vm=exclude_vm)
        return replace(ref, replayed=True)
    raise StepFailed(f"Unable to start the router of network {network_id} on {len(avoid)} host(s); "
                     f"last error: {last_error}", host_fault=False)


# ---------------------------------------------------------------------- entries


def nic_entries(db: Session, box: SecretBox, ref: RouterRef, vm: VMInstance, nic: Nic,
                network: Network) -> list[Command]:
    """What the router holds for one NIC: its lease and DNS name, its metadata and, when one is
    pending, its password."""
    if not nic.ip4_address:
        return []
    gateway = network.gateway
    commands: list[Command] = [
        R.DhcpEntryCommand(vmMac=nic.mac_address, vmIpAddress=nic.ip4_address, vmName=vm.name,
                           dns=ref.access.get(R.ROUTER_GUEST_IP) or gateway, gateway=gateway,
                           defaultRouter=gateway, defaultDns=ref.access.get(R.ROUTER_GUEST_IP) or gateway,
                           isDefault=nic.is_default, executeInSequence=False, accessDetails=ref.access),
        R.VmDataCommand(vmIpAddress=nic.ip4_address, vmName=vm.name, executeInSequence=False,
                        vmData=vm_data_triples(db, vm, nic), accessDetails=ref.access),
    ]
    password = pending_password(db, box, vm)
    if password:
        commands.append(R.SavePasswordCommand(password=password, vmIpAddress=nic.ip4_address, vmName=vm.name,
                                              executeInSequence=False, accessDetails=ref.access))
    return commands


def _vm_entries(db: Session, box: SecretBox, ref: RouterRef, vm_id: str) -> list[Command]:
    network = db.get(Network, ref.network_id)
    vm = db.get(VMInstance, vm_id)
    if network is None or vm is None:
        return []
    return vm_entries_on(db, box, ref, network, vm)


def vm_entries_on(db: Session, box: SecretBox, ref: RouterRef, network: Network, vm: VMInstance) -> list[Command]:
    """The router's entries for the VM's live NICs on ``network``."""
    nics = db.scalars(select(Nic).where(Nic.vm_id == vm.id, Nic.network_id == network.id, Nic.removed.is_(None))
                      .order_by(Nic.device_id))
    return [c for nic in nics for c in nic_entries(db, box, ref, vm, nic, network)]


def _network_entries(db: Session, box: SecretBox, ref: RouterRef, exclude_vm: str | None) -> list[Command]:
    network = db.get(Network, ref.network_id)
    if network is None:
        return []
    stmt = (select(Nic, VMInstance).join(VMInstance, VMInstance.id == Nic.vm_id)
            .where(Nic.network_id == network.id, Nic.removed.is_(None), VMInstance.removed.is_(None),
                   VMInstance.state.not_in(UNPUBLISHED_VM_STATES))
            .order_by(VMInstance.vm_number, Nic.device_id))
    if exclude_vm is not None:
        stmt = stmt.where(VMInstance.id != exclude_vm)
    return [c for nic, vm in db.execute(stmt).all() for c in nic_entries(db, box, ref, vm, nic, network)]


def _what(command: Command) -> str:
    name = type(command).__name__
    ip = getattr(command, "vmIpAddress", None)
    return f"{name} for {ip}" if ip else name


async def send_all(steps: Steps, ref: RouterRef, commands: Sequence[Command]) -> None:
    for command in commands:
        await steps.send(ref.host_id, command, f"router {ref.name}: {_what(command)}")


async def replay(steps: Steps, ref: RouterRef, *, exclude_vm: str | None = None) -> None:
    """Send the router the entries of every live NIC of its network (idempotent on the router); a
    stopped VM keeps its lease and metadata, as in CloudStack, so it finds them when it starts.
    Then its public side: addresses, source NAT, firewall, forwards, static NAT, load balancers
    in one aggregated batch (:func:`replay_public`), unless ``exclude_vm``'s entries are still to
    come (:func:`publish_vm` sends it after them)."""
    commands = await steps.tx(_network_entries, steps.box, ref, exclude_vm)
    if commands:
        log.info("router_replay", router=ref.name, commands=len(commands))
    await send_all(steps, ref, commands)
    if exclude_vm is None:
        await replay_public(steps, ref)


async def replay_public(steps: Steps, ref: RouterRef) -> None:
    from hvcloud.server.orchestration.networks import rule_jobs

    await rule_jobs.replay(steps, ref)


def router_lost(db: Session, ref: RouterRef, exc: StepFailed) -> bool:
    """After a failed router command: is the router gone (destroyed by hand, host rebuilt, host
    down)? Then it is marked Stopped, so that the next :func:`ensure_router` starts it again."""
    host = db.get(Host, ref.host_id) if ref.host_id else None
    gone = bool(_ROUTER_GONE.search(exc.text)) or (exc.unanswered and (host is None or host.status != HOST_UP))
    if not gone:
        return False
    router = locked_router(db, ref.id)
    if router is not None and router.removed is None and router.state in (RUNNING, STARTING):
        _set_state(router, STOPPED)
        log.warning("router_lost", router=router.name, host=ref.host_id, reason=exc.text[:300])
    return True


async def publish_vm(steps: Steps, network_id: str, vm_id: str, host_id: str | None) -> None:
    """The network implemented, its router running, and the VM's entries on it; a router that turns
    out to be gone is started again (everything replayed) and the entries sent once more."""
    ref = await ensure_router(steps, network_id, host_id, exclude_vm=vm_id)
    try:
        await send_all(steps, ref, await steps.tx(_vm_entries, steps.box, ref, vm_id))
    except StepFailed as exc:
        if not await steps.tx(router_lost, ref, exc):
            raise
        ref = await ensure_router(steps, network_id, host_id, exclude_vm=vm_id)
        await send_all(steps, ref, await steps.tx(_vm_entries, steps.box, ref, vm_id))
    if ref.replayed:
        await replay_public(steps, ref)


async def sync_network(steps: Steps, network_id: str, preferred_host: str | None) -> RouterRef:
    """restartNetwork cleanup=false: the router running (started if stopped or gone) with the entries
    of every live NIC of the network pushed again."""
    ref = await ensure_router(steps, network_id, preferred_host)
    if ref.replayed:
        return ref
    try:
        await replay(steps, ref)
    except StepFailed as exc:
        if not await steps.tx(router_lost, ref, exc):
            raise
        ref = await ensure_router(steps, network_id, preferred_host)
    return ref


# ---------------------------------------------------------------------- stop, destroy, reboot


def _router(db: Session, router_id: str) -> DomainRouter:
    router = db.get(DomainRouter, router_id)
    if router is None or router.removed is not None or router.state == DESTROYED:
        raise JobFailure(PARAM_ERROR, f"Router {router_id} does not exist")
    return router


def _begin_stop(db: Session, router_id: str, destroy: bool) -> tuple[str | None, str] | None:
    """Mark the router Stopping; where to send the stop (a destroy of a stopped router still asks its
    last host to forget it). None when there is nothing to do (stopped already; destroyed already)."""
    router = locked_router(db, router_id)
    if router is None or router.removed is not None or router.state == DESTROYED:
        if destroy:
            return None
        raise JobFailure(PARAM_ERROR, f"Router {router_id} does not exist")
    if router.state == STOPPED:
        return (router.last_host_id, router.name) if destroy else None
    _set_state(router, STOPPING)
    return router.host_id or router.last_host_id, router.name


def _stopped(db: Session, router_id: str, destroy: bool) -> None:
    """Record the stop, unless a deploy took the router back meanwhile (it is Starting or Running
    again: that deploy's start wins)."""
    router = locked_router(db, router_id)
    if router is None or router.removed is not None:
        return
    if router.state not in (STOPPING, STOPPED):
        return
    if router.host_id is not None:
        router.last_host_id = router.host_id
    router.host_id = None
    if destroy:
        _set_state(router, DESTROYED)
        router.removed = utcnow()
    else:
        _set_state(router, STOPPED)


def _host_up(db: Session, host_id: str) -> bool:
    host = db.get(Host, host_id)
    return host is not None and host.status == HOST_UP


async def stop_router(steps: Steps, router_id: str, *, forced: bool, destroy: bool = False) -> None:
    """Stop (``destroy``: and destroy) the router on its host. A host that is down or gone cannot be
    asked: the router is recorded stopped anyway; a host that refuses fails the step unless
    ``forced`` or ``destroy``."""
    begun = await steps.tx(_begin_stop, router_id, destroy)
    if begun is None:
        return
    host_id, name = begun
    if host_id is not None:
        command = C.StopCommand(vmName=name, forceStop=forced or destroy, expungeVM=destroy or None, wait=600)
        try:
            await steps.send(host_id, command, f"{'destroying' if destroy else 'stopping'} router {name}")
        except StepFailed as exc:
            if not (forced or destroy or exc.unanswered) and await steps.tx(_host_up, host_id):
                await steps.tx(_restore_running, router_id, host_id)
                raise
            log.warning("router_stop_unconfirmed", router=name, host=host_id, reason=exc.text[:300])
    await steps.tx(_stopped, router_id, destroy)
    log.info("router_destroyed" if destroy else "router_stopped", router=name, host=host_id)


def _restore_running(db: Session, router_id: str, host_id: str) -> None:
    router = locked_router(db, router_id)
    if router is not None and router.state == STOPPING:
        router.host_id = host_id
        _set_state(router, RUNNING)


async def reboot_router(steps: Steps, router_id: str) -> None:
    """Reboot the router on its host and push its entries again (the router rebuilds itself from
    its own state; the replay makes sure it holds what the database says)."""
    router_host = await steps.tx(_reboot_target, router_id)
    host_id, name, network_id = router_host
    try:
        await steps.send(host_id, C.RebootCommand(vmName=name), f"rebooting router {name}")
    except StepFailed as exc:
        if not await steps.tx(router_lost, _ref_of(router_id, host_id, name, network_id), exc):
            raise
    await sync_network(steps, network_id, host_id)


def _ref_of(router_id: str, host_id: str, name: str, network_id: str) -> RouterRef:
    return RouterRef(router_id, name, host_id, network_id, {})


def _reboot_target(db: Session, router_id: str) -> tuple[str, str, str]:
    router = _router(db, router_id)
    if router.state != RUNNING or router.host_id is None:
        raise JobFailure(PARAM_ERROR, f"Unable to reboot router {router.name}: it is {router.state}")
    return router.host_id, router.name, router.network_id


async def restart_network(steps: Steps, network_id: str, *, cleanup: bool) -> None:
    """restartNetwork: ``cleanup`` destroys the router and starts a new one (all entries replayed);
    otherwise the running router (started if stopped) gets every entry again."""
    old = await steps.tx(_restart_plan, network_id)
    preferred = old[1] if old is not None else None
    if cleanup and old is not None:
        await stop_router(steps, old[0], forced=True, destroy=True)
    await sync_network(steps, network_id, preferred)


def _restart_plan(db: Session, network_id: str) -> tuple[str, str | None] | None:
    network = db.get(Network, network_id)
    if network is None or network.removed is not None:
        raise JobFailure(PARAM_ERROR, f"Network {network_id} does not exist")
    router = live_router(db, network_id)
    return (router.id, router.host_id or router.last_host_id) if router is not None else None


# ---------------------------------------------------------------------- shutdown (deleteNetwork, GC)


def _begin_shutdown(db: Session, network_id: str, only_if_idle: bool) -> list[str] | None:
    """Mark the network ``Shutdown`` and list its routers; None when there is nothing to do (the
    network is gone or already Allocated without routers, or, ``only_if_idle``, a VM is active)."""
    network = N.lock_network(db, network_id)
    if network is None:
        return None
    if only_if_idle and active_vm_count(db, network_id) > 0:
        network.idle_since = None
        return None
    routers = list(db.scalars(select(DomainRouter.id).where(DomainRouter.network_id == network_id,
                                                            DomainRouter.removed.is_(None))))
    if not routers and network.state == N.ALLOCATED and network.vnet is None:
        return None
    if network.state != N.ALLOCATED:
        network.state = N.SHUTDOWN
    return routers


def _finish_shutdown(db: Session, network_id: str) -> bool:
    """Give the segment id back and leave the network Allocated, unless a deploy took it back
    meanwhile (it is no longer Shutdown): False then."""
    network = N.lock_network(db, network_id)
    if network is None:
        return True
    if network.state not in (N.SHUTDOWN, N.ALLOCATED):
        return False
    router = live_router(db, network_id)
    if router is not None and router.state != STOPPED:
        return False  # a start took the router back
    N.release_segment(db, network)
    IP.release_source_nat(db, network)
    network.state, network.idle_since = N.ALLOCATED, None
    log.info("network_shut_down", network=network_id)
    return True


def active_vm_count(db: Session, network_id: str) -> int:
    from sqlalchemy import func

    return db.scalar(select(func.count()).select_from(Nic).join(VMInstance, VMInstance.id == Nic.vm_id)
                     .where(Nic.network_id == network_id, Nic.removed.is_(None), VMInstance.removed.is_(None),
                            VMInstance.state.in_(ACTIVE_VM_STATES))) or 0


async def shutdown(steps: Steps, network_id: str, *, destroy: bool, only_if_idle: bool = False) -> bool:
    """Stop (``destroy``: destroy) the network's routers and give its segment id back; the network
    returns to Allocated. True when it did."""
    routers = await steps.tx(_begin_shutdown, network_id, only_if_idle)
    if routers is None:
        return False
    for router_id in routers:
        await stop_router(steps, router_id, forced=True, destroy=destroy)
    return await steps.tx(_finish_shutdown, network_id)


# ---------------------------------------------------------------------- jobs


def _steps(jctx: JobContext) -> Steps:
    return Steps(jctx.sessions, jctx.agents, jctx.state.box, jctx.state.config.instance_name_suffix)


def _router_result(jctx: JobContext, router_id: str) -> dict[str, Any]:
    from hvcloud.server.views.routers import router_view

    with jctx.sessions() as db:
        router = db.get(DomainRouter, router_id)
        if router is None:
            raise JobFailure(PARAM_ERROR, f"Router {router_id} does not exist")
        return {"router": router_view(db, router)}


async def _as_job(work: Awaitable[object]) -> None:
    """Run a router job's steps; an agent's refusal fails the job with its text (530)."""
    try:
        await work
    except StepFailed as exc:
        raise JobFailure(INTERNAL_ERROR, exc.text) from None


def _router_place(db: Session, router_id: str) -> tuple[str, str | None]:
    router = _router(db, router_id)
    return router.network_id, router.last_host_id


async def run_start(jctx: JobContext) -> dict[str, Any]:
    router_id = str(jctx.params["router_id"])
    steps = _steps(jctx)
    network_id, host_id = await steps.tx(_router_place, router_id)
    await _as_job(sync_network(steps, network_id, host_id))
    return _router_result(jctx, router_id)


async def run_stop(jctx: JobContext) -> dict[str, Any]:
    router_id = str(jctx.params["router_id"])
    await _as_job(stop_router(_steps(jctx), router_id, forced=bool(jctx.params.get("forced"))))
    return _router_result(jctx, router_id)


async def run_reboot(jctx: JobContext) -> dict[str, Any]:
    router_id = str(jctx.params["router_id"])
    await _as_job(reboot_router(_steps(jctx), router_id))
    return _router_result(jctx, router_id)


async def run_destroy(jctx: JobContext) -> dict[str, Any]:
    router_id = str(jctx.params["router_id"])
    await _as_job(stop_router(_steps(jctx), router_id, forced=True, destroy=True))
    return _router_result(jctx, router_id)


async def run_restart_network(jctx: JobContext) -> dict[str, Any]:
    network_id = str(jctx.params["network_id"])
    await _as_job(restart_network(_steps(jctx), network_id, cleanup=bool(jctx.params.get("cleanup"))))
    return {"success": True}


register(JOB_START, run_start, resumable=True)
register(JOB_STOP, run_stop, resumable=True)
register(JOB_REBOOT, run_reboot, resumable=True)
register(JOB_DESTROY, run_destroy, resumable=True)
register(JOB_RESTART_NETWORK, run_restart_network, resumable=True)
