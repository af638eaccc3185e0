"""What command handlers return; :mod:`envelope` turns these into CloudStack's response bodies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ListResult:
    object_name: str
    items: list[dict[str, Any]]
    count: int


@dataclass
class ObjectResult:
    object_name: str
    item: dict[str, Any]


@dataclass
class SuccessResult:
    displaytext: str | None = None


@dataclass
class RawResult:
    """A body used as-is inside ``<command>response`` (login, listCapabilities, job results)."""

    body: dict[str, Any]
    cookies: dict[str, str] = field(default_factory=dict)
    clear_cookies: tuple[str, ...] = ()


@dataclass
class AsyncResult:
    jobid: str
    object_id: str | None = None


Result = ListResult | ObjectResult | SuccessResult | RawResult | AsyncResult


def body_of(result: Result, *, in_job: bool = False) -> dict[str, Any]:
    """The body inside ``<command>response`` (or a job's ``jobresult`` when ``in_job``).

    CloudStack writes a synchronous command's success as the string ``"true"`` and a job's as the
    JSON boolean ``true``; clients rely on it (libcloud's ``deleteSSHKeyPair`` compares with
    ``"true"``, go-cloudstack converts the string)."""
    if isinstance(result, ListResult):
        if result.count == 0:
            return {}
        if not result.items:
            return {"count": result.count}
        return {"count": result.count, result.object_name: result.items}
    if isinstance(result, ObjectResult):
        return {result.object_name: result.item}
    if isinstance(result, SuccessResult):
        body: dict[str, Any] = {"success": True if in_job else "true"}
        if result.displaytext is not None:
            body["displaytext"] = result.displaytext
        return body
    if isinstance(result, AsyncResult):
        if result.object_id is not None:
            return {"id": result.object_id, "jobid": result.jobid}
        return {"jobid": result.jobid}
    return result.body
