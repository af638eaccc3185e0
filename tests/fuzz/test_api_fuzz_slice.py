"""A deterministic slice of the API fuzzer, in-process; the full run is ``bench/fuzz_api.py``."""

from __future__ import annotations

import warnings
from urllib.parse import urlencode

import pytest

from hvcloud.server.api.signature import compute_signature
from hvcloud.server.state import ServerState
from tests.fuzz import api_fuzz
from tests.support.server_api import keys_of

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

URL = "/client/api"


def test_fuzz_slice_every_answer_is_an_envelope_and_rejections_write_nothing(
        server: tuple[ServerState, TestClient]) -> None:
    state, client = server
    keys, fx = api_fuzz.set_up(client, URL, keys_of(state, "admin"))
    tally = api_fuzz.run(state.engine, client, URL, keys, api_fuzz.cases(20261122, 300, fx))
    assert tally.failures == []
    assert tally.total == 300
    assert tally.counts.get("ok", 0) > 0
    assert {"error-401", "error-431"} <= set(tally.counts)


def test_cases_are_reproducible_and_cover_every_registered_command() -> None:
    fx = api_fuzz.Fixtures(ids=["11111111-2222-3333-4444-555555555555"])
    first = list(api_fuzz.cases(3, 400, fx))
    assert first == list(api_fuzz.cases(3, 400, fx))
    assert {c.name for c in api_fuzz.REGISTRY.all()} <= {c.command for c in first}
    assert {c.mutation for c in api_fuzz.cases(3, 3000, fx)} == set(api_fuzz.MUTATIONS)


def test_the_checker_flags_what_it_should() -> None:
    case = api_fuzz.ApiCase(0, "listZones", "admin", "valid", "GET", (("command", "listZones"), ("response", "json")))
    ok = b'{"listzonesresponse":{"count":0}}'
    assert api_fuzz.check(case, 200, "application/json", ok) == ("ok", None)
    assert api_fuzz.check(case, 530, "application/json", b"{}")[1] is not None
    assert api_fuzz.check(case, 431, "application/json", b'{"listzonesresponse":{"errorcode":430}}')[1] is not None
    assert api_fuzz.check(case, 200, "text/xml", ok)[1] is not None
    assert api_fuzz.check(case, 431, "application/json", b'{"x":"Traceback (most recent call last)"}')[1]


# --------------------------------------------------------------------------- regressions found by fuzzing


@pytest.mark.parametrize("extra", [
    [("details[abc].key", "x")],                       # malformed map parameter name
    [("name", "x" * 70_000)],                          # value over the length limit
    [(f"p{i}", "v") for i in range(600)],              # too many parameters
])
def test_refusals_of_posted_parameters_honour_response_json(server: tuple[ServerState, TestClient],
                                                            extra: list[tuple[str, str]]) -> None:
    """Parameter refusals raised while reading a POST body used to be rendered as XML, since only the
    query string was consulted for ``response=json``."""
    state, client = server
    apikey, secret = keys_of(state, "admin")
    pairs = [("apiKey", apikey), ("command", "listZones"), ("response", "json"), *extra]
    pairs.append(("signature", compute_signature(pairs, secret)))
    r = client.post(URL, content=urlencode(pairs).encode(),
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()["errorresponse"]
    assert r.status_code in (430, 431) and body["errorcode"] == r.status_code and body["errortext"]


def test_error_text_with_line_breaks_cannot_split_the_response(server: tuple[ServerState, TestClient]) -> None:
    """``id=line\\r\\nInjected: yes`` is echoed in the error text, which used to go verbatim into the
    ``X-Description`` header: uvicorn refused the header and dropped the connection (no answer at all)."""
    state, client = server
    apikey, secret = keys_of(state, "admin")
    pairs = [("apiKey", apikey), ("command", "deleteUser"), ("response", "json"), ("id", "x\r\nInjected: yes\t\u00e9")]
    pairs.append(("signature", compute_signature(pairs, secret)))
    r = client.get(f"{URL}?{urlencode(pairs)}")
    assert r.status_code == 431 and "Injected" not in r.headers
    description = r.headers["x-description"]
    assert all(" " <= c <= "~" for c in description) and "x??Injected: yes??" in description
    assert "x\r\nInjected: yes" in r.json()["deleteuserresponse"]["errortext"]


@pytest.mark.parametrize("value", [" 12 ", "trailing\t"])
def test_error_text_with_edge_blanks_still_gets_an_answer(server: tuple[ServerState, TestClient], value: str) -> None:
    """h11 refuses header values with leading or trailing blanks; ``listApis name=" 12 "`` echoed the
    name at the end of ``X-Description`` and the connection was dropped without an answer."""
    from hvcloud.server.api.endpoint import header_text

    assert header_text("x:  12 ") == "x:  12" and header_text("x: a\t") == "x: a?"
    state, client = server
    apikey, secret = keys_of(state, "admin")
    pairs = [("apiKey", apikey), ("command", "listApis"), ("response", "json"), ("name", value)]
    pairs.append(("signature", compute_signature(pairs, secret)))
    r = client.get(f"{URL}?{urlencode(pairs)}")
    assert r.status_code == 431 and r.headers["x-description"] == r.headers["x-description"].strip()


def test_xml_errors_with_characters_xml_cannot_hold_are_well_formed(server: tuple[ServerState, TestClient]) -> None:
    """A parameter named ``na\\x01me`` is echoed in the error text; the XML envelope used to carry the raw
    control character, which no XML parser accepts."""
    from xml.etree import ElementTree

    state, client = server
    apikey, secret = keys_of(state, "admin")
    for extra in ([("id", "nope"), ("na\x01me", "x")], [("id", "\uffff")]):
        pairs = [("apiKey", apikey), ("command", "deleteZone"), *extra]
        pairs.append(("signature", compute_signature(pairs, secret)))
        r = client.get(f"{URL}?{urlencode(pairs)}")
        root = ElementTree.fromstring(r.content)
        assert r.status_code == 431 and root.findtext("errorcode") == "431"
        assert "\ufffd" in (root.findtext("errortext") or "")


@pytest.mark.parametrize("value", ["-9223372036854775809", "9" * 30, "2147483648"])
def test_archive_alerts_type_out_of_range_is_a_parameter_error(server: tuple[ServerState, TestClient],
                                                               value: str) -> None:
    """``archiveAlerts type=-9223372036854775809`` reached SQLite unbounded: OverflowError, a 530."""
    state, client = server
    apikey, secret = keys_of(state, "admin")
    pairs = [("apiKey", apikey), ("command", "archiveAlerts"), ("response", "json"), ("type", value)]
    pairs.append(("signature", compute_signature(pairs, secret)))
    r = client.get(f"{URL}?{urlencode(pairs)}")
    assert r.status_code == 431, r.text
    assert "Invalid parameter type" in r.json()["archivealertsresponse"]["errortext"]
