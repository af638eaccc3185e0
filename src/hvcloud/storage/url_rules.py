"""Which URLs images may be downloaded from, by the management server and by agents alike.

Only ``http``/``https``, without credentials; the host name is resolved once and every address it
resolves to must be public unless the policy allows private or loopback sources (link-local,
multicast, reserved and unspecified addresses are never allowed). The download then connects to
the checked address itself (see :mod:`hvcloud.storage.http_fetch`), so a DNS answer cannot change
between check and use.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from hvcloud.storage.errors import UnsafeUrl

MAX_URL_LENGTH = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class UrlPolicy:
    allow_private: bool = False
    allow_loopback: bool = False
    #: private or loopback networks allowed one by one (CloudStack's ``secstorage.allowed.internal.sites``)
    allowed_networks: tuple[IPNetwork, ...] = ()


@dataclass(frozen=True)
class CheckedUrl:
    url: str
    scheme: str
    host: str
    port: int
    address: str
    path_and_query: str

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port

    @property
    def display(self) -> str:
        """The URL without its query, for messages and logs (a query may carry a signature)."""
        return f"{self.scheme}://{self.host}:{self.port}{self.path_and_query.split('?', 1)[0]}"


def _classify(addr: IPAddress) -> str | None:
    """Why an address is not public, or None when it is."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return _classify(addr.ipv4_mapped)
    if addr.is_loopback:
        return "loopback"
    if addr.is_unspecified or addr.is_multicast or addr.is_reserved:
        return "reserved"
    if addr.is_link_local:
        return "link-local"
    if addr.is_private or not addr.is_global:
        return "private"
    return None


def check_address(addr: IPAddress, policy: UrlPolicy) -> None:
    kind = _classify(addr)
    if kind is None:
        return
    if kind == "loopback" and policy.allow_loopback:
        return
    if kind == "private" and policy.allow_private:
        return
    plain = addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped else addr
    if kind in ("private", "loopback") and any(plain in net for net in policy.allowed_networks):
        return
    raise UnsafeUrl(f"downloads from {kind} addresses ({addr}) are not allowed by the download settings")


def parse_url(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path and query)`` of an acceptable URL; raises UnsafeUrl."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl("URL too long")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise UnsafeUrl("URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"malformed URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        what = f"the URL scheme {scheme!r}" if scheme else "a URL without a scheme"
        raise UnsafeUrl(f"only http and https URLs can be downloaded, not {what}")
    if parts.username or parts.password:
        raise UnsafeUrl("URLs with credentials are not accepted")
    host = (parts.hostname or "").lower()
    if not host:
        raise UnsafeUrl("the URL has no host")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UnsafeUrl(f"invalid host name {host[:64]!r}") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port or (443 if scheme == "https" else 80), path


def resolve(url: str, policy: UrlPolicy) -> CheckedUrl:
    """Parse, resolve and vet ``url``; the first acceptable address is the one to connect to."""
    scheme, host, port, path = parse_url(url)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise UnsafeUrl(f"cannot resolve {host}: {exc}") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise UnsafeUrl(f"{host} has no addresses")
    for addr in addresses:
        check_address(addr, policy)
    return CheckedUrl(url=url, scheme=scheme, host=host, port=port, address=str(addresses[0]),
                      path_and_query=path)
