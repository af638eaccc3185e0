"""Primary storage pools and image stores as CloudStack's StoragePoolResponse and ImageStoreResponse."""

from __future__ import annotations

from typing import Any

from hvcloud.server.db.models import ImageStore, StoragePool
from hvcloud.server.views.fields import compact


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
