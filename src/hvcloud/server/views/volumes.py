"""CloudStack's ``volume`` object (cloudstack-api.md §3.5)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import object_session, selectinload
from sqlalchemy.sql.base import ExecutableOption

from hvcloud.server.db.models import VMInstance, Volume
from hvcloud.server.orchestration.agents import HOST_UP
from hvcloud.server.orchestration.resource_tags import VOLUME
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.views.fields import compact
from hvcloud.server.views.tags import tags_of

#: what :func:`volume_view` reads of a volume's relationships, loaded for a whole page at once
VOLUME_VIEW_LOADS: tuple[ExecutableOption, ...] = (
    selectinload(Volume.account), selectinload(Volume.zone), selectinload(Volume.pool),
    selectinload(Volume.disk_offering), selectinload(Volume.vm).selectinload(VMInstance.host))


def shown_state(vm: VMInstance) -> str:
    return S.shown(vm.state, None if vm.host is None else vm.host.status == HOST_UP)


def volume_view(v: Volume, tags: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``tags``: the volume's, when a list loaded those of its whole page (:func:`views.tags.tag_map`)."""
    vm = v.vm if v.vm_id is not None else None
    pool = v.pool
    offering = v.disk_offering
    account = v.account
    return compact({
        "id": v.id, "name": v.name, "type": v.volume_type, "state": v.state, "size": v.size,
        "zoneid": v.zone_id, "zonename": v.zone.name, "virtualmachineid": v.vm_id,
        "vmname": vm.name if vm else None, "vmdisplayname": vm.display_name if vm else None,
        "vmstate": shown_state(vm) if vm else None, "deviceid": v.device_id if vm else None,
        "attached": v.attached if vm else None,
        "diskofferingid": v.disk_offering_id, "diskofferingname": offering.name if offering else None,
        "diskofferingdisplaytext": offering.display_text if offering else None,
        "storageid": v.pool_id, "storage": pool.name if pool else None,
        "storagetype": "local" if pool is not None and pool.scope == "HOST" else "shared",
        "provisioningtype": offering.provisioning_type if offering else "thin",
        "hypervisor": pool.hypervisor if pool and pool.hypervisor else None, "path": v.path,
        "created": v.created, "destroyed": v.state == "Destroy", "displayvolume": True,
        "isextractable": False, "account": account.name, "domainid": account.domain_id,
        "domain": account.domain.name, "templateid": v.template_id,
        "tags": tags if tags is not None else tags_of(object_session(v), VOLUME, v.id),
    })
