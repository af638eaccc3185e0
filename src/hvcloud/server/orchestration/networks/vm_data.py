"""What a network's router serves one VM NIC: its metadata triples and its pending password, from
:mod:`hvcloud.server.orchestration.vm_metadata` (CloudStack's ``generateVmData`` list) with what
the NIC's network adds (its address, shared or isolated)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import Host, Network, Nic, ServiceOffering, VMInstance, Zone
from hvcloud.server.orchestration import vm_metadata

Triple = list[str | None]


def vm_data_triples(db: Session, vm: VMInstance, nic: Nic) -> list[Triple]:
    """``VmDataCommand.vmData``: ``[folder, file, contents]`` for the VM as seen through ``nic``."""
    zone = db.get(Zone, vm.zone_id)
    offering = db.get(ServiceOffering, vm.service_offering_id)
    network = db.get(Network, nic.network_id) if nic.network_id else None
    host = db.get(Host, vm.host_id) if vm.host_id else None
    data = vm_metadata.input_for(
        vm, guest_ip=nic.ip4_address or "", zone_name=zone.name if zone is not None else "",
        service_offering=offering.display_text if offering is not None else "",
        shared_network=network is None or network.guest_type == "Shared",
        hypervisor_host_name=host.name if host is not None else None)
    return [list(entry) for entry in vm_metadata.vm_data(data)]


def pending_password(db: Session, box: SecretBox, vm: VMInstance) -> str | None:
    """The password the router's password server should hand the VM, if a new one is pending."""
    return vm_metadata.password_for_router(vm, box)


def password_delivered(db: Session, vm_id: str) -> None:
    """Every router of the VM took its pending password: it is not pushed again until it changes."""
    vm = db.get(VMInstance, vm_id)
    if vm is not None and vm.password_pending:
        vm_metadata.password_saved(vm)
