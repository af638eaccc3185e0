"""Console tokens: what the management server grants and a console proxy checks without calling back.

A token is a Fernet token (AES-128-CBC + HMAC-SHA256) over a small JSON grant, under a key derived
from the server's secret key (``SecretBox.derive_key(TOKEN_PURPOSE)``), so every server and proxy that
shares ``secret.key`` can mint or open one, and a tenant learns nothing from it (the host address and
port stay hidden). A token is short-lived (``expires``) and names one VM; *one use* is enforced by
the proxy claiming ``token_id`` in the ``console_session`` table (see ``console_proxy.sessions``).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict, dataclass
from typing import Literal

from cryptography.fernet import Fernet, InvalidToken

#: the purpose string for ``SecretBox.derive_key``
TOKEN_PURPOSE = "console-proxy-token"
#: tokens longer than this are refused before any decoding (a grant encodes to about 400 bytes)
MAX_TOKEN_BYTES = 2048
_VERSION = 1


class TokenError(Exception):
    """A token that must be refused. ``reason`` is short and safe to show the client and the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ConsoleGrant:
    """What one token allows: a console on one VM, until ``expires`` (Unix seconds).

    ``protocol`` is ``vnc`` (``host``:``port`` is the VM's VNC server, reached by the proxy) or
    ``rdp`` (Hyper-V: ``host``:``port`` is the host's VMConnect listener and ``instance_id`` the VM
    GUID, sent as the RDP pre-connection blob). ``extra`` is CloudStack's optional extra validation
    token: when set, the client must present the same value again to the proxy.

    The proxy's URLs (``console_proxy.app``): ``GET /console?token=T[&extra=E]`` the noVNC page,
    ``GET /websockify?token=T[&extra=E]`` the WebSocket (subprotocol ``binary``) bridged to the VNC
    server, ``GET /rdp?token=T`` the ``.rdp`` file of an ``rdp`` grant, ``/novnc/…`` noVNC's files.
    """

    token_id: str
    vm_id: str
    vm_name: str
    account_id: str
    protocol: Literal["vnc", "rdp"]
    host: str
    port: int
    issued: float
    expires: float
    instance_id: str | None = None
    extra: str | None = None
    #: the VM's VNC password, read from the database by the server; the proxy answers the VNC
    #: server's challenge with it and offers the browser no authentication, so the password never
    #: reaches the client and the proxy needs neither the server's secret key nor the VM's row
    vnc_password: str | None = None


class TokenSigner:
    """Mints and opens console tokens under one 32-byte key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a console token key is 32 bytes")
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def mint(self, grant: ConsoleGrant) -> str:
        body = json.dumps({"v": _VERSION, **asdict(grant)}, separators=(",", ":"))
        return self._fernet.encrypt(body.encode()).decode("ascii")

    def open(self, token: str, now: float | None = None) -> ConsoleGrant:
        """The grant of ``token``; raises :class:`TokenError` ("malformed", "forged", "expired")."""
        now = time.time() if now is None else now
        if not token or len(token) > MAX_TOKEN_BYTES or not token.isascii():
            raise TokenError("malformed token")
        try:
            body = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, ValueError):
            raise TokenError("forged or corrupted token") from None
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or data.pop("v", None) != _VERSION:
                raise TypeError("version")
            grant = ConsoleGrant(**data)
            if grant.protocol not in ("vnc", "rdp") or not isinstance(grant.port, int):
                raise TypeError("protocol")
        except (TypeError, ValueError):
            raise TokenError("malformed token") from None
        if grant.expires <= now:
            raise TokenError("expired token")
        return grant
