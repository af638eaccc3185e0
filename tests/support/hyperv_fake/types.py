"""CIM type checking for the strict model."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

_RANGES = {"uint8": 0xFF, "uint16": 0xFFFF, "uint32": 0xFFFFFFFF, "uint64": 0xFFFFFFFFFFFFFFFF}
_DATETIME = re.compile(r"^\d{14}\.\d{6}[+-]\d{3}$|^\d{8}\d{6}\.\d{6}:000$")


def dmtf(value: dt.datetime) -> str:
    """A datetime as CIM DMTF text (``yyyymmddHHMMSS.mmmmmm+UUU``, offset in minutes)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    offset = value.utcoffset() or dt.timedelta()
    minutes = int(offset.total_seconds() // 60)
    return value.strftime("%Y%m%d%H%M%S.%f") + f"{'-' if minutes < 0 else '+'}{abs(minutes):03d}"


def from_dmtf(text: str) -> dt.datetime:
    """CIM DMTF text as the timezone-aware ``datetime.datetime`` PyMI hands back for it."""
    minutes = int(text[-4:])
    stamp = dt.datetime.strptime(text[:21], "%Y%m%d%H%M%S.%f")
    return stamp.replace(tzinfo=dt.timezone(dt.timedelta(minutes=minutes)))


class SchemaViolation(Exception):
    """The caller used WMI in a way the real schema would reject. Never caught by the driver."""


class UnknownClass(SchemaViolation):
    pass


class UnknownProperty(SchemaViolation):
    pass


class UnknownMethod(SchemaViolation):
    pass


class WrongType(SchemaViolation):
    pass


def check_value(where: str, cim_type: str, value: Any,
                resolve_ref: Callable[[str, str], None],
                check_embedded: Callable[[str, str], None]) -> Any:
    """Validate ``value`` against ``cim_type`` and return the value to store (lists copied)."""
    if value is None:
        return None
    kind, _, target = cim_type.partition(":")
    if kind.endswith("[]"):
        if not isinstance(value, list | tuple):
            raise WrongType(f"{where}: expected an array ({cim_type}), got {type(value).__name__}")
        item_type = kind[:-2] + (f":{target}" if target else "")
        return [check_value(f"{where}[{i}]", item_type, v, resolve_ref, check_embedded)
                for i, v in enumerate(value)]
    if kind in _RANGES:
        if isinstance(value, bool) or not isinstance(value, int):
            raise WrongType(f"{where}: expected {kind}, got {type(value).__name__}")
        if not 0 <= value <= _RANGES[kind]:
            raise WrongType(f"{where}: {value} out of range for {kind}")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise WrongType(f"{where}: expected boolean, got {type(value).__name__}")
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise WrongType(f"{where}: expected string, got {type(value).__name__}")
        return value
    if kind == "datetime":
        # PyMI takes and returns datetime.datetime; embedded text carries the DMTF form.
        if isinstance(value, dt.datetime):
            return dmtf(value)
        if not isinstance(value, str) or not _DATETIME.match(value):
            raise WrongType(f"{where}: expected a CIM datetime, got {value!r}")
        return value
    if kind == "ref":
        if not isinstance(value, str):
            raise WrongType(f"{where}: expected an object path, got {type(value).__name__}")
        resolve_ref(value, target)
        return value
    if kind == "embedded":
        if not isinstance(value, str):
            raise WrongType(f"{where}: expected embedded instance text, got {type(value).__name__}")
        check_embedded(value, target)
        return value
    raise SchemaViolation(f"{where}: unsupported CIM type {cim_type}")
