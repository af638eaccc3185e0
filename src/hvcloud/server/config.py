"""Server settings (data directory, database URL, listen address, agent timings)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hvcloud.http_guard import ConnectionLimits
from hvcloud.server.db.engine import default_sqlite_url
from hvcloud.server.resource_types import LIMIT_SETTINGS

DEFAULT_LISTEN = "127.0.0.1:8080"
DB_URL_FILE = "db-url"


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    db_url: str
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    max_page_size: int = 500
    session_timeout_seconds: int = 1800
    max_body_bytes: int = 1024 * 1024
    ping_interval_seconds: float = 60.0
    job_workers: int = 8
    job_poll_seconds: float = 0.5
    lease_seconds: float = 30.0
    max_job_attempts: int = 5
    job_expire_minutes: float = 1440.0
    #: image downloads: private (RFC 1918, ULA, link-local) and loopback source addresses are refused
    #: unless allowed here; sizes and timeouts bound what one URL can cost the server
    download_allow_private: bool = False
    download_allow_loopback: bool = False
    template_max_bytes: int = 64 * 1024**3
    download_connect_timeout: float = 15.0
    download_read_timeout: float = 120.0
    upload_url_ttl_seconds: int = 3600
    #: where NFS image stores are mounted on the server: <root>/<host><export path>
    nfs_mount_root: Path = Path("/var/lib/hvcloud/secondary")
    public_url: str | None = None
    plugins: tuple[str, ...] = ()
    ping_timeout_multiplier: float = 2.5
    ping_retry_count: int = 0
    host_stats_interval_seconds: float = 60.0
    agent_concurrency: int = 64
    command_wait_seconds: float = 1800.0
    agent_connect_timeout_seconds: float = 10.0
    #: run the AgentManager (ping loop) with the app; tests of the bare API turn it off
    manage_agents: bool = True
    #: CloudStack's ``instance.name``: the last part of VM instance names ``i-<account>-<number>-VM``
    instance_name_suffix: str = "VM"
    #: CloudStack's ``host.maintenance.local.storage.strategy``: what maintenance does with running VMs
    maintenance_strategy: str = "Error"
    #: CloudStack's ``incorrect.login.attempts.allowed``: consecutive failed logins that disable a user
    #: (0: never); root admins are exempt, as in CloudStack
    incorrect_login_attempts_allowed: int = 5
    #: the pause before a login from a client address whose last login failed; it doubles with each
    #: further failure up to ``login_failure_delay_max_seconds`` (0: no pause)
    login_failure_delay_seconds: float = 0.25
    login_failure_delay_max_seconds: float = 4.0
    #: ``user.password.change.regenerate.keys``: a password change also replaces the user's API keys
    regenerate_keys_on_password_change: bool = False
    #: ``api.signature.version3.required``: signed requests must carry ``signatureversion=3`` and an
    #: ``expires`` at most ``api.signature.expires.window`` seconds ahead
    signature_v3_required: bool = False
    signature_expires_window_seconds: float = 600.0
    #: serve HTTPS with this certificate chain and key (PEM files); the session cookie is then ``Secure``
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: trusted proxies, header and body timeouts, pending connections per source (``hvcloud.http_guard``)
    connection_limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    #: CloudStack's API rate-limit plugin (``api.throttling.*``): per account, root admins exempt,
    #: counted in each server process (see docs/server.md)
    api_throttling_enabled: bool = True
    api_throttling_interval: int = 1
    api_throttling_max: int = 25
    api_throttling_cachesize: int = 50000
    #: CloudStack's ``network.gc.interval`` / ``network.gc.wait``: how often the network garbage
    #: collector runs, and how long an isolated network stays implemented without an active VM
    network_gc_interval_seconds: float = 600.0
    network_gc_wait_seconds: float = 600.0
    #: ``max.account.*`` / ``max.domain.*`` settings given (name, value); CloudStack's defaults otherwise
    limit_defaults: tuple[tuple[str, int], ...] = ()
    #: CloudStack's ``vm.userdata.max.length``: the longest user data (base64 characters) accepted
    vm_userdata_max_length: int = 32768
    #: CloudStack's ``vm.password.length``: generated guest passwords
    vm_password_length: int = 6
    #: ``consoleproxy.url``: a fixed base URL of the console proxies (a load balancer in front of
    #: them); when unset, consoles go to the live ``console_proxy`` row with the fewest sessions
    console_proxy_url: str | None = None
    #: ``consoleproxy.heartbeat.interval``: how often proxies beat ``console_proxy.last_seen``; a
    #: proxy silent for three intervals gets no new consoles
    console_proxy_heartbeat_seconds: float = 15.0
    #: ``consoleproxy.token.ttl``: how long a console token (and its ``console_session`` row) may
    #: wait to be opened at a proxy
    console_token_ttl_seconds: float = 60.0
    #: CloudStack's ``consoleproxy.extra.security.validation.enabled``: createConsoleEndpoint
    #: requires ``token``, which the client must present again to the proxy
    console_extra_validation: bool = False

    @classmethod
    def build(cls, data_dir: Path, db_url: str | None = None, listen: str = DEFAULT_LISTEN,
              settings: dict[str, str] | None = None, **options: Any) -> ServerConfig:
        host, port = parse_listen(listen)
        return cls(data_dir=data_dir, db_url=db_url or recorded_db_url(data_dir), listen_host=host,
                   listen_port=port, **parse_settings(settings or {}), **options)

    @property
    def base_url(self) -> str:
        """Where clients reach this server (upload URLs point here)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.listen_host if self.listen_host not in ("0.0.0.0", "::") else "127.0.0.1"
        scheme = "https" if self.tls_cert is not None else "http"
        return f"{scheme}://{host}:{self.listen_port}"

    @property
    def host_down_after_seconds(self) -> float:
        """CloudStack declares a host down after ``ping.timeout`` x ``ping.interval`` without a ping."""
        return self.ping_interval_seconds * self.ping_timeout_multiplier

    @property
    def ping_request_timeout_seconds(self) -> float:
        return min(max(self.ping_interval_seconds, 5.0), 30.0)

    @property
    def connect_step_timeout_seconds(self) -> float:
        """Deadline of each step of the connect sequence (an NFS mount may take a while; an API
        caller of addHost should not wait for ``wait``)."""
        return min(self.command_wait_seconds, 120.0)

    @property
    def host_claim_interval_seconds(self) -> float:
        """How often each server balances host ownership: a dead server's hosts move within
        ``lease_seconds`` plus this (35 s with the default 30 s lease)."""
        return max(min(self.lease_seconds / 3, 5.0), 0.05)

    @property
    def power_report_grace_seconds(self) -> float:
        """A VM absent from its host's reports is flagged after two ping intervals, as CloudStack does."""
        return 2 * self.ping_interval_seconds


#: CloudStack's global setting names accepted by ``--setting NAME=VALUE``, with their config fields
SETTINGS: dict[str, tuple[str, type[float] | type[int], float]] = {
    "ping.interval": ("ping_interval_seconds", float, 0.05),
    "ping.timeout": ("ping_timeout_multiplier", float, 1.0),
    "host.ping.retry.count": ("ping_retry_count", int, 0),
    "host.stats.interval": ("host_stats_interval_seconds", float, 0.05),
    "agent.concurrency": ("agent_concurrency", int, 1),
    "wait": ("command_wait_seconds", float, 1.0),
    "agent.connect.timeout": ("agent_connect_timeout_seconds", float, 0.1),
    "job.expire.minutes": ("job_expire_minutes", float, 0.001),
    "incorrect.login.attempts.allowed": ("incorrect_login_attempts_allowed", int, 0),
    "api.signature.expires.window": ("signature_expires_window_seconds", float, 1.0),
    "api.throttling.interval": ("api_throttling_interval", int, 1),
    "api.throttling.max": ("api_throttling_max", int, 1),
    "api.throttling.cachesize": ("api_throttling_cachesize", int, 1),
    "vm.userdata.max.length": ("vm_userdata_max_length", int, 1),
    "vm.password.length": ("vm_password_length", int, 6),
    "network.gc.interval": ("network_gc_interval_seconds", float, 0.05),
    "network.gc.wait": ("network_gc_wait_seconds", float, 0.0),
    "consoleproxy.heartbeat.interval": ("console_proxy_heartbeat_seconds", float, 0.05),
    "consoleproxy.token.ttl": ("console_token_ttl_seconds", float, 1.0),
}

#: upper bounds of numeric settings, where CloudStack has one
SETTING_MAXIMA: dict[str, float] = {"vm.userdata.max.length": 1048576, "consoleproxy.token.ttl": 3600}

#: boolean settings (``true``/``false``): name → config field
BOOL_SETTINGS: dict[str, str] = {
    "api.signature.version3.required": "signature_v3_required",
    "user.password.change.regenerate.keys": "regenerate_keys_on_password_change",
    "api.throttling.enabled": "api_throttling_enabled",
    "consoleproxy.extra.security.validation.enabled": "console_extra_validation",
}


#: text settings: name → (config field, the pattern a value must match)
TEXT_SETTINGS: dict[str, tuple[str, str]] = {
    "instance.name": ("instance_name_suffix", r"[A-Za-z0-9]{1,32}"),
    "host.maintenance.local.storage.strategy": ("maintenance_strategy", r"Error|ForceStop"),
    # an http(s) base URL without query, fragment, blanks or quotes (it is put into console URLs)
    "consoleproxy.url": ("console_proxy_url", r"https?://[A-Za-z0-9.\-\[\]:]{1,255}(/[A-Za-z0-9._~%/\-]{0,512})?"),
}


def parse_settings(settings: dict[str, str]) -> dict[str, Any]:
    """Turn ``{"ping.interval": "0.5"}`` into config fields; unknown names and bad values raise."""
    out: dict[str, Any] = {}
    for name, raw in settings.items():
        if name in LIMIT_SETTINGS:
            if not re.fullmatch(r"-1|[0-9]{1,15}", raw):
                raise ValueError(f"setting {name} must be -1 (unlimited) or a whole number >= 0, got {raw!r}")
            out["limit_defaults"] = (*out.get("limit_defaults", ()), (name, int(raw)))
            continue
        if name in BOOL_SETTINGS:
            if raw.lower() not in ("true", "false"):
                raise ValueError(f"setting {name} must be true or false, got {raw!r}")
            out[BOOL_SETTINGS[name]] = raw.lower() == "true"
            continue
        if name in TEXT_SETTINGS:
            field_name, pattern = TEXT_SETTINGS[name]
            if not re.fullmatch(pattern, raw):
                raise ValueError(f"setting {name} must match {pattern}, got {raw!r}")
            out[field_name] = raw
            continue
        if name not in SETTINGS:
            known = sorted([*SETTINGS, *TEXT_SETTINGS, *BOOL_SETTINGS, *LIMIT_SETTINGS])
            raise ValueError(f"unknown setting {name!r}; known: {', '.join(known)}")
        field_name, kind, minimum = SETTINGS[name]
        try:
            value = kind(raw)
        except ValueError:
            raise ValueError(f"setting {name} must be a number, got {raw!r}") from None
        if not value >= minimum or value != value or value == float("inf"):
            raise ValueError(f"setting {name} must be a finite number >= {minimum}, got {raw!r}")
        if name in SETTING_MAXIMA and value > SETTING_MAXIMA[name]:
            raise ValueError(f"setting {name} must be at most {SETTING_MAXIMA[name]:g}, got {raw!r}")
        out[field_name] = value
    return out


def check_tls(cert: Path | None, key: Path | None) -> None:
    """Both ``--tls-cert`` and ``--tls-key`` or neither, and a pair that loads (a clear error at
    start rather than one per child process)."""
    if (cert is None) != (key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    if cert is None or key is None:
        return
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load the TLS certificate {cert} with key {key}: {exc}") from None


def split_setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"--setting must be NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--listen must be HOST:PORT, got {listen!r}")
    return host.strip("[]"), int(port)


def recorded_db_url(data_dir: Path) -> str:
    """The URL ``server run`` recorded in the data directory, or the default SQLite file there."""
    path = data_dir / DB_URL_FILE
    if path.exists():
        return path.read_text().strip()
    return default_sqlite_url(data_dir)
