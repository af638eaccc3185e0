"""Zones, pods and clusters: creation with unique names, edits, and deletion of empty ones."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server import errors
from hvcloud.server.db.models import Cluster, Host, ImageStore, Pod, StoragePool, Zone


@dataclass(frozen=True)
class ZoneEdit:
    """updateZone's changes; ``fields`` holds only the attributes the caller gave (None clears)."""

    name: str | None = None
    fields: tuple[tuple[str, str | bool | None], ...] = ()
    allocation_state: str | None = None
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PodRange:
    gateway: str | None
    netmask: str | None
    start_ip: str | None
    end_ip: str | None


def create_zone(db: Session, zone: Zone) -> Zone:
    """Add ``zone`` (built from createZone's parameters) unless its name is taken."""
    if db.scalar(select(Zone.id).where(Zone.name == zone.name)) is not None:
        raise errors.param_error(f"A zone with name: {zone.name} already exists")
    db.add(zone)
    db.flush()
    return zone


def update_zone(db: Session, zone: Zone, edit: ZoneEdit) -> Zone:
    if edit.name is not None and edit.name != zone.name:
        if not edit.name:
            raise errors.param_error("Zone name cannot be empty")
        if db.scalar(select(Zone.id).where(Zone.name == edit.name)) is not None:
            raise errors.param_error(f"A zone with name: {edit.name} already exists")
        zone.name = edit.name
    for attr, value in edit.fields:
        setattr(zone, attr, value)
    zone.allocation_state = edit.allocation_state or zone.allocation_state
    if edit.details:
        merged = json.loads(zone.details_json) if zone.details_json else {}
        merged.update(dict(edit.details))
        zone.details_json = json.dumps(merged, sort_keys=True)
    return zone


def delete_zone(db: Session, zone: Zone) -> None:
    """Delete an empty zone: no pods, hosts, primary storage pools or image stores left in it."""
    for model, what in ((Pod, "pods"), (Host, "hosts"), (StoragePool, "primary storage pools"),
                        (ImageStore, "image stores")):
        if db.scalar(select(model.id).where(model.zone_id == zone.id).limit(1)) is not None:
            raise errors.in_use(f"The zone is not deletable because there are {what} in this zone")
    db.delete(zone)


def create_pod(db: Session, zone: Zone, name: str, ip_range: PodRange, allocation_state: str) -> Pod:
    if db.scalar(select(Pod.id).where(Pod.zone_id == zone.id, Pod.name == name)) is not None:
        raise errors.param_error(f"A pod with name: {name} already exists in zone {zone.name}")
    pod = Pod(zone_id=zone.id, name=name, gateway=ip_range.gateway, netmask=ip_range.netmask,
              start_ip=ip_range.start_ip, end_ip=ip_range.end_ip, allocation_state=allocation_state)
    db.add(pod)
    db.flush()
    db.refresh(pod)
    return pod


def update_pod(db: Session, pod: Pod, name: str | None, ip_range: PodRange, allocation_state: str | None) -> Pod:
    """Rename (unique in the zone) and change the range; a part of the range not given is kept."""
    if name is not None and name != pod.name:
        clash = db.scalar(select(Pod.id).where(Pod.zone_id == pod.zone_id, Pod.name == name))
        if clash is not None or not name:
            raise errors.param_error(f"Invalid or duplicate pod name {name[:64]}")
        pod.name = name
    pod.gateway = ip_range.gateway or pod.gateway
    pod.netmask = ip_range.netmask or pod.netmask
    pod.start_ip = ip_range.start_ip or pod.start_ip
    pod.end_ip = ip_range.end_ip or pod.end_ip
    pod.allocation_state = allocation_state or pod.allocation_state
    return pod


def delete_pod(db: Session, pod: Pod) -> None:
    for model, what in ((Cluster, "clusters"), (Host, "hosts"), (StoragePool, "primary storage pools")):
        if db.scalar(select(model.id).where(model.pod_id == pod.id).limit(1)) is not None:
            raise errors.in_use(f"The pod is not deletable because there are {what} in this pod")
    db.delete(pod)


def create_cluster(db: Session, cluster: Cluster, pod: Pod) -> Cluster:
    """Add ``cluster`` (built from addCluster's parameters) unless its name is taken in ``pod``."""
    if db.scalar(select(Cluster.id).where(Cluster.pod_id == pod.id, Cluster.name == cluster.name)) is not None:
        raise errors.param_error(f"A cluster with name {cluster.name} already exists in pod {pod.name}")
    db.add(cluster)
    db.flush()
    db.refresh(cluster)
    return cluster


def update_cluster(db: Session, cluster: Cluster, name: str | None, allocation_state: str | None,
                   managed_state: str | None) -> Cluster:
    if name is not None and name != cluster.name:
        clash = db.scalar(select(Cluster.id).where(Cluster.pod_id == cluster.pod_id, Cluster.name == name))
        if clash is not None or not name:
            raise errors.param_error(f"Invalid or duplicate cluster name {name[:64]}")
        cluster.name = name
    cluster.allocation_state = allocation_state or cluster.allocation_state
    if managed_state is not None:
        cluster.managed_state = managed_state
    return cluster


def delete_cluster(db: Session, cluster: Cluster) -> None:
    for model, what in ((Host, "hosts"), (StoragePool, "primary storage pools")):
        if db.scalar(select(model.id).where(model.cluster_id == cluster.id).limit(1)) is not None:
            raise errors.in_use(f"The cluster is not deletable because there are {what} in this cluster")
    db.delete(cluster)
