"""API views of the DB rows: CloudStack's field names and JSON types (see cloudstack-api.md §2.6, §3.5)."""

from __future__ import annotations

import json
from typing import Any

from hvcloud.server.db.models import (
    Alert,
    Cluster,
    Event,
    Host,
    ImageStore,
    OsType,
    Pod,
    StoragePool,
    Zone,
)
from hvcloud.server.views.fields import compact

HOST_EVENTS = "AgentConnected; AgentDisconnected; Ping; PingTimeout; ShutdownRequested"


def zone_view(z: Zone) -> dict[str, Any]:
    return compact({"id": z.id, "name": z.name, "networktype": z.network_type,
                    "allocationstate": z.allocation_state, "dns1": z.dns1, "dns2": z.dns2,
                    "internaldns1": z.internal_dns1, "internaldns2": z.internal_dns2,
                    "guestcidraddress": z.guest_cidr, "domain": z.network_domain,
                    "localstorageenabled": z.local_storage_enabled,
                    "securitygroupsenabled": z.security_groups_enabled, "dhcpprovider": "VirtualRouter",
                    "zonetoken": z.id.replace("-", "")[:16], "type": "Core", "tags": [],
                    "hasannotations": False, "created": z.created,
                    "resourcedetails": json.loads(z.details_json) if z.details_json else None})


def pod_view(p: Pod) -> dict[str, Any]:
    return compact({"id": p.id, "name": p.name, "zoneid": p.zone_id, "zonename": p.zone.name,
                    "gateway": p.gateway, "netmask": p.netmask,
                    "startip": [p.start_ip] if p.start_ip else [], "endip": [p.end_ip] if p.end_ip else [],
                    "vlanid": [], "forsystemvms": [], "allocationstate": p.allocation_state,
                    "ipranges": ([{"startip": p.start_ip, "endip": p.end_ip or "", "gateway": p.gateway or "",
                                   "forsystemvms": "0", "vlanid": ""}] if p.start_ip else [])})


def cluster_view(c: Cluster) -> dict[str, Any]:
    return compact({"id": c.id, "name": c.name, "podid": c.pod_id, "podname": c.pod.name,
                    "zoneid": c.zone_id, "zonename": c.zone.name, "hypervisortype": c.hypervisor,
                    "clustertype": c.cluster_type, "allocationstate": c.allocation_state,
                    "managedstate": c.managed_state, "cpuovercommitratio": c.cpu_overcommit,
                    "memoryovercommitratio": c.memory_overcommit})


def host_view(h: Host) -> dict[str, Any]:
    return compact({
        "id": h.id, "name": h.name, "type": h.host_type, "state": h.status, "resourcestate": h.resource_state,
        "ipaddress": h.private_ip, "zoneid": h.zone_id, "zonename": h.zone.name, "podid": h.pod_id,
        "podname": h.pod.name if h.pod else None, "clusterid": h.cluster_id,
        "clustername": h.cluster.name if h.cluster else None,
        "clustertype": h.cluster.cluster_type if h.cluster else None, "hypervisor": h.hypervisor,
        "hypervisorversion": h.hypervisor_version, "cpusockets": h.cpu_sockets, "cpunumber": h.cpu_number,
        "cpuspeed": h.cpu_speed, "cpuallocated": "0%", "memorytotal": h.memory_total,
        "memoryallocated": 0 if h.memory_total is not None else None, "hosttags": h.host_tags,
        "capabilities": h.capabilities, "created": h.created, "lastpinged": h.last_pinged,
        "disconnected": h.disconnected_at, "version": h.agent_version,
        "islocalstorageactive": h.zone.local_storage_enabled, "certfingerprint": h.cert_fingerprint,
        "events": HOST_EVENTS, "cpuused": None if h.cpu_used_percent is None else f"{h.cpu_used_percent:.2f}%",
        "memoryused": h.memory_used,
        "networkkbsread": None if h.network_read_kbs is None else int(h.network_read_kbs),
        "networkkbswrite": None if h.network_write_kbs is None else int(h.network_write_kbs),
        "statereason": h.status_reason, "managementserverid": h.owner_server_id,
    })


POOL_TYPE_NAMES = {"nfs": "NetworkFilesystem", "file": "Filesystem", "smb": "SMB", "cifs": "SMB"}


def pool_view(p: StoragePool) -> dict[str, Any]:
    return compact({
        "id": p.id, "name": p.name, "zoneid": p.zone_id, "zonename": p.zone.name, "podid": p.pod_id,
        "podname": p.pod.name if p.pod else None, "clusterid": p.cluster_id,
        "clustername": p.cluster.name if p.cluster else None, "ipaddress": p.host_address, "path": p.path,
        "type": p.pool_type, "scope": p.scope, "state": p.state, "disksizetotal": p.capacity_bytes,
        "disksizeallocated": p.allocated_bytes, "disksizeused": p.used_bytes, "provider": p.provider,
        "hypervisor": p.hypervisor, "tags": p.tags, "overprovisionfactor": p.overprovision_factor,
        "created": p.created, "hostid": p.host_id, "managed": False,
    })


def store_view(s: ImageStore) -> dict[str, Any]:
    return compact({"id": s.id, "name": s.name, "url": s.url, "protocol": s.protocol,
                    "providername": s.provider, "scope": s.scope, "zoneid": s.zone_id,
                    "zonename": s.zone.name if s.zone else None, "readonly": s.readonly,
                    "disksizetotal": s.capacity_bytes, "disksizeused": s.used_bytes})


def ostype_view(o: OsType) -> dict[str, Any]:
    return {"id": o.id, "description": o.description, "name": o.description, "oscategoryid": o.category_id,
            "oscategoryname": o.category.name, "isuserdefined": o.is_user_defined}


def event_view(e: Event) -> dict[str, Any]:
    return compact({"id": e.id, "type": e.event_type, "level": e.level, "state": e.state,
                    "description": e.description, "account": e.account.name if e.account else None,
                    "domainid": e.account.domain_id if e.account else None,
                    "domain": e.account.domain.name if e.account else None,
                    "username": e.user.username if e.user else None, "resourcetype": e.resource_type,
                    "resourceid": e.resource_id, "created": e.created})


def alert_view(a: Alert) -> dict[str, Any]:
    return compact({"id": a.id, "type": a.alert_type, "name": a.name, "description": a.subject,
                    "sent": a.created})


def details_json(details: dict[str, str]) -> str:
    return json.dumps(details, sort_keys=True)
