"""Request parameters: merge, case-insensitive lookup, map parameters and typed conversion."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from hvcloud.server.api import errors

ParamType = Literal["string", "boolean", "integer", "long", "short", "uuid", "list", "map", "date"]

MAX_PARAMS = 512
MAX_VALUE_LENGTH = 65536
#: parameters allowed to be longer: user data may take up to 1 MiB in a POST (CloudStack's bound)
LONG_VALUES = {"userdata": 1024 * 1024}
_MAP_NAME = re.compile(r"^([^\[\]]+)\[(\d{1,6})\]\.([^\[\]]+)$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_INT_LIMITS = {"integer": 2**31, "short": 2**15, "long": 2**63}


@dataclass
class RequestParams:
    """The parameters of one request.

    ``pairs`` keeps the names as received (first occurrence wins) for the signature; ``by_lower`` is the
    case-insensitive view used for dispatch; ``maps`` holds ``name[i].field=value`` parameters.
    """

    pairs: list[tuple[str, str]] = field(default_factory=list)
    by_lower: dict[str, str] = field(default_factory=dict)
    maps: dict[str, dict[int, dict[str, str]]] = field(default_factory=dict)

    @classmethod
    def from_pairs(cls, raw: Iterable[tuple[str, str]]) -> RequestParams:
        seen: set[str] = set()
        out = cls()
        for name, value in raw:
            if name in seen:
                continue
            seen.add(name)
            if len(seen) > MAX_PARAMS:
                raise errors.param_error(f"too many parameters (more than {MAX_PARAMS})")
            if len(value) > LONG_VALUES.get(name.lower(), MAX_VALUE_LENGTH) or len(name) > 1024:
                raise errors.param_error(f"parameter {name[:64]} is too long")
            out.pairs.append((name, value))
            lower = name.lower()
            if "[" in name or "]" in name:
                m = _MAP_NAME.match(lower)
                if m is None:
                    raise errors.ApiError(errors.MALFORMED_PARAMETER,
                                          f"Malformed map parameter name: {name[:128]}")
                out.maps.setdefault(m.group(1), {}).setdefault(int(m.group(2)), {})[m.group(3)] = value
            else:
                out.by_lower.setdefault(lower, value)
        return out

    def get(self, name: str) -> str | None:
        return self.by_lower.get(name.lower())

    def has_control_characters(self) -> str | None:
        for name, value in self.pairs:
            if _CONTROL.search(value) or _CONTROL.search(name):
                return name
        return None


def parse_bool(value: str) -> bool:
    return value.strip().lower() == "true"


def convert(command: str, name: str, ptype: ParamType, value: str) -> Any:
    """Convert one scalar parameter; raise 431 on a wrong type."""
    if ptype in ("string",):
        return value
    if ptype == "boolean":
        return parse_bool(value)
    if ptype in _INT_LIMITS:
        limit = _INT_LIMITS[ptype]
        try:
            number = int(value.strip())
        except ValueError:
            raise errors.invalid_value(command, name, value[:64]) from None
        if not -limit <= number < limit:
            raise errors.invalid_value(command, name, value[:64])
        return number
    if ptype == "uuid":
        if value == "-1":
            return value
        if not _UUID.match(value):
            raise errors.entity_not_found(name, value[:64])
        return str(uuid.UUID(value))
    if ptype == "list":
        return [item.strip() for item in value.split(",") if item.strip()]
    if ptype == "date":
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%z"):
            try:
                return datetime.strptime(value, fmt)
            except ValueError:
                pass
        raise errors.invalid_value(command, name, value[:64])
    raise AssertionError(f"unknown parameter type {ptype}")


def map_as_key_values(entries: dict[int, dict[str, str]]) -> dict[str, str]:
    """Flatten a map parameter sent either as ``x[i].key/x[i].value`` or as ``x[i].<field>=value``."""
    out: dict[str, str] = {}
    for index in sorted(entries):
        entry = entries[index]
        if "key" in entry and set(entry) <= {"key", "value"}:
            out[entry["key"]] = entry.get("value", "")
        else:
            out.update(entry)
    return out
