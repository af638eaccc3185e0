"""Request signing for the agent's ``password`` auth mode (pure functions, no I/O).

CloudStack's Java server sends no credentials at all; hvcloud's server and tools sign every
request with the agent's username and password instead, so that the password itself never
crosses the wire and a captured request cannot be altered or replayed:

    signature = base64(HMAC-SHA256(password, METHOD \\n PATH \\n TIMESTAMP \\n NONCE \\n sha256(body)))

sent in the headers below. The agent refuses a timestamp further than ``MAX_SKEW`` seconds from
its clock and any nonce it has already seen within that window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

HEADER_USER = "x-hvcloud-user"
HEADER_TIMESTAMP = "x-hvcloud-timestamp"
HEADER_NONCE = "x-hvcloud-nonce"
HEADER_SIGNATURE = "x-hvcloud-signature"
MAX_SKEW = 300


def string_to_sign(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((method.upper(), path, timestamp, nonce, digest)).encode("utf-8")


def signature(password: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    mac = hmac.new(password.encode("utf-8"), string_to_sign(method, path, timestamp, nonce, body),
                   hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def sign_headers(username: str, password: str, method: str, path: str, body: bytes,
                 now: float | None = None) -> dict[str, str]:
    """The headers that authenticate one request."""
    ts = str(int(time.time() if now is None else now))
    nonce = secrets.token_hex(16)
    return {
        HEADER_USER: username,
        HEADER_TIMESTAMP: ts,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: signature(password, method, path, ts, nonce, body),
    }


def verify(password: str, method: str, path: str, timestamp: str, nonce: str, body: bytes,
           given: str) -> bool:
    expected = signature(password, method, path, timestamp, nonce, body)
    return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace"))
