"""SSH key pairs, registered user data and guest passwords: the rows, and what they change on VMs.

The API checks parameters and visibility; these functions write in the request's transaction (the
caller commits). Resetting a VM's SSH keys or password is a job on the VM (it must be Stopped, as
CloudStack requires), so it queues behind the VM's other jobs; its result carries the new password
once. Whenever what a VM's router serves changes (user data, keys, password), the routers of its
networks are told (``networks.routing.refresh_vm_data``): by the reset jobs themselves, and by a
``vm.refresh_vm_data`` job that updateVirtualMachine queues in its transaction.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server import errors
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import Account, SSHKeyPair, User, UserData, VMInstance, VMTemplate
from hvcloud.server.errors import PARAM_ERROR
from hvcloud.server.jobs.handlers import JobContext, JobFailure, register
from hvcloud.server.orchestration import events, ssh_keys
from hvcloud.server.orchestration.networks import routing
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm.steps import StepFailed, Steps

log = logs.get(__name__)

JOB_RESET_SSH_KEY = "vm.reset_ssh_key"
JOB_RESET_PASSWORD = "vm.reset_password"
JOB_REFRESH_VM_DATA = "vm.refresh_vm_data"


# ---------------------------------------------------------------------- key pairs


def keypair_named(db: Session, account: Account, name: str) -> SSHKeyPair | None:
    return db.scalar(select(SSHKeyPair).where(SSHKeyPair.account_id == account.id, SSHKeyPair.name == name))


def keypairs_named(db: Session, account: Account, names: list[str], param: str) -> list[SSHKeyPair]:
    """The account's key pairs of ``names`` (in that order), or a 431 naming ``param`` and the names
    that are not the account's."""
    found = {p.name: p for p in db.scalars(select(SSHKeyPair).where(SSHKeyPair.account_id == account.id,
                                                                   SSHKeyPair.name.in_(names)))}
    missing = [n for n in names if n not in found]
    if missing:
        shown = ", ".join(f"'{n[:64]}'" for n in missing[:5])
        raise errors.param_error(f"Invalid parameter {param}: the key pair(s) {shown} do not exist for account "
                                 f"{account.name}")
    return [found[n] for n in names]


def _check_new_name(db: Session, account: Account, name: str, suffix: str) -> None:
    if keypair_named(db, account, name) is not None:
        raise errors.param_error(f"A key pair with name '{name}' already exists{suffix}")


def create_keypair(db: Session, actor: User, owner: Account, name: str) -> tuple[SSHKeyPair, str]:
    """A new RSA key pair for ``owner``; returns the row and the private key (never stored)."""
    _check_new_name(db, owner, name, ".")
    public, private = ssh_keys.generate()
    pair = SSHKeyPair(name=name, account_id=owner.id, domain_id=owner.domain_id, public_key=public,
                      fingerprint=ssh_keys.fingerprint(public))
    db.add(pair)
    db.flush()
    events.record(db, actor, "REGISTER.SSH.KEYPAIR", f"Creating SSH key pair {name}", resource_type="SSHKeyPair",
                  resource_id=pair.id)
    return pair, private


def register_keypair(db: Session, actor: User, owner: Account, name: str, material: str) -> SSHKeyPair:
    """``owner``'s key pair of an existing public key: unique by name and by key within the account."""
    _check_new_name(db, owner, name, " for this account.")
    public = ssh_keys.normalise(material)
    if db.scalar(select(SSHKeyPair.id).where(SSHKeyPair.account_id == owner.id,
                                             SSHKeyPair.public_key == public)) is not None:
        raise errors.param_error(f"A key pair with key '{public}' already exists for this account.")
    pair = SSHKeyPair(name=name, account_id=owner.id, domain_id=owner.domain_id, public_key=public,
                      fingerprint=ssh_keys.fingerprint(public))
    db.add(pair)
    db.flush()
    events.record(db, actor, "REGISTER.SSH.KEYPAIR", f"Registering SSH key pair {name}",
                  resource_type="SSHKeyPair", resource_id=pair.id)
    return pair


def delete_keypair(db: Session, actor: User, owner: Account, name: str) -> None:
    """CloudStack keeps the VMs' copies of a deleted key (their ``keypairs`` still name it)."""
    pair = keypair_named(db, owner, name)
    if pair is None:
        raise errors.param_error(f"A key pair with name '{name}' does not exist for account {owner.name} "
                                 "in specified domain id")
    events.record(db, actor, "DELETE.SSH.KEYPAIR", f"Deleting SSH key pair {name}", resource_type="SSHKeyPair",
                  resource_id=pair.id)
    db.delete(pair)


def set_keys(vm: VMInstance, pairs: list[SSHKeyPair]) -> None:
    """The VM's key pairs: their names and a copy of their public keys (what its metadata serves)."""
    vm.keypairs = ",".join(p.name for p in pairs) or None
    vm.ssh_public_keys = "\n".join(p.public_key for p in pairs) or None


# ---------------------------------------------------------------------- user data


def user_data_named(db: Session, account: Account, name: str) -> UserData | None:
    return db.scalar(select(UserData).where(UserData.account_id == account.id, UserData.name == name))


def register_user_data(db: Session, actor: User, owner: Account, name: str, content: str,
                       params: list[str]) -> UserData:
    """``content`` is already checked (``user_data.validate``)."""
    if user_data_named(db, owner, name) is not None:
        raise errors.param_error(f"A userdata with name {name} already exists for this account.")
    if db.scalar(select(UserData.id).where(UserData.account_id == owner.id, UserData.user_data == content)):
        raise errors.param_error("Userdata already exists with same content")
    row = UserData(name=name, account_id=owner.id, domain_id=owner.domain_id, user_data=content,
                   params=",".join(params) or None)
    db.add(row)
    db.flush()
    events.record(db, actor, "REGISTER.USER.DATA", f"Registering user data {name}", resource_type="UserData",
                  resource_id=row.id)
    return row


def delete_user_data(db: Session, actor: User, row: UserData) -> None:
    """Refused (CloudStack's CloudRuntimeException, 530) while a VM that is not expunged uses it."""
    used = db.scalar(select(VMInstance.id).where(VMInstance.user_data_id == row.id, VMInstance.removed.is_(None))
                     .limit(1))
    if used is not None:
        raise errors.internal(f"Userdata {row.id} cannot be removed as it is being used by some VMs")
    # expunged VMs keep their copy of the content; only the reference goes
    for vm in db.scalars(select(VMInstance).where(VMInstance.user_data_id == row.id)):
        vm.user_data_id = None
    events.record(db, actor, "DELETE.USER.DATA", f"Deleting user data {row.name}", resource_type="UserData",
                  resource_id=row.id)
    db.delete(row)


def set_user_data(vm: VMInstance, content: str | None, source: UserData | None, details: str | None) -> None:
    vm.user_data = content
    vm.user_data_id = source.id if source is not None else None
    vm.user_data_details = details


def forget_account(db: Session, account_id: str) -> None:
    """A removed account's key pairs and registered user data go, as CloudStack's account cleanup
    removes them; its VMs (destroyed by the account's deletion) keep their copies."""
    db.execute(update(VMInstance).where(VMInstance.user_data_id.in_(
        select(UserData.id).where(UserData.account_id == account_id))).values(user_data_id=None)
        .execution_options(synchronize_session="fetch"))
    db.execute(delete(UserData).where(UserData.account_id == account_id).execution_options(synchronize_session=False))
    db.execute(delete(SSHKeyPair).where(SSHKeyPair.account_id == account_id)
               .execution_options(synchronize_session=False))


# ---------------------------------------------------------------------- passwords


def password_enabled(db: Session, vm: VMInstance) -> bool:
    template = db.get(VMTemplate, vm.template_id) if vm.template_id else None
    return bool(template is not None and template.password_enabled)


def new_password(vm: VMInstance, box: SecretBox, length: int) -> str:
    password = ssh_keys.generate_password(length)
    vm.password_enc = box.encrypt(password)
    vm.password_pending = True
    return password


def encrypted_password(vm: VMInstance, box: SecretBox) -> str:
    """``getVMPassword``: the password encrypted with the VM's RSA public key."""
    if vm.password_enc and vm.ssh_public_keys:
        encrypted = ssh_keys.encrypt_password(vm.ssh_public_keys, box.decrypt(vm.password_enc))
        if encrypted is not None:
            return encrypted
    raise errors.param_error(f"No password for VM with specified id found: VM {vm.id} has no password encrypted "
                             "with an RSA SSH key (deploy it with a password-enabled template and an ssh-rsa "
                             "key pair, or reset its password)")


# ---------------------------------------------------------------------- the router


async def _publish_changed(jctx: JobContext, vm_id: str) -> None:
    """What the VM's routers serve changed (user data, keys, password): push it to them again
    (``networks.routing.refresh_vm_data``). The change is committed already, and a router that
    misses it gets it when the VM next starts, so a failure here is logged, not the job's."""
    steps = Steps(jctx.sessions, jctx.agents, jctx.state.box)
    try:
        await routing.refresh_vm_data(steps, vm_id)
    except StepFailed as exc:
        log.warning("vm_data_refresh_failed", vm=vm_id, reason=exc.text)


async def run_refresh_vm_data(jctx: JobContext) -> dict[str, Any]:
    """Queued by updateVirtualMachine when it changes the user data (its answer does not wait)."""
    vm_id = str(jctx.params["vm_id"])
    await _publish_changed(jctx, vm_id)

    def result() -> dict[str, Any]:
        with jctx.sessions() as db:
            vm = db.get(VMInstance, vm_id)
            if vm is None:
                raise JobFailure(PARAM_ERROR, f"VM {vm_id} does not exist")
            return _result(db, vm, None)
    return await asyncio.to_thread(result)


# ---------------------------------------------------------------------- jobs


def _stopped_vm(db: Session, vm_id: str, what: str) -> VMInstance:
    vm = db.get(VMInstance, vm_id)
    if vm is None or vm.removed is not None:
        raise JobFailure(PARAM_ERROR, f"VM {vm_id} does not exist")
    if vm.state != S.STOPPED:
        raise JobFailure(PARAM_ERROR, f"Vm {vm.instance_name} should be stopped to do {what}")
    return vm


def _result(db: Session, vm: VMInstance, password: str | None) -> dict[str, Any]:
    from hvcloud.server.views.vms import vm_view

    view = vm_view(db, vm)
    if password is not None:
        view["password"] = password
    return {"virtualmachine": view}


def _reset_keys(db: Session, jctx: JobContext) -> dict[str, Any]:
    vm = _stopped_vm(db, str(jctx.params["vm_id"]), "SSH Key reset")
    ids = [str(i) for i in jctx.params.get("keypair_ids", [])]
    pairs = {p.id: p for p in db.scalars(select(SSHKeyPair).where(SSHKeyPair.id.in_(ids)))}
    if len(pairs) != len(ids):
        raise JobFailure(PARAM_ERROR, "A key pair given to resetSSHKeyForVirtualMachine was deleted meanwhile")
    set_keys(vm, [pairs[i] for i in ids])
    password = None
    if password_enabled(db, vm):
        password = new_password(vm, jctx.state.box, jctx.state.config.vm_password_length)
    user = db.get(User, jctx.user_id)
    if user is not None:
        events.record(db, user, "VM.RESETSSHKEY", f"Resetting the SSH keys of VM {vm.instance_name}",
                      resource_type="VirtualMachine", resource_id=vm.id)
    db.flush()
    return _result(db, vm, password)


def _reset_password(db: Session, jctx: JobContext) -> dict[str, Any]:
    vm = _stopped_vm(db, str(jctx.params["vm_id"]), "password reset")
    if not password_enabled(db, vm):
        raise JobFailure(PARAM_ERROR, "Fail to reset password for the virtual machine, the template is not "
                                      "password enabled")
    password = new_password(vm, jctx.state.box, jctx.state.config.vm_password_length)
    user = db.get(User, jctx.user_id)
    if user is not None:
        events.record(db, user, "VM.RESETPASSWORD", f"Resetting the password of VM {vm.instance_name}",
                      resource_type="VirtualMachine", resource_id=vm.id)
    db.flush()
    return _result(db, vm, password)


async def _in_tx(jctx: JobContext, fn: Any) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        with jctx.sessions.begin() as db:
            return fn(db, jctx)  # type: ignore[no-any-return]
    body = await asyncio.to_thread(run)
    await _publish_changed(jctx, str(jctx.params["vm_id"]))
    return body


async def run_reset_ssh_key(jctx: JobContext) -> dict[str, Any]:
    return await _in_tx(jctx, _reset_keys)


async def run_reset_password(jctx: JobContext) -> dict[str, Any]:
    return await _in_tx(jctx, _reset_password)


# one transaction each, then the routers: a run interrupted before its result is recorded runs again
# (a reset makes one more new password, which its result then shows)
register(JOB_RESET_SSH_KEY, run_reset_ssh_key, resumable=True)
register(JOB_RESET_PASSWORD, run_reset_password, resumable=True)
register(JOB_REFRESH_VM_DATA, run_refresh_vm_data, resumable=True)
