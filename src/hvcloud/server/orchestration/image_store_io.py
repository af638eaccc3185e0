"""Which way the server reaches an image store row: local and NFS stores as directories on the
server's file system (NFS exports mounted under ``nfs_mount_root``, or at the store's ``localpath``),
S3 stores through their bucket. The reading and writing itself is :mod:`hvcloud.storage.store_io`'s,
the same the agents use.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import ImageStore
from hvcloud.storage.backend import S3Location
from hvcloud.storage.errors import StoreError
from hvcloud.storage.limits import StoreLimits
from hvcloud.storage.store_io import DirectoryStore, StoreIO


class StoreAccessError(StoreError):
    """This server has no way to the image store."""


def store_details(store: ImageStore, box: SecretBox) -> dict[str, str]:
    if not store.details_enc:
        return {}
    data = json.loads(box.decrypt(store.details_enc))
    return {str(k): str(v) for k, v in data.items()}


def s3_settings(details: dict[str, str]) -> tuple[S3Location, StoreLimits]:
    """The bucket and client limits of an S3 store from its details (CloudStack's names, times in ms)."""
    loc = S3Location(endpoint=details["endpoint"], bucket=details["bucket"], access_key=details["accesskey"],
                     secret_key=details["secretkey"], https=details.get("usehttps", "false").lower() == "true",
                     region=details.get("region") or None)
    limits = StoreLimits(http_connect_timeout=int(details.get("connectiontimeout") or 15000) / 1000,
                         http_read_timeout=int(details.get("sockettimeout") or 120000) / 1000,
                         s3_retries=int(details.get("maxerrorretry") or 3))
    return loc, limits


def open_store(store: ImageStore, box: SecretBox, nfs_mount_root: Path) -> StoreIO:
    details = store_details(store, box)
    if store.provider == "S3":
        from hvcloud.storage.s3_store import S3Store  # boto3 loads only when a server uses S3

        return S3Store(*s3_settings(details))
    parts = urlsplit(store.url)
    if parts.scheme == "file":
        return DirectoryStore(Path(parts.path))
    if parts.scheme == "nfs":
        local = details.get("localpath")
        if local:
            return DirectoryStore(Path(local))
        return DirectoryStore(nfs_mount_root / (parts.hostname or "") / parts.path.lstrip("/"))
    raise StoreAccessError(f"the server cannot write to {store.provider} image stores ({store.url})")
