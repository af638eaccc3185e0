"""The agent's configuration, from the command line and the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hvcloud import http_guard
from hvcloud.storage.path_policy import PathPolicy

AuthMode = Literal["password", "mtls", "cloudstack-compat"]
DriverName = Literal["simulator", "libvirt", "hyperv"]

DEFAULT_PORT = 8250
DEFAULT_MAX_BODY = 8 * 1024 * 1024
IpNetwork = http_guard.IpNetwork


class ConfigError(ValueError):
    """The configuration cannot work; the message tells the operator what to change."""


@dataclass
class AgentConfig:
    driver: DriverName = "simulator"
    listen_host: str = "0.0.0.0"
    listen_port: int = DEFAULT_PORT
    data_dir: Path = Path("/var/lib/hvcloud/agent")
    auth: AuthMode = "password"
    allow_from: list[IpNetwork] = field(default_factory=list)
    client_ca: Path | None = None
    tls: bool = True
    certfile: Path | None = None
    keyfile: Path | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY
    #: a client that has not sent its whole body within this many seconds gets 408
    body_timeout: float = 60.0
    #: proxies whose X-Forwarded-For/-Proto are believed; none by default
    trusted_proxies: list[IpNetwork] = field(default_factory=list)
    #: a connection that has not sent its request headers within this many seconds is closed
    header_timeout: float = http_guard.DEFAULT_HEADER_TIMEOUT
    #: connections one address may hold before its requests are complete (and checked)
    max_pending_per_source: int = http_guard.DEFAULT_MAX_PENDING_PER_SOURCE
    #: simulator multi-host mode: serve this many hosts on consecutive addresses from sim_first_address
    sim_hosts: int = 1
    sim_first_address: str | None = None
    sim_memory_gib: int = 128
    sim_cpus: int = 32
    libvirt_uri: str = "qemu:///system"
    #: ``auto`` uses KVM when /dev/kvm works; nested or emulated machines need ``qemu`` (TCG)
    libvirt_domain_type: Literal["auto", "kvm", "qemu"] = "auto"
    vnc_listen: str = "127.0.0.1"
    default_bridge: str | None = None
    local_pool_dir: Path | None = None
    #: Filesystem pools must lie inside one of these (any non-system directory when empty)
    pool_roots: list[Path] = field(default_factory=list)
    #: file:// image stores must lie inside one of these (refused when empty)
    store_roots: list[Path] = field(default_factory=list)
    nic_rate_limits: bool = True
    stop_timeout: float = 120.0
    heartbeat_interval: float = 60.0
    log_level: str = "info"

    @property
    def host_address(self) -> str:
        """The address this host is known by: the listen address, or loopback for a wildcard."""
        return self.listen_host if self.listen_host not in ("0.0.0.0", "::") else "127.0.0.1"

    def validate(self) -> None:
        if self.auth == "cloudstack-compat" and not self.allow_from:
            raise ConfigError("--auth cloudstack-compat accepts unauthenticated commands; it needs "
                              "--allow-from CIDR (the management servers' addresses)")
        if self.auth == "mtls":
            if not self.tls:
                raise ConfigError("--auth mtls needs TLS")
            if self.client_ca is None:
                raise ConfigError("--auth mtls needs --client-ca FILE (the CA that signs client certificates)")
            if not self.client_ca.is_file():
                raise ConfigError(f"client CA file {self.client_ca} does not exist")
        if not 0 < self.listen_port < 65536:
            raise ConfigError(f"invalid port {self.listen_port}")
        if self.sim_hosts < 1:
            raise ConfigError("--sim-hosts must be at least 1")
        if self.sim_hosts > 1 and self.driver != "simulator":
            raise ConfigError("several hosts in one process are only possible with the simulator driver")
        if not 0 < self.body_timeout <= 3600:
            raise ConfigError("--body-timeout must be between 0 and 3600 seconds")
        if self.libvirt_domain_type not in ("auto", "kvm", "qemu"):
            raise ConfigError("--libvirt-domain-type must be auto, kvm or qemu")
        if self.max_body_bytes < 1024:
            raise ConfigError("--max-body must be at least 1024 bytes")
        for option, roots in (("--pool-root", self.pool_roots), ("--store-root", self.store_roots)):
            for root in roots:
                if not root.is_absolute():
                    raise ConfigError(f"{option} {root} must be an absolute path")
        try:
            self.connection_limits().validate()
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def path_policy(self, local_pool: Path | None = None) -> PathPolicy:
        """What the host's storage may touch: attached pools (and ``local_pool``), the configured
        roots, never the agent's own data directory."""
        return PathPolicy(pool_roots=self.pool_roots, store_roots=self.store_roots,
                          fixed_pools=[local_pool] if local_pool else [], protected=[self.data_dir])

    def connection_limits(self) -> http_guard.ConnectionLimits:
        """The listener's limits; a body may pause a little longer than the whole-body timeout, so
        that a slow body gets the application's 408 rather than a closed connection."""
        return http_guard.ConnectionLimits(
            trusted_proxies=tuple(self.trusted_proxies), header_timeout=self.header_timeout,
            body_idle_timeout=self.body_timeout + 5, max_pending_per_source=self.max_pending_per_source)


def parse_networks(values: list[str], option: str = "--allow-from") -> list[IpNetwork]:
    try:
        return http_guard.parse_networks(values, option)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
