"""The console proxy's settings, and where its token key and database URL come from.

A proxy beside a management server reads both from the server's data directory (``--data-dir``): the
token key is derived from ``secret.key`` and the database URL is the one ``server run`` recorded. A
proxy on its own machine gets ``--key-file`` (the derived key as hex, written by
``hvcloud server console-key``) and ``--db-url``, so it never holds the server's secret key.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from hvcloud.console_proxy.tokens import TOKEN_PURPOSE
from hvcloud.server.db.crypto import KEY_FILE_NAME, SecretBox
from hvcloud.server.db.engine import default_sqlite_url

DEFAULT_LISTEN = "0.0.0.0:8443"
DEFAULT_NOVNC_DIR = Path("/usr/share/novnc")
#: the file ``server run`` records its database URL in (``hvcloud.server.config.DB_URL_FILE``)
DB_URL_FILE = "db-url"
KEY_BYTES = 32


@dataclass(frozen=True)
class ProxyConfig:
    token_key: bytes
    db_url: str
    listen_host: str = "127.0.0.1"
    listen_port: int = 8443
    #: the base URL browsers use to reach this proxy (registered in ``console_proxy.url``)
    public_url: str = ""
    name: str = ""
    novnc_dir: Path = DEFAULT_NOVNC_DIR
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: the largest WebSocket message a client may send (RFB client messages are small)
    max_frame_bytes: int = 256 * 1024
    #: a console with no bytes either way for this long is closed
    idle_timeout_seconds: float = 3600.0
    #: from the WebSocket upgrade to the relay: the client's RFB handshake and the VNC server's
    handshake_timeout_seconds: float = 15.0
    vnc_connect_timeout_seconds: float = 5.0
    #: a client that does not take a frame within this long is closed ("client too slow")
    send_timeout_seconds: float = 10.0
    #: WebSocket pings, and the ``console_proxy`` row's ``last_seen``/``active_sessions`` beat
    heartbeat_seconds: float = 15.0
    max_sessions: int = 500

    def __post_init__(self) -> None:
        if len(self.token_key) != KEY_BYTES:
            raise ValueError("the console token key is 32 bytes")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.max_frame_bytes < 1024 or self.max_sessions < 1:
            raise ValueError("max frame bytes must be >= 1024 and max sessions >= 1")

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert is not None else "http"

    @property
    def proxy_name(self) -> str:
        return self.name or f"{socket.gethostname()}:{self.listen_port}"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.listen_host if self.listen_host not in ("0.0.0.0", "::", "") else socket.getfqdn()
        host = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{host}:{self.listen_port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.tls_cert is None or self.tls_key is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot load the TLS certificate {self.tls_cert} with key {self.tls_key}: "
                             f"{exc}") from None
        return ctx


def key_from_data_dir(data_dir: Path) -> bytes:
    """The token key of the server whose data directory is ``data_dir`` (never creates a key)."""
    if not (data_dir / KEY_FILE_NAME).is_file():
        raise ValueError(f"{data_dir} holds no {KEY_FILE_NAME}: is it a server's data directory?")
    return SecretBox.from_data_dir(data_dir).derive_key(TOKEN_PURPOSE)


def db_url_from_data_dir(data_dir: Path) -> str:
    """The database URL ``server run`` recorded in ``data_dir``, or its default SQLite file."""
    path = data_dir / DB_URL_FILE
    if path.exists():
        return path.read_text().strip()
    return default_sqlite_url(data_dir)


def key_from_file(path: Path) -> bytes:
    """The 32-byte key written as hex by ``hvcloud server console-key``."""
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read a console key from {path}: {exc}") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path} does not hold a 32-byte key (64 hex digits)")
    return key


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--listen must be HOST:PORT, got {listen!r}")
    return host.strip("[]"), int(port)
