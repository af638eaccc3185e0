"""The parameters deployVirtualMachine, updateVirtualMachine and resetSSHKeyForVirtualMachine share:
key pairs (``keypair``/``keypairs``) and user data (``userdata``/``userdataid``/``userdatadetails``).

Names and ids are resolved in the VM owner's account; one that is not there is a 431 naming the
parameter, never ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from hvcloud.server.api import errors
from hvcloud.server.api.context import CallContext
from hvcloud.server.api.params import map_as_key_values
from hvcloud.server.api.registry import Args, Param
from hvcloud.server.db.models import Account, SSHKeyPair, UserData
from hvcloud.server.orchestration import user_data as U
from hvcloud.server.orchestration import vm_credentials as creds

#: user data parameters may be long: the real bounds are checked by ``user_data.validate``
USERDATA_LENGTH = U.MAX_POST_LENGTH

KEYPAIR_PARAMS = (
    Param("keypair", description="name of the ssh key pair used to login to the virtual machine"),
    Param("keypairs", "list", description="names of the ssh key pairs used to login to the virtual machine"),
)
USERDATA_PARAMS = (
    Param("userdata", length=USERDATA_LENGTH, description="base64 user data: up to 4 KB in a GET, 1 MB in a "
          "POST, and at most vm.userdata.max.length characters"),
    Param("userdataid", "uuid", description="the ID of the registered user data"),
    Param("userdatadetails", "map", description="values of the registered user data's parameters"),
)


def keypair_names(args: Args) -> list[str]:
    names = args.list("keypairs")
    single = args.opt_str("keypair")
    if single is not None and single.strip():
        names = [single.strip(), *names]
    out: list[str] = []
    for name in names:
        if name not in out:
            out.append(name)
    if len(out) > 32:
        raise errors.param_error("At most 32 key pairs per virtual machine")
    return out


def keypairs_of(ctx: CallContext, args: Args, owner: Account) -> list[SSHKeyPair] | None:
    """The key pairs ``keypair``/``keypairs`` name in ``owner``'s account; None when neither is given."""
    if not args.has("keypair") and not args.has("keypairs"):
        return None
    names = keypair_names(args)
    param = "keypairs" if args.has("keypairs") else "keypair"
    return creds.keypairs_named(ctx.db, owner, names, param) if names else []


def user_data_row(ctx: CallContext, args: Args, owner: Account, name: str = "userdataid") -> UserData:
    row = ctx.get(UserData, name, args.str(name))
    if row.account_id != owner.id:
        raise errors.entity_not_found(name, row.id)
    return row


@dataclass(frozen=True)
class UserDataChoice:
    content: str | None
    source: UserData | None
    details: str | None


def user_data_of(ctx: CallContext, args: Args, owner: Account) -> UserDataChoice | None:
    """``userdata`` (checked and normalised) or ``userdataid`` (+ ``userdatadetails``); None when
    neither is given."""
    raw, has_id = args.opt_str("userdata"), args.has("userdataid")
    details = {k: v for k, v in map_as_key_values(args.map("userdatadetails")).items()}
    if raw is not None and has_id:
        raise errors.param_error("Both userdata and userdata ID inputs are not allowed, please provide only one")
    if raw is not None:
        if details:
            raise errors.param_error("userdatadetails go with userdataid (the registered user data's parameters)")
        content = U.validate(raw, method=ctx.http_method, max_length=ctx.state.config.vm_userdata_max_length)
        return UserDataChoice(content, None, None)
    if has_id:
        row = user_data_row(ctx, args, owner)
        stored = U.check_details(U.parse_params(row.params), details)
        return UserDataChoice(row.user_data, row, stored)
    if details:
        raise errors.param_error("userdatadetails need userdataid")
    return None
