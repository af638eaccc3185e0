"""Host rows as CloudStack's HostResponse (answered by the host commands and by the host jobs)."""

from __future__ import annotations

from typing import Any

from hvcloud.server.db.models import Host
from hvcloud.server.orchestration import planner
from hvcloud.server.views.fields import compact

HOST_EVENTS = "AgentConnected; AgentDisconnected; Ping; PingTimeout; ShutdownRequested"


def _allocated_percent(used: int, total: int) -> str:
    """CloudStack's cpuallocated: what the placed VMs hold, in percent of what the host offers."""
    return f"{(100.0 * used / total) if total else 0.0:.2f}%"


def host_view(h: Host) -> dict[str, Any]:
    mhz, memory = planner.host_capacity(h)
    return compact({
        "id": h.id, "name": h.name, "type": h.host_type, "state": h.status, "resourcestate": h.resource_state,
        "ipaddress": h.private_ip, "zoneid": h.zone_id, "zonename": h.zone.name, "podid": h.pod_id,
        "podname": h.pod.name if h.pod else None, "clusterid": h.cluster_id,
        "clustername": h.cluster.name if h.cluster else None,
        "clustertype": h.cluster.cluster_type if h.cluster else None, "hypervisor": h.hypervisor,
        "hypervisorversion": h.hypervisor_version, "cpusockets": h.cpu_sockets, "cpunumber": h.cpu_number,
        "cpuspeed": h.cpu_speed, "cpuallocated": _allocated_percent(h.cpu_allocated or 0, mhz),
        "cpuallocatedvalue": h.cpu_allocated or 0, "cpuwithoverprovisioning": str(mhz),
        "memorytotal": h.memory_total,
        "memoryallocated": (h.memory_allocated or 0) if h.memory_total is not None else None,
        "memorywithoverprovisioning": str(memory) if h.memory_total is not None else None, "hosttags": h.host_tags,
        "capabilities": h.capabilities, "created": h.created, "lastpinged": h.last_pinged,
        "disconnected": h.disconnected_at, "version": h.agent_version,
        "islocalstorageactive": h.zone.local_storage_enabled, "certfingerprint": h.cert_fingerprint,
        "events": HOST_EVENTS, "cpuused": None if h.cpu_used_percent is None else f"{h.cpu_used_percent:.2f}%",
        "memoryused": h.memory_used,
        "networkkbsread": None if h.network_read_kbs is None else int(h.network_read_kbs),
        "networkkbswrite": None if h.network_write_kbs is None else int(h.network_write_kbs),
        "statereason": h.status_reason, "managementserverid": h.owner_server_id,
    })
