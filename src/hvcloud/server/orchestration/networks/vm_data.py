"""What a network's router serves one VM NIC: its metadata triples and its pending password.

PLACEHOLDER COMPOSITION: ``orchestration/vm_metadata.py`` (user data, SSH keys, CloudStack's exact
``generateVmData`` list) replaces the body of :func:`vm_data_triples` and :func:`pending_password`
at merge; the router orchestration calls only these two functions.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import Nic, ServiceOffering, VMInstance, Zone

Triple = list[str | None]


def vm_data_triples(db: Session, vm: VMInstance, nic: Nic) -> list[Triple]:
    """``VmDataCommand.vmData``: ``[folder, file, contents]`` for the VM as seen through ``nic``."""
    zone = db.get(Zone, vm.zone_id)
    offering = db.get(ServiceOffering, vm.service_offering_id)
    return [
        ["userdata", "user-data", vm.user_data],
        ["metadata", "service-offering", offering.display_text if offering is not None else None],
        ["metadata", "availability-zone", zone.name if zone is not None else None],
        ["metadata", "local-ipv4", nic.ip4_address],
        ["metadata", "local-hostname", vm.name],
        ["metadata", "instance-id", vm.instance_name],
        ["metadata", "vm-id", vm.id],
    ]


def pending_password(db: Session, box: SecretBox, vm: VMInstance) -> str | None:
    """The password the router's password server should hand the VM, if one is pending (the
    ``password_enc`` column arrives with the keys work; until then there is none)."""
    encrypted = getattr(vm, "password_enc", None)
    return box.decrypt(encrypted) if isinstance(encrypted, str) and encrypted else None
