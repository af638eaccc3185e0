"""The one definition of every CloudStack-named setting the server knows.

Each :class:`Setting` says which :class:`~hvcloud.server.config.ServerConfig` field it sets, how a
value is checked, and what ``listConfigurations`` shows about it: category, description, the scopes
besides ``global`` where a value may be given (CloudStack's ``ConfigKey.Scope``) and whether a change
takes effect without a restart (``isdynamic``). ``--setting NAME=VALUE`` on the command line and
``updateConfiguration`` both go through :func:`parse_value`, so they accept exactly the same values.

Kept free of server imports (the config module and the API both use it).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from hvcloud.server import resource_types as R

Kind = Literal["float", "int", "bool", "text", "limit"]

GLOBAL, ZONE, CLUSTER, ACCOUNT, DOMAIN = "global", "zone", "cluster", "account", "domain"
SCOPES = (GLOBAL, ZONE, CLUSTER, ACCOUNT, DOMAIN)

#: the longest value any setting accepts (``updateConfiguration``'s ``value`` parameter)
MAX_VALUE_LENGTH = 4096


@dataclass(frozen=True)
class Setting:
    name: str
    #: the ServerConfig field; limit settings (``max.account.*``) all land in ``limit_defaults``
    field: str
    kind: Kind
    category: str
    description: str
    minimum: float = 0
    maximum: float | None = None
    #: text settings: the pattern a value must match in full
    pattern: str = ""
    #: text settings: an empty value unsets it (the field becomes None)
    optional: bool = False
    #: text settings: a further check that raises ValueError
    check: Callable[[str], None] | None = None
    #: scopes besides ``global`` where a value may be given
    scopes: tuple[str, ...] = ()
    #: applied by running servers within ``settings_poll_seconds``; else on the next start
    dynamic: bool = False
    component: str = "ManagementServer"

    @property
    def type_name(self) -> str:
        """``listConfigurations``' ``type``."""
        return {"float": "Decimal", "int": "Number", "bool": "Boolean", "text": "String",
                "limit": "Number"}[self.kind]

    @property
    def display_text(self) -> str:
        return " ".join(part.capitalize() for part in re.split(r"[._]", self.name))


def check_cidr_list(raw: str) -> None:
    """``secstorage.allowed.internal.sites``: comma-separated CIDRs (or single addresses)."""
    for item in raw.split(","):
        text = item.strip()
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{text[:64]!r} is not a CIDR") from None
        if network.prefixlen == 0:
            raise ValueError(f"{text[:64]} would allow every address; list the internal networks")


def parse_cidr_list(raw: str | None) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    if not raw:
        return ()
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in raw.split(","))


def _num(name: str, field: str, kind: Kind, minimum: float, category: str, description: str, *,
         maximum: float | None = None, dynamic: bool = False, component: str = "ManagementServer") -> Setting:
    return Setting(name, field, kind, category, description, minimum=minimum, maximum=maximum, dynamic=dynamic,
                   component=component)


def _bool(name: str, field: str, category: str, description: str, *, dynamic: bool = True) -> Setting:
    return Setting(name, field, "bool", category, description, dynamic=dynamic)


_DEFINITIONS: list[Setting] = [
    _num("ping.interval", "ping_interval_seconds", "float", 0.05, "Advanced",
         "Interval (seconds) between the pings each server sends to the hosts it drives; a change applies "
         "from the next ping round", dynamic=True, component="AgentManager"),
    _num("ping.timeout", "ping_timeout_multiplier", "float", 1.0, "Advanced",
         "Multiplier to ping.interval before a silent host is declared down", dynamic=True,
         component="AgentManager"),
    _num("host.ping.retry.count", "ping_retry_count", "int", 0, "Advanced",
         "Failed pings of an Up host before it is marked Alert", dynamic=True, component="AgentManager"),
    _num("host.stats.interval", "host_stats_interval_seconds", "float", 0.05, "Advanced",
         "Interval (seconds) between host statistics requests", dynamic=True, component="AgentManager"),
    _num("vm.stats.interval", "vm_stats_interval_seconds", "float", 0, "Advanced",
         "Interval (seconds) between requests for the statistics of the VMs running on a host; 0 turns "
         "the collection off", dynamic=True, component="AgentManager"),
    *(_num(f"cluster.{kind}.allocated.capacity.{level}threshold", f"{kind}_{level}_threshold", "float", 0, "Alert",
           f"Fraction of {kind} capacity (used or allocated) above which listHostsMetrics and listZonesMetrics "
           f"flag the {level} threshold as exceeded", maximum=1, dynamic=True, component="AlertManager")
      for kind in ("cpu", "memory") for level in ("notification", "disable")),
    _num("agent.concurrency", "agent_concurrency", "int", 1, "Advanced",
         "Hosts each server visits at once in a ping round", component="AgentManager"),
    _num("wait", "command_wait_seconds", "float", 1.0, "Advanced",
         "Time (seconds) to wait for an agent command to answer", dynamic=True, component="AgentManager"),
    _num("agent.connect.timeout", "agent_connect_timeout_seconds", "float", 0.1, "Advanced",
         "Time (seconds) to wait for a connection to an agent", component="AgentManager"),
    _num("job.expire.minutes", "job_expire_minutes", "float", 0.001, "Advanced",
         "Time (minutes) a finished async job is kept before it is purged", component="AsyncJobManager"),
    _num("incorrect.login.attempts.allowed", "incorrect_login_attempts_allowed", "int", 0, "Advanced",
         "Consecutive failed logins that disable a user (0: never); root admins are exempt", dynamic=True),
    _num("api.signature.expires.window", "signature_expires_window_seconds", "float", 1.0, "Advanced",
         "How far ahead (seconds) a signed request's expires may lie", dynamic=True),
    _num("api.throttling.interval", "api_throttling_interval", "int", 1, "Advanced",
         "Time interval (in seconds) to reset API count", dynamic=True, component="ApiRateLimitService"),
    _num("api.throttling.max", "api_throttling_max", "int", 1, "Advanced",
         "Max allowed number of APIs within fixed interval", dynamic=True, component="ApiRateLimitService"),
    _num("api.throttling.cachesize", "api_throttling_cachesize", "int", 1, "Advanced",
         "Account based API count cache size", dynamic=True, component="ApiRateLimitService"),
    _num("vm.userdata.max.length", "vm_userdata_max_length", "int", 1, "Advanced",
         "Max length of vm userdata after base64 encoding. Default is 32768 and maximum is 1048576",
         maximum=1048576, dynamic=True, component="UserVmManager"),
    _num("vm.password.length", "vm_password_length", "int", 6, "Advanced",
         "Length of the generated guest passwords", dynamic=True, component="UserVmManager"),
    _num("usage.stats.job.aggregation.range", "usage_aggregation_minutes", "int", 60, "Usage",
         "The usage aggregation period in minutes (whole hours dividing a day: 60, 120, 180, 240, 360, 480, "
         "720 or 1440; other values fall back to 60), periods aligned on midnight UTC", maximum=1440,
         dynamic=True, component="UsageManager"),
    _num("network.gc.interval", "network_gc_interval_seconds", "float", 0.05, "Advanced",
         "Seconds between runs of the network garbage collector", component="NetworkOrchestrationService"),
    _num("network.gc.wait", "network_gc_wait_seconds", "float", 0.0, "Advanced",
         "Seconds an isolated network without active VMs stays implemented", component="NetworkOrchestrationService"),
    _num("consoleproxy.heartbeat.interval", "console_proxy_heartbeat_seconds", "float", 0.05, "Console Proxy",
         "Seconds between console proxy heartbeats; a proxy silent for three gets no new consoles",
         component="ConsoleProxyManager"),
    _num("consoleproxy.token.ttl", "console_token_ttl_seconds", "float", 1.0, "Console Proxy",
         "Seconds a console token may wait to be opened at a proxy", maximum=3600, dynamic=True,
         component="ConsoleProxyManager"),
    _bool("api.signature.version3.required", "signature_v3_required", "Advanced",
          "Signed requests must carry signatureversion=3 and an expires"),
    _bool("user.password.change.regenerate.keys", "regenerate_keys_on_password_change", "Advanced",
          "A password change also replaces the user's API keys"),
    _bool("allow.user.create.projects", "allow_user_create_projects", "Project Defaults",
          "If regular user can create a project; true by default"),
    Setting("api.throttling.enabled", "api_throttling_enabled", "bool", "Advanced", "Enable/disable Api rate limit",
            dynamic=True, component="ApiRateLimitService"),
    Setting("consoleproxy.extra.security.validation.enabled", "console_extra_validation", "bool", "Console Proxy",
            "createConsoleEndpoint requires a token the client presents again to the proxy", dynamic=True,
            component="ConsoleProxyManager"),
    Setting("instance.name", "instance_name_suffix", "text", "Advanced",
            "Name of the deployment instance: the last part of VM instance names", pattern=r"[A-Za-z0-9]{1,32}"),
    Setting("host.maintenance.local.storage.strategy", "maintenance_strategy", "text", "Advanced",
            "What host maintenance does with running VMs: Error or ForceStop", pattern=r"Error|ForceStop",
            dynamic=True, component="ResourceManager"),
    # an http(s) base URL without query, fragment, blanks or quotes (it is put into console URLs)
    Setting("consoleproxy.url", "console_proxy_url", "text", "Console Proxy",
            "Base URL of the console proxies (a load balancer in front of them); empty: the live proxy with "
            "the fewest sessions", pattern=r"https?://[A-Za-z0-9.\-\[\]:]{1,255}(/[A-Za-z0-9._~%/\-]{0,512})?",
            optional=True, dynamic=True, component="ConsoleProxyManager"),
    Setting("secstorage.allowed.internal.sites", "download_allowed_sites", "text", "Advanced",
            "Comma separated list of cidrs internal to the datacenter that can host template download servers",
            pattern=r"[0-9A-Fa-f.:/, ]{1,2048}", optional=True, check=check_cidr_list, dynamic=True,
            component="TemplateManager"),
]


def _limit_setting(name: str, owner: str, resource_type: int) -> Setting:
    what = R.NAMES[resource_type].replace("_", " ")
    unit = " (GiB)" if R.setting_unit(resource_type) != 1 else (" (MiB)" if resource_type == R.MEMORY else "")
    return Setting(name, "limit_defaults", "limit", "Account Defaults" if owner == "account" else "Domain Defaults",
                   f"The default maximum {what}{unit} of a {owner} without an explicit limit (-1: unlimited)",
                   minimum=-1, scopes=(ACCOUNT, DOMAIN) if owner == "account" else (DOMAIN,), dynamic=True,
                   component="ResourceLimitService")


CATALOG: dict[str, Setting] = {
    **{s.name: s for s in _DEFINITIONS},
    **{name: _limit_setting(name, owner, number) for name, (owner, number) in R.LIMIT_SETTINGS.items()},
}


def parse_value(name: str, raw: str) -> Any:
    """The field value of ``name`` set to ``raw``; ValueError naming the setting when unknown or bad."""
    setting = CATALOG.get(name)
    if setting is None:
        raise ValueError(f"unknown setting {name[:64]!r}; known: {', '.join(sorted(CATALOG))}")
    if len(raw) > MAX_VALUE_LENGTH:
        raise ValueError(f"setting {name} must be at most {MAX_VALUE_LENGTH} characters long")
    if setting.kind == "limit":
        if not re.fullmatch(r"-1|[0-9]{1,15}", raw):
            raise ValueError(f"setting {name} must be -1 (unlimited) or a whole number >= 0, got {raw[:64]!r}")
        return int(raw)
    if setting.kind == "bool":
        if raw.lower() not in ("true", "false"):
            raise ValueError(f"setting {name} must be true or false, got {raw[:64]!r}")
        return raw.lower() == "true"
    if setting.kind == "text":
        if raw == "" and setting.optional:
            return None
        if not re.fullmatch(setting.pattern, raw):
            raise ValueError(f"setting {name} must match {setting.pattern}, got {raw[:64]!r}")
        if setting.check is not None:
            try:
                setting.check(raw)
            except ValueError as exc:
                raise ValueError(f"setting {name}: {exc}") from None
        return raw
    try:
        value: float = int(raw) if setting.kind == "int" else float(raw)
    except ValueError:
        raise ValueError(f"setting {name} must be a number, got {raw[:64]!r}") from None
    if not value >= setting.minimum or not math.isfinite(value):
        raise ValueError(f"setting {name} must be a finite number >= {render(setting.minimum)}, got {raw[:64]!r}")
    if setting.maximum is not None and value > setting.maximum:
        raise ValueError(f"setting {name} must be at most {render(setting.maximum)}, got {raw[:64]!r}")
    return value


def render(value: Any) -> str:
    """A field value as ``listConfigurations`` shows it (and as it is stored)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}" if value == int(value) and abs(value) < 1e15 else repr(value)
    return str(value)
