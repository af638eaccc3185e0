"""Domains, accounts, users and API keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import submit_job
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, RawResult, Result, SuccessResult
from hvcloud.server.db.crypto import hash_password, new_api_key, verify_password
from hvcloud.server.db.models import Account, Domain, User
from hvcloud.server.db.seed import ACCOUNT_TYPE_ADMIN, ACCOUNT_TYPE_PROJECT, ADMIN_USERNAME
from hvcloud.server.orchestration import accounts as account_manager
from hvcloud.server.orchestration import domain_scope, roles
from hvcloud.server.orchestration import resource_limits as limits
from hvcloud.server.views.accounts import account_view, user_view

command = REGISTRY.command

USER_FIELDS = ("id", "username", "account", "accounttype", "state", "apikey")
ACCOUNT_FIELDS = ("id", "name", "accounttype", "roleid", "rolename", "roletype", "domainid", "state", "user")
_USER_PARAMS = [
    Param("username", required=True, description="Unique username"),
    Param("password", required=True, description="Clear text password"),
    Param("firstname", required=True, description="Firstname"),
    Param("lastname", required=True, description="Lastname"),
    Param("email", description="Email"),
    Param("timezone", description="Time zone of the user"),
]


def _domain(ctx: CallContext, args: Args) -> Domain:
    """``domainid`` (by default the caller's domain, as CloudStack), which the caller must administer."""
    return ctx.check_domain(ctx.optional_domain(args) or ctx.account.domain)


def _managed(ctx: CallContext, account: Account) -> Account:
    """An account the caller may manage: any for a root admin, those of its subtree (root admins'
    excepted) for a domain admin; CloudStack's 531 otherwise."""
    if not ctx.may_act_for(account.id):
        raise errors.permission_denied(f"Account {ctx.account.name} does not have permission to operate with "
                                       f"account {account.id}")
    return account


def _scope_accounts(ctx: CallContext, args: Args, domain_column: Any) -> Any:
    """What listAccounts/listUsers show an admin: None (all) for a root admin without ``domainid``;
    else the domain ``domainid`` (with ``isrecursive``: its subtree), which the caller must
    administer; a domain admin by default its subtree."""
    domain = ctx.optional_domain(args)
    if domain is not None:
        ctx.check_domain(domain)
        return (domain_scope.in_domain_subtree(domain_column, domain) if args.bool("isrecursive")
                else domain_column == domain.id)
    if ctx.is_domain_admin:
        return domain_scope.in_domain_subtree(domain_column, ctx.account.domain)
    return None


def _new_user(ctx: CallContext, args: Args) -> account_manager.NewUser:
    return account_manager.NewUser(
        command=ctx.command, username=args.str("username"), password=args.str("password"),
        firstname=args.str("firstname"), lastname=args.str("lastname"), email=args.opt_str("email"),
        timezone=args.opt_str("timezone"))


def _is_default_account(account: Account) -> bool:
    """The root admin account seeded on first start (CloudStack's default accounts)."""
    return account.name == ADMIN_USERNAME and account.domain.path == "ROOT"


def _visible_user(ctx: CallContext, user_id: str, name: str = "id") -> User:
    user = account_manager.live_user(ctx.db, user_id, name)
    if not ctx.may_act_for(user.account_id):
        raise errors.entity_not_found(name, user_id)
    return user


@command("createAccount", "Creates an account", domain_admin=True, params=[
    *_USER_PARAMS,
    Param("accounttype", "short", description="Type of the account: 0 user, 1 root admin, 2 domain admin; "
          "with roleid, the role's type decides it"),
    Param("roleid", "uuid", description="Creates the account under the specified role (of type User, "
          "DomainAdmin or Admin); by default the account type's default role"),
    Param("account", description="Name of the account; defaults to the username"),
    Param("domainid", "uuid", description="Domain the account is created in"),
    Param("networkdomain", description="Network domain for the account's networks"),
], response=ACCOUNT_FIELDS)
def create_account(ctx: CallContext, args: Args) -> Result:
    role_id, account_type = roles.role_for_account(ctx.db, args.opt_str("roleid"), args.opt_int("accounttype"))
    domain = _domain(ctx, args)
    if account_type == ACCOUNT_TYPE_ADMIN and not ctx.is_admin:
        raise errors.permission_denied(f"Account {ctx.account.name} cannot create root admin accounts")
    name = args.opt_str("account") or args.str("username")
    account = account_manager.create_account(ctx.db, ctx.user, domain, name, account_type,
                                             args.opt_str("networkdomain"), _new_user(ctx, args), role_id=role_id)
    return ObjectResult("account", account_view(account))


@command("listAccounts", "Lists accounts and provides detailed account information", admin=False,
         listall=True, params=[
             Param("id", "uuid", description="List account by account ID"),
             Param("name", description="List account by account name"),
             Param("accounttype", "integer", description="List accounts by account type"),
             Param("state", description="List accounts by state"),
             Param("domainid", "uuid", description="List only resources belonging to the domain specified"),
             Param("isrecursive", "boolean", description="with domainid: its sub-domains' accounts too"),
         ], response=ACCOUNT_FIELDS)
def list_accounts(ctx: CallContext, args: Args) -> Result:
    stmt = select(Account).where(Account.removed.is_(None), Account.account_type != ACCOUNT_TYPE_PROJECT
                                 ).order_by(Account.created)
    if not ctx.is_admin and not ctx.is_domain_admin:
        stmt = stmt.where(Account.id == ctx.account.id)
    else:
        scope = _scope_accounts(ctx, args, Account.domain_id)
        if scope is not None:
            stmt = stmt.where(scope)
    for param, column in (("id", Account.id), ("name", Account.name), ("state", Account.state)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    if args.opt_int("accounttype") is not None:
        stmt = stmt.where(Account.account_type == args.opt_int("accounttype"))
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(Account.name.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt, args)
    usage = limits.account_usage(ctx.db, ctx.state.config, rows)
    return ListResult("account", [{**account_view(a), **usage[a.id]} for a in rows], count)


@command("disableAccount", "Disables an account", isasync=True, domain_admin=True, params=[
    Param("id", "uuid", required=True, description="Account id"),
    Param("lock", "boolean", required=True, description="If true, only lock the account; else disable it"),
], response=ACCOUNT_FIELDS)
def disable_account(ctx: CallContext, args: Args) -> Result:
    account = _managed(ctx, account_manager.live_account(ctx.db, args.str("id")))
    if account.id == ctx.account.id:
        raise errors.param_error("An account cannot disable itself")
    return submit_job(ctx, account_manager.JOB_DISABLE_ACCOUNT, {"id": account.id, "lock": args.bool("lock")},
                      instance_type="Account", instance_id=account.id)


@command("enableAccount", "Enables an account", domain_admin=True, params=[
    Param("id", "uuid", required=True, description="Account id")], response=ACCOUNT_FIELDS)
def enable_account(ctx: CallContext, args: Args) -> Result:
    _managed(ctx, account_manager.live_account(ctx.db, args.str("id")))
    return ObjectResult("account", account_view(
        account_manager.set_account_state(ctx.db, ctx.user, args.str("id"), "enabled")))


@command("deleteAccount", "Deletes an account and all its users", isasync=True, domain_admin=True, params=[
    Param("id", "uuid", required=True, description="Account id")])
def delete_account(ctx: CallContext, args: Args) -> Result:
    """CloudStack's rules: never the caller's own account nor the default (admin) account. The account
    and its users are removed at once (keys and sessions end with this call); the job then destroys
    what the account owns. An account already removed answers success, and its job retries any
    cleanup left unfinished."""
    account = _managed(ctx, ctx.require(args, Account, "id"))
    if account.id == ctx.account.id:
        raise errors.param_error(f"Deletion of your own account is not allowed. To delete account {account.name} "
                                 f"(ID: {account.id}), ask another user with permission to do so")
    if _is_default_account(account):
        raise errors.param_error("The account is default and can't be removed")
    if account.removed is None:
        ctx.event("ACCOUNT.DELETE", f"Deleting account {account.name}", resource_type="Account",
                  resource_id=account.id)
        account_manager.remove_account(ctx.db, account)
    return submit_job(ctx, account_manager.JOB_DELETE, {"id": account.id}, instance_type="Account",
                      instance_id=account.id)


@command("createUser", "Creates a user for an account that already exists", domain_admin=True, params=[
    *_USER_PARAMS,
    Param("account", required=True, description="Account the user belongs to"),
    Param("domainid", "uuid", description="Domain of the account"),
], response=USER_FIELDS)
def create_user(ctx: CallContext, args: Args) -> Result:
    domain = _domain(ctx, args)
    account = ctx.db.scalar(select(Account).where(Account.domain_id == domain.id, Account.removed.is_(None),
                                                  Account.name == args.str("account")))
    if account is None:
        raise errors.param_error(f"Unable to find account {args.str('account')[:64]} in domain {domain.path}")
    user = account_manager.create_user(ctx.db, ctx.user, _managed(ctx, account), _new_user(ctx, args))
    return ObjectResult("user", user_view(user))


@command("listUsers", "Lists user accounts", admin=False, listall=True, params=[
    Param("id", "uuid", description="List user by ID"),
    Param("username", description="List user by the username"),
    Param("account", description="List users of this account"),
    Param("accounttype", "integer", description="List users by account type"),
    Param("state", description="List users by state"),
    Param("domainid", "uuid", description="List users of this domain"),
    Param("isrecursive", "boolean", description="with domainid: its sub-domains' users too"),
], response=USER_FIELDS)
def list_users(ctx: CallContext, args: Args) -> Result:
    stmt = (select(User).join(Account, User.account_id == Account.id).where(User.removed.is_(None))
            .order_by(User.created))
    if not ctx.is_admin and not ctx.is_domain_admin:
        stmt = stmt.where(User.account_id == ctx.account.id)
    else:
        scope = _scope_accounts(ctx, args, Account.domain_id)
        if scope is not None:
            stmt = stmt.where(scope)
    for param, column in (("id", User.id), ("username", User.username), ("account", Account.name),
                          ("state", User.state)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    if args.opt_int("accounttype") is not None:
        stmt = stmt.where(Account.account_type == args.opt_int("accounttype"))
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(or_(User.username.ilike(pattern, escape="\\"),
                              User.firstname.ilike(pattern, escape="\\"),
                              User.lastname.ilike(pattern, escape="\\")))
    rows, count = ctx.page(stmt, args)
    return ListResult("user", [user_view(u) for u in rows], count)


@command("getUser", "Find user account by API key", params=[
    Param("userapikey", required=True, description="API key of the user")], response=USER_FIELDS)
def get_user(ctx: CallContext, args: Args) -> Result:
    user = ctx.db.scalar(select(User).where(User.api_key == args.str("userapikey"), User.removed.is_(None)))
    if user is None:
        return RawResult({})
    return ObjectResult("user", user_view(user))


@command("updateUser", "Updates a user account", admin=False, params=[
    Param("id", "uuid", required=True, description="User id"),
    Param("username", description="Unique username"),
    Param("password", description="Clear text password"),
    Param("currentpassword", description="Current password, required when users change their own"),
    Param("firstname", description="First name"),
    Param("lastname", description="Last name"),
    Param("email", description="Email"),
    Param("timezone", description="Time zone"),
], response=USER_FIELDS)
def update_user(ctx: CallContext, args: Args) -> Result:
    user = _visible_user(ctx, args.str("id"))
    password = args.opt_str("password")
    if password is not None:
        if password == "":
            raise errors.param_error("Password cannot be empty")
        if not ctx.is_admin and (user.account_id == ctx.account.id or not ctx.is_domain_admin):
            current = args.opt_str("currentpassword")
            if current is None or not verify_password(current, user.password_hash):
                raise errors.param_error("Current password is incorrect")
        user.password_hash = hash_password(password)
        _password_changed(ctx, user)
    username = args.opt_str("username")
    if username is not None and username != user.username:
        if account_manager.username_taken(ctx.db, username):
            raise errors.param_error(f"The user {username} already exists in domain")
        user.username = username
    for field in ("firstname", "lastname", "email", "timezone"):
        value = args.opt_str(field)
        if value is not None:
            setattr(user, field, value)
    ctx.event("USER.UPDATE", f"Updating user {user.username}", resource_type="User", resource_id=user.id)
    return ObjectResult("user", user_view(user))


def _password_changed(ctx: CallContext, user: User) -> None:
    """A new password ends every session of the user (one opened with the old password may be an
    intruder's), the caller's own included; with ``user.password.change.regenerate.keys`` the user's
    API keys are replaced too. That is the operator's choice, off by default as in CloudStack: scripts
    signing with the keys would stop working at each password change."""
    account_manager.end_sessions(ctx.db, [user.id])
    if ctx.state.config.regenerate_keys_on_password_change and user.api_key is not None:
        _new_keys(ctx, user)


def _managed_user(ctx: CallContext, args: Args) -> User:
    user = account_manager.live_user(ctx.db, args.str("id"))
    _managed(ctx, user.account)
    return user


@command("disableUser", "Disables a user account", isasync=True, domain_admin=True, params=[
    Param("id", "uuid", required=True, description="User id")], response=USER_FIELDS)
def disable_user(ctx: CallContext, args: Args) -> Result:
    user = _managed_user(ctx, args)
    if user.id == ctx.user.id:
        raise errors.param_error("A user cannot disable or lock itself")
    return submit_job(ctx, account_manager.JOB_DISABLE_USER, {"id": user.id}, instance_type="User", instance_id=user.id)


@command("enableUser", "Enables a user account", domain_admin=True, params=[
    Param("id", "uuid", required=True, description="User id")], response=USER_FIELDS)
def enable_user(ctx: CallContext, args: Args) -> Result:
    _managed_user(ctx, args)
    return ObjectResult("user", user_view(account_manager.set_user_state(ctx.db, ctx.user, args.str("id"), "enabled")))


@command("lockUser", "Locks a user account", domain_admin=True, params=[
    Param("id", "uuid", required=True, description="User id")], response=USER_FIELDS)
def lock_user(ctx: CallContext, args: Args) -> Result:
    _managed_user(ctx, args)
    return ObjectResult("user", user_view(account_manager.set_user_state(ctx.db, ctx.user, args.str("id"), "locked")))


@command("deleteUser", "Deletes a user for an account", domain_admin=True, params=[
    Param("id", "uuid", required=True, description="User id")])
def delete_user(ctx: CallContext, args: Args) -> Result:
    """CloudStack's rules: never the default admin user nor the caller itself; the last user of an
    account may go (the account stays). The user's keys and sessions end with this call."""
    user = _managed_user(ctx, args)
    if user.username == ADMIN_USERNAME and _is_default_account(user.account):
        raise errors.param_error("The user is default and can't be (re)moved")
    if user.id == ctx.user.id:
        raise errors.param_error(f"The caller is requesting to delete itself, which is not allowed. To delete "
                                 f"user {user.username} (ID: {user.id}), ask another user with permission to do so")
    ctx.event("USER.DELETE", f"Deleting user {user.username}", resource_type="User", resource_id=user.id)
    account_manager.remove_user(ctx.db, user)
    return SuccessResult()


def _new_keys(ctx: CallContext, user: User) -> None:
    user.api_key = new_api_key()
    user.secret_key_enc = ctx.state.box.encrypt(new_api_key())


def _keys_view(ctx: CallContext, user: User) -> dict[str, str]:
    out = {"apikey": user.api_key or ""}
    if user.secret_key_enc is not None:
        out["secretkey"] = ctx.state.box.decrypt(user.secret_key_enc)
    return out


@command("registerUserKeys", "Generates a new API key and secret key for a user", admin=False, params=[
    Param("id", "uuid", required=True, description="User id")], response=("apikey", "secretkey"))
def register_user_keys(ctx: CallContext, args: Args) -> Result:
    user = _visible_user(ctx, args.str("id"))
    _new_keys(ctx, user)
    ctx.event("REGISTER.USER.KEY", f"Registering API keys for user {user.username}", resource_type="User",
              resource_id=user.id)
    return ObjectResult("userkeys", _keys_view(ctx, user))


@command("getUserKeys", "Gets the API key and secret key of a user", admin=False, params=[
    Param("id", "uuid", required=True, description="User id")], response=("apikey", "secretkey"))
def get_user_keys(ctx: CallContext, args: Args) -> Result:
    user = _visible_user(ctx, args.str("id"))
    if user.api_key is None:
        return RawResult({})
    return ObjectResult("userkeys", _keys_view(ctx, user))
