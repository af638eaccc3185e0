"""The HTTP access log without parameter values.

CloudStack clients send everything in the query string, passwords and S3 secret keys included
(``createAccount&password=…``, ``addImageStoreS3&secretkey=…``), and uvicorn's access log prints the
whole path. This filter keeps the line but shows only the command name.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, quote

ACCESS_LOGGER = "uvicorn.access"


def redact_path(path: str) -> str:
    base, sep, query = path.partition("?")
    if not sep:
        return path
    command = next((v for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() == "command"), None)
    return f"{base}?command={quote(command[:64], safe='')}" if command else f"{base}?…"


class RedactQuery(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def install() -> None:
    """Add the filter to uvicorn's access logger (idempotent)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactQuery) for f in logger.filters):
        logger.addFilter(RedactQuery())
