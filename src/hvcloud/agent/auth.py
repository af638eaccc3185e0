"""Who may send commands to the agent.

* ``password``: every request is signed with the agent's credentials (``hvcloud.wire.signing``);
  tampered, stale and replayed requests are refused.
* ``mtls``: the TLS layer demands a client certificate from the configured CA, so a request that
  reaches the application has already been authenticated.
* ``cloudstack-compat``: no credentials (the stock Java server sends none), but only from the
  ``--allow-from`` networks.

``--allow-from`` narrows the other two modes as well when given.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping

from hvcloud.agent.config import AuthMode, IpNetwork
from hvcloud.agent.credentials import Credentials
from hvcloud.http_guard import in_networks
from hvcloud.wire import signing

#: nonces are random tokens (``signing.sign_headers`` sends 32 hex digits)
_NONCE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
#: base64 of an HMAC-SHA256
_SIGNATURE = re.compile(r"^[A-Za-z0-9+/]{43}=$")


class AuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class NonceCache:
    """Nonces seen within the signature window; bounded so a flood cannot exhaust memory."""

    def __init__(self, window: float = signing.MAX_SKEW * 2, max_entries: int = 1_000_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._window = window
        self._max = max_entries
        self._lock = threading.Lock()

    def check_and_add(self, nonce: str, now: float) -> bool:
        """False if the nonce was already used."""
        with self._lock:
            while self._seen:
                _oldest, ts = next(iter(self._seen.items()))
                if now - ts <= self._window and len(self._seen) < self._max:
                    break
                self._seen.popitem(last=False)
            if nonce in self._seen:
                return False
            self._seen[nonce] = now
            return True


class Authenticator:
    def __init__(self, mode: AuthMode, credentials: Credentials | None,
                 allow_from: list[IpNetwork]) -> None:
        if mode == "password" and credentials is None:
            raise ValueError("password mode needs credentials")
        self.mode = mode
        self._creds = credentials
        self._allow = allow_from
        self._nonces = NonceCache()

    def address_allowed(self, client: str | None) -> bool:
        return not self._allow or in_networks(client, self._allow)

    def check_headers(self, client: str | None, headers: Mapping[str, str]) -> None:
        """Everything that can be checked before the body is read (the address, and the presence,
        user, clock skew and form of the signature headers); raise AuthError otherwise. A client
        that fails here never gets the agent to buffer its body."""
        if not self.address_allowed(client):
            raise AuthError(403, f"address {client} is not allowed to send commands")
        if self.mode != "password":
            return
        assert self._creds is not None
        user = headers.get(signing.HEADER_USER)
        ts = headers.get(signing.HEADER_TIMESTAMP)
        nonce = headers.get(signing.HEADER_NONCE)
        sig = headers.get(signing.HEADER_SIGNATURE)
        if not (user and ts and nonce and sig):
            raise AuthError(401, "authentication required: this agent accepts only signed requests")
        if user != self._creds.username:
            raise AuthError(401, "unknown user or bad signature")
        try:
            when = int(ts)
        except ValueError:
            raise AuthError(401, "malformed timestamp") from None
        if abs(time.time() - when) > signing.MAX_SKEW:
            raise AuthError(401, "request timestamp outside the allowed clock skew")
        if not _NONCE.match(nonce):
            raise AuthError(401, "malformed nonce")
        if not _SIGNATURE.match(sig):
            raise AuthError(401, "unknown user or bad signature")

    def check_signature(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> None:
        """The signature over the body, and the nonce not seen before (after :meth:`check_headers`)."""
        if self.mode != "password":
            return
        assert self._creds is not None
        ts, nonce = headers[signing.HEADER_TIMESTAMP], headers[signing.HEADER_NONCE]
        if not signing.verify(self._creds.password, method, path, ts, nonce, body,
                              headers[signing.HEADER_SIGNATURE]):
            raise AuthError(401, "unknown user or bad signature")
        if not self._nonces.check_and_add(nonce, time.time()):
            raise AuthError(401, "replayed request refused")

    def check(self, client: str | None, method: str, path: str, headers: Mapping[str, str],
              body: bytes) -> None:
        """Raise AuthError unless the request may proceed."""
        self.check_headers(client, headers)
        self.check_signature(method, path, headers, body)
