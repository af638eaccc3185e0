"""The offerings catalog: service offerings (a VM's size) and disk offerings (a data disk's)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hvcloud.server.db.models import DiskOffering, ServiceOffering, User
from hvcloud.server.orchestration import events


def add_service_offering(db: Session, actor: User, offering: ServiceOffering) -> None:
    db.add(offering)
    db.flush()
    db.refresh(offering)
    events.record(db, actor, "SERVICE.OFFERING.CREATE", f"Creating service offering {offering.name}",
                  resource_type="ServiceOffering", resource_id=offering.id)


def add_disk_offering(db: Session, actor: User, offering: DiskOffering) -> None:
    db.add(offering)
    db.flush()
    db.refresh(offering)
    events.record(db, actor, "DISK.OFFERING.CREATE", f"Creating disk offering {offering.name}",
                  resource_type="DiskOffering", resource_id=offering.id)
