"""The signature algorithm against the ``cs`` test vectors in cloudstack-api.md §1.3."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hvcloud.server.api.signature import (
    canonical_string,
    compute_signature,
    java_urlencode,
    parse_expires,
    signature_matches,
)

BASE = [("apiKey", "foo"), ("response", "json")]
VECTORS = [
    ([("command", "listVirtualMachines"), ("listall", "true")],
     "apikey=foo&command=listvirtualmachines&listall=true&response=json", "B0d6hBsZTcFVCiioSxzwKA9Pke8="),
    ([("command", "listVirtualMachines"), ("blah", "brah")],
     "apikey=foo&blah=brah&command=listvirtualmachines&response=json", "58VvLSaVUqHnG9DhXNOAiDFwBoA="),
    ([("command", "createNetwork"), ("name", ""), ("display_text", "")],
     "apikey=foo&command=createnetwork&display_text=&name=&response=json", "CistTEiPt/4Rv1v4qSyILvPbhmg="),
    ([("command", "listVirtualMachines"), ("foo", "foo,bar"), ("bar[0].baz", "blah"), ("bar[0].foo", "1000"),
      ("bytes_param", "blah")],
     "apikey=foo&bar[0].baz=blah&bar[0].foo=1000&bytes_param=blah&command=listvirtualmachines&foo=foo%2cbar"
     "&response=json", "ImJ/5F0P2RDL7yn4LdLnGcEx5WE="),
    ([("command", "scaleVirtualMachine"), ("id", "a"), ("details[0].cpunumber", "1000"),
      ("details[0].memory", "640k")],
     "apikey=foo&command=scalevirtualmachine&details[0].cpunumber=1000&details[0].memory=640k&id=a"
     "&response=json", "ZNl66z3gFhnsx2Eo3vvCIM0kAgI="),
    ([("command", "listVirtualMachines"), ("zoneId", "2"), ("templateId", "3"), ("temPlateidd", "4"),
      ("pageSize", "10"), ("page", "1")],
     "apikey=foo&command=listvirtualmachines&page=1&pagesize=10&response=json&templateidd=4&templateid=3"
     "&zoneid=2", "mMS7XALuGkCXk7kj5SywySku0Z0="),
    ([("command", "listVirtualMachines"), ("listall", "1"), ("unicode_param", "éèààû")],
     None, "gABU/KFJKD3FLAgKDuxQoryu4sA="),
]


@pytest.mark.parametrize(("params", "canonical", "signature"), VECTORS)
def test_reference_vectors(params: list[tuple[str, str]], canonical: str | None, signature: str) -> None:
    pairs = BASE + params
    if canonical is not None:
        assert canonical_string(pairs) == canonical
    assert compute_signature(pairs, "bar") == signature
    assert signature_matches([*pairs, ("signature", signature)], "bar", signature)


def test_signature_param_is_excluded_case_insensitively() -> None:
    pairs = [*BASE, ("command", "listZones")]
    sig = compute_signature(pairs, "bar")
    assert compute_signature([*pairs, ("Signature", "junk")], "bar") == sig


def test_java_encoding_keeps_star_and_escapes_tilde_and_space() -> None:
    assert java_urlencode("a*b c~d/é") == "a*b%20c%7Ed%2F%C3%A9"


def test_tilde_accepted_in_both_java_and_rfc3986_forms() -> None:
    pairs = [*BASE, ("command", "listZones"), ("keyword", "a~b")]
    java_sig = compute_signature(pairs, "bar")
    rfc_sig = compute_signature(pairs, "bar", java=False)
    assert java_sig != rfc_sig
    assert signature_matches(pairs, "bar", java_sig)
    assert signature_matches(pairs, "bar", rfc_sig)


def test_wrong_secret_or_tampered_value_fails() -> None:
    pairs = [*BASE, ("command", "listZones")]
    sig = compute_signature(pairs, "bar")
    assert not signature_matches(pairs, "baz", sig)
    assert not signature_matches([*BASE, ("command", "listHosts")], "bar", sig)
    assert not signature_matches(pairs, "bar", "")
    assert not signature_matches(pairs, "bar", "\u00e9" * 30)


@pytest.mark.parametrize("text", ["2024-05-01T12:10:00+0000", "2024-05-01T12:10:00Z",
        "2024-05-01T12:10:00+00:00",
                                  "2024-05-01T14:10:00+0200", "2024-05-01T12:10:00.000+0000"])
def test_expires_formats(text: str) -> None:
    assert parse_expires(text) == datetime(2024, 5, 1, 12, 10, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "tomorrow", "2024-13-01T00:00:00Z", "9" * 5000])
def test_bad_expires(text: str) -> None:
    assert parse_expires(text) is None
