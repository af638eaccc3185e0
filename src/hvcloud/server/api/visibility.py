"""What non-admin callers do not see of the objects an answer carries."""

from __future__ import annotations

from typing import Any

#: what CloudStack shows root admins only (``ResponseView.Full``): where a VM runs, and where a
#: volume's disk lives (UserVmJoinDaoImpl, VolumeJoinDaoImpl)
VM_ADMIN_FIELDS = ("instancename", "hostid", "hostname")
VOLUME_ADMIN_FIELDS = ("storageid", "storage", "hypervisor", "path")
#: a network's segment (NetworkResponse: "visible to ROOT admins only")
NETWORK_ADMIN_FIELDS = ("vlan", "broadcasturi")
_ADMIN_FIELDS = {"virtualmachine": VM_ADMIN_FIELDS, "volume": VOLUME_ADMIN_FIELDS, "network": NETWORK_ADMIN_FIELDS}


def for_user(body: Any) -> Any:
    """``body`` as a non-admin sees it: the admin-only fields of every ``virtualmachine``,
    ``volume`` and ``network`` object dropped, wherever they are (an answer, a list, a job's ``jobresult``)."""
    if isinstance(body, list):
        return [for_user(item) for item in body]
    if not isinstance(body, dict):
        return body
    out: dict[str, Any] = {}
    for key, value in body.items():
        hidden = _ADMIN_FIELDS.get(key)
        if hidden is not None:
            items = value if isinstance(value, list) else [value]
            stripped = [{k: v for k, v in item.items() if k not in hidden} if isinstance(item, dict) else item
                        for item in items]
            out[key] = stripped if isinstance(value, list) else stripped[0]
        else:
            out[key] = for_user(value)
    return out
