"""Zone, pod and cluster rows as CloudStack's ZoneResponse, PodResponse and ClusterResponse."""

from __future__ import annotations

import json
from typing import Any

from hvcloud.server.db.models import Cluster, Pod, Zone
from hvcloud.server.views.fields import compact


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
