"""A client for any agent that speaks CloudStack's Hyper-V protocol (hvcloud's or another).

Used by the management server's AgentManager, the tests and the benchmarks. It keeps connections
alive, signs requests when given credentials (hvcloud's ``password`` auth), and can pin the
agent's certificate by SHA-256 fingerprint (trust on first use, as the server's addHost does).
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Mapping
from typing import Any

import httpx

from hvcloud.wire import codec, signing
from hvcloud.wire.base import Answer, Command, WireModel
from hvcloud.wire.commands import HOST_VM_STATE_REPORT, STARTUP

API_PREFIX = "/api/HypervResource/"
#: idle connections are kept this long: past the server's 60 s ping interval (so a host's pings and
#: commands reuse one TLS connection instead of paying a handshake each time) and short of the
#: agent's 75 s keep-alive (so the agent never closes a connection the client is about to reuse)
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


def _fingerprint(der: bytes) -> str:
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


class AgentClient:
    def __init__(self, base_url: str, *, username: str | None = None, password: str | None = None,
                 pinned_sha256: str | None = None, verify: bool | ssl.SSLContext = False,
                 timeout: float = 60.0, connect_timeout: float = 5.0,
                 cert: tuple[str, str] | None = None, max_connections: int = 16,
                 keepalive_seconds: float = KEEPALIVE_SECONDS) -> None:
        self.base_url = base_url.rstrip("/")
        self._user = username
        self._password = password
        self._pinned = pinned_sha256.upper() if pinned_sha256 else None
        self.peer_sha256: str | None = None
        verify_arg: bool | ssl.SSLContext = verify
        if cert is not None:
            ctx = ssl.create_default_context() if verify else ssl._create_unverified_context()
            if isinstance(verify, ssl.SSLContext):
                ctx = verify
            ctx.load_cert_chain(*cert)
            verify_arg = ctx
        self._http = httpx.AsyncClient(
            verify=verify_arg, timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections,
                                keepalive_expiry=keepalive_seconds),
            headers={"content-type": "application/json"})

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _check_peer(self, response: httpx.Response) -> None:
        stream = response.extensions.get("network_stream")
        ssl_obj = stream.get_extra_info("ssl_object") if stream is not None else None
        if ssl_obj is None:
            return
        der = ssl_obj.getpeercert(binary_form=True)
        if der:
            self.peer_sha256 = _fingerprint(der)
        if self._pinned and self.peer_sha256 != self._pinned:
            raise CertificateMismatch(f"agent certificate {self.peer_sha256} does not match the pinned "
                                      f"{self._pinned}")

    async def post_raw(self, path: str, body: bytes, extra_headers: Mapping[str, str] | None = None) -> httpx.Response:
        headers: dict[str, str] = {}
        if self._user is not None and self._password is not None:
            headers.update(signing.sign_headers(self._user, self._password, "POST", path, body))
        if extra_headers:
            headers.update(extra_headers)
        try:
            response = await self._http.post(self.base_url + path, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise AgentUnreachable(f"{self.base_url}: {type(exc).__name__}: {exc}") from None
        self._check_peer(response)
        return response

    async def _post(self, fqcn: str, body: bytes) -> bytes:
        response = await self.post_raw(API_PREFIX + fqcn, body)
        if response.status_code == 404:
            raise AgentRefused(404, f"Unsupported command {fqcn}")
        if response.status_code != 200:
            raise AgentRefused(response.status_code, response.text[:500])
        return response.content

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
