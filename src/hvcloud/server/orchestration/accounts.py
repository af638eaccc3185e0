"""The account manager: creating, disabling and deleting users and accounts, as CloudStack's
AccountManager does it.

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
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server import errors
from hvcloud.server.db.crypto import hash_password
from hvcloud.server.db.models import (
    Account,
    AsyncJob,
    Domain,
    LoginSession,
    ProjectAccount,
    User,
    VMInstance,
    VMTemplate,
    Volume,
    utcnow,
)
from hvcloud.server.errors import INTERNAL_ERROR
from hvcloud.server.jobs.handlers import JobContext, JobFailure, register
from hvcloud.server.orchestration import events, vm_credentials
from hvcloud.server.orchestration import resource_tags as tags
from hvcloud.server.orchestration import templates as tpl
from hvcloud.server.orchestration.transaction_jobs import transaction_job
from hvcloud.server.orchestration.vm import manager as vms
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm.steps import StepFailed, Steps
from hvcloud.server.views.accounts import account_view, user_view

log = logs.get(__name__)

JOB_DELETE = "account.delete"
#: (names kept from when these jobs lived in the API: queued jobs name their handler)
JOB_DISABLE_ACCOUNT = "api.disableAccount"
JOB_DISABLE_USER = "api.disableUser"
ACCOUNT_REMOVED = "removed"
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
    """Tombstone ``account`` and every user of it (idempotent); it leaves the projects it was a member of."""
    for user in db.scalars(select(User).where(User.account_id == account.id, User.removed.is_(None))):
        remove_user(db, user)
    account.state = ACCOUNT_REMOVED
    account.removed = account.removed or utcnow()
    vm_credentials.forget_account(db, account.id)
    tags.forget_account(db, account.id)
    db.execute(delete(ProjectAccount).where(ProjectAccount.account_id == account.id)
               .execution_options(synchronize_session=False))


# -- domains, accounts and users --------------------------------------------------------------------

@dataclass(frozen=True)
class NewUser:
    """A user to create: ``command`` is the API command asking (named in a missing-password error)."""

    command: str
    username: str
    password: str
    firstname: str
    lastname: str
    email: str | None = None
    timezone: str | None = None


def username_taken(db: Session, username: str) -> bool:
    """Usernames are unique among live users; a removed user's name may be taken again."""
    return db.scalar(select(User.id).where(User.username == username, User.removed.is_(None))) is not None


def add_user(db: Session, account: Account, new: NewUser) -> User:
    if username_taken(db, new.username):
        raise errors.param_error(f"The user {new.username} already exists in domain")
    if new.password == "":
        raise errors.missing_parameter(new.command, "password")
    user = User(account_id=account.id, username=new.username, password_hash=hash_password(new.password),
                firstname=new.firstname, lastname=new.lastname, email=new.email, timezone=new.timezone)
    db.add(user)
    db.flush()
    return user


def create_account(db: Session, actor: User, domain: Domain, name: str, account_type: int,
                   network_domain: str | None, first_user: NewUser, *, role_id: str | None = None) -> Account:
    """A new account and its first user; ``role_id`` None: the account type's default role."""
    exists = db.scalar(select(Account.id).where(Account.domain_id == domain.id, Account.name == name,
                                                Account.removed.is_(None)))
    if exists is not None:
        raise errors.param_error(f"The specified account: {name} already exists")
    account = Account(name=name, domain_id=domain.id, account_type=account_type, network_domain=network_domain)
    if role_id is not None:
        account.role_id = role_id
    db.add(account)
    db.flush()
    add_user(db, account, first_user)
    db.refresh(account)
    events.record(db, actor, "ACCOUNT.CREATE", f"Creating account {name}", resource_type="Account",
                  resource_id=account.id)
    return account


def create_user(db: Session, actor: User, account: Account, new: NewUser) -> User:
    user = add_user(db, account, new)
    events.record(db, actor, "USER.CREATE", f"Creating user {user.username}", resource_type="User",
                  resource_id=user.id)
    return user


def live_account(db: Session, account_id: str, name: str = "id") -> Account:
    """An account that has not been deleted; a removed one is as unknown as an id that never existed."""
    account = db.get(Account, account_id) if account_id != "-1" else None
    if account is None or account.removed is not None:
        raise errors.entity_not_found(name, account_id)
    return account


def live_user(db: Session, user_id: str, name: str = "id") -> User:
    """A user that has not been deleted; a removed one is as unknown as an id that never existed."""
    user = db.get(User, user_id) if user_id != "-1" else None
    if user is None or user.removed is not None:
        raise errors.entity_not_found(name, user_id)
    return user


def set_account_state(db: Session, actor: User, account_id: str, state: str) -> Account:
    account = live_account(db, account_id)
    if account.id == actor.account_id and state != "enabled":
        raise errors.param_error("An account cannot disable itself")
    account.state = state
    if state != "enabled":
        end_sessions(db, select(User.id).where(User.account_id == account.id))
    events.record(db, actor, "ACCOUNT.DISABLE" if state != "enabled" else "ACCOUNT.ENABLE",
                  f"Account {account.name} is now {state}", resource_type="Account", resource_id=account.id)
    return account


def set_user_state(db: Session, actor: User, user_id: str, state: str) -> User:
    user = live_user(db, user_id)
    if user.id == actor.id and state != "enabled":
        raise errors.param_error("A user cannot disable or lock itself")
    user.state = state
    if state == "enabled":
        user.login_attempts = 0  # CloudStack: an enabled user starts a fresh count of failed logins
    if state != "enabled":
        end_sessions(db, [user.id])
    events.record(db, actor, "USER.DISABLE" if state != "enabled" else "USER.ENABLE",
                  f"User {user.username} is now {state}", resource_type="User", resource_id=user.id)
    return user


@transaction_job(JOB_DISABLE_ACCOUNT)
def _disable_account_job(db: Session, submitter: User, params: dict[str, Any]) -> dict[str, Any]:
    state = "locked" if params.get("lock") is True else "disabled"
    return {"account": account_view(set_account_state(db, submitter, str(params["id"]), state))}


@transaction_job(JOB_DISABLE_USER)
def _disable_user_job(db: Session, submitter: User, params: dict[str, Any]) -> dict[str, Any]:
    return {"user": user_view(set_user_state(db, submitter, str(params["id"]), "disabled"))}


# -- deleteAccount's cleanup -------------------------------------------------------------------------

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
            raise JobFailure(INTERNAL_ERROR, f"{object_key} is still busy with another job")
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
    await clean_up(jctx, str(jctx.params["id"]))
    return {"success": True}


async def clean_up(jctx: JobContext, account_id: str) -> None:
    """The cleanup of a removed account: VMs first (their expunge detaches data disks), then the
    detached volumes, then templates. Every object is tried; failures are reported together
    (a JobFailure). deleteAccount's job, and deleteDomain's (cleanup=true) for each account."""
    steps = Steps(jctx.sessions, jctx.agents, jctx.state.box)
    failures: list[str] = []

    async def attempt(what: str, work: Any) -> None:
        try:
            await work
        except (JobFailure, StepFailed, tpl.TemplateInstallError) as exc:
            text = str(exc)
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
        raise JobFailure(INTERNAL_ERROR, "The account was removed but cleaning up its resources failed; call "
                         "deleteAccount again to retry: " + "; ".join(failures)[:800])
    log.info("account cleaned up", account_id=account_id, vms=len(vm_ids), volumes=len(volume_ids),
             templates=len(template_ids))


register(JOB_DELETE, run_delete, resumable=True)
