"""CloudStack's request signature (HMAC-SHA1 over the sorted, Java-URL-encoded, lower-cased query).

See ``cloudstack-api.md`` §1.3: names keep their case and are sorted case-sensitively, values are
encoded like ``java.net.URLEncoder`` with ``+`` turned into ``%20``, the whole string is lower-cased.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import quote


def java_urlencode(value: str) -> str:
    return quote(value, safe="*").replace("~", "%7E")


def _rfc3986_encode(value: str) -> str:
    return quote(value, safe="*~")


def canonical_string(params: Iterable[tuple[str, str]], *, java: bool = True) -> str:
    encode = java_urlencode if java else _rfc3986_encode
    items = sorted((k, v) for k, v in params if k.lower() != "signature")
    return "&".join(f"{k}={encode(v)}" for k, v in items).lower()


def compute_signature(params: Iterable[tuple[str, str]], secret: str, *, java: bool = True) -> str:
    canon = canonical_string(params, java=java)
    mac = hmac.new(secret.encode(), canon.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode("ascii")


def signature_matches(params: list[tuple[str, str]], secret: str, signature: str) -> bool:
    """Compare in constant time; values with ``~`` are also accepted in the RFC 3986 form Python and Go
    clients produce, since Java escapes ``~`` and they do not."""
    received = signature.encode()
    if hmac.compare_digest(compute_signature(params, secret).encode(), received):
        return True
    if any("~" in v for _, v in params):
        return hmac.compare_digest(compute_signature(params, secret, java=False).encode(), received)
    return False


def parse_expires(value: str) -> datetime | None:
    """Parse ``expires`` in the forms clients send (``+0000`` offsets, ``Z``, optional milliseconds)."""
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
