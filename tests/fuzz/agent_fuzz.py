"""A seeded fuzzer for the agent's command endpoint, usable in-process or against a real process.

Cases start from a Gson-shaped body for each handled command (the reference sample in
``tests/data/wire`` where one exists, otherwise a body generated from the pydantic model) and
apply one mutation each. :func:`check` states the property every answer must have; the caller
snapshots the agent's state files around a case so that a rejected request can be proven to have
written nothing.
"""

from __future__ import annotations

import json
import random
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hvcloud.agent import handlers as _handlers  # noqa: F401 - fills the dispatch table
from hvcloud.agent.dispatch import HANDLERS
from hvcloud.wire import base
from hvcloud.wire.base import COMMANDS, TRANSFER_OBJECTS, DataStoreTO, DataTO
from hvcloud.wire.commands import HOST_VM_STATE_REPORT, STARTUP

DATA = Path(__file__).resolve().parent.parent / "data" / "wire"
STATE_FILES = ("vms.json", "storage.json", "identity.json", "pools.json")
REFUSAL_STATUSES = frozenset({400, 401, 403, 404, 408, 413})
MAX_ERROR_TEXT = 1024
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/', "site-packages/")

TRAVERSALS = (
    "../../../../../../etc/passwd", "/etc/shadow", "..\\..\\..\\Windows\\System32\\config\\SAM",
    "C:\\Windows\\System32", "a/../../../b", "..", ".", "/", "//server/share/x", "\\\\?\\C:\\x",
    "%2e%2e%2f%2e%2e%2fetc", "file:///etc/passwd", "pool/\x00/evil", "~root/.ssh/authorized_keys",
    "symlink-to-root/../../x", "vol/../../../../proc/self/environ",
)
HUGE_NUMBERS: tuple[Any, ...] = (2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 10**30, 2**64 + 1, 1e308, -1e308,
                                 1.5, 10**4000)
ODD_STRINGS = ("", " ", "\u202e\u0645\u0631\u062d\u0628\u0627", "\U0001f4a9" * 40, "\ud800", "\udfff",
               "\x00", "\x1b[31mred", "' OR 1=1 --", "${jndi:ldap://x/a}", "<script>", "\uffff")


@dataclass(frozen=True)
class Case:
    index: int
    fqcn: str
    mutation: str
    body: bytes

    def describe(self) -> str:
        preview = self.body[:160].decode("utf-8", "backslashreplace")
        return f"#{self.index} {self.fqcn.rsplit('.', 1)[-1]} [{self.mutation}] {len(self.body)}B {preview!r}"


# --------------------------------------------------------------------------- base bodies


def _sample_files() -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for path in sorted(DATA.glob("*.json")):
        short = path.stem.split("-", 1)[0]
        out.setdefault(short, []).append(path)
    return out


def _concrete(tp: Any) -> list[Any]:
    """The non-None alternatives of an annotation, with ``Annotated`` metadata stripped."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _concrete(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(tp):
            if arg is not type(None):
                out.extend(_concrete(arg))
        return out
    return [tp]


def _value_for(tp: Any, rng: random.Random, depth: int) -> Any:
    options = _concrete(tp)
    if not options:
        return None
    tp = options[0]
    origin = typing.get_origin(tp)
    if tp is str:
        return rng.choice(("i-2-10-VM", "5fe2bad3-d785-394e-9949-89786b8a63d2", "Filesystem", "x"))
    if tp is bool:
        return rng.random() < 0.5
    if tp is int:
        return rng.choice((0, 1, 2, 1024, 268435456))
    if tp is float:
        return 1.0
    if tp is typing.Any:
        return "any"
    if origin is list:
        (item,) = typing.get_args(tp) or (str,)
        return [] if depth > 3 else [_value_for(item, rng, depth + 1)]
    if origin is dict:
        return {}
    if isinstance(tp, type) and issubclass(tp, DataTO | DataStoreTO):
        family = DataTO if issubclass(tp, DataTO) else DataStoreTO
        concrete = sorted(f for f, cls in TRANSFER_OBJECTS.items() if issubclass(cls, family))
        fqcn = rng.choice(concrete)
        return {fqcn: generate_body(TRANSFER_OBJECTS[fqcn], rng, depth + 1)}
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return generate_body(tp, rng, depth + 1)
    return None


def _annotation(cls: type[BaseModel], name: str) -> Any:
    hints = typing.get_type_hints(cls, include_extras=True, localns=vars(base))
    return hints.get(name, typing.Any)


def generate_body(cls: type[BaseModel], rng: random.Random, depth: int = 0) -> dict[str, Any]:
    """A Gson-shaped body for ``cls``: every required field, and optional ones at random."""
    out: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        if not field.is_required() and (depth > 3 or rng.random() < 0.5):
            continue
        value = _value_for(_annotation(cls, name), rng, depth)
        if value is not None or field.is_required():
            out[field.alias or name] = value
    return out


def base_bodies(rng: random.Random) -> dict[str, list[Any]]:
    """Starting bodies by FQCN: reference samples first, a generated body for every command."""
    samples = _sample_files()
    out: dict[str, list[Any]] = {}
    for fqcn in sorted(HANDLERS):
        short = fqcn.rsplit(".", 1)[-1]
        bodies = [json.loads(p.read_text(encoding="utf-8")) for p in samples.get(short, [])]
        bodies.append(generate_body(COMMANDS[fqcn], rng))
        out[fqcn] = bodies
    out[STARTUP] = [json.loads(p.read_text(encoding="utf-8")) for p in samples.get("StartupCommand", [])]
    out[HOST_VM_STATE_REPORT] = [{}]
    return out


# --------------------------------------------------------------------------- JSON paths


Path_ = tuple[str | int, ...]


def leaves(obj: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    if isinstance(obj, dict):
        if not obj and path:
            yield path, obj
        for k, v in obj.items():
            yield from leaves(v, (*path, k))
    elif isinstance(obj, list):
        if not obj and path:
            yield path, obj
        for i, v in enumerate(obj):
            yield from leaves(v, (*path, i))
    else:
        yield path, obj


def containers(obj: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    if isinstance(obj, dict | list):
        yield path, obj
        items = obj.items() if isinstance(obj, dict) else enumerate(obj)
        for k, v in items:
            yield from containers(v, (*path, k))


def replace(obj: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(obj, dict):
        copy = dict(obj)
        copy[head] = replace(obj[head], rest, value)
        return copy
    copy_list = list(obj)
    assert isinstance(head, int)
    copy_list[head] = replace(obj[head], rest, value)
    return copy_list


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


# --------------------------------------------------------------------------- mutations

Mutation = Callable[[random.Random, Any, int], bytes]


def _random_leaf(rng: random.Random, body: Any) -> tuple[Path_, Any] | None:
    found = list(leaves(body))
    return rng.choice(found) if found else None


def m_identity(rng: random.Random, body: Any, limit: int) -> bytes:
    return _dumps(body)


def m_wrong_type(rng: random.Random, body: Any, limit: int) -> bytes:
    hit = _random_leaf(rng, body)
    if hit is None:
        return _dumps(rng.choice(([], "x", 1, None)))
    path, value = hit
    choices: list[Any] = ["str", 7, 3.25, True, [1, "a"], {"k": "v"}, [], {}]
    choices = [c for c in choices if type(c) is not type(value)]
    return _dumps(replace(body, path, rng.choice(choices)))


def m_huge_number(rng: random.Random, body: Any, limit: int) -> bytes:
    hit = _random_leaf(rng, body)
    if hit is None:
        return _dumps(rng.choice(HUGE_NUMBERS))
    return _dumps(replace(body, hit[0], rng.choice(HUGE_NUMBERS)))


def m_negative(rng: random.Random, body: Any, limit: int) -> bytes:
    nums = [(p, v) for p, v in leaves(body) if isinstance(v, int | float) and not isinstance(v, bool)]
    path = rng.choice(nums)[0] if nums else (_random_leaf(rng, body) or ((), None))[0]
    return _dumps(replace(body, path, rng.choice((-1, -(2**31), -(2**63), -0.5))))


def m_nan(rng: random.Random, body: Any, limit: int) -> bytes:
    hit = _random_leaf(rng, body)
    path = hit[0] if hit else ()
    return _dumps(replace(body, path, rng.choice((float("nan"), float("inf"), float("-inf")))))


def m_deep_nesting(rng: random.Random, body: Any, limit: int) -> bytes:
    depth = rng.choice((50, 500, 5000, 200_000))
    opener, closer = rng.choice((("[", "]"), ('{"a":', "}")))
    nested = opener * depth + "1" + closer * depth
    hit = _random_leaf(rng, body)
    marker = "\u2603NESTED\u2603"
    target = replace(body, hit[0], marker) if hit else marker
    raw = _dumps(target).replace(json.dumps(marker, ensure_ascii=False).encode(), nested.encode())
    return raw if len(raw) <= limit or rng.random() < 0.2 else nested.encode()[: limit // 2]


def m_invalid_utf8(rng: random.Random, body: Any, limit: int) -> bytes:
    raw = bytearray(_dumps(body))
    bad = rng.choice((b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"))
    quotes = [i for i, c in enumerate(raw) if c == ord('"')]
    pos = rng.choice(quotes) + 1 if quotes else rng.randrange(len(raw) + 1)
    raw[pos:pos] = bad
    return bytes(raw)


def m_truncated(rng: random.Random, body: Any, limit: int) -> bytes:
    raw = _dumps(body)
    return raw[: rng.randrange(len(raw))] if raw else b""


def m_giant_string(rng: random.Random, body: Any, limit: int) -> bytes:
    size = rng.choice((70_000, limit // 2, limit - 4096, limit + 1, limit * 2))
    hit = _random_leaf(rng, body)
    giant = rng.choice(("A", "\u00e9", "../")) * max(1, size // 3)
    return _dumps(replace(body, hit[0], giant) if hit else giant)


def m_unknown_wrapper(rng: random.Random, body: Any, limit: int) -> bytes:
    wrapped = [(p, c) for p, c in containers(body)
               if isinstance(c, dict) and len(c) == 1 and "." in next(iter(c))]
    name = rng.choice(("com.evil.Payload", "java.lang.Runtime", "com.cloud.agent.api.StartCommand",
                       "org.apache.cloudstack.storage.to.VolumeObjectTO", "", "x" * 300))
    if not wrapped:
        return _dumps({name: body} if rng.random() < 0.5 else [{name: body}])
    path, obj = rng.choice(wrapped)
    inner = next(iter(obj.values()))
    return _dumps(replace(body, path, {name: inner if rng.random() < 0.7 else "not-an-object"}))


def m_null(rng: random.Random, body: Any, limit: int) -> bytes:
    if rng.random() < 0.15:
        return b"null"
    hit = _random_leaf(rng, body)
    if hit is None:
        return b"null"
    if rng.random() < 0.5 and isinstance(body, dict) and body:
        return _dumps(dict.fromkeys(body))
    return _dumps(replace(body, hit[0], None))


def m_duplicate_keys(rng: random.Random, body: Any, limit: int) -> bytes:
    if not isinstance(body, dict) or not body:
        return b'{"a":1,"a":2}'
    key = rng.choice(list(body))
    first = _dumps(body)[:-1]
    other = rng.choice((None, "dup", -1, {"x": 1}, body[key]))
    sep = b"," if len(body) else b""
    return first + sep + json.dumps(key).encode() + b":" + _dumps(other) + b"}"


def m_traversal(rng: random.Random, body: Any, limit: int) -> bytes:
    """Every string field gets a path-traversal value (the same one, or each its own)."""
    same = rng.random() < 0.5
    pick = rng.choice(TRAVERSALS)
    out = body
    for path, value in list(leaves(body)):
        if isinstance(value, str):
            out = replace(out, path, pick if same else rng.choice(TRAVERSALS))
    return _dumps(out)


def m_odd_strings(rng: random.Random, body: Any, limit: int) -> bytes:
    strings = [p for p, v in leaves(body) if isinstance(v, str)]
    hit = rng.choice(strings) if strings else (_random_leaf(rng, body) or ((), None))[0]
    out = replace(body, hit, rng.choice(ODD_STRINGS))
    if rng.random() < 0.5:
        return json.dumps(out, ensure_ascii=True).encode("ascii")
    return _dumps(out)


def m_drop_fields(rng: random.Random, body: Any, limit: int) -> bytes:
    dicts = [(p, c) for p, c in containers(body) if isinstance(c, dict) and c]
    if not dicts:
        return b"{}"
    path, obj = rng.choice(dicts)
    keep = {k: v for k, v in obj.items() if rng.random() < 0.5}
    return _dumps(replace(body, path, keep))


def m_top_level(rng: random.Random, body: Any, limit: int) -> bytes:
    return rng.choice((b"[]", b"[{}]", b'"str"', b"42", b"true", b"", b"   ", b"{", b"}", b"[[[[",
                       _dumps([body]), _dumps({"": body})))


def m_random_bytes(rng: random.Random, body: Any, limit: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(rng.choice((1, 16, 512, 4096))))


def m_extra_fields(rng: random.Random, body: Any, limit: int) -> bytes:
    if not isinstance(body, dict):
        return _dumps(body)
    extra = {f"x{rng.randrange(1000)}": rng.choice(("v", 1, [None], {"__class__": "java.lang.Runtime"}))
             for _ in range(rng.randrange(1, 50))}
    return _dumps({**body, **extra, "__proto__": {"polluted": True}})


MUTATIONS: dict[str, Mutation] = {
    "identity": m_identity, "wrong-type": m_wrong_type, "huge-number": m_huge_number,
    "negative": m_negative, "nan": m_nan, "deep-nesting": m_deep_nesting,
    "invalid-utf8": m_invalid_utf8, "truncated": m_truncated, "giant-string": m_giant_string,
    "unknown-wrapper": m_unknown_wrapper, "null": m_null, "duplicate-keys": m_duplicate_keys,
    "path-traversal": m_traversal, "odd-strings": m_odd_strings, "drop-fields": m_drop_fields,
    "top-level": m_top_level, "random-bytes": m_random_bytes, "extra-fields": m_extra_fields,
}
#: giant bodies are slow to send; they get a smaller share of the cases
WEIGHTS = {name: (1 if name in ("giant-string",) else 5 if name == "identity" else 10) for name in MUTATIONS}


def cases(seed: int, count: int, body_limit: int) -> Iterator[Case]:
    """``count`` reproducible cases: commands round-robin, mutations weighted at random."""
    rng = random.Random(seed)
    bodies = base_bodies(random.Random(seed ^ 0x5EED))
    fqcns = sorted(bodies)
    names = list(MUTATIONS)
    weights = [WEIGHTS[n] for n in names]
    for i in range(count):
        fqcn = fqcns[i % len(fqcns)]
        mutation = rng.choices(names, weights)[0]
        body = rng.choice(bodies[fqcn])
        yield Case(i, fqcn, mutation, MUTATIONS[mutation](rng, body, body_limit))


# --------------------------------------------------------------------------- the property


def snapshot(data_dir: Path) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for name in STATE_FILES:
        try:
            out[name] = (data_dir / name).read_bytes()
        except FileNotFoundError:
            out[name] = None
    return out


def _has_traceback(text: str) -> bool:
    return any(m in text for m in TRACEBACK_MARKERS)


def check(fqcn: str, status: int, content_type: str, body: bytes) -> tuple[str, str | None]:
    """Classify one response: (outcome, failure or None).

    Outcomes: ``refused-<status>``, ``accepted`` (result true), ``failed-in-band`` (result false).
    """
    text = body.decode("utf-8", "replace")
    if _has_traceback(text):
        return "traceback", f"traceback text in a {status} response"
    if status != 200:
        if status not in REFUSAL_STATUSES:
            return f"status-{status}", f"unexpected status {status}: {text[:200]!r}"
        if len(body) > MAX_ERROR_TEXT:
            return f"refused-{status}", f"{status} with a {len(body)}-byte body"
        return f"refused-{status}", None
    if not content_type.startswith("application/json"):
        return "bad-content-type", f"200 with content-type {content_type!r}"
    try:
        data = json.loads(text)
    except ValueError:
        return "bad-json", "200 with a body that is not JSON"
    if fqcn == HOST_VM_STATE_REPORT:
        ok = isinstance(data, list) and all(
            isinstance(e, dict) and len(e) == 1 and all(isinstance(v, str) for v in e.values()) for e in data)
        return ("accepted", None) if ok else ("bad-shape", "state report is not a list of one-entry maps")
    if not isinstance(data, list) or not data or not all(isinstance(e, dict) and len(e) == 1 for e in data):
        return "bad-shape", "answer is not a non-empty array of class-wrapped objects"
    if fqcn == STARTUP:
        return "accepted", None
    ((cls, fields),) = data[0].items()
    handler = HANDLERS[fqcn]
    if cls != handler.answer.FQCN:
        return "bad-shape", f"answer class {cls}, expected {handler.answer.FQCN}"
    if not isinstance(fields, dict) or not isinstance(fields.get("result"), bool):
        return "bad-shape", "answer has no boolean result"
    if fields["result"]:
        return "accepted", None
    details = fields.get("details")
    if isinstance(details, str) and "internal error (" in details:
        return "handler-crash", f"a handler raised: {details[:200]}"
    return "failed-in-band", None


def rejected(outcome: str) -> bool:
    return outcome.startswith("refused-") or outcome == "failed-in-band"


@dataclass
class Tally:
    counts: dict[str, int]
    failures: list[str]

    @classmethod
    def empty(cls) -> Tally:
        return cls({}, [])

    def add(self, outcome: str, failure: str | None, case: Case) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if failure is not None:
            self.failures.append(f"{case.describe()}: {failure}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def judge(case: Case, status: int, content_type: str, body: bytes, before: dict[str, bytes | None],
          after: dict[str, bytes | None], tally: Tally) -> None:
    outcome, failure = check(case.fqcn, status, content_type, body)
    if failure is None and rejected(outcome) and before != after:
        changed = sorted(k for k in STATE_FILES if before[k] != after[k])
        failure = f"{outcome} but state files changed: {', '.join(changed)}"
    tally.add(outcome, failure, case)


def warm_up_bodies() -> list[tuple[str, Any]]:
    """Requests that give the fuzzed commands something to act on: a startup, a pool, a VM."""
    samples = _sample_files()

    def load(name: str) -> Any:
        return json.loads(samples[name][0].read_text(encoding="utf-8"))

    return [(STARTUP, load("StartupCommand")),
            ("com.cloud.agent.api.ModifyStoragePoolCommand", load("ModifyStoragePoolCommand")),
            ("com.cloud.agent.api.StartCommand", load("StartCommand"))]
