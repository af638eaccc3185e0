"""Hosts: discovery (``addHost``), resource-state changes, maintenance state and removal.

Discovery talks to the agent for seconds (or a mount's worth of them), so :func:`add_host` ends the
caller's transaction before it does: the checks and the inputs of the connect sequence are read
first, the agent is talked to with no database lock held, and the host row is written in a new
transaction together with what the agent reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hvcloud.server import errors
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import Cluster, Host, Pod, StoragePool, VmPowerReport, Zone, new_id, utcnow
from hvcloud.server.orchestration import discovery, host_leases
from hvcloud.server.orchestration.agents import (
    HOST_UP,
    RESOURCE_DISABLED,
    RESOURCE_ENABLED,
    RESOURCE_MAINTENANCE,
    RESOURCE_PREPARE_MAINTENANCE,
    AgentAuthFailed,
    AgentCertificateChanged,
    AgentError,
    AgentUnavailable,
)
from hvcloud.server.orchestration.agents.pools import shared_pools
from hvcloud.server.orchestration.agents.protocol import AgentService
from hvcloud.server.orchestration.host_jobs import RESOURCE_ERROR_IN_MAINTENANCE
from hvcloud.server.orchestration.host_updates import record_connect

NO_AGENT_MANAGER = "The agent manager is not running on this management server"


@dataclass(frozen=True)
class NewHost:
    """addHost's checked parameters: where the host goes, how to reach and log in to its agent."""

    zone: Zone
    pod: Pod
    cluster: Cluster
    url: str
    port_override: str | None
    username: str | None
    password: str | None
    host_tags: str | None
    disabled: bool


def _discovery_error(url: str, exc: AgentError) -> errors.CloudError:
    if isinstance(exc, AgentAuthFailed):
        text = (f"Unable to add the host: the agent at {url} refused the credentials (HTTP 401); check the "
                "username and password given to addHost")
    elif isinstance(exc, AgentCertificateChanged):
        text = f"Unable to add the host: the agent at {url} presented an unexpected certificate: {exc}"
    elif isinstance(exc, AgentUnavailable):
        text = f"Unable to add the host: the agent at {url} is not reachable: {exc}"
    else:
        text = f"Unable to add the host: the agent at {url} failed discovery: {exc}"
    return errors.internal(text[:2000])


def add_host(db: Session, manager: AgentService | None, box: SecretBox, new: NewHost) -> Host:
    """Discover the agent at ``new.url`` and add its host; commits the caller's transaction first
    (``manager`` None: this server runs no agent manager, answered once the URL has been checked)."""
    zone, pod, cluster = new.zone, new.pod, new.cluster
    try:
        name, port = discovery.parse_host_url(new.url, new.port_override)
        address = discovery.resolve(name, port)
    except discovery.HostUrlError as exc:
        raise errors.param_error(str(exc)) from None
    guid = discovery.host_guid(address.ip)
    existing = db.scalars(select(Host).where(Host.guid == guid)).first()
    if existing is not None:
        raise errors.param_error(f"A host with IP address {address.ip} already exists: {existing.name} "
                                 f"(id {existing.id}, state {existing.status})")
    if manager is None:
        raise errors.unavailable(NO_AGENT_MANAGER)
    host_id = new_id()
    request = discovery.ConnectRequest(
        host_id=host_id, guid=guid, address=address, zone_id=zone.id, pod_id=pod.id, cluster_id=cluster.id,
        hypervisor=cluster.hypervisor, pools=tuple(shared_pools(db, box, zone.id, cluster.id)))
    db.commit()  # hold no database lock while the agent is being talked to
    try:
        result = manager.run_sync(manager.discover(request, new.username, new.password),
                                  timeout=manager.config.connect_step_timeout_seconds * (4 + len(request.pools)))
    except AgentError as exc:
        raise _discovery_error(address.url, exc) from None
    host = Host(id=host_id, name=address.ip, guid=guid, zone_id=zone.id, pod_id=pod.id, cluster_id=cluster.id,
                hypervisor=cluster.hypervisor, url=address.url, private_ip=address.ip,
                agent_username=new.username,
                agent_password_enc=box.encrypt(new.password) if new.password is not None else None,
                host_tags=new.host_tags, resource_state=RESOURCE_DISABLED if new.disabled else RESOURCE_ENABLED)
    host.zone, host.pod, host.cluster = zone, pod, cluster
    if manager.server_id is not None:
        host_leases.assign(host, manager.server_id)
    db.add(host)
    record_connect(db, host, result, utcnow())
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        raise errors.param_error(f"A host with IP address {address.ip} already exists") from None
    if host.status == HOST_UP:
        manager.note_connected(host.id)
    return host


def update_host(host: Host, *, enable: bool | None, host_tags: str | None, tags_given: bool,
                name: str | None) -> Host:
    """updateHost: enable or disable (only from Enabled or Disabled), retag, rename."""
    if enable is not None:
        if host.resource_state not in (RESOURCE_ENABLED, RESOURCE_DISABLED):
            raise errors.param_error(f"Host in resource state {host.resource_state} cannot be enabled "
                                     "or disabled")
        host.resource_state = RESOURCE_ENABLED if enable else RESOURCE_DISABLED
    if tags_given:
        host.host_tags = host_tags
    if name is not None:
        if not name:
            raise errors.param_error("Host name cannot be empty")
        host.name = name
    return host


def prepare_maintenance(host: Host) -> None:
    """Move an Up host to PrepareForMaintenance at once; the maintenance job (host_jobs) empties it."""
    if host.resource_state in (RESOURCE_MAINTENANCE, RESOURCE_PREPARE_MAINTENANCE):
        raise errors.param_error("Host is already in maintenance")
    if host.status != HOST_UP:
        raise errors.param_error(f"Host in state {host.status} cannot be prepared for maintenance")
    host.resource_state = RESOURCE_PREPARE_MAINTENANCE


def cancel_maintenance(host: Host) -> None:
    if host.resource_state not in (RESOURCE_MAINTENANCE, RESOURCE_PREPARE_MAINTENANCE,
                                   RESOURCE_ERROR_IN_MAINTENANCE):
        raise errors.param_error("Host is not in maintenance")
    host.resource_state = RESOURCE_ENABLED


def delete_host(db: Session, agents: AgentService | None, host: Host, *, forced: bool) -> None:
    """Remove a host in maintenance (or any, ``forced``) with its local pools and power reports."""
    if not forced and host.status == HOST_UP and host.resource_state != RESOURCE_MAINTENANCE:
        raise errors.in_use("Host is Up: put it into maintenance first or use forced=true")
    for pool in db.scalars(select(StoragePool).where(StoragePool.host_id == host.id)):
        db.delete(pool)
    for report in db.scalars(select(VmPowerReport).where(VmPowerReport.host_id == host.id)):
        db.delete(report)
    if agents is not None:
        agents.forget(host.id)
    db.delete(host)
