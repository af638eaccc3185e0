"""Server settings (data directory, database URL, listen address, agent timings)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hvcloud import logs
from hvcloud.http_guard import ConnectionLimits
from hvcloud.server.db.engine import default_sqlite_url
from hvcloud.server.setting_catalog import CATALOG, parse_cidr_list, parse_value
from hvcloud.storage.url_rules import UrlPolicy

log = logs.get(__name__)

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
    #: API requests handled at once per server process (threads; more wait on the event loop). The
    #: default is anyio's. Fewer threads contend less for the GIL, so a transaction holding SQLite's
    #: write lock gets it back sooner (measured in bench/README.md)
    api_threads: int = 40
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
    #: CloudStack's ``vm.stats.interval`` (seconds here): GetVmStatsCommand per host; 0 turns it off
    vm_stats_interval_seconds: float = 60.0
    #: CloudStack's cluster.{cpu,memory}.allocated.capacity.{notification,disable}threshold (fractions):
    #: the threshold flags of listHostsMetrics and listZonesMetrics (global values only)
    cpu_notification_threshold: float = 0.75
    memory_notification_threshold: float = 0.75
    cpu_disable_threshold: float = 0.85
    memory_disable_threshold: float = 0.85
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
    #: CloudStack's allow.user.create.projects: whether users (not only admins) may create projects
    allow_user_create_projects: bool = True
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
    #: CloudStack's ``usage.stats.job.aggregation.range`` (minutes): the usage records' period
    usage_aggregation_minutes: int = 1440
    #: how often each server looks for closed usage periods to aggregate
    usage_poll_seconds: float = 60.0
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
    #: CloudStack's ``secstorage.allowed.internal.sites``: comma-separated CIDRs whose private or
    #: loopback addresses templates may be downloaded from (besides ``--allow-private-downloads``)
    download_allowed_sites: str | None = None
    #: how often each server checks the database for changed settings (one small query)
    settings_poll_seconds: float = 5.0
    #: values stored for a scope: (setting name, scope, scope id) → value (see ``scoped_value``)
    scoped: Mapping[tuple[str, str, str], str] = field(default_factory=dict, compare=False, hash=False)

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
    def download_policy(self) -> UrlPolicy:
        """Which source addresses image downloads may use."""
        return UrlPolicy(allow_private=self.download_allow_private, allow_loopback=self.download_allow_loopback,
                         allowed_networks=parse_cidr_list(self.download_allowed_sites))

    def scoped_value(self, name: str, scope: str, scope_id: str) -> str | None:
        """The value stored for ``name`` at ``scope``/``scope_id``, if any (no database access: the
        scoped rows are loaded with the settings)."""
        return self.scoped.get((name, scope, scope_id))

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


def parse_settings(settings: Mapping[str, str]) -> dict[str, Any]:
    """Turn ``{"ping.interval": "0.5"}`` into config fields (rules in :mod:`hvcloud.server.setting_catalog`);
    unknown names and bad values raise ValueError naming the setting."""
    out: dict[str, Any] = {}
    for name, raw in settings.items():
        value = parse_value(name, raw)
        field_name = CATALOG[name].field
        if field_name == "limit_defaults":
            out["limit_defaults"] = (*out.get("limit_defaults", ()), (name, value))
        else:
            out[field_name] = value
    return out


def overlay(config: ServerConfig, values: Mapping[str, str], names: Iterable[str] | None = None) -> ServerConfig:
    """``config`` with the settings ``names`` (default: all in ``values``) taken from ``values`` (stored
    global rows, already validated), or from ``config`` where ``values`` has none. A stored value that
    no longer parses (a rule got stricter) is skipped with a log line rather than stopping the server."""
    wanted = list(values) if names is None else list(names)
    changes: dict[str, Any] = {}
    limits = dict(config.limit_defaults)
    for name in wanted:
        if name not in values or name not in CATALOG:
            continue
        try:
            value = parse_value(name, values[name])
        except ValueError as exc:
            log.warning("stored setting ignored", setting=name, error=str(exc))
            continue
        if CATALOG[name].field == "limit_defaults":
            limits[name] = value
        else:
            changes[CATALOG[name].field] = value
    if limits != dict(config.limit_defaults):
        changes["limit_defaults"] = tuple(sorted(limits.items()))
    return replace(config, **changes) if changes else config


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
