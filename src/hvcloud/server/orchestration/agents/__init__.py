"""Host states, the typed errors of the agent wire, and the guard that maps transport failures to them.

The server reaches agents only through :class:`hvcloud.agent_client.AgentClient`; every call goes
through :func:`guarded`, so callers see one of the :class:`AgentError` subclasses below instead of
httpx or codec exceptions, and every call has a deadline.

This package also holds the parts of the AgentManager (facade:
:mod:`hvcloud.server.orchestration.agent_manager`): ``links`` (one client per host), ``sending``
(commands in flight and abandoning them), ``remote`` (forwarding to hosts other servers own),
``ownership`` (host leases), ``pings`` (the scheduler and its visits), ``writer`` (the batched
writer of their outcomes), ``pools`` (the shared pools a host attaches), ``sync_bridge`` (worker
threads to the event loop) and ``protocol``: the typed seam orchestration and jobs depend on.
This module stays light (it imports none of them) so every layer may import it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import TypeVar

from hvcloud.agent_client import AgentRefused, AgentUnreachable, CertificateMismatch
from hvcloud.wire.codec import WireError

HOST_UP = "Up"
HOST_CONNECTING = "Connecting"
HOST_DISCONNECTED = "Disconnected"
HOST_DOWN = "Down"
HOST_ALERT = "Alert"
HOST_STATES = (HOST_UP, HOST_CONNECTING, HOST_DISCONNECTED, HOST_DOWN, HOST_ALERT)

RESOURCE_ENABLED = "Enabled"
RESOURCE_DISABLED = "Disabled"
RESOURCE_PREPARE_MAINTENANCE = "PrepareForMaintenance"
RESOURCE_MAINTENANCE = "Maintenance"

DEFAULT_AGENT_PORT = 8250

T = TypeVar("T")


class AgentError(Exception):
    """A command could not be carried out over the agent wire."""


class AgentUnavailable(AgentError):
    """No answer: connection refused, reset, TLS failure or the deadline passed."""


class AgentAuthFailed(AgentError):
    """The agent answered 401/403: it does not accept the credentials the server holds."""


class AgentCertificateChanged(AgentError):
    """The agent's TLS certificate differs from the one pinned when the host was added."""


class AgentRejected(AgentError):
    """The agent answered with another HTTP error (unknown command, oversize body, bad request)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class AgentProtocolError(AgentError):
    """The agent answered 200 but the body is not a CloudStack answer."""


class HostNotConnected(AgentError):
    """The manager has no working connection to that host (unknown, being connected, or down)."""


class CommandFailed(AgentError):
    """A step of the connect sequence answered ``result:false`` (or echoed the wrong identity)."""


async def guarded(call: Awaitable[T], seconds: float, what: str) -> T:
    """Await one agent call with a deadline, mapping every failure to an :class:`AgentError`."""
    try:
        async with asyncio.timeout(seconds):
            return await call
    except TimeoutError:
        raise AgentUnavailable(f"{what}: no answer within {seconds:g} s") from None
    except CertificateMismatch as exc:
        raise AgentCertificateChanged(f"{what}: {exc}") from None
    except AgentUnreachable as exc:
        raise AgentUnavailable(f"{what}: {exc}") from None
    except AgentRefused as exc:
        if exc.status in (401, 403):
            raise AgentAuthFailed(f"{what}: the agent refused the credentials (HTTP {exc.status})") from None
        raise AgentRejected(f"{what}: {exc}", exc.status) from None
    except (WireError, ValueError) as exc:
        raise AgentProtocolError(f"{what}: malformed answer: {str(exc)[:300]}") from None


def wire_id(row_id: str) -> int:
    """CloudStack sends numeric database ids (``dcId``, ``hostId``, zone/pod/cluster in the startup
    exchange); hvcloud's ids are UUIDs, so the wire carries a stable positive 60-bit number taken
    from the UUID instead."""
    return int(uuid.UUID(row_id).hex[:15], 16)
