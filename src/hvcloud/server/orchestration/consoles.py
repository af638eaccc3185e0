"""Console grants: who may open a VM's console, where it is, and the one-use token a proxy honours.

``grant_console`` checks the caller may see the VM (its owner, or a root admin; anyone else meets the
same 431 "entity does not exist" as for any other VM command, so a VM's existence does not leak),
that it runs on an Up host, asks that host's agent where the console listens (``GetVncPortCommand``),
picks a console proxy and mints a :class:`~hvcloud.console_proxy.tokens.ConsoleGrant` whose
``console_session`` row is written in the caller's transaction: a proxy claims that row when the
token is first presented (setting ``used`` and its own ``proxy_id``), so the token opens one console.

Hyper-V hosts answer ``address="instanceId=<vm guid>"`` and ``port=-9`` (CloudStack's Hyper-V agent
wire); the console is then the host's VMConnect RDP listener. GetVncPortAnswer carries no port for
it: the agent reports VMConnect's port (the host's terminal-service settings) as ``rdp.server.port``
in its StartupRoutingCommand details, as CloudStack's does, and the server keeps it in
``host.console_port``; :data:`RDP_PORT` (2179, VMConnect's default) only for a host that never said.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.console_proxy.tokens import TOKEN_PURPOSE, ConsoleGrant, TokenSigner
from hvcloud.server import errors
from hvcloud.server.config import ServerConfig
from hvcloud.server.db.crypto import SecretBox, SecretDecryptError
from hvcloud.server.db.models import ConsoleProxy, ConsoleSession, Host, User, VMInstance, utcnow
from hvcloud.server.orchestration.agents import HOST_UP, AgentError
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm.access import visible_vm
from hvcloud.wire.answers import GetVncPortAnswer
from hvcloud.wire.base import Answer, Command
from hvcloud.wire.commands import GetVncPortCommand

if TYPE_CHECKING:
    from hvcloud.server.orchestration.agents.protocol import AgentService

log = logs.get(__name__)

#: Hyper-V's VMConnect listener port unless an administrator changed it on the host
RDP_PORT = 2179
#: CloudStack's Hyper-V agent answers GetVncPortCommand with this port for an RDP console
HYPERV_PORT_MARK = -9
HYPERV_ADDRESS_PREFIX = "instanceId="
#: how long an unused, expired ``console_session`` row is kept, and how many are deleted per grant
PRUNE_AFTER = timedelta(hours=1)
PRUNE_BATCH = 200
#: the longest the request waits for the agent's answer (the console call is interactive)
AGENT_WAIT_SECONDS = 30.0
#: an extra validation token longer than this is refused (it travels in URLs)
MAX_EXTRA_LENGTH = 255
NO_PROXY_TEXT = ("No console proxy is running: start one with 'hvcloud console-proxy run', or set "
                 "consoleproxy.url")
NO_AGENT_MANAGER = "The agent manager is not running on this management server"


@dataclass(frozen=True)
class ConsoleAccess:
    """A granted console: the token and the proxy base URL it is to be presented at."""

    grant: ConsoleGrant
    token: str
    proxy_url: str

    @property
    def url(self) -> str:
        """The page a browser opens: noVNC for a VNC console, the ``.rdp`` file for Hyper-V."""
        path = "/rdp" if self.grant.protocol == "rdp" else "/console"
        url = f"{self.proxy_url}{path}?token={quote(self.token, safe='')}"
        if self.grant.extra is not None:
            url += f"&extra={quote(self.grant.extra, safe='')}"
        return url

    @property
    def websocket_host(self) -> str:
        return urlsplit(self.proxy_url).hostname or ""

    @property
    def websocket_port(self) -> str:
        parts = urlsplit(self.proxy_url)
        return str(parts.port or (443 if parts.scheme == "https" else 80))


def running_host(vm: VMInstance, what: str) -> Host:
    """The Up host ``vm`` runs on; 431 when the VM is not Running, 534 when its host is not Up."""
    if vm.state != S.RUNNING:
        raise S.InvalidState(f"VM {vm.display_name} must be running to {what}; it is {vm.state}")
    host = vm.host
    if host is None:
        raise errors.unavailable(f"VM {vm.display_name} has lost its host; unable to {what}")
    if host.status != HOST_UP:
        raise errors.unavailable(f"The host of VM {vm.display_name} is {host.status}; unable to {what} until "
                                 "it is back Up")
    return host


def host_address(host: Host) -> str:
    """Where the server reaches a host: its private IP, else the host part of its URL."""
    return host.private_ip or urlsplit(host.url).hostname or ""


def ask_agent(agents: AgentService | None, host: Host, command: Command, what: str) -> Answer:
    """Send one command from a request's thread; transport failures and ``result: false`` are 534."""
    if agents is None:
        raise errors.unavailable(NO_AGENT_MANAGER)
    try:
        answer = agents.send_sync(host.id, command, wait=min(agents.config.command_wait_seconds,
                                                               AGENT_WAIT_SECONDS))
    except AgentError as exc:
        log.warning("console_agent_unreachable", host=host.id, what=what, error=str(exc)[:200])
        raise errors.unavailable(f"Unable to {what}: host {host.name} did not answer") from None
    if not answer.result:
        raise errors.unavailable(f"Unable to {what}: {(answer.details or 'the host refused')[:200]}")
    return answer


def pick_proxy(db: Session, config: ServerConfig, now: datetime) -> tuple[str | None, str]:
    """(proxy id, base URL): ``consoleproxy.url`` if set, else the live proxy with the fewest
    sessions (alive: seen within three heartbeats); 534 when there is none."""
    if config.console_proxy_url:
        return None, config.console_proxy_url.rstrip("/")
    alive_since = now - timedelta(seconds=3 * config.console_proxy_heartbeat_seconds)
    proxy = db.scalars(select(ConsoleProxy).where(ConsoleProxy.last_seen >= alive_since)
                       .order_by(ConsoleProxy.active_sessions, ConsoleProxy.last_seen.desc(), ConsoleProxy.id)
                       .limit(1)).first()
    if proxy is None:
        raise errors.unavailable(NO_PROXY_TEXT)
    return proxy.id, proxy.url.rstrip("/")


def _unspecified(address: str) -> bool:
    if not address:
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_unspecified
    except ValueError:
        return False


def endpoint_of(answer: GetVncPortAnswer, host: Host) -> tuple[str, str, int, str | None]:
    """(protocol, host, port, Hyper-V instance id) of a GetVncPortAnswer from ``host``."""
    address = (answer.address or "").strip()
    if answer.port == HYPERV_PORT_MARK or address.startswith(HYPERV_ADDRESS_PREFIX):
        instance_id = address[len(HYPERV_ADDRESS_PREFIX):] if address.startswith(HYPERV_ADDRESS_PREFIX) else ""
        if not instance_id or len(instance_id) > 64:
            raise errors.unavailable(f"Host {host.name} gave no VM instance id for the RDP console")
        return "rdp", host_address(host), host.console_port or RDP_PORT, instance_id
    if not 0 < answer.port < 65536:
        raise errors.unavailable(f"Host {host.name} reports no console port for the VM")
    return "vnc", host_address(host) if _unspecified(address) else address, answer.port, None


def prune_sessions(db: Session, now: datetime) -> None:
    """Delete a bounded batch of console_session rows never used and expired long ago."""
    old = (select(ConsoleSession.id).where(ConsoleSession.used.is_(None), ConsoleSession.expires < now - PRUNE_AFTER)
           .limit(PRUNE_BATCH))
    db.execute(delete(ConsoleSession).where(ConsoleSession.id.in_(old)).execution_options(synchronize_session=False))


def check_extra(config: ServerConfig, extra: str | None) -> str | None:
    """The extra validation token to put in the grant (None when validation is off)."""
    if not config.console_extra_validation:
        return None
    if extra is None or not extra.strip():
        raise errors.param_error("Extra security validation is enabled (consoleproxy.extra.security.validation."
                                 "enabled): give the token parameter")
    if len(extra) > MAX_EXTRA_LENGTH or not extra.isascii() or not extra.isprintable():
        raise errors.param_error(f"token must be at most {MAX_EXTRA_LENGTH} printable ASCII characters")
    return extra


def grant_console(db: Session, config: ServerConfig, box: SecretBox, agents: AgentService | None, caller: User,
                  vm_id: str, extra: str | None, client_address: str | None) -> ConsoleAccess:
    """A console on ``vm_id`` for ``caller``; the ``console_session`` row joins ``db``'s transaction."""
    vm = visible_vm(db, caller, vm_id)
    extra = check_extra(config, extra)
    host = running_host(vm, "connect to its console")
    proxy_id, proxy_url = pick_proxy(db, config, utcnow())
    answer = ask_agent(agents, host, GetVncPortCommand(name=vm.instance_name, id=vm.vm_number),
                       "connect to the console")
    if not isinstance(answer, GetVncPortAnswer):
        raise errors.unavailable(f"Host {host.name} answered the console request with {type(answer).__name__}")
    protocol, address, port, instance_id = endpoint_of(answer, host)
    try:
        password = box.decrypt(vm.vnc_password_enc) if vm.vnc_password_enc and protocol == "vnc" else None
    except SecretDecryptError:
        raise errors.internal(f"The console password of VM {vm.display_name} cannot be read") from None
    issued = time.time()
    grant = ConsoleGrant(token_id=secrets.token_urlsafe(24), vm_id=vm.id, vm_name=vm.display_name,
                         account_id=vm.account_id, protocol="rdp" if protocol == "rdp" else "vnc", host=address,
                         port=port, issued=issued, expires=issued + config.console_token_ttl_seconds,
                         instance_id=instance_id, extra=extra, vnc_password=password)
    token = TokenSigner(box.derive_key(TOKEN_PURPOSE)).mint(grant)
    now = utcnow()
    prune_sessions(db, now)
    client = (client_address or "")[:64] or None
    db.add(ConsoleSession(token_id=grant.token_id, vm_id=vm.id, account_id=vm.account_id, user_id=caller.id,
                          protocol=grant.protocol, client_address=client,
                          expires=datetime.fromtimestamp(grant.expires, UTC)))
    log.info("console_granted", vm=vm.id, user=caller.id, protocol=grant.protocol, proxy=proxy_id or proxy_url,
             client=client)
    return ConsoleAccess(grant=grant, token=token, proxy_url=proxy_url)
