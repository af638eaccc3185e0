"""Finishing what failed jobs could not, once the host answers again (CloudStack's storage GC).

A rollback that cannot reach a host leaves durable records instead of forgetting:

* volumes in state ``Expunging`` — their disk may exist and must be deleted (DeleteCommand by path,
  or by uuid when the creation's answer was lost);
* the power state ``PowerUnknown`` of a failed deploy's VM (``Error``) on the host that never
  confirmed its stop.

A VM in ``Error`` or ``Destroyed`` that its host reports running (a StartCommand that timed out on
the server but ran later on the agent), or may run (unknown), is a leftover. Every pass, per host
this server drives and that is Up: stop the leftover VMs first (a confirmed stop records the VM off
there), then delete the disks — never a disk on a host where a stop just failed. Hosts are worked on
concurrently, one task per host, so a hung host holds up only its own cleanup.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import Host, VMInstance, VmPowerReport, Volume, utcnow
from hvcloud.server.orchestration import power_sync as P
from hvcloud.server.orchestration import vm_states as S
from hvcloud.server.orchestration.agents import HOST_UP
from hvcloud.server.orchestration.vm_steps import StepFailed, Steps
from hvcloud.server.orchestration.vms import job_in_flight

log = logging.getLogger(__name__)

#: VM states in which nothing of the VM should run on a host
LEFTOVER_STATES = (S.ERROR, S.DESTROYED)
VOLUMES_PER_PASS = 200


@dataclass
class HostWork:
    #: instance names of the VMs to stop with force
    stops: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)


@dataclass
class Swept:
    stopped: int = 0
    deleted: int = 0
    failed: int = 0


def plan(db: Session, hosts: frozenset[str] | None, limit: int = VOLUMES_PER_PASS) -> dict[str | None, HostWork]:
    """The work per Up host (``hosts`` limits it to those this server drives); volumes whose host row
    is gone are under ``None`` and go to any host that sees their pool."""
    up = set(db.scalars(select(Host.id).where(Host.status == HOST_UP)))
    if hosts is not None:
        up &= hosts
    work: dict[str | None, HostWork] = {}
    leftovers = db.execute(
        select(VMInstance.id, VMInstance.instance_name, VmPowerReport.host_id)
        .join(VmPowerReport, VmPowerReport.instance_name == VMInstance.instance_name)
        .where(VMInstance.state.in_(LEFTOVER_STATES), VMInstance.removed.is_(None),
               VmPowerReport.power_state.in_((P.POWER_ON, P.POWER_UNKNOWN)), VmPowerReport.missing_since.is_(None)))
    for vm_id, name, reporter in leftovers:
        if reporter in up and not job_in_flight(db, vm_id):
            work.setdefault(reporter, HostWork()).stops.append(name)
    for volume_id, host_id in db.execute(select(Volume.id, Volume.host_id).where(
            Volume.state == S.VOL_EXPUNGING, Volume.removed.is_(None)).order_by(Volume.created).limit(limit)):
        if host_id is None or host_id in up:
            work.setdefault(host_id, HostWork()).volumes.append(volume_id)
    return work


async def clean_host(steps: Steps, host_id: str | None, work: HostWork) -> Swept:
    done = Swept()
    for name in work.stops:
        assert host_id is not None
        try:
            await steps.stop(host_id, name, True)
        except StepFailed as exc:
            log.info("cleanup: stopping leftover VM %s on host %s failed: %s", name, host_id, exc.text)
            done.failed += 1
            return done  # no disk is deleted on a host that may still run a VM using it
        await steps.tx(P.note_stopped, host_id, name, utcnow())
        done.stopped += 1
    for volume_id in work.volumes:
        try:
            await steps.delete_volume(volume_id, host_id)
            done.deleted += 1
        except StepFailed as exc:
            log.info("cleanup: deleting the disk of volume %s failed: %s", volume_id, exc.text)
            done.failed += 1
    return done


async def cleanup_loop(sessions: sessionmaker[Session], agents: Any, box: SecretBox, interval: float) -> None:
    """Every ``interval``: plan, and start a task for each host that has work and no task running."""
    steps = Steps(sessions, agents, box)
    running: dict[str | None, asyncio.Task[Swept]] = {}
    try:
        while True:
            await asyncio.sleep(interval)
            for host_id in [h for h, t in running.items() if t.done()]:
                failure = running.pop(host_id).exception()
                if failure is not None:
                    log.error("storage cleanup on host %s failed", host_id, exc_info=failure)
            try:
                work = await steps.tx(plan, agents.owned_host_ids() if agents.server_id is not None else None)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("planning the storage cleanup failed")
                continue
            for host_id, todo in work.items():
                if host_id not in running:
                    running[host_id] = asyncio.create_task(clean_host(steps, host_id, todo),
                                                           name=f"cleanup-{host_id}")
    finally:
        for task in running.values():
            task.cancel()
        await asyncio.gather(*running.values(), return_exceptions=True)
