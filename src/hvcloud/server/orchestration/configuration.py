"""Settings stored in the database (``listConfigurations``, ``updateConfiguration``, ``resetConfiguration``).

Precedence, lowest first: the built-in default, the command line's ``--setting`` (together: the
*default value* ``listConfigurations`` shows and ``resetConfiguration`` returns to), the ``global``
row of ``configuration_value``, and, where the setting allows the scope, the row of a zone,
cluster, account or domain.

Each server keeps the rows in memory (:class:`Snapshot`) and re-reads them when the one-row
``configuration_version`` counter moved (checked every ``settings_poll_seconds`` by a background
task, and at once in the process that made a change), so no API call pays a query for settings.
Dynamic settings take the new value then; static ones keep the value they had at start until the
server restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from hvcloud.server.config import ServerConfig, overlay
from hvcloud.server.db.models import ConfigurationValue, ConfigurationVersion, utcnow
from hvcloud.server.setting_catalog import CATALOG, GLOBAL, Setting, parse_value, render

if TYPE_CHECKING:
    from collections.abc import Mapping

DYNAMIC = tuple(name for name, s in CATALOG.items() if s.dynamic)
STATIC = tuple(name for name, s in CATALOG.items() if not s.dynamic)


@dataclass(frozen=True)
class Snapshot:
    """The stored rows at one ``configuration_version``."""

    version: int
    global_values: dict[str, str] = field(default_factory=dict)
    scoped: dict[tuple[str, str, str], str] = field(default_factory=dict)


def read_version(db: Session) -> int:
    return db.scalar(select(ConfigurationVersion.version).where(ConfigurationVersion.id == 1)) or 0


def load(db: Session) -> Snapshot:
    """The version and every stored value, read in one transaction (rows of settings this server
    does not know, e.g. written by a newer version, are left out)."""
    version = read_version(db)
    global_values: dict[str, str] = {}
    scoped: dict[tuple[str, str, str], str] = {}
    for name, scope, scope_id, value in db.execute(select(
            ConfigurationValue.name, ConfigurationValue.scope, ConfigurationValue.scope_id, ConfigurationValue.value)):
        if name not in CATALOG:
            continue
        if scope == GLOBAL:
            global_values[name] = value
        else:
            scoped[(name, scope, scope_id)] = value
    return Snapshot(version, global_values, scoped)


def effective(base: ServerConfig, at_start: Snapshot, now: Snapshot) -> ServerConfig:
    """The settings a server runs with: static settings as stored when it started, dynamic ones
    as stored ``now``; either falls back to ``base`` (command line and built-in defaults)."""
    started = overlay(base, at_start.global_values, STATIC)
    return replace(overlay(started, now.global_values, DYNAMIC), scoped=dict(now.scoped))


def default_value(base: ServerConfig, setting: Setting) -> str:
    """What the setting is without a stored value: the command line's, else the built-in one."""
    if setting.kind == "limit":
        from hvcloud.server import resource_types as R

        owner, resource_type = R.LIMIT_SETTINGS[setting.name]
        given = dict(base.limit_defaults).get(setting.name)
        if given is not None:
            return str(given)
        return str((R.ACCOUNT_DEFAULTS if owner == "account" else R.DOMAIN_DEFAULTS)[resource_type])
    return render(getattr(base, setting.field))


def current_value(config: ServerConfig, base: ServerConfig, setting: Setting,
                  stored: Mapping[str, str]) -> str:
    """The global value: what this server runs with for dynamic settings; for a static one the
    stored value (which applies after a restart), else the default."""
    if not setting.dynamic:
        return stored.get(setting.name, default_value(base, setting))
    if setting.kind == "limit":
        return stored.get(setting.name, default_value(base, setting))
    return render(getattr(config, setting.field))


def _bump(db: Session) -> None:
    db.execute(update(ConfigurationVersion).where(ConfigurationVersion.id == 1)
               .values(version=ConfigurationVersion.version + 1))


def store(db: Session, name: str, value: str, scope: str, scope_id: str) -> str:
    """Validate and write ``name`` = ``value`` at ``scope``; returns the value as stored. ValueError
    (naming the setting) when the value is bad."""
    parsed = parse_value(name, value)  # the command line's rules
    text = render(parsed) if CATALOG[name].kind != "text" else value
    row = db.scalar(select(ConfigurationValue).where(ConfigurationValue.name == name,
                                                     ConfigurationValue.scope == scope,
                                                     ConfigurationValue.scope_id == scope_id))
    if row is None:
        db.add(ConfigurationValue(name=name, scope=scope, scope_id=scope_id, value=text, updated=utcnow()))
    else:
        row.value, row.updated = text, utcnow()
    _bump(db)
    return text


def remove(db: Session, name: str, scope: str, scope_id: str) -> None:
    """Drop the stored value of ``name`` at ``scope`` (back to the value of the wider scope)."""
    db.execute(delete(ConfigurationValue).where(ConfigurationValue.name == name, ConfigurationValue.scope == scope,
                                                ConfigurationValue.scope_id == scope_id))
    _bump(db)


def stored_globals(db: Session) -> dict[str, str]:
    return {name: value for name, value in db.execute(select(ConfigurationValue.name, ConfigurationValue.value)
                                                      .where(ConfigurationValue.scope == GLOBAL))}


def stored_in_scope(db: Session, scope: str, scope_id: str) -> dict[str, str]:
    return {name: value for name, value in db.execute(
        select(ConfigurationValue.name, ConfigurationValue.value)
        .where(ConfigurationValue.scope == scope, ConfigurationValue.scope_id == scope_id))}


@dataclass(frozen=True)
class Entry:
    """One setting as ``listConfigurations`` shows it, globally or in one scope."""

    setting: Setting
    value: str
    default: str
    #: ``global`` or the scope asked for
    scope: str
    scope_id: str | None = None


def global_entries(config: ServerConfig, base: ServerConfig, stored: Mapping[str, str]) -> list[Entry]:
    return [Entry(s, current_value(config, base, s, stored), default_value(base, s), GLOBAL)
            for s in sorted(CATALOG.values(), key=lambda s: s.name)]


def scope_entries(config: ServerConfig, base: ServerConfig, stored: Mapping[str, str], scope: str, scope_id: str,
                  in_scope: Mapping[str, str], parent_domain_values: Mapping[str, str] | None = None) -> list[Entry]:
    """The settings that allow ``scope``, with the value there: stored for the scope, else (an
    account's ``max.account.*``) stored for its domain, else the global value."""
    out = []
    for s in sorted(CATALOG.values(), key=lambda s: s.name):
        if scope not in s.scopes:
            continue
        value = in_scope.get(s.name)
        if value is None and parent_domain_values is not None:
            value = parent_domain_values.get(s.name)
        if value is None:
            value = current_value(config, base, s, stored)
        out.append(Entry(s, value, default_value(base, s), scope, scope_id))
    return out
