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
import time
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from hvcloud import logs
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import Host, VMInstance, VmPowerReport, Volume, utcnow
from hvcloud.server.orchestration.agents import HOST_UP
from hvcloud.server.orchestration.agents.protocol import AgentSender
from hvcloud.server.orchestration.vm import power_sync as P
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm.manager import job_in_flight
from hvcloud.server.orchestration.vm.steps import StepFailed, Steps

log = logs.get(__name__)

#: VM states in which nothing of the VM should run on a host
LEFTOVER_STATES = (S.ERROR, S.DESTROYED)
VOLUMES_PER_PASS = 200
MAX_REST_SECONDS = 3600.0
WARN_AFTER = 5


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
    #: volumes whose delete the host refused (answered with a failure) this time, and those deleted
    refused: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)


@dataclass
class Backoff:
    """Volumes whose deletes their hosts keep refusing rest between tries (a delete that went
    unanswered is tried again at the next pass, as the host comes back): the pause doubles from one cleanup
    interval up to ``MAX_REST_SECONDS``, and the operator is warned once after ``WARN_AFTER`` failures.
    Kept in memory: a restarted server tries each once more at once."""

    interval: float
    failures: dict[str, int] = field(default_factory=dict)
    until: dict[str, float] = field(default_factory=dict)

    def resting(self, now: float) -> frozenset[str]:
        return frozenset(v for v, t in self.until.items() if t > now)

    def failed(self, volume_id: str, now: float) -> int:
        count = self.failures[volume_id] = self.failures.get(volume_id, 0) + 1
        self.until[volume_id] = now + min(self.interval * 2 ** (count - 1), MAX_REST_SECONDS)
        return count

    def done(self, volume_id: str) -> None:
        self.failures.pop(volume_id, None)
        self.until.pop(volume_id, None)


def plan(db: Session, hosts: frozenset[str] | None, limit: int = VOLUMES_PER_PASS,
         resting: frozenset[str] = frozenset()) -> dict[str | None, HostWork]:
    """The work per Up host (``hosts`` limits it to those this server drives); volumes whose host row
    is gone are under ``None`` and go to any host that sees their pool. The ``limit`` oldest volumes
    are taken among those that can be worked on now: volumes on hosts that are away, or ``resting``
    after failed deletes, never hold the others back."""
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
    stmt = (select(Volume.id, Volume.host_id).outerjoin(Host, Host.id == Volume.host_id)
            .where(Volume.state == S.VOL_EXPUNGING, Volume.removed.is_(None),
                   or_(Volume.host_id.is_(None), Host.status == HOST_UP)))
    if hosts is not None:
        stmt = stmt.where(or_(Volume.host_id.is_(None), Volume.host_id.in_(hosts)))
    if resting:
        stmt = stmt.where(Volume.id.not_in(resting))
    for volume_id, host_id in db.execute(stmt.order_by(Volume.created).limit(limit)):
        work.setdefault(host_id, HostWork()).volumes.append(volume_id)
    return work


async def clean_host(steps: Steps, host_id: str | None, work: HostWork) -> Swept:
    done = Swept()
    for name in work.stops:
        assert host_id is not None
        try:
            await steps.stop(host_id, name, True)
        except StepFailed as exc:
            log.info("cleanup: stopping a leftover VM failed", vm=name, host=host_id, reason=exc.text)
            done.failed += 1
            return done  # no disk is deleted on a host that may still run a VM using it
        await steps.tx(P.note_stopped, host_id, name, utcnow())
        done.stopped += 1
    for volume_id in work.volumes:
        try:
            await steps.delete_volume(volume_id, host_id)
            done.deleted += 1
            done.cleared.append(volume_id)
        except StepFailed as exc:
            log.info("cleanup: deleting the disk of a volume failed", volume=volume_id, reason=exc.text)
            done.failed += 1
            if exc.host_fault and not exc.unanswered:  # the host answered no; a host away is tried again
                done.refused.append(volume_id)
    return done


def _note(backoff: Backoff, swept: Swept, now: float) -> None:
    for volume_id in swept.cleared:
        backoff.done(volume_id)
    for volume_id in swept.refused:
        if backoff.failed(volume_id, now) == WARN_AFTER:
            log.warning("cleanup: the disk of a volume could not be deleted repeatedly; retrying at most hourly",
                        volume=volume_id, attempts=WARN_AFTER)


async def cleanup_loop(sessions: sessionmaker[Session], agents: AgentSender, box: SecretBox, interval: float) -> None:
    """Every ``interval``: plan, and start a task for each host that has work and no task running."""
    steps = Steps(sessions, agents, box)
    running: dict[str | None, asyncio.Task[Swept]] = {}
    backoff = Backoff(interval)
    try:
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for host_id in [h for h, t in running.items() if t.done()]:
                task = running.pop(host_id)
                failure = task.exception()
                if failure is not None:
                    log.error("storage cleanup on a host failed", host=host_id, exc_info=failure)
                    continue
                _note(backoff, task.result(), now)
            try:
                work = await steps.tx(plan, agents.owned_host_ids() if agents.server_id is not None else None,
                                      VOLUMES_PER_PASS, backoff.resting(now))
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
