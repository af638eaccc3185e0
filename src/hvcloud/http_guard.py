"""What the agent's and the management server's HTTP listeners accept before any credential is seen.

Both run uvicorn, which out of the box (1) believes ``X-Forwarded-For``/``X-Forwarded-Proto`` from
127.0.0.1, so any local process could claim any client address (the agent's ``--allow-from`` is its
only check in ``cloudstack-compat`` mode), (2) waits forever for a client to finish its request
headers, and (3) takes any number of such connections. :func:`uvicorn_options` closes all three:

* forwarding headers are honoured only from the proxies the operator names (``--trusted-proxy``);
* a request's headers must arrive within ``header_timeout`` seconds of its first byte (or of the
  connection), and its body may not pause longer than ``body_idle_timeout`` seconds;
* a source address may hold at most ``max_pending_per_source`` connections that have not yet
  delivered a whole request -- the state in which nobody can have checked their credentials. Further
  connections from it are answered 503 and closed. Trusted proxies are exempt (they carry everybody).

The limits live in a subclass of uvicorn's httptools protocol, passed as ``http=`` to uvicorn.Config.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hvcloud import logs

log = logs.get("hvcloud.http")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ASGI scope key holding the (host, port) of the TCP peer, which forwarding headers never change
PEER_KEY = "hvcloud.peer"
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_MAX_PENDING_PER_SOURCE = 64
#: how long an idle keep-alive connection stays open. Longer than the idle expiry of the clients that
#: talk to us (httpx 5 s, aiohttp 15 s, our agent client 70 s): a listener that closes a connection a
#: client has just chosen to reuse receives that client's next request unread, and closing a socket
#: with unread data resets it, so the client gets "connection reset" for a request nobody handled.
#: uvicorn's default (5 s) equals httpx's, and a busy event loop widened that race enough to kill a
#: benchmark's deploy POSTs (seen in ``bench/server_scale.py``).
KEEP_ALIVE_SECONDS = 75
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 33\r\n"
         b"connection: close\r\n\r\ntoo many pending connections here")


def parse_networks(values: Iterable[str], option: str) -> list[IpNetwork]:
    """Addresses and CIDRs, repeated or comma-separated; ValueError names ``option`` and the bad part."""
    out: list[IpNetwork] = []
    for v in values:
        for part in v.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{option}: {part!r} is not an address or CIDR") from None
    return out


def in_networks(address: str | None, networks: Iterable[IpNetwork]) -> bool:
    if address is None:
        return False
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(addr in net for net in networks)


@dataclass(frozen=True)
class ConnectionLimits:
    trusted_proxies: tuple[IpNetwork, ...] = ()
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_idle_timeout: float = 60.0
    max_pending_per_source: int = DEFAULT_MAX_PENDING_PER_SOURCE

    def validate(self) -> None:
        if not 0 < self.header_timeout <= 3600:
            raise ValueError("--header-timeout must be between 0 and 3600 seconds")
        if self.body_idle_timeout <= 0:
            raise ValueError("the body timeout must be positive")
        if self.max_pending_per_source < 1:
            raise ValueError("--max-pending-per-source must be at least 1")


def peer_of(scope: Any) -> str | None:
    """The TCP peer's address of an ASGI request (the client address when not served by uvicorn
    through :func:`uvicorn_options`, as in tests' in-process clients)."""
    peer = scope.get(PEER_KEY) or scope.get("client")
    return str(peer[0]) if peer else None


def uvicorn_options(limits: ConnectionLimits) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` that apply ``limits``."""
    trusted = [str(n) for n in limits.trusted_proxies]
    return {"http": guarded_protocol(limits), "proxy_headers": bool(trusted),
            "forwarded_allow_ips": trusted, "timeout_keep_alive": KEEP_ALIVE_SECONDS}


def guarded_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """A protocol class with its own per-source counter (one per listener)."""
    pending: Counter[str] = Counter()

    class GuardedProtocol(_GuardedProtocol):
        _limits = limits
        _pending = pending

    return GuardedProtocol


class _GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body timeouts and the per-source cap."""

    _limits: ConnectionLimits
    _pending: Counter[str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._source: str | None = None
        self._counted = False
        self._receiving = False

    # ---------------------------------------------------------------- connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        host = self.client[0] if self.client else None
        if host is not None and not in_networks(host, self._limits.trusted_proxies):
            self._source = host
            if self._pending[host] >= self._limits.max_pending_per_source:
                log.warning("connection refused: too many pending connections", peer=host,
                            limit=self._limits.max_pending_per_source)
                transport.write(_BUSY)
                transport.close()
                return
        self._begin_receiving()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_receiving()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Any byte on an idle keep-alive connection starts the header clock (uvicorn stops its
        keep-alive timer on any byte, even blank lines the parser skips)."""
        if not self._receiving and self.parser is not None and not self.transport.is_closing():
            self._begin_receiving()
        super().data_received(data)

    # ---------------------------------------------------------------- request phases

    def on_message_begin(self) -> None:
        super().on_message_begin()
        cast(dict[str, Any], self.scope)[PEER_KEY] = self.client
        self._begin_receiving()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self._limits.body_idle_timeout, "request body")

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        if self._receiving:
            self._arm(self._limits.body_idle_timeout, "request body")

    def on_message_complete(self) -> None:
        self._stop_receiving()
        super().on_message_complete()

    # ---------------------------------------------------------------- bookkeeping

    def _begin_receiving(self) -> None:
        if self._receiving:
            return
        self._receiving = True
        if self._source is not None:
            self._pending[self._source] += 1
            self._counted = True
        self._arm(self._limits.header_timeout, "request headers")

    def _stop_receiving(self) -> None:
        self._receiving = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._counted and self._source is not None:
            self._counted = False
            self._pending[self._source] -= 1
            if self._pending[self._source] <= 0:
                del self._pending[self._source]

    def _arm(self, seconds: float, what: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_later(seconds, self._expired, what)

    def _expired(self, what: str) -> None:
        self._timer = None
        if self._receiving and self.flow is not None and self.flow.read_paused:
            # the application is not reading the body yet: the client is not the one stalling
            self._arm(self._limits.body_idle_timeout, what)
            return
        log.info("connection closed: client too slow", peer=self._source or (self.client or ("?",))[0],
                 waiting_for=what)
        self._stop_receiving()
        if not self.transport.is_closing():
            self.transport.close()
