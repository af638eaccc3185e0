"""Primary storage pools, image stores and storage providers."""

from __future__ import annotations

from sqlalchemy import or_, select

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import submit_job
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.params import map_as_key_values, parse_bool
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, Result, SuccessResult
from hvcloud.server.db.models import Cluster, ImageStore, Pod, StoragePool, Zone
from hvcloud.server.orchestration.catalog import HYPERVISORS, IMAGE_PROVIDERS, PRIMARY_PROVIDERS
from hvcloud.server.orchestration.resources import image_stores, storage_pools
from hvcloud.server.orchestration.storage_urls import (
    POOL_SCHEMES,
    STORE_SCHEMES,
    StorageUrlError,
    parse_storage_url,
)
from hvcloud.server.views.storage import pool_view, store_view

command = REGISTRY.command

POOL_FIELDS = ("id", "name", "zoneid", "clusterid", "type", "scope", "state", "path", "ipaddress")
STORE_FIELDS = ("id", "name", "url", "protocol", "providername", "scope", "zoneid")
S3_REQUIRED = ("accesskey", "secretkey", "bucket", "endpoint")


@command("createStoragePool", "Creates a storage pool", params=[
    Param("name", required=True, description="the name for the storage pool"),
    Param("url", required=True, length=2048, description="the URL of the storage pool"),
    Param("zoneid", "uuid", required=True, description="the Zone ID for the storage pool"),
    Param("podid", "uuid", description="the Pod ID for the storage pool"),
    Param("clusterid", "uuid", description="the cluster ID for the storage pool"),
    Param("scope", description="the scope of the storage: cluster or zone"),
    Param("hypervisor", description="hypervisor type of the hosts in a zone that will be attached"),
    Param("provider", description="the storage provider name"),
    Param("tags", description="the tags for the storage pool"),
    Param("capacitybytes", "long", description="bytes CloudStack can provision from this storage pool"),
    Param("managed", "boolean", description="whether the storage should be managed by CloudStack"),
    Param("details", "map", description="the details for the storage pool"),
], response=POOL_FIELDS)
def create_storage_pool(ctx: CallContext, args: Args) -> Result:
    zone = ctx.require(args, Zone, "zoneid")
    scope = (args.opt_str("scope") or "cluster").upper()
    if scope not in ("CLUSTER", "ZONE"):
        raise errors.param_error("Only cluster and zone scoped primary storage is supported")
    provider = args.opt_str("provider") or "DefaultPrimary"
    if provider not in PRIMARY_PROVIDERS:
        raise errors.param_error(f"Primary storage provider {provider[:64]} is not supported")
    pod = cluster = None
    hypervisor: str | None = None
    if scope == "CLUSTER":
        cluster = ctx.optional(args, Cluster, "clusterid")
        pod = ctx.optional(args, Pod, "podid")
        if cluster is None or pod is None:
            raise errors.param_error("Cluster and pod ids are required for a cluster scoped storage pool")
        if cluster.pod_id != pod.id or pod.zone_id != zone.id:
            raise errors.param_error("The cluster does not belong to the given pod and zone")
        hypervisor = cluster.hypervisor
    else:
        hv = args.opt_str("hypervisor")
        if hv is None:
            raise errors.missing_parameter(ctx.command, "hypervisor")
        matches = [h for h in HYPERVISORS if h.lower() == hv.lower()]
        if not matches:
            raise errors.param_error(f"Unable to resolve Hypervisor type {hv[:32]}")
        hypervisor = matches[0]
    try:
        parsed = parse_storage_url(args.str("url"), POOL_SCHEMES)
    except StorageUrlError as exc:
        raise errors.param_error(f"Invalid storage pool URL: {exc}") from None
    capacity = args.opt_int("capacitybytes")
    if capacity is not None and capacity < 0:
        raise errors.param_error("capacitybytes must not be negative")
    details = map_as_key_values(args.map("details"))
    details.update(parsed.secrets)
    pool = StoragePool(name=args.str("name"), zone_id=zone.id, pod_id=pod.id if pod else None,
                       cluster_id=cluster.id if cluster else None, scope=scope,
                       pool_type=POOL_SCHEMES[parsed.scheme], host_address=parsed.host, path=parsed.path,
                       url=parsed.clean_url, provider=provider, hypervisor=hypervisor, state="Up",
                       capacity_bytes=capacity or 0, tags=args.opt_str("tags"))
    storage_pools.create_pool(ctx.db, ctx.state.box, pool, details)
    ctx.event("STORAGE.POOL.CREATE", f"Creating storage pool {pool.name}", resource_type="StoragePool",
              resource_id=pool.id)
    return ObjectResult("storagepool", pool_view(pool))


@command("listStoragePools", "Lists storage pools", params=[
    Param("id", "uuid", description="the ID of the storage pool"),
    Param("name", description="the name of the storage pool"),
    Param("zoneid", "uuid", description="the Zone ID for the storage pool"),
    Param("podid", "uuid", description="the Pod ID for the storage pool"),
    Param("clusterid", "uuid", description="list storage pools belonging to the specific cluster"),
    Param("ipaddress", description="the IP address for the storage pool"),
    Param("path", description="the storage pool path"),
    Param("scope", description="the scope of the storage pool"),
    Param("status", description="the status of the storage pool"),
], response=POOL_FIELDS)
def list_storage_pools(ctx: CallContext, args: Args) -> Result:
    stmt = select(StoragePool).order_by(StoragePool.created, StoragePool.name)
    for param, column in (("id", StoragePool.id), ("name", StoragePool.name), ("zoneid", StoragePool.zone_id),
                          ("podid", StoragePool.pod_id), ("clusterid", StoragePool.cluster_id),
                          ("ipaddress", StoragePool.host_address), ("path", StoragePool.path),
                          ("status", StoragePool.state)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    scope = args.opt_str("scope")
    if scope is not None:
        stmt = stmt.where(StoragePool.scope == scope.upper())
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(StoragePool.name.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt, args)
    return ListResult("storagepool", [pool_view(p) for p in rows], count)


@command("updateStoragePool", "Updates a storage pool", params=[
    Param("id", "uuid", required=True, description="the Id of the storage pool"),
    Param("name", description="changes the name of the storage pool"),
    Param("tags", "list", description="comma-separated list of tags for the storage pool"),
    Param("capacitybytes", "long", description="bytes CloudStack can provision from this storage pool"),
    Param("enabled", "boolean", description="false to disable the pool for allocation, true to enable it"),
], response=POOL_FIELDS)
def update_storage_pool(ctx: CallContext, args: Args) -> Result:
    pool = ctx.require(args, StoragePool, "id")
    capacity = args.opt_int("capacitybytes")
    if capacity is not None and capacity < 0:
        raise errors.param_error("capacitybytes must not be negative")
    storage_pools.update_pool(pool, name=args.opt_str("name"), tags=",".join(args.list("tags")) or None,
                              tags_given=args.has("tags"), capacity_bytes=capacity,
                              enabled=args.opt_bool("enabled"))
    ctx.event("STORAGE.POOL.UPDATE", f"Updating storage pool {pool.name}", resource_type="StoragePool",
              resource_id=pool.id)
    return ObjectResult("storagepool", pool_view(pool))


@command("deleteStoragePool", "Deletes a storage pool", params=[
    Param("id", "uuid", required=True, description="Storage pool id"),
    Param("forced", "boolean", description="Force destroy storage pool"),
])
def delete_storage_pool(ctx: CallContext, args: Args) -> Result:
    pool = ctx.require(args, StoragePool, "id")
    ctx.event("STORAGE.POOL.DELETE", f"Deleting storage pool {pool.name}", resource_type="StoragePool",
              resource_id=pool.id)
    storage_pools.delete_pool(ctx.db, pool)
    return SuccessResult()


def _submit_maintenance(ctx: CallContext, args: Args, start: bool) -> Result:
    pool = ctx.require(args, StoragePool, "id")
    return submit_job(ctx, storage_pools.JOB_MAINTENANCE, {"id": pool.id, "start": start},
                      instance_type="StoragePool", instance_id=pool.id)


@command("enableStorageMaintenance", "Puts storage pool into maintenance state", isasync=True, params=[
    Param("id", "uuid", required=True, description="Primary storage ID")], response=POOL_FIELDS)
def enable_storage_maintenance(ctx: CallContext, args: Args) -> Result:
    return _submit_maintenance(ctx, args, True)


@command("cancelStorageMaintenance", "Cancels maintenance for primary storage", isasync=True, params=[
    Param("id", "uuid", required=True, description="the primary storage ID")], response=POOL_FIELDS)
def cancel_storage_maintenance(ctx: CallContext, args: Args) -> Result:
    return _submit_maintenance(ctx, args, False)


@command("listStorageProviders", "Lists storage providers", params=[
    Param("type", required=True, description="the type of storage provider: primary or image")],
    response=("name", "type"))
def list_storage_providers(ctx: CallContext, args: Args) -> Result:
    kind = args.str("type").lower()
    if kind == "primary":
        items = [{"name": n, "type": "PRIMARY"} for n in PRIMARY_PROVIDERS]
    elif kind == "image":
        items = [{"name": n, "type": "IMAGE"} for n in IMAGE_PROVIDERS]
    else:
        raise errors.param_error(f"Invalid storage provider type {kind[:32]}: expected primary or image")
    return ListResult("dataStoreProvider", items, len(items))


def _store(ctx: CallContext, *, name: str | None, provider: str, url: str, protocol: str, zone: Zone | None,
           details: dict[str, str]) -> ImageStore:
    store = image_stores.add_store(ctx.db, ctx.state.box, name=name, provider=provider, url=url,
                                   protocol=protocol, zone=zone, details=details)
    ctx.event("IMAGE.STORE.ADD", f"Adding image store {store.name}", resource_type="ImageStore",
              resource_id=store.id)
    return store


def _s3_store(ctx: CallContext, name: str | None, details: dict[str, str]) -> ImageStore:
    for key in S3_REQUIRED:
        if not details.get(key):
            raise errors.missing_parameter(ctx.command, key)
    endpoint = details["endpoint"]
    if "/" in endpoint.split("://", 1)[-1] or any(c.isspace() for c in endpoint):
        raise errors.param_error("The S3 endpoint must be host[:port] or scheme://host[:port]")
    https = parse_bool(details.get("usehttps", "false"))
    if "://" in endpoint:
        scheme, _, hostport = endpoint.partition("://")
        https = scheme.lower() == "https"
        endpoint = hostport
    bucket = details["bucket"]
    if not 3 <= len(bucket) <= 63 or not all(c.isalnum() or c in "-." for c in bucket):
        raise errors.param_error("Invalid S3 bucket name")
    details = {**details, "endpoint": endpoint, "usehttps": str(https).lower()}
    url = f"{'https' if https else 'http'}://{endpoint}/{bucket}"
    return _store(ctx, name=name or bucket, provider="S3", url=url, protocol="http" + ("s" if https else ""),
                  zone=None, details=details)


@command("addImageStore", "Adds backup image store", params=[
    Param("provider", required=True, description="the image store provider name"),
    Param("name", description="the name for the image store"),
    Param("url", length=2048, description="the URL for the image store"),
    Param("zoneid", "uuid", description="the Zone ID for the image store"),
    Param("details", "map", description="the details for the image store"),
], response=STORE_FIELDS)
def add_image_store(ctx: CallContext, args: Args) -> Result:
    provider = args.str("provider")
    matches = [p for p in IMAGE_PROVIDERS if p.lower() == provider.lower()]
    if not matches:
        raise errors.param_error(f"Image store provider {provider[:64]} is not supported")
    provider = matches[0]
    details = map_as_key_values(args.map("details"))
    if provider == "S3":
        return ObjectResult("imagestore", store_view(_s3_store(ctx, args.opt_str("name"), details)))
    zone = ctx.optional(args, Zone, "zoneid")
    if zone is None:
        raise errors.missing_parameter(ctx.command, "zoneid")
    raw_url = args.opt_str("url")
    if not raw_url:
        raise errors.missing_parameter(ctx.command, "url")
    allowed = {"nfs": "nfs", "file": "file"} if provider == "NFS" else {"smb": "smb", "cifs": "cifs"}
    try:
        parsed = parse_storage_url(raw_url, {k: v for k, v in STORE_SCHEMES.items() if k in allowed})
    except StorageUrlError as exc:
        raise errors.param_error(f"Invalid image store URL: {exc}") from None
    store = _store(ctx, name=args.opt_str("name"), provider=provider, url=parsed.clean_url,
                   protocol=STORE_SCHEMES[parsed.scheme], zone=zone, details={**details, **parsed.secrets})
    return ObjectResult("imagestore", store_view(store))


@command("addImageStoreS3", "Adds S3 Image Store", params=[
    Param("accesskey", required=True, description="S3 access key"),
    Param("secretkey", required=True, description="S3 secret key"),
    Param("bucket", required=True, description="name of the template storage bucket"),
    Param("endpoint", required=True, description="S3 endpoint"),
    Param("usehttps", "boolean", description="use HTTPS instead of HTTP"),
    Param("connectiontimeout", "integer", description="connection timeout (milliseconds)"),
    Param("maxerrorretry", "integer", description="maximum number of times to retry on error"),
    Param("sockettimeout", "integer", description="socket timeout (milliseconds)"),
    Param("s3signer", description="signer algorithm to use"),
], response=STORE_FIELDS)
def add_image_store_s3(ctx: CallContext, args: Args) -> Result:
    details = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in args.values.items()}
    return ObjectResult("imagestore", store_view(_s3_store(ctx, None, details)))


@command("listImageStores", "Lists image stores", params=[
    Param("id", "uuid", description="the ID of the storage pool"),
    Param("name", description="the name of the image store"),
    Param("zoneid", "uuid", description="the Zone ID for the image store"),
    Param("protocol", description="the image store protocol"),
    Param("provider", description="the image store provider"),
], response=STORE_FIELDS)
def list_image_stores(ctx: CallContext, args: Args) -> Result:
    stmt = select(ImageStore).order_by(ImageStore.created, ImageStore.name)
    for param, column in (("id", ImageStore.id), ("name", ImageStore.name), ("protocol", ImageStore.protocol),
                          ("provider", ImageStore.provider)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    zone_id = args.opt_str("zoneid")
    if zone_id is not None:
        stmt = stmt.where(or_(ImageStore.zone_id == zone_id, ImageStore.zone_id.is_(None)))
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(ImageStore.name.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt, args)
    return ListResult("imagestore", [store_view(s) for s in rows], count)


@command("deleteImageStore", "Deletes an image store", params=[
    Param("id", "uuid", required=True, description="the image store ID")])
def delete_image_store(ctx: CallContext, args: Args) -> Result:
    store = ctx.require(args, ImageStore, "id")
    ctx.event("IMAGE.STORE.REMOVE", f"Deleting image store {store.name}", resource_type="ImageStore",
              resource_id=store.id)
    image_stores.delete_store(ctx.db, store)
    return SuccessResult()
