"""Image (secondary) stores: adding one (a URL once per zone, secrets encrypted) and removing it."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server import errors
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import ImageStore, Zone


def add_store(db: Session, box: SecretBox, *, name: str | None, provider: str, url: str, protocol: str,
              zone: Zone | None, details: dict[str, str]) -> ImageStore:
    """A zone's store (NFS, SMB) or a region-wide one (S3, ``zone`` None); named after its URL
    unless given a name."""
    if zone is not None:
        clash = db.scalar(select(ImageStore.id).where(ImageStore.url == url, ImageStore.zone_id == zone.id))
        if clash is not None:
            raise errors.param_error(f"An image store with URL {url} already exists in this zone")
    store = ImageStore(name=name or url, zone_id=zone.id if zone else None, provider=provider,
                       protocol=protocol,
                       url=url, scope="ZONE" if zone else "REGION",
                       details_enc=box.encrypt(json.dumps(details)) if details else None)
    db.add(store)
    db.flush()
    db.refresh(store)
    return store


def delete_store(db: Session, store: ImageStore) -> None:
    db.delete(store)
