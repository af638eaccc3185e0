"""The shared pools a host must attach when it connects (CloudStack's StoragePoolMonitor)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import Cluster, StoragePool
from hvcloud.server.orchestration.discovery import PoolTarget

SHARED_POOL_SCOPES = ("CLUSTER", "ZONE")
POOL_USABLE_STATES = ("Up",)


def shared_pools(db: Session, box: SecretBox, zone_id: str, cluster_id: str) -> list[PoolTarget]:
    """The cluster's and the zone's shared pools a host must attach (CloudStack's StoragePoolMonitor)."""
    cluster = db.get(Cluster, cluster_id)
    stmt = select(StoragePool).where(StoragePool.zone_id == zone_id,
                                     StoragePool.scope.in_(SHARED_POOL_SCOPES),
                                     StoragePool.state.in_(POOL_USABLE_STATES)).order_by(StoragePool.created)
    out: list[PoolTarget] = []
    for pool in db.scalars(stmt):
        if pool.scope == "CLUSTER" and pool.cluster_id != cluster_id:
            continue
        if pool.scope == "ZONE" and cluster is not None and pool.hypervisor not in (None, cluster.hypervisor):
            continue
        out.append(PoolTarget(pool_id=pool.id, host=pool.host_address, path=pool.path, pool_type=pool.pool_type,
                              port=_port_of(pool.url), user_info=_user_info(box, pool)))
    return out


def _port_of(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None


def _user_info(box: SecretBox, pool: StoragePool) -> str | None:
    """SMB pools carry their credentials to the agent as CloudStack does (``user:password``-style
    query parameters kept encrypted in the pool's details)."""
    if pool.pool_type != "SMB" or not pool.details_enc:
        return None
    details = json.loads(box.decrypt(pool.details_enc))
    user, password = details.get("user"), details.get("password")
    if not user:
        return None
    domain = details.get("domain")
    return f"{domain + '/' if domain else ''}{user}:{password or ''}"
