"""CloudStack's ConfigurationResponse (listConfigurations, updateConfiguration, resetConfiguration)."""

from __future__ import annotations

from typing import Any

from hvcloud.server.orchestration.configuration import Entry
from hvcloud.server.setting_catalog import GLOBAL
from hvcloud.server.views.fields import compact


def configuration_view(entry: Entry) -> dict[str, Any]:
    """A global listing names the narrowest scope the setting allows besides ``global`` (as
    CloudStack shows a ConfigKey's scope); a scoped one the scope asked for and its ``id``."""
    setting = entry.setting
    scope = entry.scope if entry.scope != GLOBAL else (setting.scopes[0] if setting.scopes else GLOBAL)
    return compact({
        "category": setting.category, "name": setting.name, "value": entry.value,
        "defaultvalue": entry.default, "description": setting.description, "scope": scope,
        "id": entry.scope_id, "isdynamic": setting.dynamic, "type": setting.type_name,
        "component": setting.component, "displaytext": setting.display_text,
    })
