"""The offerings catalog: service offerings (a VM's size) and disk offerings (a data disk's)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hvcloud.server.db.models import DiskOffering, ServiceOffering, User
from hvcloud.server.orchestration import events


def add_service_offering(db: Session, actor: User, offering: ServiceOffering) -> None:
    _add(db, actor, offering, "SERVICE.OFFERING.CREATE", f"Creating service offering {offering.name}",
         "ServiceOffering")


def add_disk_offering(db: Session, actor: User, offering: DiskOffering) -> None:
    _add(db, actor, offering, "DISK.OFFERING.CREATE", f"Creating disk offering {offering.name}", "DiskOffering")


def _add(db: Session, actor: User, offering: ServiceOffering | DiskOffering, event_type: str, description: str,
         resource_type: str) -> None:
    db.add(offering)
    db.flush()
    db.refresh(offering)
    events.record(db, actor, event_type, description, resource_type=resource_type, resource_id=offering.id)
