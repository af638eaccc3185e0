"""A tiny WQL builder that takes typed values and never pastes raw names into a query.

Class and property names must be plain identifiers; values are ints, bools or strings, and strings
are quoted with whichever quote character they do not contain. Backslashes are left alone because
PyMI doubles every backslash of the query text itself. Strings with both quote characters or with
control characters are refused rather than escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

WqlValue = str | int | bool

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_MAX_VALUE = 4096


class WqlError(ValueError):
    pass


def _literal(value: WqlValue) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise WqlError(f"unsupported WQL value type {type(value).__name__}")
    if len(value) > _MAX_VALUE:
        raise WqlError("WQL string value too long")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise WqlError("control character in WQL string value")
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise WqlError("WQL string value contains both quote characters")


def identifier(name: str) -> str:
    if not _IDENT.match(name):
        raise WqlError(f"not a WMI identifier: {name!r}")
    return name


def select(class_name: str, where: Mapping[str, WqlValue] | None = None) -> str:
    query = f"SELECT * FROM {identifier(class_name)}"
    if where:
        conds = [f"{identifier(k)} = {_literal(v)}" for k, v in where.items()]
        query += " WHERE " + " AND ".join(conds)
    return query
