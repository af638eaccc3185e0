"""A client for any agent that speaks CloudStack's Hyper-V protocol (hvcloud's or another).

Used by the management server's AgentManager, the tests and the benchmarks. It keeps connections
alive, signs requests when given credentials (hvcloud's ``password`` auth), and can pin the
agent's certificate by SHA-256 fingerprint (trust on first use, as the server's addHost does).

It runs on aiohttp, not httpx: a server sends every ping and every VM command through it, and
aiohttp costs about a quarter of httpx's CPU per request over TLS (``bench/agent_rpc.py``).
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from hvcloud.wire import codec, signing
from hvcloud.wire.base import Answer, Command, WireModel
from hvcloud.wire.commands import HOST_VM_STATE_REPORT, STARTUP

API_PREFIX = "/api/HypervResource/"
#: idle connections are kept this long: past the server's 60 s ping interval (so a host's pings and
#: commands reuse one TLS connection instead of paying a handshake each time) and short of the
#: agent's keep-alive, ``http_guard.KEEP_ALIVE_SECONDS`` (so the agent never closes a connection the
#: client is about to reuse)
KEEPALIVE_SECONDS = 70.0


class AgentUnreachable(Exception):
    """No answer: connection refused, timeout, TLS failure."""


class AgentRefused(Exception):
    """The agent answered with an HTTP error (auth, size, unknown command)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class CertificateMismatch(AgentUnreachable):
    pass


@dataclass(frozen=True)
class RawResponse:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def _fingerprint(der: bytes) -> str:
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


class _CheckedSSLObject(ssl.SSLObject):
    """Hands the peer's certificate to its client the moment the handshake completes, so a pinned
    certificate is checked before any request (signed, carrying a command) goes out on the connection."""

    def do_handshake(self) -> None:
        super().do_handshake()
        check = getattr(self.context, "hvcloud_peer_check", None)
        if check is not None:
            check(self.getpeercert(binary_form=True))


class _PinFailed(ssl.SSLCertVerificationError):
    """Fails the handshake; the client then raises :class:`CertificateMismatch`."""


class AgentClient:
    def __init__(self, base_url: str, *, username: str | None = None, password: str | None = None,
                 pinned_sha256: str | None = None, verify: bool = False,
                 timeout: float = 60.0, connect_timeout: float = 5.0,
                 cert: tuple[str, str] | None = None, max_connections: int = 16,
                 keepalive_seconds: float = KEEPALIVE_SECONDS) -> None:
        self.base_url = base_url.rstrip("/")
        self._user = username
        self._password = password
        self._pinned = pinned_sha256.upper() if pinned_sha256 else None
        self.peer_sha256: str | None = None
        self._mismatch: str | None = None
        self._tls: ssl.SSLContext | None = None
        if self.base_url.startswith("https:"):
            self._tls = ssl.create_default_context() if verify else ssl._create_unverified_context()
            if cert is not None:
                self._tls.load_cert_chain(*cert)
            self._tls.sslobject_class = _CheckedSSLObject
            self._tls.hvcloud_peer_check = self._check_peer  # type: ignore[attr-defined]
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=timeout)
        self._limit = max_connections
        self._keepalive = keepalive_seconds
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        """Made on first use, inside the event loop that uses it (aiohttp binds a session to one)."""
        if self._http is None:
            connector = aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=self._keepalive,
                                             ssl=self._tls if self._tls is not None else False)
            self._http = aiohttp.ClientSession(connector=connector, timeout=self._timeout,
                                               headers={"content-type": "application/json"},
                                               skip_auto_headers=("User-Agent",))
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _check_peer(self, der: bytes | None) -> None:
        if der:
            self.peer_sha256 = _fingerprint(der)
        if self._pinned and self.peer_sha256 != self._pinned:
            self._mismatch = f"agent certificate {self.peer_sha256} does not match the pinned {self._pinned}"
            raise _PinFailed(self._mismatch)

    async def post_raw(self, path: str, body: bytes, extra_headers: Mapping[str, str] | None = None) -> RawResponse:
        headers: dict[str, str] = {}
        if self._user is not None and self._password is not None:
            headers.update(signing.sign_headers(self._user, self._password, "POST", path, body))
        if extra_headers:
            headers.update(extra_headers)
        try:
            async with self._session().post(self.base_url + path, data=body, headers=headers) as response:
                return RawResponse(response.status, await response.read())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            if self._mismatch is not None:
                mismatch, self._mismatch = self._mismatch, None
                raise CertificateMismatch(mismatch) from None
            raise AgentUnreachable(f"{self.base_url}: {type(exc).__name__}: {exc}") from None

    async def _post(self, fqcn: str, body: bytes) -> bytes:
        response = await self.post_raw(API_PREFIX + fqcn, body)
        if response.status == 404:
            raise AgentRefused(404, f"Unsupported command {fqcn}")
        if response.status != 200:
            raise AgentRefused(response.status, response.text[:500])
        return response.body

    async def send(self, command: Command) -> Answer:
        """Send one command and return its answer (element 0, as the Java server reads it)."""
        raw = await self._post(type(command).FQCN, codec.dumps(command.to_json_obj()))
        return codec.parse_answer(raw)

    async def send_body(self, fqcn: str, body: Mapping[str, Any]) -> Answer:
        return codec.parse_answer(await self._post(fqcn, codec.dumps(dict(body))))

    async def startup(self, commands: list[WireModel]) -> list[WireModel]:
        raw = await self._post(STARTUP, codec.encode_wrapped_array(commands))
        return codec.parse_wrapped_array(codec.decode_json(raw))

    async def vm_state_report(self) -> dict[str, str]:
        return codec.parse_vm_state_report(await self._post(HOST_VM_STATE_REPORT, b"{}"))
