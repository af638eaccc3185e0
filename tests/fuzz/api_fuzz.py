"""A seeded fuzzer for the management server's ``/client/api``, usable in-process or against a process.

Cases name a registered command (or an unknown one), a caller (the admin or a plain user), a
mutation and the parameter pairs; the runner signs them with the caller's keys. :func:`check` states
the property every answer must have, and :func:`db_fingerprint` proves that a rejected request (and
any read-only command) wrote nothing to the database.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from xml.etree import ElementTree

import httpx
from sqlalchemy import Engine, text

from hvcloud.server.api import commands as _commands
from hvcloud.server.api.registry import REGISTRY, ApiCommand, Param
from hvcloud.server.api.signature import compute_signature
from hvcloud.server.db.models import Base

_commands.load()

ERROR_STATUSES = frozenset({401, 405, 429, 430, 431, 432, 531, 534, 535, 536})
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/', "site-packages/")
READ_ONLY_PREFIXES = ("list", "get", "query")
#: named like reads, but CloudStack's own writes: they register the template or ISO an upload will fill
WRITING_GETS = ("getUploadParamsForTemplate", "getUploadParamsForIso", "getUploadParamsForVolume")

HUGE = ("2147483648", "-2147483649", "9223372036854775808", "-9223372036854775809", "9" * 40, "1e309",
        "0x7fffffff", "1_000", " 12 ", "NaN", "Infinity", "-0")
CONTROL = ("a\x00b", "\x07bell", "line\r\nInjected: yes", "\x1b[2J", "tab\there", "\x7f")
UNICODE = ("\u00e9t\u00e9", "\U0001f4a9" * 30, "\u202eevil", "\uffff", "\u0000", "\ufeffbom", "z\u0301")
SQLISH = ("' OR '1'='1", "1; DROP TABLE \"user\"; --", "%' --", "\\", "_%_", "admin'--", "\" OR \"\"=\"",
          "1 UNION SELECT secret_key_enc FROM \"user\"")
PATHISH = ("../../../../etc/passwd", "/etc/shadow", "file:///etc/passwd", "nfs://10.0.0.1/../../etc",
           "..\\..\\windows", "http://169.254.169.254/latest/meta-data/", "%2e%2e/%2e%2e/")
BAD_MAP_NAMES = ("{m}[abc].key", "{m}[-1].key", "{m}[9999999].key", "{m}[0]", "{m}[0].a.b", "{m}[0][1].key",
                 "{m}].key", "[0].key", "{m}[0].", "{m}[].key", "{m}[1e3].key", "{m}[0]key")
WEIRD_UUIDS = ("-1", "0", "00000000-0000-0000-0000-000000000000", "not-a-uuid", "1", "'", "../x",
               "ffffffff-ffff-ffff-ffff-ffffffffffffff")


@dataclass(frozen=True)
class ApiCase:
    index: int
    command: str
    caller: str
    mutation: str
    method: str
    pairs: tuple[tuple[str, str], ...]
    sign: str = "good"
    #: a raw query string sent as is (for bytes that no client library would encode)
    raw_query: str | None = None
    as_xml: bool = False

    def describe(self) -> str:
        shown = "&".join(f"{k}={v}" for k, v in self.pairs)[:200]
        return f"#{self.index} {self.command} as {self.caller} [{self.mutation}/{self.sign}] {self.method} {shown!r}"


@dataclass
class Fixtures:
    """Ids the generator draws uuid values from: objects the fuzzer may touch freely."""

    ids: list[str] = field(default_factory=list)
    victim_user_ids: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- values


def _name(rng: random.Random) -> str:
    return "fz-" + "".join(rng.choices(string.ascii_lowercase + string.digits, k=8))


def plausible(param: Param, rng: random.Random, fx: Fixtures) -> str:
    t = param.type
    if t == "uuid":
        return rng.choice(fx.ids) if fx.ids and rng.random() < 0.85 else rng.choice(WEIRD_UUIDS)
    if t in ("integer", "long", "short"):
        return str(rng.choice((0, 1, 2, 10, 100, 1024)))
    if t == "boolean":
        return rng.choice(("true", "false", "TRUE", "yes", ""))
    if t == "list":
        return ",".join(_name(rng) for _ in range(rng.randrange(1, 4)))
    if t == "date":
        return rng.choice(("2026-01-01", "2026-01-01 10:00:00", "2026-01-01T10:00:00+0000"))
    low = param.name.lower()
    if "url" in low:
        return rng.choice(("nfs://10.0.0.5/export/primary", "file:///srv/images", "http://10.0.0.9/x.qcow2"))
    if low in ("provider",):
        return rng.choice(("NFS", "S3", "Local", "SMB", "DefaultPrimary"))
    if low in ("networktype",):
        return rng.choice(("Advanced", "Basic"))
    if low in ("hypervisor",):
        return rng.choice(("Simulator", "KVM", "Hyperv"))
    if "ip" in low or "dns" in low or low in ("gateway", "netmask"):
        return rng.choice(("10.0.0.1", "255.255.255.0", "999.1.1.1", "::1"))
    return _name(rng)


def hostile(rng: random.Random) -> str:
    pool = rng.choice((HUGE, CONTROL, UNICODE, SQLISH, PATHISH))
    return rng.choice(pool)


def _map_entries(param: Param, rng: random.Random) -> list[tuple[str, str]]:
    m = param.name
    out = []
    for i in range(rng.randrange(1, 3)):
        out += [(f"{m}[{i}].key", _name(rng)), (f"{m}[{i}].value", _name(rng))]
    return out


# --------------------------------------------------------------------------- cases


def _base_pairs(cmd: ApiCommand, rng: random.Random, fx: Fixtures, optional_rate: float) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for p in cmd.params:
        if not p.required and rng.random() > optional_rate:
            continue
        if p.name in ("page", "pagesize", "keyword"):
            continue
        if p.type == "map":
            pairs += _map_entries(p, rng)
        else:
            pairs.append((p.name, plausible(p, rng, fx)))
    return pairs


def _pick_index(rng: random.Random, pairs: list[tuple[str, str]]) -> int | None:
    return rng.randrange(len(pairs)) if pairs else None


def mutate(mutation: str, cmd: ApiCommand | None, pairs: list[tuple[str, str]], rng: random.Random,
           fx: Fixtures) -> list[tuple[str, str]]:
    """Apply one mutation to the parameter pairs."""
    params = cmd.params if cmd is not None else ()
    if mutation == "missing-required":
        required = {p.name for p in params if p.required}
        if required:
            drop = rng.choice(sorted(required))
            pairs = [(k, v) for k, v in pairs if k != drop and not k.startswith(f"{drop}[")]
    elif mutation == "wrong-type":
        typed = [p for p in params if p.type != "string"]
        if typed:
            p = rng.choice(typed)
            pairs = [(k, v) for k, v in pairs if k != p.name]
            pairs.append((p.name, rng.choice(("abc", "1.5", "true", "[]", "{}", "2026-13-45", "")) if p.type != "map"
                          else "notamap"))
    elif mutation in ("huge", "negative"):
        i = _pick_index(rng, pairs)
        if i is not None:
            value = rng.choice(HUGE) if mutation == "huge" else rng.choice(("-1", "-2147483648", "-0", "-99999999999"))
            pairs[i] = (pairs[i][0], value)
    elif mutation in ("control-chars", "unicode", "sql", "path"):
        source = {"control-chars": CONTROL, "unicode": UNICODE, "sql": SQLISH, "path": PATHISH}[mutation]
        for i in range(len(pairs)):
            if rng.random() < 0.6:
                pairs[i] = (pairs[i][0], rng.choice(source))
        if mutation == "control-chars" and rng.random() < 0.2:
            pairs.append(("na\x01me", "x"))
    elif mutation == "long":
        i = _pick_index(rng, pairs)
        size = rng.choice((256, 4096, 65_537, 200_000))
        if i is not None:
            pairs[i] = (pairs[i][0], "x" * size)
        else:
            pairs.append(("x" * rng.choice((1025, 5000)), "v"))
    elif mutation == "map-bad-index":
        maps = [p.name for p in params if p.type == "map"] or ["details"]
        m = rng.choice(maps)
        pairs.append((rng.choice(BAD_MAP_NAMES).format(m=m), hostile(rng)))
    elif mutation == "duplicate":
        i = _pick_index(rng, pairs)
        if i is not None:
            name, _ = pairs[i]
            variant = rng.choice((name, name.upper(), name.capitalize()))
            pairs.insert(rng.randrange(len(pairs) + 1), (variant, hostile(rng)))
        else:
            pairs.append(("command", "listZones"))
    elif mutation == "paging":
        values = ("-1", "0", "1", "2", "500", "501", "2147483647", "2147483648", "-5", "x", "")
        for name in ("page", "pagesize"):
            if rng.random() < 0.75:
                pairs.append((name, rng.choice(values)))
        if rng.random() < 0.3:
            pairs.append(("keyword", hostile(rng)))
    elif mutation == "unknown-params":
        for _ in range(rng.randrange(1, 20)):
            pairs.append((rng.choice(("foo", "__proto__", "id]", "sessionkey", "signatureversion", "expires",
                                      "response", "apikey", _name(rng))), hostile(rng)))
    elif mutation == "too-many":
        pairs += [(f"p{i}", "v") for i in range(rng.choice((100, 513, 2100)))]
    elif mutation == "hostile-everywhere":
        pairs = [(k, hostile(rng)) for k, v in pairs]
    return pairs


MUTATIONS = ("valid", "missing-required", "wrong-type", "huge", "negative", "control-chars", "unicode", "sql",
             "path", "long", "map-bad-index", "duplicate", "paging", "unknown-params", "too-many",
             "hostile-everywhere", "bad-percent")
WEIGHTS = {"too-many": 2, "long": 4, "valid": 12}
AUTH_MODES = ("good",) * 46 + ("none", "bad", "expired", "wrong-key")


def cases(seed: int, count: int, fx: Fixtures, only: Iterable[str] | None = None) -> Iterator[ApiCase]:
    """``count`` cases over every registered command in turn (or over the commands ``only`` names)."""
    rng = random.Random(seed)
    commands = [c.name for c in REGISTRY.all()] + ["noSuchCommand"] if only is None else sorted(only)
    weights = [WEIGHTS.get(m, 8) for m in MUTATIONS]
    for i in range(count):
        name = commands[i % len(commands)]
        if name == "noSuchCommand":
            name = rng.choice(("noSuchCommand", "deployVirtualMachine", "LISTZONES", "listzones", "", "login\x00",
                               "__init__", "listZones "))
        cmd = REGISTRY.get(name)
        mutation = rng.choices(MUTATIONS, weights)[0]
        pairs = _base_pairs(cmd, rng, fx, 0.4) if cmd else []
        pairs = mutate(mutation, cmd, pairs, rng, fx)
        pairs = [("command", name), ("response", "xml" if rng.random() < 0.05 else "json"), *pairs]
        rng.shuffle(pairs)
        raw = None
        if mutation == "bad-percent":
            chunks = [f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs]
            chunks.append(rng.choice(("name=%FF%FE", "name=%ED%A0%80", "x=%", "x=%G1", "%00=1", "name=%C3%28")))
            raw = "&".join(chunks)
        as_xml = (first_value(pairs, "response") or "").lower() != "json"
        yield ApiCase(i, name, rng.choice(("admin", "user")), mutation, rng.choice(("GET", "POST")),
                      tuple(pairs), rng.choice(AUTH_MODES), raw, as_xml)


# --------------------------------------------------------------------------- signing


def first_value(pairs: Iterable[tuple[str, str]], name: str) -> str | None:
    """The value the server acts on: the first parameter whose lower-cased name is ``name``."""
    for k, v in pairs:
        if k.lower() == name:
            return v
    return None


def first_occurrences(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    out = []
    for k, v in pairs:
        if k not in seen:
            seen.add(k)
            out.append((k, v))
    return out


def signed_pairs(case: ApiCase, apikey: str, secret: str) -> list[tuple[str, str]]:
    """The request's pairs with ``apiKey``/``signature`` as the case's auth mode wants them."""
    pairs = [("apiKey", apikey if case.sign != "wrong-key" else "not-a-key"), *case.pairs]
    if case.sign == "none":
        return pairs
    if case.sign == "expired":
        past = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S+0000")
        pairs += [("signatureversion", "3"), ("expires", past)]
    signature = compute_signature(first_occurrences(pairs), secret)
    if case.sign == "bad":
        signature = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    return [*pairs, ("signature", signature)]


# --------------------------------------------------------------------------- the property


def _has_traceback(text: str) -> bool:
    return any(m in text for m in TRACEBACK_MARKERS)


def check(case: ApiCase, status: int, content_type: str, body: bytes) -> tuple[str, str | None]:
    """Classify one response: ``ok`` or ``error-<status>``, with a failure message or None."""
    text = body.decode("utf-8", "replace")
    if _has_traceback(text):
        return "traceback", f"traceback text in a {status} response"
    if status == 530:
        return "error-530", f"internal error: {text[:300]}"
    if status != 200 and status not in ERROR_STATUSES:
        return f"status-{status}", f"unexpected status {status}: {text[:200]!r}"
    if case.as_xml:
        if not content_type.startswith("text/xml"):
            return "bad-content-type", f"XML asked, got {content_type!r}"
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError as exc:
            return "bad-xml", f"malformed XML: {exc}"
        if not root.tag.endswith("response"):
            return "bad-shape", f"XML root {root.tag}"
        if status != 200 and root.findtext("errorcode") != str(status):
            return "bad-shape", "XML errorcode does not match the HTTP status"
        return ("ok" if status == 200 else f"error-{status}"), None
    if not content_type.startswith("application/json"):
        return "bad-content-type", f"JSON asked, got {content_type!r}"
    try:
        doc = json.loads(text)
    except ValueError:
        return "bad-json", "body is not JSON"
    if not isinstance(doc, dict) or len(doc) != 1:
        return "bad-shape", "envelope is not a one-key object"
    ((key, inner),) = doc.items()
    if not key.endswith("response") or not isinstance(inner, dict):
        return "bad-shape", f"envelope key {key!r}"
    command = first_value(case.pairs, "command") or ""
    registered = REGISTRY.get(command) is not None
    if status == 200:
        if not registered or key != f"{command.lower()}response":
            return "bad-shape", f"200 for {command!r} in envelope {key!r}"
        return "ok", None
    if inner.get("errorcode") != status or not isinstance(inner.get("errortext"), str):
        return "bad-shape", f"error envelope {str(inner)[:200]} does not match status {status}"
    if status != 401 and not isinstance(inner.get("cserrorcode"), int):
        return "bad-shape", "error without cserrorcode"
    if key not in ("errorresponse", f"{command.lower()}response"):
        return "bad-shape", f"error envelope key {key!r}"
    return f"error-{status}", None


#: columns a live server rewrites on its own (its lease heartbeat), not in answer to a request
VOLATILE = {"management_server": {"heartbeat"}}


def settle(engine: Engine, timeout: float = 15.0) -> bool:
    """Wait until no async job is in progress, so background work of an earlier, accepted request
    cannot be mistaken for a write by the next one. False if jobs were still running at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            running = conn.execute(text("SELECT count(*) FROM async_job WHERE status = 0")).scalar_one()
        if not running:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def db_fingerprint(engine: Engine) -> dict[str, tuple[int, str]]:
    """Row count and a checksum of every table's rows (volatile columns left out)."""
    out: dict[str, tuple[int, str]] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            skip = VOLATILE.get(table.name, set())
            cols = ", ".join(f'"{c.name}"' for c in table.columns if c.name not in skip)
            rows = sorted(repr(tuple(r)) for r in conn.execute(text(f'SELECT {cols} FROM "{table.name}"')))
            out[table.name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16])
    return out


@dataclass
class Tally:
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def add(self, outcome: str, failure: str | None, case: ApiCase) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if failure is not None:
            self.failures.append(f"{case.describe()}: {failure}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def judge(case: ApiCase, status: int, content_type: str, body: bytes, before: dict[str, Any],
          after: dict[str, Any], tally: Tally) -> str:
    outcome, failure = check(case, status, content_type, body)
    if failure is None and before != after:
        changed = sorted(t for t in before if before[t] != after.get(t))
        if outcome != "ok":
            failure = f"{outcome} but tables changed: {', '.join(changed)}"
        elif (name := first_value(case.pairs, "command") or "").startswith(READ_ONLY_PREFIXES) \
                and name not in WRITING_GETS:
            failure = f"read-only command changed tables: {', '.join(changed)}"
    tally.add(outcome, failure, case)
    return outcome


# --------------------------------------------------------------------------- driving a server


Keys = dict[str, tuple[str, str]]


def send(client: httpx.Client, url: str, case: ApiCase, keys: Keys) -> httpx.Response:
    apikey, secret = keys[case.caller]
    pairs = signed_pairs(case, apikey, secret)
    if case.raw_query is not None:
        extra = urlencode([p for p in pairs if p[0] in ("apiKey", "signature", "signatureversion", "expires")])
        return client.get(f"{url}?{case.raw_query}&{extra}")
    if case.method == "POST" or sum(len(k) + len(v) for k, v in pairs) > 8000:
        return client.post(url, content=urlencode(pairs).encode(),
                           headers={"content-type": "application/x-www-form-urlencoded"})
    return client.get(f"{url}?{urlencode(pairs)}")


def run(engine: Engine, client: httpx.Client, url: str, keys: Keys, chosen: Iterable[ApiCase]) -> Tally:
    """Send each case and judge its answer and what it wrote (the database settled before each
    case, its fingerprint compared after)."""
    tally = Tally()
    for case in chosen:
        settle(engine)
        before = db_fingerprint(engine)
        r = send(client, url, case, keys)
        judge(case, r.status_code, r.headers.get("content-type", ""), r.content, before, db_fingerprint(engine),
              tally)
    return tally


def call(client: httpx.Client, url: str, keys: tuple[str, str], command: str, /, **params: str) -> dict[str, Any]:
    """One well-formed signed call that must succeed (fixture set-up)."""
    pairs = [("apiKey", keys[0]), ("command", command), ("response", "json"), *params.items()]
    pairs.append(("signature", compute_signature(pairs, keys[1])))
    r = client.get(f"{url}?{urlencode(pairs)}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = next(iter(r.json().values()))
    return body


def _network_fixtures(client: httpx.Client, url: str, admin: tuple[str, str], zone_id: str) -> list[str]:
    """A physical network carrying Guest traffic, its providers and element, the network offerings, and a
    victim's isolated network and a shared network: ids the network commands may be fuzzed with."""
    pn = call(client, url, admin, "createPhysicalNetwork", zoneid=zone_id, name="fz-pn", isolationmethods="VXLAN",
              vlan="7000-7099")["id"]
    call(client, url, admin, "addTrafficType", physicalnetworkid=pn, traffictype="Guest", kvmnetworklabel="fzbr0")
    ids = [pn]
    nsps = call(client, url, admin, "listNetworkServiceProviders", physicalnetworkid=pn)["networkserviceprovider"]
    ids += [p["id"] for p in nsps]
    ids += [e["id"] for e in call(client, url, admin, "listVirtualRouterElements").get("virtualrouterelement", [])]
    offerings = {o["name"]: o["id"] for o in call(client, url, admin, "listNetworkOfferings")["networkoffering"]}
    ids += list(offerings.values())
    root = call(client, url, admin, "listDomains")["domain"][0]["id"]
    ids.append(call(client, url, admin, "createNetwork", name="fz-bob-net", zoneid=zone_id, account="fz-bob",
                    domainid=root, networkofferingid=offerings["DefaultIsolatedNetworkOfferingWithSourceNatService"])[
        "network"]["id"])
    ids.append(call(client, url, admin, "createNetwork", name="fz-shared", zoneid=zone_id, vlan="7050",
                    gateway="192.168.77.1", netmask="255.255.255.0", startip="192.168.77.10",
                    networkofferingid=offerings["DefaultSharedNetworkOffering"])["network"]["id"])
    return ids


def set_up(client: httpx.Client, url: str, admin: tuple[str, str]) -> tuple[Keys, Fixtures]:
    """A zone layout, the fuzzing user (alice) and victim accounts whose ids the fuzzer may use."""
    fx = Fixtures()
    zone = call(client, url, admin, "createZone", name="fz-zone", networktype="Advanced", dns1="8.8.8.8",
                internaldns1="10.0.0.1")["zone"]
    pod = call(client, url, admin, "createPod", name="fz-pod", zoneid=zone["id"], gateway="10.1.0.1",
               netmask="255.255.255.0", startip="10.1.0.10", endip="10.1.0.50")["pod"]
    cluster = call(client, url, admin, "addCluster", clustername="fz-cl", clustertype="CloudManaged",
                   hypervisor="Simulator", podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    pool = call(client, url, admin, "createStoragePool", name="fz-pool", url="nfs://10.0.0.5/export/p",
                zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"])["storagepool"]
    fx.ids += [zone["id"], pod["id"], cluster["id"], pool["id"]]
    alice = call(client, url, admin, "createAccount", username="fz-alice", password="alice-pw-1", firstname="A",
                 lastname="A", accounttype="0")["account"]
    user_keys = call(client, url, admin, "registerUserKeys", id=alice["user"][0]["id"])["userkeys"]
    for name in ("fz-bob", "fz-carol", "fz-dave"):
        victim = call(client, url, admin, "createAccount", username=name, password="victim-pw-1", firstname="V",
                      lastname="V", accounttype="0")["account"]
        fx.ids.append(victim["id"])
        fx.victim_user_ids.append(victim["user"][0]["id"])
        fx.ids.append(victim["user"][0]["id"])
    fx.ids += [d["id"] for d in call(client, url, admin, "listDomains").get("domain", [])]
    fx.ids += [o["id"] for o in call(client, url, admin, "listOsTypes").get("ostype", [])][:5]
    fx.ids += _network_fixtures(client, url, admin, zone["id"])
    return {"admin": admin, "user": (user_keys["apikey"], user_keys["secretkey"])}, fx
