"""Host discovery and the connect sequence, as CloudStack's Hyper-V discoverer runs them.

``addHost`` probes the agent with a ReadyCommand, then :func:`connect` tells the agent who it is
(StartupCommand with zone/pod/cluster/guid), sends SetupCommand, attaches the cluster's and zone's
shared pools (ModifyStoragePoolCommand) and finishes with a ReadyCommand carrying the ids
(reference ``cloudstack-hyperv-agent.md`` §5). ``reconnectHost`` and the ping loop run the same
sequence when a host comes back. No database access here: the caller gathers the inputs and
stores the result.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import hvcloud
from hvcloud.agent_client import AgentClient
from hvcloud.server.orchestration.agents import DEFAULT_AGENT_PORT, CommandFailed, guarded, wire_id
from hvcloud.wire import answers as A
from hvcloud.wire import commands as C
from hvcloud.wire.startup import StartupRoutingCommand, StartupStorageCommand
from hvcloud.wire.to import StorageFilerTO, StoragePoolInfo

GUID_SUFFIX = "-HypervResource"
IDENTITY_FIELDS = ("dataCenter", "pod", "cluster", "guid", "name", "privateIpAddress")


class HostUrlError(ValueError):
    pass


@dataclass(frozen=True)
class AgentAddress:
    """Where a host's agent listens: the name the admin typed, its resolved IP and the port."""

    name: str
    ip: str
    port: int

    @property
    def base_url(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"https://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The URL kept on the host row (CloudStack's ``http://`` form, port included when not 8250)."""
        host = f"[{self.name}]" if ":" in self.name else self.name
        return f"http://{host}" if self.port == DEFAULT_AGENT_PORT else f"http://{host}:{self.port}"


def parse_host_url(url: str, port_override: str | None = None) -> tuple[str, int]:
    """``http://<name-or-ip>[:port]`` → (name, port). CloudStack's Hyper-V discoverer accepts only the
    ``http`` scheme (the wire itself is always HTTPS); the port defaults to 8250."""
    if len(url) > 2048 or any(ord(c) < 32 for c in url):
        raise HostUrlError("the host URL is too long or contains control characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise HostUrlError(f"malformed host URL: {exc}") from None
    if parts.scheme.lower() != "http":
        raise HostUrlError("the host URL must look like http://<host name or IP>[:port]")
    name = parts.hostname or ""
    if not name or parts.username or parts.password or (parts.path not in ("", "/")) or parts.query:
        raise HostUrlError("the host URL must look like http://<host name or IP>[:port]")
    if port_override is not None:
        if not port_override.isdigit() or not 0 < int(port_override) < 65536:
            raise HostUrlError(f"agent.port must be a TCP port number, got {port_override[:16]!r}")
        port = int(port_override)
    if port == 0:
        raise HostUrlError("the agent port must not be 0")
    return name, port or DEFAULT_AGENT_PORT


def resolve(name: str, port: int) -> AgentAddress:
    """Resolve the host name to one IP (blocking; call from a worker thread)."""
    try:
        ip = str(ipaddress.ip_address(name))
    except ValueError:
        try:
            infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise HostUrlError(f"cannot resolve host name {name[:255]}: {exc}") from None
        ip = str(infos[0][4][0])
    return AgentAddress(name=name, ip=ip, port=port)


def host_guid(ip: str) -> str:
    """Java's ``UUID.nameUUIDFromBytes(ip) + "-HypervResource"`` (an MD5, version-3 UUID)."""
    return str(uuid.UUID(bytes=hashlib.md5(ip.encode("utf-8")).digest(), version=3)) + GUID_SUFFIX


def cluster_guid(cluster_id: str) -> str:
    return str(uuid.UUID(bytes=hashlib.md5(cluster_id.encode("utf-8")).digest(), version=3))


@dataclass(frozen=True)
class PoolTarget:
    """A shared pool the host must attach: the row id and the StorageFilerTO fields."""

    pool_id: str
    host: str
    path: str
    pool_type: str
    port: int | None = None
    user_info: str | None = None

    def filer(self) -> StorageFilerTO:
        return StorageFilerTO(id=wire_id(self.pool_id), uuid=self.pool_id, host=self.host, path=self.path,
                              port=self.port, type=self.pool_type, userInfo=self.user_info)


@dataclass(frozen=True)
class ConnectRequest:
    host_id: str
    guid: str
    address: AgentAddress
    zone_id: str
    pod_id: str
    cluster_id: str
    hypervisor: str
    pools: tuple[PoolTarget, ...] = ()
    need_setup: bool = True


@dataclass
class PoolOutcome:
    pool_id: str
    ok: bool
    details: str | None = None
    capacity_bytes: int | None = None
    available_bytes: int | None = None


@dataclass
class HostFacts:
    cpus: int | None = None
    cpu_sockets: int | None = None
    speed_mhz: int | None = None
    memory_bytes: int | None = None
    hypervisor_version: str | None = None
    caps: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    local_pool: StoragePoolInfo | None = None


@dataclass
class ConnectResult:
    facts: HostFacts
    pools: list[PoolOutcome]
    fingerprint: str | None

    @property
    def failed_pools(self) -> list[PoolOutcome]:
        return [p for p in self.pools if not p.ok]


async def probe(client: AgentClient, seconds: float) -> None:
    """The discoverer's liveness probe: a bare ReadyCommand that must answer ``result:true``."""
    answer = await guarded(client.send(C.ReadyCommand(contextMap={}, wait=0, bypassHostMaintenance=False)),
                           seconds, "ReadyCommand")
    if not answer.result:
        raise CommandFailed(f"Agent not running, or no route to agent: {answer.details or 'Ready failed'}")


def startup_command(req: ConnectRequest) -> StartupRoutingCommand:
    ip = req.address.ip
    return StartupRoutingCommand(
        type="Routing", dataCenter=str(wire_id(req.zone_id)), pod=str(wire_id(req.pod_id)),
        cluster=str(wire_id(req.cluster_id)), guid=req.guid, name=ip, version=hvcloud.__version__,
        pool=cluster_guid(req.cluster_id), resourceName=ip, privateIpAddress=ip, storageIpAddress=ip,
        hypervisorType=req.hypervisor, contextMap={})


def read_startup(sent: StartupRoutingCommand, objs: list[Any]) -> HostFacts:
    """Check the echoed identity (CloudStack refuses the host otherwise) and read the hardware."""
    if not objs or not isinstance(objs[0], StartupRoutingCommand):
        raise CommandFailed("the agent's startup answer does not start with a StartupRoutingCommand")
    got = objs[0]
    for name in IDENTITY_FIELDS:
        if getattr(got, name) != getattr(sent, name):
            raise CommandFailed(f"the agent changed {name} in its startup answer "
                                f"({str(getattr(got, name))[:64]!r} instead of {getattr(sent, name)!r})")
    local = next((o.poolInfo for o in objs[1:] if isinstance(o, StartupStorageCommand) and o.poolInfo), None)
    return HostFacts(cpus=got.cpus, cpu_sockets=got.cpuSockets, speed_mhz=got.speed, memory_bytes=got.memory,
                     hypervisor_version=got.hypervisorVersion, caps=got.caps, details=dict(got.hostDetails or {}),
                     local_pool=local)


async def connect(client: AgentClient, req: ConnectRequest, step_seconds: float,
                  quick_seconds: float | None = None) -> ConnectResult:
    """Startup, Setup, ModifyStoragePool for every shared pool, Ready. Raises AgentError.

    ``quick_seconds`` bounds the steps that do no real work on the host (all but the pool mounts):
    the ping loop's reconnects pass the ping timeout, so an agent that accepts connections but hangs
    fails within it and its host goes Down on the ``ping.timeout`` schedule instead of waiting out a
    step deadline sized for NFS mounts."""
    quick = min(step_seconds, quick_seconds) if quick_seconds else step_seconds
    sent = startup_command(req)
    objs = await guarded(client.startup([sent]), quick, "StartupCommand")
    facts = read_startup(sent, objs)
    setup = await guarded(client.send(C.SetupCommand(needSetup=req.need_setup, contextMap={})), quick,
                          "SetupCommand")
    if not setup.result:
        raise CommandFailed(f"SetupCommand failed: {setup.details or 'no details'}")
    pools: list[PoolOutcome] = []
    for pool in req.pools:
        answer = await guarded(client.send(C.ModifyStoragePoolCommand(add=True, pool=pool.filer(), contextMap={})),
                               step_seconds, "ModifyStoragePoolCommand")
        if answer.result and isinstance(answer, A.ModifyStoragePoolAnswer) and answer.poolInfo is not None:
            info = answer.poolInfo
            pools.append(PoolOutcome(pool.pool_id, True, capacity_bytes=info.capacityBytes,
                                     available_bytes=info.availableBytes))
        else:
            pools.append(PoolOutcome(pool.pool_id, bool(answer.result), details=answer.details))
    ready = C.ReadyCommand(dcId=wire_id(req.zone_id), hostId=wire_id(req.host_id), hostUuid=req.host_id,
                           hostName=req.address.ip, details={}, contextMap={})
    answer = await guarded(client.send(ready), quick, "ReadyCommand")
    if not answer.result:
        raise CommandFailed(f"ReadyCommand failed: {answer.details or 'no details'}")
    return ConnectResult(facts=facts, pools=pools, fingerprint=client.peer_sha256)
