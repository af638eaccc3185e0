"""SSH key pairs, registered user data, and a VM's keys, user data and password.

Key pairs and user data belong to an account (the caller's, or for admins ``account`` in
``domainid``); names are unique within it. A VM's keys and password are reset by jobs on the VM
(it must be Stopped), whose result carries a new password once.
"""

from __future__ import annotations

from sqlalchemy import or_, select

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import submit_job
from hvcloud.server.api.commands.vms import owned_vm
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import LIST_OWNER_PARAMS, OWNER_PARAMS, REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, Result, SuccessResult
from hvcloud.server.api.vm_access import USERDATA_LENGTH, keypair_names, keypairs_of
from hvcloud.server.db.models import SSHKeyPair, UserData
from hvcloud.server.orchestration import ssh_keys
from hvcloud.server.orchestration import user_data as U
from hvcloud.server.orchestration import vm_credentials as creds
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.views.keys import keypair_view, user_data_view

command = REGISTRY.command

KEYPAIR_FIELDS = ("id", "name", "fingerprint", "account", "domainid", "domain", "privatekey")
USERDATA_FIELDS = ("id", "name", "account", "accountid", "domainid", "domain", "userdata", "params")
MAX_NAME = 255




def _name(args: Args, what: str) -> str:
    name = args.str("name").strip()
    if not name:
        raise errors.param_error(f"Please specify a valid name for the {what}. The name can't be empty")
    return name


# ---------------------------------------------------------------------- SSH key pairs


@command("createSSHKeyPair", "Create a new keypair and returns the private key", admin=False, params=[
    Param("name", required=True, length=MAX_NAME, description="Name of the keypair"), *OWNER_PARAMS,
], response=KEYPAIR_FIELDS)
def create_keypair(ctx: CallContext, args: Args) -> Result:
    owner = ctx.owner_for(args)
    pair, private = creds.create_keypair(ctx.db, ctx.user, owner, _name(args, "key pair"))
    return ObjectResult("keypair", keypair_view(pair, private))


@command("registerSSHKeyPair", "Register a public key in a keypair under a certain name", admin=False, params=[
    Param("name", required=True, length=MAX_NAME, description="Name of the keypair"),
    Param("publickey", required=True, length=ssh_keys.MAX_KEY_MATERIAL,
          description="Public key material of the keypair (OpenSSH: ssh-rsa, ssh-ed25519, ecdsa-sha2-*)"),
    *OWNER_PARAMS,
], response=KEYPAIR_FIELDS)
def register_keypair(ctx: CallContext, args: Args) -> Result:
    owner = ctx.owner_for(args)
    pair = creds.register_keypair(ctx.db, ctx.user, owner, _name(args, "key pair"), args.str("publickey"))
    return ObjectResult("keypair", keypair_view(pair))


@command("listSSHKeyPairs", "List registered keypairs", admin=False, listall=True, params=[
    Param("id", "uuid", description="the ID of the ssh keypair"),
    Param("name", description="A key pair name to look for"),
    Param("fingerprint", description="A public key fingerprint to look for"),
    *LIST_OWNER_PARAMS,
], response=KEYPAIR_FIELDS)
def list_keypairs(ctx: CallContext, args: Args) -> Result:
    stmt = select(SSHKeyPair)
    owner = ctx.owner_and_domain_filter(SSHKeyPair.account_id, SSHKeyPair.domain_id, args)
    if owner is not None:
        stmt = stmt.where(owner)
    for param, column in (("id", SSHKeyPair.id), ("name", SSHKeyPair.name),
                          ("fingerprint", SSHKeyPair.fingerprint)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    pattern = keyword_pattern(args)
    if pattern is not None:
        stmt = stmt.where(or_(SSHKeyPair.name.ilike(pattern, escape="\\"),
                              SSHKeyPair.fingerprint.ilike(pattern, escape="\\")))
    rows, count = ctx.page(stmt.order_by(SSHKeyPair.created.desc(), SSHKeyPair.id), args)
    return ListResult("sshkeypair", [keypair_view(p) for p in rows], count)


@command("deleteSSHKeyPair", "Deletes a keypair by name", admin=False, params=[
    Param("name", required=True, length=MAX_NAME, description="Name of the keypair"), *OWNER_PARAMS,
])
def delete_keypair(ctx: CallContext, args: Args) -> Result:
    creds.delete_keypair(ctx.db, ctx.user, ctx.owner_for(args), args.str("name"))
    return SuccessResult()


# ---------------------------------------------------------------------- user data


@command("registerUserData", "Register a new userdata.", admin=False, params=[
    Param("name", required=True, length=MAX_NAME, description="Name of the userdata"),
    Param("userdata", required=True, length=USERDATA_LENGTH, description="Base64 encoded userdata content: up to "
          "4 KB in a GET, 1 MB in a POST, and at most vm.userdata.max.length characters"),
    Param("params", length=16384, description="comma separated list of variables declared in userdata content"),
    *OWNER_PARAMS,
], response=USERDATA_FIELDS)
def register_user_data(ctx: CallContext, args: Args) -> Result:
    params = U.parse_params(args.opt_str("params"))
    owner = ctx.owner_for(args)
    content = U.validate(args.str("userdata"), method=ctx.http_method,
                         max_length=ctx.state.config.vm_userdata_max_length)
    row = creds.register_user_data(ctx.db, ctx.user, owner, _name(args, "userdata"), content, params)
    return ObjectResult("userdata", user_data_view(row))


@command("listUserData", "List registered userdatas", admin=False, listall=True, params=[
    Param("id", "uuid", description="the ID of the Userdata"),
    Param("name", description="Userdata name to look for"),
    *LIST_OWNER_PARAMS,
], response=USERDATA_FIELDS)
def list_user_data(ctx: CallContext, args: Args) -> Result:
    stmt = select(UserData)
    owner = ctx.owner_and_domain_filter(UserData.account_id, UserData.domain_id, args)
    if owner is not None:
        stmt = stmt.where(owner)
    for param, column in (("id", UserData.id), ("name", UserData.name)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    pattern = keyword_pattern(args)
    if pattern is not None:
        stmt = stmt.where(UserData.name.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt.order_by(UserData.created.desc(), UserData.id), args)
    return ListResult("userdata", [user_data_view(r) for r in rows], count)


@command("deleteUserData", "Deletes a userdata", admin=False, params=[
    Param("id", "uuid", required=True, description="the ID of the Userdata"), *OWNER_PARAMS,
])
def delete_user_data(ctx: CallContext, args: Args) -> Result:
    acts_for = args.has("account") or args.has("domainid") or args.has("projectid")
    owner = ctx.owner_for(args) if acts_for or not ctx.is_admin else None
    row = ctx.require(args, UserData, "id")
    if owner is not None and row.account_id != owner.id:
        raise errors.entity_not_found("id", row.id)
    creds.delete_user_data(ctx.db, ctx.user, row)
    return SuccessResult()


# ---------------------------------------------------------------------- a VM's keys, user data, password


def _vm_job(ctx: CallContext, handler: str, vm_id: str, params: dict[str, object] | None = None) -> Result:
    return submit_job(ctx, handler, {"vm_id": vm_id, **(params or {})}, instance_type="VirtualMachine",
                      instance_id=vm_id)


@command("resetSSHKeyForVirtualMachine", "Resets the SSH Key for virtual machine. The virtual machine must be "
         "in a \"Stopped\" state.", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="The ID of the virtual machine"),
    Param("keypair", description="name of the ssh key pair used to login to the virtual machine"),
    Param("keypairs", "list", description="names of the ssh key pairs to be used to login to the virtual machine"),
    *OWNER_PARAMS,
])
def reset_ssh_key(ctx: CallContext, args: Args) -> Result:
    vm = owned_vm(ctx, args)
    if vm.state in (S.ERROR, S.EXPUNGING, S.DESTROYED):
        raise errors.param_error("Vm with specified id is not in the right state")
    if vm.state != S.STOPPED:
        raise errors.param_error(f"Vm {vm.instance_name} should be stopped to do SSH Key reset")
    if not keypair_names(args):
        raise errors.param_error("'keypair' or 'keypairs' must be specified")
    owner = ctx.owner_for(args) if args.has("account") or args.has("domainid") or args.has("projectid") else vm.account
    if owner.id != vm.account_id:
        raise errors.param_error(f"The key pairs must belong to the VM's account {vm.account.name}")
    pairs = keypairs_of(ctx, args, owner) or []
    return _vm_job(ctx, creds.JOB_RESET_SSH_KEY, vm.id, {"keypair_ids": [p.id for p in pairs]})


@command("resetPasswordForVirtualMachine", "Resets the password for virtual machine. The virtual machine must "
         "be in a \"Stopped\" state and the template must already support this feature for this command to take "
         "effect.", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="The ID of the virtual machine"),
])
def reset_password(ctx: CallContext, args: Args) -> Result:
    vm = owned_vm(ctx, args)
    if not creds.password_enabled(ctx.db, vm):
        raise errors.param_error("Fail to reset password for the virtual machine, the template is not password "
                                 "enabled")
    if vm.state != S.STOPPED:
        raise errors.param_error(f"Vm {vm.instance_name} should be stopped to do password reset")
    return _vm_job(ctx, creds.JOB_RESET_PASSWORD, vm.id)


@command("getVMPassword", "Returns an encrypted password for the VM", admin=False, params=[
    Param("id", "uuid", required=True, description="The ID of the virtual machine"),
], response=("encryptedpassword",))
def get_vm_password(ctx: CallContext, args: Args) -> Result:
    vm = owned_vm(ctx, args)
    return ObjectResult("password", {"encryptedpassword": creds.encrypted_password(vm, ctx.state.box)})


@command("getVirtualMachineUserData", "Returns user data associated with the VM", admin=False, params=[
    Param("virtualmachineid", "uuid", required=True, description="The ID of the virtual machine"),
], response=("virtualmachineid", "userdata"))
def get_vm_user_data(ctx: CallContext, args: Args) -> Result:
    vm = owned_vm(ctx, args, "virtualmachineid")
    body: dict[str, object] = {"virtualmachineid": vm.id}
    if vm.user_data:
        body["userdata"] = vm.user_data
    return ObjectResult("virtualmachineuserdata", body)

