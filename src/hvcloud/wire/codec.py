"""Bytes ⇄ wire objects, in Gson's exact shape (reference §2 to §3).

* A command body is the bare object; its class comes from the URL.
* Answers go back as ``[{"<answer FQCN>": {...}}]``.
* The startup exchange is a class-wrapped array in both directions.
* The VM state report answer is a bare array of one-entry maps.

Bodies arrive as ISO-8859-1 from the Java server (``StringEntity`` default) or UTF-8 from others:
valid UTF-8 is read as UTF-8, anything else as ISO-8859-1, which can decode every byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from hvcloud.wire.base import ANSWERS, COMMANDS, Answer, Command, WireModel

CONTENT_TYPE = "application/json; charset=utf-8"


class WireError(ValueError):
    """A body that cannot be read as the expected wire object; the message says why."""


class UnknownCommand(WireError):
    def __init__(self, fqcn: str) -> None:
        super().__init__(f"Unsupported command {fqcn}")
        self.fqcn = fqcn


def decode_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("iso-8859-1")


#: CloudStack's deepest bodies (a StartCommand's VM → disk → data → store) nest about ten levels; a
#: body nested much deeper is hostile, and would parse but then fail to serialise when echoed back
MAX_DEPTH = 64


def _check_depth(doc: Any, limit: int = MAX_DEPTH) -> None:
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise WireError(f"malformed JSON: nested deeper than {limit} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))


def decode_json(raw: bytes) -> Any:
    """Parse a request body. Raises WireError for anything that is not JSON or nested too deeply."""
    if not raw.strip():
        raise WireError("empty request body")
    try:
        doc = json.loads(decode_text(raw))
    except json.JSONDecodeError as exc:
        raise WireError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise WireError("malformed JSON: nested too deeply") from None
    _check_depth(doc)
    return doc


def describe_validation_error(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def command_class(fqcn: str) -> type[Command]:
    try:
        return COMMANDS[fqcn]
    except KeyError:
        raise UnknownCommand(fqcn) from None


def parse_command(fqcn: str, body: Any) -> Command:
    """Validate a decoded bare body as the command named by the URL."""
    cls = command_class(fqcn)
    if not isinstance(body, dict):
        raise WireError(f"{fqcn.rsplit('.', 1)[-1]} body must be a JSON object")
    try:
        return cls.model_validate(body)
    except ValidationError as exc:
        raise WireError(describe_validation_error(exc)) from None
    except RecursionError:
        raise WireError("body nested too deeply") from None


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON. Strings holding lone surrogates (legal as ``\\ud800`` escapes in a request,
    and echoed back in answers) cannot be UTF-8 encoded; such documents are sent as ASCII JSON with
    ``\\u`` escapes, which a Java reader decodes to the same string."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def wrap(obj: WireModel) -> dict[str, Any]:
    return {type(obj).FQCN: obj.to_json_obj()}


def encode_answer(answer: Answer) -> bytes:
    return dumps([wrap(answer)])


def parse_answer(raw: bytes) -> Answer:
    """Read ``[{"<answer FQCN>": {...}}]`` as the management server does: element 0 only."""
    body = decode_json(raw)
    if not isinstance(body, list) or not body:
        raise WireError("an answer must be a non-empty JSON array")
    first = parse_wrapped_array(body[:1], ANSWERS)[0]
    if not isinstance(first, Answer):
        raise WireError(f"{type(first).FQCN} is not an answer")
    return first


def parse_wrapped_array(body: Any, table: Mapping[str, type[WireModel]] | None = None) -> list[WireModel]:
    """Read a Gson ``ArrayTypeAdaptor`` array: each element a one-key ``{FQCN: {...}}`` object."""
    lookup: dict[str, type[WireModel]] = dict(COMMANDS)
    lookup.update(ANSWERS)
    if table is not None:
        lookup = dict(table)
    if not isinstance(body, list):
        raise WireError("expected a JSON array of class-wrapped objects")
    out: list[WireModel] = []
    for i, item in enumerate(body):
        if not isinstance(item, dict) or len(item) != 1:
            raise WireError(f"element {i} must be an object with one key naming a Java class")
        fqcn, fields = next(iter(item.items()))
        cls = lookup.get(fqcn)
        if cls is None:
            raise WireError(f"element {i}: unknown class {fqcn}")
        if not isinstance(fields, dict):
            raise WireError(f"element {i}: the body of {fqcn} must be an object")
        try:
            out.append(cls.model_validate(fields))
        except ValidationError as exc:
            raise WireError(f"element {i} ({fqcn}): {describe_validation_error(exc)}") from None
    return out


def encode_wrapped_array(objs: Iterable[WireModel]) -> bytes:
    return dumps([wrap(o) for o in objs])


def encode_vm_state_report(states: Mapping[str, str]) -> bytes:
    """``[{"i-2-17-VM":"PowerOn"}, …]`` (reference §3.4)."""
    return dumps([{name: state} for name, state in states.items()])


def parse_vm_state_report(raw: bytes) -> dict[str, str]:
    body = decode_json(raw)
    if not isinstance(body, list):
        raise WireError("VM state report must be a JSON array")
    out: dict[str, str] = {}
    for item in body:
        if not isinstance(item, dict) or not item:
            raise WireError("VM state report entries must be non-empty objects")
        name, state = next(iter(item.items()))
        if not isinstance(state, str):
            raise WireError(f"state of {name} must be a string")
        out[str(name)] = state
    return out
