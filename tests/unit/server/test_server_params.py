"""Request parameter parsing: case-insensitivity, maps, types, hostile input."""

from __future__ import annotations

import pytest

from hvcloud.server.api import errors
from hvcloud.server.api.params import MAX_PARAMS, RequestParams, convert, map_as_key_values
from hvcloud.server.orchestration.storage_urls import POOL_SCHEMES, StorageUrlError, parse_storage_url


def test_first_value_wins_and_names_are_case_insensitive() -> None:
    p = RequestParams.from_pairs([("zoneId", "a"), ("zoneId", "b"), ("ZONEID", "c")])
    assert p.get("zoneid") == "a"
    assert p.pairs == [("zoneId", "a"), ("ZONEID", "c")]


def test_map_parameters_both_encodings() -> None:
    p = RequestParams.from_pairs([("details[0].key", "k1"), ("details[0].value", "v1"),
            ("Details[1].key", "k2"),
                                  ("details[1].value", "v2"), ("tags[0].cpuNumber", "2")])
    assert map_as_key_values(p.maps["details"]) == {"k1": "v1", "k2": "v2"}
    assert map_as_key_values(p.maps["tags"]) == {"cpunumber": "2"}


@pytest.mark.parametrize("name", ["details[0]key", "details[x].key", "details[0].", "details]0[.key",
        "a[0].b[1].c",
                                  "x[9999999].k"])
def test_malformed_map_names_give_430(name: str) -> None:
    with pytest.raises(errors.ApiError) as exc:
        RequestParams.from_pairs([(name, "v")])
    assert exc.value.code == errors.MALFORMED_PARAMETER


def test_too_many_or_too_long_parameters_rejected() -> None:
    with pytest.raises(errors.ApiError) as exc:
        RequestParams.from_pairs([(f"p{i}", "v") for i in range(MAX_PARAMS + 1)])
    assert exc.value.code == errors.PARAM_ERROR
    with pytest.raises(errors.ApiError):
        RequestParams.from_pairs([("p", "v" * 70000)])


@pytest.mark.parametrize("value", ["a\x00b", "a\x1bb", "\x7f"])
def test_control_characters_are_detected(value: str) -> None:
    assert RequestParams.from_pairs([("name", value)]).has_control_characters() == "name"
    assert RequestParams.from_pairs([("name", "tab\tand\nnewline")]).has_control_characters() is None


@pytest.mark.parametrize(("ptype", "raw", "expected"), [
    ("boolean", "TRUE", True), ("boolean", "True", True), ("boolean", "yes", False),
    ("integer", " 42 ", 42), ("long", str(2**40), 2**40), ("list", "a, b,,c", ["a", "b", "c"]),
    ("uuid", "0A6F6C26-0000-4000-8000-000000000001", "0a6f6c26-0000-4000-8000-000000000001"), ("uuid",
            "-1", "-1"),
])
def test_conversions(ptype: str, raw: str, expected: object) -> None:
    assert convert("cmd", "p", ptype, raw) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("ptype", "raw"), [("integer", "ten"), ("integer", str(2**31)), ("short", "40000"),
                                            ("long", "1e3"), ("uuid", "not-a-uuid"), ("uuid", "' OR 1=1 --"),
                                            ("date", "yesterday")])
def test_wrong_types_give_431(ptype: str, raw: str) -> None:
    with pytest.raises(errors.ApiError) as exc:
        convert("cmd", "p", ptype, raw)  # type: ignore[arg-type]
    assert exc.value.code == errors.PARAM_ERROR


@pytest.mark.parametrize(("url", "kind", "host", "path"), [
    ("nfs://10.147.28.6:/export/home/primary", "NetworkFilesystem", "10.147.28.6", "/export/home/primary"),
    ("nfs://nas.example/export", "NetworkFilesystem", "nas.example", "/export"),
    ("file:///var/lib/hvcloud/pool", "Filesystem", "localhost", "/var/lib/hvcloud/pool"),
    ("cifs://fs1/share?user=u&password=p", "SMB", "fs1", "/share"),
])
def test_storage_urls(url: str, kind: str, host: str, path: str) -> None:
    parsed = parse_storage_url(url, POOL_SCHEMES)
    assert (POOL_SCHEMES[parsed.scheme], parsed.host, parsed.path) == (kind, host, path)
    assert "password" not in parsed.clean_url


@pytest.mark.parametrize("url", ["http://x/y", "nfs:///nohost", "nfs://h/../etc", "file://relative", "", "nfs://h:99999/x",
                                 "nfs://h/" + "a" * 3000])
def test_bad_storage_urls(url: str) -> None:
    with pytest.raises(StorageUrlError):
        parse_storage_url(url, POOL_SCHEMES)
