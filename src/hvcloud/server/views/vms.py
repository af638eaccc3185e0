"""CloudStack's ``virtualmachine`` object (cloudstack-api.md §3.5)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from hvcloud.server.db.models import (
    Account,
    Domain,
    Host,
    InstanceGroup,
    Network,
    Nic,
    ServiceOffering,
    UserData,
    UserIpAddress,
    VMInstance,
    VMTemplate,
    Volume,
    Zone,
)
from hvcloud.server.orchestration.agents import HOST_UP
from hvcloud.server.orchestration.resource_tags import USER_VM
from hvcloud.server.orchestration.user_data import load_details
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.views.affinity_groups import vm_affinity_groups
from hvcloud.server.views.fields import compact
from hvcloud.server.views.security_groups import vm_groups
from hvcloud.server.views.tags import tag_map

ROOT_DEVICE_TYPE = "ROOT"
VIEW_CHUNK = 500

_TEMPLATE = aliased(VMTemplate)
_ISO = aliased(VMTemplate)
#: the VM's static NAT address (``publicip``/``publicipid``), as subqueries of the one view query
_STATIC_NAT = select(UserIpAddress).where(UserIpAddress.vm_id == VMInstance.id, UserIpAddress.one_to_one_nat.is_(True),
                                          UserIpAddress.removed.is_(None)).order_by(UserIpAddress.allocated).limit(1)
#: everything a ``virtualmachine`` object shows, as plain columns of one joined query: a page of 500
#: VMs is one query and no ORM objects (building those cost more than the rest of the request)
_VIEW_QUERY = (
    select(VMInstance.id, VMInstance.name, VMInstance.display_name, VMInstance.instance_name, VMInstance.state,
           VMInstance.state_reason, VMInstance.zone_id, VMInstance.host_id, VMInstance.template_id,
           VMInstance.iso_id, VMInstance.service_offering_id, VMInstance.cpu_number, VMInstance.cpu_speed,
           VMInstance.memory, VMInstance.account_id, VMInstance.user_id, VMInstance.created, VMInstance.ha_enabled,
           VMInstance.display_vm, VMInstance.os_type_id, VMInstance.group_id, VMInstance.user_data,
           VMInstance.keypairs, VMInstance.user_data_id, VMInstance.user_data_details,
           VMInstance.affinity_group_count, InstanceGroup.name.label("groupname"),
           UserData.name.label("userdataname"),
           Zone.name.label("zonename"), Host.name.label("hostname"), Host.hypervisor.label("host_hypervisor"),
           Host.status.label("host_status"),
           _TEMPLATE.name.label("templatename"), _TEMPLATE.display_text.label("templatedisplaytext"),
           _TEMPLATE.hypervisor.label("template_hypervisor"), _TEMPLATE.password_enabled,
           _ISO.name.label("isoname"), ServiceOffering.name.label("serviceofferingname"),
           Account.name.label("account"), Account.domain_id, Domain.name.label("domain"),
           _STATIC_NAT.with_only_columns(UserIpAddress.public_ip_address).scalar_subquery().label("publicip"),
           _STATIC_NAT.with_only_columns(UserIpAddress.id).scalar_subquery().label("publicipid"))
    .join(Zone, Zone.id == VMInstance.zone_id)
    .join(ServiceOffering, ServiceOffering.id == VMInstance.service_offering_id)
    .join(Account, Account.id == VMInstance.account_id)
    .join(Domain, Domain.id == Account.domain_id)
    .outerjoin(Host, Host.id == VMInstance.host_id)
    .outerjoin(_TEMPLATE, _TEMPLATE.id == VMInstance.template_id)
    .outerjoin(_ISO, _ISO.id == VMInstance.iso_id)
    .outerjoin(UserData, UserData.id == VMInstance.user_data_id)
    .outerjoin(InstanceGroup, InstanceGroup.id == VMInstance.group_id))


#: the static NAT address pointing at a NIC (its VM on its network): ``nic[].publicip``/``publicipid``
_NIC_STATIC_NAT = select(UserIpAddress).where(UserIpAddress.vm_id == Nic.vm_id,
                                              UserIpAddress.network_id == Nic.network_id,
                                              UserIpAddress.one_to_one_nat.is_(True),
                                              UserIpAddress.removed.is_(None)).order_by(UserIpAddress.allocated).limit(1)
#: a NIC as ``nic`` objects show it, with its network's name, type and segment: one query per page
_NIC_QUERY = (
    select(Nic.id, Nic.vm_id, Nic.network_id, Nic.device_id, Nic.mac_address, Nic.ip4_address, Nic.netmask,
           Nic.gateway, Nic.broadcast_uri, Nic.isolation_uri, Nic.is_default, Nic.network_label,
           Network.name.label("network_name"), Network.guest_type, Network.traffic_type,
           Network.broadcast_uri.label("network_uri"),
           _NIC_STATIC_NAT.with_only_columns(UserIpAddress.public_ip_address).scalar_subquery().label("publicip"),
           _NIC_STATIC_NAT.with_only_columns(UserIpAddress.id).scalar_subquery().label("publicipid"))
    .outerjoin(Network, Network.id == Nic.network_id)
    .where(Nic.removed.is_(None))
    .order_by(Nic.vm_id, Nic.device_id))
LEGACY_URI = "vlan://untagged"


def nic_view(nic: Any) -> dict[str, Any]:
    """CloudStack's ``nic`` object of a row of :data:`_NIC_QUERY`. A NIC of no network (a zone
    without guest networks) shows the zone's guest bridge, as every VM's one NIC did before."""
    if nic.network_id is None:
        uri = nic.broadcast_uri or LEGACY_URI
        return {"id": nic.id, "networkname": nic.network_label, "macaddress": nic.mac_address,
                "isdefault": nic.is_default, "traffictype": "Guest", "type": "Shared", "broadcasturi": uri,
                "isolationuri": nic.isolation_uri or uri, "deviceid": str(nic.device_id),
                "virtualmachineid": nic.vm_id, "secondaryip": []}
    uri = nic.network_uri or nic.broadcast_uri
    return compact({"id": nic.id, "networkid": nic.network_id, "networkname": nic.network_name,
                    "ipaddress": nic.ip4_address, "netmask": nic.netmask, "gateway": nic.gateway,
                    "macaddress": nic.mac_address, "isdefault": nic.is_default,
                    "traffictype": nic.traffic_type or "Guest", "type": nic.guest_type, "broadcasturi": uri,
                    "isolationuri": nic.isolation_uri or uri, "deviceid": str(nic.device_id),
                    "virtualmachineid": nic.vm_id, "secondaryip": [], "publicip": getattr(nic, "publicip", None),
                    "publicipid": getattr(nic, "publicipid", None)})


def nic_rows(db: Session, vm_ids: list[str]) -> dict[str, list[Any]]:
    """The live NICs of ``vm_ids`` (at most one chunk), by VM, in device order: one query."""
    out: dict[str, list[Any]] = {}
    for row in db.execute(_NIC_QUERY.where(Nic.vm_id.in_(vm_ids))):
        out.setdefault(row.vm_id, []).append(row)
    return out


def nic_views(db: Session, *conditions: Any, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
    """``nic`` objects of the live NICs matching ``conditions`` (listNics), in VM and device order."""
    stmt = _NIC_QUERY.where(*conditions).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [nic_view(row) for row in db.execute(stmt)]


def data_disk_offerings(db: Session, vm_ids: list[str]) -> dict[str, str | None]:
    """The disk offering of each VM's first data disk, in one query (for list pages)."""
    out: dict[str, str | None] = {}
    if not vm_ids:
        return out
    rows = db.execute(select(Volume.vm_id, Volume.disk_offering_id).where(
        Volume.vm_id.in_(vm_ids), Volume.volume_type == "DATADISK", Volume.removed.is_(None))
        .order_by(Volume.device_id))
    for vm_id, offering in rows:
        if vm_id is not None and vm_id not in out:
            out[vm_id] = offering
    return out


def vm_views(db: Session, vm_ids: list[str], *, details: bool = True) -> list[dict[str, Any]]:
    """The ``virtualmachine`` objects of ``vm_ids``, in that order: five queries per 500 VMs."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(vm_ids), VIEW_CHUNK):
        chunk = vm_ids[start:start + VIEW_CHUNK]
        rows = {r.id: r for r in db.execute(_VIEW_QUERY.where(VMInstance.id.in_(chunk)))}
        offerings = data_disk_offerings(db, chunk) if details else None
        nics = nic_rows(db, chunk)
        groups = vm_groups(db, chunk)
        tags = tag_map(db, USER_VM, chunk)
        affinity = vm_affinity_groups(db, [i for i, r in rows.items() if r.affinity_group_count])
        out.extend(_view(rows[i], offerings, nics.get(i, []), groups.get(i, []), tags.get(i, []),
                         affinity.get(i, []))
                   for i in chunk if i in rows)
    return out


def vm_view(db: Session, vm: VMInstance, *, details: bool = True) -> dict[str, Any]:
    """One VM's ``virtualmachine`` object, as it stands in this session (pending changes are flushed)."""
    return vm_views(db, [vm.id], details=details)[0]


def vm_view_becoming(db: Session, vm_id: str, state: str, state_reason: str | None) -> dict[str, Any] | None:
    """The VM's object as it will be once its new state is written, read before that write (so that a
    transaction reads first and holds the database's write lock only for its writes). Only the state
    and its reason may differ; None when the VM is gone."""
    rows = db.execute(_VIEW_QUERY.where(VMInstance.id == vm_id)).all()
    if not rows:
        return None
    row = SimpleNamespace(**{**rows[0]._asdict(), "state": state, "state_reason": state_reason})
    affinity = vm_affinity_groups(db, [vm_id] if row.affinity_group_count else [])
    return _view(row, data_disk_offerings(db, [vm_id]), nic_rows(db, [vm_id]).get(vm_id, []),
                 vm_groups(db, [vm_id]).get(vm_id, []), tag_map(db, USER_VM, [vm_id]).get(vm_id, []),
                 affinity.get(vm_id, []))


def _details_text(stored: str | None) -> str | None:
    """``userdatadetails`` as CloudStack prints the map: ``{key1=value1, key2=value2}``."""
    details = load_details(stored)
    if not details:
        return None
    return "{" + ", ".join(f"{k}={v}" for k, v in details.items()) + "}"


def _view(vm: Any, offerings: dict[str, str | None] | None, nics: list[Any],
          groups: list[dict[str, Any]], tags: list[dict[str, Any]],
          affinity: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": vm.id, "name": vm.name, "displayname": vm.display_name, "instancename": vm.instance_name,
        "state": S.shown(vm.state, None if vm.host_id is None else vm.host_status == HOST_UP),
        "zoneid": vm.zone_id, "zonename": vm.zonename,
        "hostid": vm.host_id, "hostname": vm.hostname,
        "templateid": vm.template_id, "templatename": vm.templatename,
        "templatedisplaytext": vm.templatedisplaytext,
        "isoid": vm.iso_id, "isoname": vm.isoname,
        "serviceofferingid": vm.service_offering_id, "serviceofferingname": vm.serviceofferingname,
        "cpunumber": vm.cpu_number, "cpuspeed": vm.cpu_speed, "memory": vm.memory,
        "hypervisor": vm.host_hypervisor if vm.host_id is not None else vm.template_hypervisor,
        "account": vm.account, "accountid": vm.account_id, "domainid": vm.domain_id,
        "domain": vm.domain, "userid": vm.user_id, "created": vm.created,
        "haenable": vm.ha_enabled, "passwordenabled": bool(vm.password_enabled),
        "displayvm": vm.display_vm, "isdynamicallyscalable": False,
        "guestosid": vm.os_type_id, "ostypeid": vm.os_type_id, "rootdeviceid": 0,
        "rootdevicetype": ROOT_DEVICE_TYPE, "group": vm.groupname, "groupid": vm.group_id,
        "keypairs": vm.keypairs, "keypair": vm.keypairs, "userdataid": vm.user_data_id,
        "userdataname": vm.userdataname, "userdatadetails": _details_text(vm.user_data_details),
        "publicip": vm.publicip, "publicipid": vm.publicipid,
        "nic": [nic_view(n) for n in nics], "securitygroup": groups, "affinitygroup": affinity, "tags": tags,
    }
    if vm.state_reason:
        out["details"] = {"statereason": vm.state_reason}
    if offerings is not None:
        out["diskofferingid"] = offerings.get(vm.id)
    if vm.user_data:
        out["userdata"] = vm.user_data
    return compact(out)
