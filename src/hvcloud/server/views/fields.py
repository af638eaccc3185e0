"""How CloudStack writes a response object's fields: null fields dropped, dates in its Gson format."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def format_date(value: datetime) -> str:
    """``2021-10-04T09:24:38+0000``, as CloudStack's Gson date format prints it."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def compact(fields: dict[str, Any]) -> dict[str, Any]:
    """Drop null fields and format dates, the way CloudStack's serializer does."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        out[key] = format_date(value) if isinstance(value, datetime) else value
    return out
