"""Deleting users and accounts, as CloudStack's AccountManager does it.

A deleted user or account is a tombstone, not a missing row: events, jobs, VMs and volumes keep
naming it (their foreign keys point at it). ``remove_user`` drops the user's API keys and login
sessions and sets ``removed`` in the same transaction, so the credentials stop working the moment it
commits; a removed user never authenticates again, list APIs no longer show it and its username may
be taken by a new user. ``deleteAccount`` removes the account and all its users in the request, then
its job cleans up what the account owns, through the same steps as the single-object commands:
every VM is destroyed and expunged (``destroyVirtualMachine expunge=true``), every detached volume
deleted (``deleteVolume``) and every template or ISO deleted (``deleteTemplate``). A step that
fails leaves the job failed with the reasons; ``deleteAccount`` again runs the cleanup again (every
step skips what is already done).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server.db.models import Account, AsyncJob, LoginSession, User, VMInstance, VMTemplate, Volume, utcnow
from hvcloud.server.jobs.handlers import JobContext, JobFailure, register
from hvcloud.server.orchestration import templates as tpl
from hvcloud.server.orchestration import vm_states as S
from hvcloud.server.orchestration import vms
from hvcloud.server.orchestration.vm_steps import StepFailed, Steps

log = logs.get(__name__)

JOB_DELETE = "account.delete"
ACCOUNT_REMOVED = "removed"
ERR_INTERNAL = 530
#: how long the cleanup waits for a job already running on one of the account's objects
BUSY_WAIT_SECONDS = 600.0
BUSY_POLL_SECONDS = 0.5


def end_sessions(db: Session, user_ids: Iterable[str] | Select[Any]) -> None:
    """End every ``login`` session of these users (a password changed, a user disabled or removed)."""
    ids = user_ids if isinstance(user_ids, Select) else list(user_ids)
    db.execute(delete(LoginSession).where(LoginSession.user_id.in_(ids)).execution_options(synchronize_session=False))


def remove_user(db: Session, user: User) -> None:
    """Tombstone ``user``: no API keys, no login sessions, ``removed`` set."""
    user.api_key, user.secret_key_enc = None, None
    user.removed = user.removed or utcnow()
    end_sessions(db, [user.id])


def remove_account(db: Session, account: Account) -> None:
    """Tombstone ``account`` and every user of it (idempotent)."""
    for user in db.scalars(select(User).where(User.account_id == account.id, User.removed.is_(None))):
        remove_user(db, user)
    account.state = ACCOUNT_REMOVED
    account.removed = account.removed or utcnow()


def _owned(db: Session, account_id: str) -> tuple[list[str], list[str], list[str]]:
    """Ids of the account's VMs, detached volumes and templates/ISOs not yet gone."""
    vm_ids = list(db.scalars(select(VMInstance.id).where(VMInstance.account_id == account_id,
                                                         VMInstance.removed.is_(None))
                             .order_by(VMInstance.created)))
    volume_ids = list(db.scalars(select(Volume.id).where(Volume.account_id == account_id, Volume.removed.is_(None),
                                                         Volume.vm_id.is_(None), Volume.state != S.VOL_EXPUNGED)
                                 .order_by(Volume.created)))
    template_ids = list(db.scalars(select(VMTemplate.id).where(VMTemplate.account_id == account_id,
                                                               VMTemplate.removed.is_(None))
                                   .order_by(VMTemplate.created)))
    return vm_ids, volume_ids, template_ids


def _busy(db: Session, object_key: str, own_job: str) -> bool:
    return db.scalar(select(AsyncJob.id).where(AsyncJob.object_key == object_key, AsyncJob.status == 0,
                                               AsyncJob.id != own_job).limit(1)) is not None


async def _wait_idle(jctx: JobContext, steps: Steps, object_key: str) -> None:
    """Let a job already acting on the object (a deploy, a resize…) finish before cleaning it up."""
    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    while await steps.tx(_busy, object_key, jctx.job_id):
        if time.monotonic() > deadline:
            raise JobFailure(ERR_INTERNAL, f"{object_key} is still busy with another job")
        await asyncio.sleep(BUSY_POLL_SECONDS)


async def _clean_vm(jctx: JobContext, steps: Steps, vm_id: str) -> None:
    await _wait_idle(jctx, steps, f"VirtualMachine:{vm_id}")
    await vms.destroy_vm(steps, vm_id)
    await vms.expunge_vm(steps, vm_id)


async def _clean_volume(jctx: JobContext, steps: Steps, volume_id: str) -> None:
    await _wait_idle(jctx, steps, f"Volume:{volume_id}")
    await steps.delete_volume(volume_id)


async def _clean_template(jctx: JobContext, steps: Steps, template_id: str) -> None:
    await _wait_idle(jctx, steps, f"Template:{template_id}")
    settings = tpl.StoreSettings.of(jctx.state.config, jctx.state.box)
    await asyncio.to_thread(tpl.delete_template, jctx.sessions, settings, template_id)


async def run_delete(jctx: JobContext) -> dict[str, Any]:
    """The cleanup of a removed account: VMs first (their expunge detaches data disks), then the
    detached volumes, then templates. Every object is tried; failures are reported together."""
    account_id = str(jctx.params["id"])
    steps = Steps(jctx.sessions, jctx.agents, jctx.state.box)
    failures: list[str] = []

    async def attempt(what: str, work: Any) -> None:
        try:
            await work
        except (JobFailure, StepFailed, tpl.TemplateInstallError) as exc:
            text = getattr(exc, "text", None) or str(exc)
            log.warning("account cleanup step failed", account_id=account_id, object=what, error=text)
            failures.append(f"{what}: {text}")

    vm_ids, _, _ = await steps.tx(_owned, account_id)
    for vm_id in vm_ids:
        await attempt(f"VM {vm_id}", _clean_vm(jctx, steps, vm_id))
    _, volume_ids, template_ids = await steps.tx(_owned, account_id)
    for volume_id in volume_ids:
        await attempt(f"volume {volume_id}", _clean_volume(jctx, steps, volume_id))
    for template_id in template_ids:
        await attempt(f"template {template_id}", _clean_template(jctx, steps, template_id))
    if failures:
        raise JobFailure(ERR_INTERNAL, "The account was removed but cleaning up its resources failed; call "
                         "deleteAccount again to retry: " + "; ".join(failures)[:800])
    log.info("account cleaned up", account_id=account_id, vms=len(vm_ids), volumes=len(volume_ids),
             templates=len(template_ids))
    return {"success": True}


register(JOB_DELETE, run_delete, resumable=True)
