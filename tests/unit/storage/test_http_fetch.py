"""The one image download (management server and agents): URL and address rules, DNS pinning,
redirects, size caps, slow servers, checksums and progress, against a real HTTP server on loopback."""

from __future__ import annotations

import gzip
import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hvcloud.storage.errors import ChecksumMismatch, DownloadError, SizeLimitExceeded, UnsafeUrl
from hvcloud.storage.http_fetch import _redirect, download
from hvcloud.storage.limits import AGENT_URL_POLICY, DownloadLimits
from hvcloud.storage.transfer import parse_checksum
from hvcloud.storage.url_rules import CheckedUrl, UrlPolicy, parse_url
from tests.unit.storage.hostile_http import (
    HostileServer,
    body,
    drip,
    hostile_server,
    redirect,
    stall_after,
    stall_before_headers,
)

DATA = bytes(range(256)) * 4096  # 1 MiB
LOOPBACK = UrlPolicy(allow_loopback=True)
LIMITS = DownloadLimits(max_bytes=4 * len(DATA), connect_timeout=5, read_timeout=10)


@pytest.fixture
def web() -> Iterator[HostileServer]:
    with hostile_server() as server:
        server.routes["/image"] = body(DATA)
        yield server


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "download"


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[list[str]]]) -> list[str]:
    """Answer name lookups for the names in ``answers`` (one list of addresses per lookup, the last
    repeated); other names and literals go to the real resolver. Returns the names looked up."""
    real = socket.getaddrinfo
    looked_up: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        looked_up.append(host)
        queue = answers[host]
        addrs = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addrs]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


# ------------------------------------------------------------------ the good path


def test_download_with_checksum_and_progress(web: HostileServer, dest: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    size = download(web.url("/image"), dest, LOOPBACK, LIMITS,
                    checksum=parse_checksum("{SHA-256}" + hashlib.sha256(DATA).hexdigest()),
                    progress=lambda done, total: seen.append((done, total)))
    assert size == len(DATA) and dest.read_bytes() == DATA
    assert seen[-1] == (len(DATA), len(DATA))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and all(t == len(DATA) for _, t in seen)


def test_checksum_mismatch_is_refused(web: HostileServer, dest: Path) -> None:
    with pytest.raises(ChecksumMismatch, match="checksum mismatch"):
        download(web.url("/image"), dest, LOOPBACK, LIMITS, checksum=parse_checksum("{MD5}" + "0" * 32))


def test_body_is_stored_as_sent_never_decompressed(web: HostileServer, dest: Path) -> None:
    packed = gzip.compress(b"\0" * (8 * len(DATA)))
    web.routes["/gz"] = body(packed, headers={"Content-Encoding": "gzip"})
    assert download(web.url("/gz"), dest, LOOPBACK, LIMITS) == len(packed)
    assert dest.read_bytes() == packed
    assert web.requests[-1][2] == "identity"


def test_environment_proxies_are_ignored(web: HostileServer, dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert download(web.url("/image"), dest, LOOPBACK, LIMITS) == len(DATA)


# ------------------------------------------------------------------ URL and address rules


@pytest.mark.parametrize(("url", "fragment"), [
    ("file:///etc/passwd", "only http and https"),
    ("ftp://127.0.0.1/x", "scheme"),
    ("gopher://127.0.0.1:70/_x", "scheme"),
    ("127.0.0.1/image", "without a scheme"),
    ("http://user:pw@127.0.0.1/x", "credentials"),
    ("http://127.0.0.1/a b", "spaces"),
    ("http://127.0.0.1/\r\nHost: evil", "control"),
    ("http:///x", "no host"),
    ("http://127.0.0.1:99999/x", "malformed"),
    ("http://" + "a" * 3000, "too long"),
    ("http://" + "ä" * 70 + ".test/x", "invalid host name"),
])
def test_hostile_urls_are_refused_before_any_connection(web: HostileServer, dest: Path, url: str,
                                                        fragment: str) -> None:
    with pytest.raises(UnsafeUrl, match=fragment):
        download(url, dest, AGENT_URL_POLICY, LIMITS)
    assert web.requests == [] and not dest.exists()


def test_international_host_names_are_sent_in_ascii() -> None:
    assert parse_url("http://exämple.test/x")[1] == "xn--exmple-cua.test"


@pytest.mark.parametrize(("host", "policy", "fragment"), [
    ("127.0.0.1", UrlPolicy(), "loopback"),
    ("[::1]", UrlPolicy(allow_private=True), "loopback"),
    ("[::ffff:127.0.0.1]", UrlPolicy(), "loopback"),
    ("169.254.169.254", AGENT_URL_POLICY, "link-local"),
    ("0.0.0.0", AGENT_URL_POLICY, "reserved"),
    ("224.0.0.1", AGENT_URL_POLICY, "reserved"),
    ("10.0.0.1", UrlPolicy(allow_loopback=True), "private"),
])
def test_addresses_outside_the_policy_are_refused(web: HostileServer, dest: Path, host: str, policy: UrlPolicy,
                                                  fragment: str) -> None:
    with pytest.raises(UnsafeUrl, match=fragment):
        download(f"http://{host}:{web.port}/image", dest, policy, LIMITS)
    assert web.requests == []


def test_a_name_is_refused_when_any_of_its_addresses_is(web: HostileServer, dest: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"mixed.test": [["93.184.216.34", "127.0.0.1"]]})
    with pytest.raises(UnsafeUrl, match="loopback"):
        download(f"http://mixed.test:{web.port}/image", dest, UrlPolicy(), LIMITS)
    with pytest.raises(UnsafeUrl, match="loopback"):
        download(f"http://localhost:{web.port}/image", dest, UrlPolicy(), LIMITS)
    assert web.requests == []


def test_the_connection_goes_to_the_vetted_address_with_the_name_in_host(web: HostileServer, dest: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up = fake_dns(monkeypatch, {"images.test": [["127.0.0.1"], ["10.9.9.9"]]})
    assert download(f"http://images.test:{web.port}/image", dest, LOOPBACK, LIMITS) == len(DATA)
    assert looked_up == ["images.test"]
    assert web.requests == [("/image", f"images.test:{web.port}", "identity")]


# ------------------------------------------------------------------ redirects


def test_redirects_within_the_origin_are_followed(web: HostileServer, dest: Path) -> None:
    web.routes["/old"] = redirect("/older?x=1", 301)
    web.routes["/older"] = redirect(web.url("/image"), 307)
    assert download(web.url("/old"), dest, LOOPBACK, LIMITS) == len(DATA)
    assert web.paths() == ["/old", "/older?x=1", "/image"]


@pytest.mark.parametrize(("location", "error", "fragment"), [
    ("http://localhost:{port}/image", DownloadError, "another host"),
    ("http://127.0.0.2:{port}/image", DownloadError, "another host"),
    ("http://127.0.0.1:1/image", DownloadError, "another host or port"),
    ("file:///etc/passwd", UnsafeUrl, "redirect refused: only http and https"),
    ("http://u:p@127.0.0.1:{port}/image", UnsafeUrl, "credentials"),
    ("http://169.254.169.254/latest/meta-data/", DownloadError, "another host"),
    (None, DownloadError, "without a Location"),
])
def test_redirects_leaving_the_origin_are_refused(web: HostileServer, dest: Path, location: str | None,
                                                  error: type[Exception], fragment: str) -> None:
    web.routes["/away"] = redirect(None if location is None else location.format(port=web.port))
    with pytest.raises(error, match=fragment):
        download(web.url("/away"), dest, AGENT_URL_POLICY, LIMITS)
    assert web.paths() == ["/away"] and not dest.exists()


def test_an_https_upgrade_on_the_same_host_is_followed_and_a_downgrade_refused(web: HostileServer,
                                                                              dest: Path) -> None:
    web.routes["/upgrade"] = redirect(f"https://127.0.0.1:{web.port}/image")
    with pytest.raises(DownloadError, match=r"fetching https://127\.0\.0\.1:\d+/image failed"):
        download(web.url("/upgrade"), dest, LOOPBACK, LIMITS)
    assert web.paths() == ["/upgrade"] and not dest.exists()
    first = CheckedUrl(url="https://127.0.0.1/x", scheme="https", host="127.0.0.1", port=443,
                       address="127.0.0.1", path_and_query="/x")
    with pytest.raises(DownloadError, match="from https to http refused"):
        _redirect(first, first, "http://127.0.0.1:443/x", LOOPBACK)


def test_a_redirect_is_vetted_again_against_dns_rebinding(web: HostileServer, dest: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"images.test": [["127.0.0.1"], ["10.0.0.7"]]})
    web.routes["/moved"] = redirect("/image")
    with pytest.raises(UnsafeUrl, match="redirect refused: downloads from private addresses"):
        download(f"http://images.test:{web.port}/moved", dest, LOOPBACK, LIMITS)
    assert web.paths() == ["/moved"]


def test_redirect_loops_end(web: HostileServer, dest: Path) -> None:
    web.routes["/loop"] = redirect("/loop")
    with pytest.raises(DownloadError, match="more than 3 redirects"):
        download(web.url("/loop"), dest, LOOPBACK, DownloadLimits(max_bytes=len(DATA), max_redirects=3))
    assert web.paths() == ["/loop"] * 4


# ------------------------------------------------------------------ sizes and broken bodies


@pytest.mark.parametrize("route", ["/announced", "/chunked", "/unannounced"])
def test_oversized_bodies_are_refused(web: HostileServer, dest: Path, route: str) -> None:
    big = b"\1" * (len(DATA) + 1)
    web.routes["/announced"] = body(big)
    web.routes["/chunked"] = body(big, chunked=True)
    web.routes["/unannounced"] = body(big, length="")
    with pytest.raises(SizeLimitExceeded, match="larger than the size limit"):
        download(web.url(route), dest, LOOPBACK, DownloadLimits(max_bytes=len(DATA)))
    assert not dest.exists() or dest.stat().st_size <= len(DATA)


def test_bytes_beyond_the_announced_length_are_not_taken(web: HostileServer, dest: Path) -> None:
    web.routes["/understated"] = body(DATA + b"trailing garbage", length=str(len(DATA)))
    assert download(web.url("/understated"), dest, LOOPBACK, LIMITS) == len(DATA)
    assert dest.read_bytes() == DATA


def test_an_announced_oversize_is_refused_before_the_body(web: HostileServer, dest: Path) -> None:
    web.routes["/huge"] = body(b"x", length=str(10**18))
    with pytest.raises(SizeLimitExceeded, match=f"{10**18} bytes, larger than the size limit"):
        download(web.url("/huge"), dest, LOOPBACK, LIMITS)
    assert not dest.exists()


@pytest.mark.parametrize("length", ["abc", "-5", "1" * 40, "10, 11", "0x10"])
def test_invalid_content_length_is_refused(web: HostileServer, dest: Path, length: str) -> None:
    web.routes["/bad"] = body(b"0123456789", length=length)
    with pytest.raises(DownloadError):
        download(web.url("/bad"), dest, LOOPBACK, LIMITS)


def test_a_truncated_body_is_refused(web: HostileServer, dest: Path) -> None:
    web.routes["/short"] = body(DATA[:1000], length=str(len(DATA)))
    with pytest.raises(DownloadError, match=r"failed|ended after"):
        download(web.url("/short"), dest, LOOPBACK, LIMITS)


@pytest.mark.parametrize("status", [404, 403, 500, 204, 206])
def test_other_statuses_are_refused_without_the_query(web: HostileServer, dest: Path, status: int) -> None:
    def answer(h: Any) -> None:
        h.send_response(status)
        h.send_header("Content-Length", "0")
        h.end_headers()

    web.routes["/status"] = answer
    with pytest.raises(DownloadError, match=f"HTTP {status}") as info:
        download(web.url("/status?signature=TOPSECRET"), dest, LOOPBACK, LIMITS)
    assert "TOPSECRET" not in str(info.value) and "/status" in str(info.value)


# ------------------------------------------------------------------ slow and silent servers


def test_a_server_that_never_answers_times_out(web: HostileServer, dest: Path) -> None:
    web.routes["/silent"] = stall_before_headers(web)
    with pytest.raises(DownloadError, match="timed out"):
        download(web.url("/silent"), dest, LOOPBACK, DownloadLimits(max_bytes=len(DATA), read_timeout=0.3))


def test_a_body_that_stops_times_out(web: HostileServer, dest: Path) -> None:
    web.routes["/stuck"] = stall_after(web, DATA[:100], len(DATA))
    with pytest.raises(DownloadError, match="timed out reading"):
        download(web.url("/stuck"), dest, LOOPBACK, DownloadLimits(max_bytes=len(DATA), read_timeout=0.3))


def test_a_drip_within_the_read_timeout_meets_the_deadline(web: HostileServer, dest: Path) -> None:
    web.routes["/drip"] = drip(web, DATA[:400], 0.02)
    with pytest.raises(DownloadError, match=r"took longer than 0\.2 s"):
        download(web.url("/drip"), dest, LOOPBACK,
                 DownloadLimits(max_bytes=len(DATA), read_timeout=5, total_seconds=0.2))


def test_a_refused_connection_is_reported(dest: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="failed"):
        download(f"http://127.0.0.1:{port}/x", dest, LOOPBACK, LIMITS)
