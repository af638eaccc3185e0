"""Downloading an image over HTTP(S) with every limit a hostile URL or server could abuse: the one
download used by the management server (registerTemplate, registerIso) and by agents (HTTP image
stores).

Connections go to the address :mod:`hvcloud.storage.url_rules` vetted (``Host`` header and TLS
SNI/verification still use the name); proxy, netrc and certificate settings from the environment
are ignored. Redirects are followed by hand, each target vetted again, and only within the first
URL's origin (scheme, host and port) or to its HTTPS upgrade (same host, port 443 or unchanged);
never from HTTPS down to HTTP. The body is taken as sent (``Accept-Encoding: identity``, no
decompression), capped by ``Content-Length`` and while streaming, and must arrive whole; connect and
read timeouts and an overall deadline apply.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx

from hvcloud.storage.backend import Progress
from hvcloud.storage.errors import DownloadError, UnsafeUrl
from hvcloud.storage.limits import DownloadLimits
from hvcloud.storage.transfer import Checksum, ProgressLog, check_size, write_chunks
from hvcloud.storage.url_rules import CheckedUrl, UrlPolicy, parse_url, resolve

#: more digits than any size limit can be written with
_MAX_LENGTH_DIGITS = 20


def download(url: str, dest: Path, policy: UrlPolicy, limits: DownloadLimits, *,
             checksum: Checksum | None = None, progress: Progress | None = None) -> int:
    """Download ``url`` into ``dest`` (created or truncated) and verify ``checksum``; return the
    size. Raises DownloadError: UnsafeUrl, SizeLimitExceeded, ChecksumMismatch or the base class."""
    deadline = time.monotonic() + limits.total_seconds
    timeout = httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout)
    first = resolve(url, policy)
    current = first
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for _ in range(limits.max_redirects + 1):
            response = _send(client, current)
            try:
                if response.is_redirect:
                    current = _redirect(first, current, response.headers.get("location", ""), policy)
                    continue
                if response.status_code != 200:
                    raise DownloadError(f"the server answered HTTP {response.status_code} for {current.display}")
                return _save(response, dest, limits, deadline, checksum, progress, current)
            finally:
                response.close()
    raise DownloadError(f"more than {limits.max_redirects} redirects from {first.display}")


def _pinned(checked: CheckedUrl) -> tuple[str, dict[str, str], dict[str, str]]:
    ip = ipaddress.ip_address(checked.address)
    literal = f"[{ip}]" if ip.version == 6 else str(ip)
    default_port = 443 if checked.scheme == "https" else 80
    host_header = checked.host if checked.port == default_port else f"{checked.host}:{checked.port}"
    url = f"{checked.scheme}://{literal}:{checked.port}{checked.path_and_query}"
    extensions = {"sni_hostname": checked.host} if checked.scheme == "https" else {}
    return url, {"Host": host_header, "Accept-Encoding": "identity"}, extensions


def _send(client: httpx.Client, target: CheckedUrl) -> httpx.Response:
    url, headers, extensions = _pinned(target)
    try:
        request = client.build_request("GET", url, headers=headers, extensions=extensions)
        return client.send(request, stream=True)
    except httpx.ConnectTimeout:
        raise DownloadError(f"timed out connecting to {target.host}") from None
    except httpx.TimeoutException:
        raise DownloadError(f"timed out waiting for {target.display} to answer") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise DownloadError(f"fetching {target.display} failed: {exc}") from None


def _redirect(first: CheckedUrl, current: CheckedUrl, location: str, policy: UrlPolicy) -> CheckedUrl:
    if not location:
        raise DownloadError("a redirect without a Location header")
    target = urljoin(current.url, location)
    try:
        scheme, host, port, _path = parse_url(target)
    except UnsafeUrl as exc:
        raise UnsafeUrl(f"redirect refused: {exc}") from None
    upgrade = (first.scheme, scheme) == ("http", "https") and port in (first.port, 443)
    if host != first.host or (port != first.port and not upgrade):
        raise DownloadError(f"redirect to another host or port ({host}:{port}) refused")
    if scheme != first.scheme and not upgrade:
        raise DownloadError(f"redirect from {first.scheme} to {scheme} refused")
    try:
        return resolve(target, policy)
    except UnsafeUrl as exc:
        raise UnsafeUrl(f"redirect refused: {exc}") from None


def _announced_size(response: httpx.Response) -> int | None:
    length = response.headers.get("content-length")
    if length is None:
        return None
    if not (length.isascii() and length.isdigit()) or len(length) > _MAX_LENGTH_DIGITS:
        raise DownloadError(f"invalid Content-Length {length[:32]!r}")
    return int(length)


def _save(response: httpx.Response, dest: Path, limits: DownloadLimits, deadline: float,
          checksum: Checksum | None, progress: Progress | None, where: CheckedUrl) -> int:
    total = _announced_size(response)
    check_size(total, limits.max_bytes)
    with open(dest, "wb") as out:
        return write_chunks(_body(response, total, deadline, limits.total_seconds), out,
                            max_bytes=limits.max_bytes, progress=ProgressLog(where.display, total, progress),
                            checksum=checksum)


def _body(response: httpx.Response, total: int | None, deadline: float, total_seconds: float) -> Iterator[bytes]:
    """The raw body as it arrives (each network read, so the deadline is checked often)."""
    done = 0
    try:
        for chunk in response.iter_raw():
            if time.monotonic() > deadline:
                raise DownloadError(f"the download took longer than {total_seconds:g} s")
            done += len(chunk)
            yield chunk
    except httpx.TimeoutException:
        raise DownloadError("timed out reading the image") from None
    except httpx.HTTPError as exc:
        raise DownloadError(f"the download failed: {exc}") from None
    if total is not None and done != total:
        raise DownloadError(f"the download ended after {done} of {total} bytes")
