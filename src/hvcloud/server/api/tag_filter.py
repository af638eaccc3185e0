"""The ``tags`` map parameter (``tags[0].key=k&tags[0].value=v``) of createTags/deleteTags and of the
list commands, whose rows must carry all the given tags (checked in SQL, see
:func:`hvcloud.server.orchestration.resource_tags.has_tags`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

from hvcloud.server.api.registry import Args
from hvcloud.server.orchestration import resource_tags as T

TAGS_PARAM = "tags"


def tag_pairs(args: Args, name: str = TAGS_PARAM) -> dict[str, str | None]:
    """``{key: value}`` of the map, in index order; a value is None when the entry gives only a key.
    Entries written ``tags[0].<key>=<value>`` (as some clients do) count as that key and value."""
    out: dict[str, str | None] = {}
    for index in sorted(args.map(name)):
        entry = args.map(name)[index]
        if "key" in entry:
            out[entry["key"]] = entry.get("value")
        else:
            out.update({k: v for k, v in entry.items() if k != "value"})
    return out


def tag_conditions(args: Args, resource_type: str, id_column: Any) -> list[ColumnElement[bool]]:
    """SQL conditions of a list command's ``tags`` filter (empty when none was given). A key with no
    value matches that key whatever its value."""
    return T.has_tags(resource_type, id_column, tag_pairs(args))
