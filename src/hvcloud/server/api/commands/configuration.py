"""listConfigurations, updateConfiguration, resetConfiguration: the settings stored in the database
(root admin only). Rules and precedence: :mod:`hvcloud.server.orchestration.configuration`."""

from __future__ import annotations

from hvcloud.server.api import errors
from hvcloud.server.api.context import CallContext
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, Result
from hvcloud.server.db.models import Account, Base, Cluster, Domain, StoragePool, Zone
from hvcloud.server.orchestration import configuration as conf
from hvcloud.server.setting_catalog import ACCOUNT, CATALOG, CLUSTER, DOMAIN, GLOBAL, MAX_VALUE_LENGTH, ZONE, Setting
from hvcloud.server.views.configuration import configuration_view

command = REGISTRY.command

FIELDS = ("category", "name", "value", "defaultvalue", "description", "scope", "id", "isdynamic", "type",
          "component", "displaytext")
#: scope parameter → scope name (``storageid``: no setting here is storage-pool scoped)
SCOPE_PARAMS = (("zoneid", ZONE), ("clusterid", CLUSTER), ("accountid", ACCOUNT), ("domainid", DOMAIN),
                ("storageid", "storagepool"))
SCOPE_ID_PARAMS = [
    Param("zoneid", "uuid", description="the ID of the Zone to update the parameter value for corresponding zone"),
    Param("clusterid", "uuid", description="the ID of the Cluster to update the parameter value for "
          "corresponding cluster"),
    Param("storageid", "uuid", description="the ID of the Storage pool (no setting is storage-pool scoped here)"),
    Param("accountid", "uuid", description="the ID of the Account to update the parameter value for "
          "corresponding account"),
    Param("domainid", "uuid", description="the ID of the Domain to update the parameter value for "
          "corresponding domain"),
]
MULTIPLE_IDS_TEXT = "cannot handle multiple IDs, provide only one ID corresponding to the scope"


def _scope(ctx: CallContext, args: Args) -> tuple[str, str]:
    """The scope the call names (``global``/"" when none), checked to exist."""
    given = [(param, scope) for param, scope in SCOPE_PARAMS if args.has(param)]
    if len(given) > 1:
        raise errors.param_error(MULTIPLE_IDS_TEXT)
    if not given:
        return GLOBAL, ""
    param, scope = given[0]
    models: dict[str, type[Base]] = {"zoneid": Zone, "clusterid": Cluster, "storageid": StoragePool,
                                     "accountid": Account, "domainid": Domain}
    model = models[param]
    value = args.str(param)
    row = ctx.get(model, param, value, lazy=True)
    if isinstance(row, Account) and row.removed is not None:
        raise errors.entity_not_found(param, value)
    return scope, value


def _setting(name: str) -> Setting:
    setting = CATALOG.get(name)
    if setting is None:
        raise errors.param_error(f"Config parameter with name {name[:255]} doesn't exist")
    return setting


def _check_scope(setting: Setting, scope: str) -> None:
    if scope != GLOBAL and scope not in setting.scopes:
        raise errors.param_error(f"Invalid scope id provided for the parameter {setting.name}")


def _entry(ctx: CallContext, setting: Setting, scope: str, scope_id: str) -> conf.Entry:
    """The setting as it stands after a change (read back from the database, not this server's
    cached copy, so that the answer shows the change even for a static setting)."""
    return next(e for e in _entries(ctx, scope, scope_id) if e.setting.name == setting.name)


def _entries(ctx: CallContext, scope: str, scope_id: str) -> list[conf.Entry]:
    """Every setting as it stands in ``scope`` (read from the database)."""
    state = ctx.state
    stored = conf.stored_globals(ctx.db)
    if scope == GLOBAL:
        return list(conf.global_entries(state.config, state.base_config, stored))
    return list(conf.scope_entries(state.config, state.base_config, stored, scope, scope_id,
                                   conf.stored_in_scope(ctx.db, scope, scope_id),
                                   _account_domain_values(ctx, scope, scope_id)))


def _account_domain_values(ctx: CallContext, scope: str, scope_id: str) -> dict[str, str] | None:
    """For an account: the values stored for its domain (they apply where the account has none)."""
    if scope != ACCOUNT:
        return None
    account = ctx.db.get(Account, scope_id)
    return None if account is None else conf.stored_in_scope(ctx.db, DOMAIN, account.domain_id)


def _applied(ctx: CallContext) -> None:
    """Commit the change and apply it in this server at once (the others within their poll)."""
    ctx.db.commit()
    ctx.state.refresh_settings()


@command("listConfigurations", "Lists all configurations.", params=[
    Param("category", description="lists configurations by category"),
    Param("name", description="lists configuration by name"),
    *SCOPE_ID_PARAMS,
], response=FIELDS)
def list_configurations(ctx: CallContext, args: Args) -> Result:
    scope, scope_id = _scope(ctx, args)
    entries = _entries(ctx, scope, scope_id)
    category = args.opt_str("category")
    if category is not None:
        entries = [e for e in entries if e.setting.category.lower() == category.lower()]
    for text in (args.opt_str("name"), args.opt_str("keyword")):
        if text:
            entries = [e for e in entries if text.lower() in e.setting.name]
    page, count = ctx.page_list(entries, args)
    return ListResult("configuration", [configuration_view(e) for e in page], count)


@command("updateConfiguration", "Updates a configuration.", params=[
    Param("name", required=True, description="the name of the configuration"),
    Param("value", description="the value of the configuration", length=MAX_VALUE_LENGTH),
    *SCOPE_ID_PARAMS,
], response=FIELDS)
def update_configuration(ctx: CallContext, args: Args) -> Result:
    setting = _setting(args.str("name"))
    scope, scope_id = _scope(ctx, args)
    _check_scope(setting, scope)
    value = args.opt_str("value") or ""
    try:
        stored = conf.store(ctx.db, setting.name, value, scope, scope_id)
    except ValueError as exc:
        raise errors.param_error(str(exc)) from None
    where = "" if scope == GLOBAL else f" for {scope} {scope_id}"
    ctx.event("CONFIGURATION.VALUE.EDIT", f"Configuration {setting.name} set to {stored[:255]}{where}")
    _applied(ctx)
    return ObjectResult("configuration", configuration_view(_entry(ctx, setting, scope, scope_id)))


@command("resetConfiguration", "Resets a configuration. The configuration will be set to default value for "
         "global setting, and removed from account and domain level settings.", params=[
    Param("name", required=True, description="the name of the configuration"),
    *SCOPE_ID_PARAMS,
], response=FIELDS)
def reset_configuration(ctx: CallContext, args: Args) -> Result:
    setting = _setting(args.str("name"))
    scope, scope_id = _scope(ctx, args)
    _check_scope(setting, scope)
    conf.remove(ctx.db, setting.name, scope, scope_id)
    where = "" if scope == GLOBAL else f" for {scope} {scope_id}"
    ctx.event("CONFIGURATION.VALUE.EDIT", f"Configuration {setting.name} reset{where}")
    _applied(ctx)
    return ObjectResult("configuration", configuration_view(_entry(ctx, setting, scope, scope_id)))
