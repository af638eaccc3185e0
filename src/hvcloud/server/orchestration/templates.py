"""Templates and ISOs on image stores: where they go, and the pipeline every image passes through
(fetch or upload to a staging file → checksum → image-safety checks → copy to the zone's store).

All functions here are blocking; job handlers call them in worker threads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from hvcloud.server import errors
from hvcloud.server import resource_types as R
from hvcloud.server.config import ServerConfig
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import Account, ImageStore, TemplateStoreRef, VMTemplate, Zone, utcnow
from hvcloud.server.orchestration import resource_limits as limits
from hvcloud.server.orchestration import resource_tags as tags
from hvcloud.server.orchestration import usage_events
from hvcloud.server.orchestration.image_store_io import StoreAccessError, open_store
from hvcloud.storage.errors import ChecksumMismatch, DownloadError, ImageError, StoreError, UnsafeUrl
from hvcloud.storage.http_fetch import download
from hvcloud.storage.image_check import check_template
from hvcloud.storage.limits import DownloadLimits
from hvcloud.storage.transfer import parse_checksum, verify_file

NOT_DOWNLOADED = "NOT_DOWNLOADED"
DOWNLOAD_IN_PROGRESS = "DOWNLOAD_IN_PROGRESS"
DOWNLOADED = "DOWNLOADED"
DOWNLOAD_ERROR = "DOWNLOAD_ERROR"
NOT_UPLOADED = "NOT_UPLOADED"
UPLOAD_IN_PROGRESS = "UPLOAD_IN_PROGRESS"
STAGING_DIR = "staging"

Percent = Callable[[int, str], None]


class TemplateInstallError(Exception):
    """Why an image was not installed; the text is shown as the template's status."""


@dataclass(frozen=True)
class StoreSettings:
    box: SecretBox
    nfs_mount_root: Path
    staging: Path
    #: the resource limits to enforce on installed sizes (None: count without a check)
    config: ServerConfig | None = None

    @classmethod
    def of(cls, config: ServerConfig, box: SecretBox) -> StoreSettings:
        staging = config.data_dir / STAGING_DIR
        staging.mkdir(mode=0o700, exist_ok=True)
        return cls(box=box, nfs_mount_root=config.nfs_mount_root, staging=staging, config=config)


def extension(fmt: str) -> str:
    return {"QCOW2": "qcow2", "RAW": "raw", "VHD": "vhd", "VHDX": "vhdx", "ISO": "iso"}.get(fmt.upper(), "img")


def install_path(template: VMTemplate) -> str:
    """``template/tmpl/<account>/<template>/<template>.<ext>``, relative to the store root."""
    return (f"template/tmpl/{template.account_id}/{template.id}/"
            f"{template.id}.{extension(template.format)}")


def pick_store(db: Session, zone_id: str) -> ImageStore | None:
    """The zone's first writable image store, else a region-wide (S3) store."""
    stmt = (select(ImageStore)
            .where(ImageStore.readonly.is_(False), or_(ImageStore.zone_id == zone_id, ImageStore.zone_id.is_(None)))
            .order_by(ImageStore.zone_id.is_(None), ImageStore.created, ImageStore.id))
    return db.scalars(stmt).first()


def add_template(db: Session, config: ServerConfig, owner: Account, template: VMTemplate) -> VMTemplate:
    """A newly registered template, counted against its owner's template limit."""
    limits.charge(db, config, owner, {R.TEMPLATE: 1})
    db.add(template)
    db.flush()
    return template


def add_store_ref(db: Session, template: VMTemplate, zone: Zone, state: str) -> TemplateStoreRef:
    """The template's copy in ``zone``'s image store (to download, copy or upload into)."""
    image_store = pick_store(db, zone.id)
    if image_store is None:
        raise errors.param_error(f"There is no image store in zone {zone.name} to hold the template")
    ref = TemplateStoreRef(template_id=template.id, zone_id=zone.id, store_id=image_store.id,
                           download_state=state)
    db.add(ref)
    db.flush()
    db.refresh(ref)
    return ref


def staging_file(settings: StoreSettings, ref_id: str, suffix: str = "download") -> Path:
    return settings.staging / f"{ref_id}.{suffix}"


def set_state(sessions: sessionmaker[Session], ref_id: str, state: str, *, percent: int | None = None,
              error: str | None = None) -> None:
    with sessions.begin() as db:
        ref = db.get(TemplateStoreRef, ref_id)
        if ref is None:
            return
        ref.download_state = state
        if percent is not None:
            ref.download_percent = percent
        ref.error_text = error[:1024] if error else None


def install_staged(sessions: sessionmaker[Session], settings: StoreSettings, ref_id: str, staged: Path,
                   checksum: str | None, progress: Percent) -> None:
    """Check a staged image and copy it to its store; the ref becomes DOWNLOADED."""
    with sessions() as db:
        ref = db.get(TemplateStoreRef, ref_id)
        if ref is None or ref.store is None:
            raise TemplateInstallError("the template or its image store no longer exists")
        template, store = ref.template, ref.store
        fmt, rel = template.format, install_path(template)
    if checksum:
        try:
            verify_file(staged, parse_checksum(checksum))
        except (ChecksumMismatch, StoreError) as exc:
            raise TemplateInstallError(str(exc)) from None
    progress(96, "checking image")
    try:
        checked = check_template(staged, fmt)
    except ImageError as exc:
        raise TemplateInstallError(f"image refused: {exc}") from None
    progress(98, "copying to image store")
    try:
        open_store(store, settings.box, settings.nfs_mount_root).put(staged, rel)
    except (StoreAccessError, OSError) as exc:
        raise TemplateInstallError(f"cannot write to image store {store.name}: {exc}") from None
    except Exception as exc:  # boto3/botocore errors have no common base worth importing here
        raise TemplateInstallError(f"cannot write to image store {store.name}: {exc}") from None
    try:
        with sessions.begin() as db:
            ref = db.get(TemplateStoreRef, ref_id)
            if ref is not None:
                _count_stored(db, settings, ref, checked.physical_size or 0)
                usage_events.template_stored(db, ref.template, ref.zone_id, checked.physical_size or 0)
                ref.install_path, ref.download_state, ref.download_percent = rel, DOWNLOADED, 100
                ref.size, ref.physical_size, ref.error_text = checked.virtual_size, checked.physical_size, None
    except errors.CloudError as exc:  # over the owner's secondary storage limit: the copy goes again
        with contextlib.suppress(Exception):
            open_store(store, settings.box, settings.nfs_mount_root).delete(rel)
        raise TemplateInstallError(exc.text) from None


def _count_stored(db: Session, settings: StoreSettings, ref: TemplateStoreRef, physical_size: int) -> None:
    """Count the stored size against the owner's ``secondary_storage`` (sizes are known only now)."""
    delta = {R.SECONDARY_STORAGE: physical_size - (ref.physical_size or 0)}
    if settings.config is None:
        limits.adjust(db, ref.template.account_id, delta)
    else:
        limits.charge(db, settings.config, ref.template.account, delta)


def download_template(sessions: sessionmaker[Session], settings: StoreSettings, config: ServerConfig,
                      ref_id: str, progress: Percent) -> None:
    """Fetch the template's URL, then :func:`install_staged`. Safe to run again from the start."""
    with sessions() as db:
        ref = db.get(TemplateStoreRef, ref_id)
        if ref is None:
            raise TemplateInstallError("the template no longer exists")
        if ref.download_state == DOWNLOADED:
            return
        url, checksum = ref.template.url or "", ref.template.checksum
    set_state(sessions, ref_id, DOWNLOAD_IN_PROGRESS, percent=0)
    staged = staging_file(settings, ref_id)
    policy = config.download_policy
    limits = DownloadLimits(max_bytes=config.template_max_bytes, connect_timeout=config.download_connect_timeout,
                            read_timeout=config.download_read_timeout)
    last = [-1]

    def on_bytes(done: int, total: int | None) -> None:
        if total:
            percent = min(95, done * 95 // total)
            if percent != last[0]:
                last[0] = percent
                progress(percent, f"{percent}% Downloaded")
                set_state(sessions, ref_id, DOWNLOAD_IN_PROGRESS, percent=percent)

    try:
        download(url, staged, policy, limits, progress=on_bytes)
        install_staged(sessions, settings, ref_id, staged, checksum, progress)
    except (UnsafeUrl, DownloadError) as exc:
        raise TemplateInstallError(str(exc)) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()


def copy_between_stores(sessions: sessionmaker[Session], settings: StoreSettings, src_ref_id: str,
                        dst_ref_id: str, progress: Percent) -> None:
    """Copy a ready template from one zone's store to another's (through a staging file)."""
    with sessions() as db:
        src = db.get(TemplateStoreRef, src_ref_id)
        dst = db.get(TemplateStoreRef, dst_ref_id)
        if src is None or dst is None or src.store is None or dst.store is None or not src.install_path:
            raise TemplateInstallError("the source or destination copy of the template no longer exists")
        if dst.download_state == DOWNLOADED:
            return
        src_store, rel = src.store, src.install_path
    set_state(sessions, dst_ref_id, DOWNLOAD_IN_PROGRESS, percent=0)
    staged = staging_file(settings, dst_ref_id, "copy")
    try:
        progress(10, "reading from source image store")
        try:
            open_store(src_store, settings.box, settings.nfs_mount_root).get(rel, staged)
        except Exception as exc:
            raise TemplateInstallError(f"cannot read from image store {src_store.name}: {exc}") from None
        install_staged(sessions, settings, dst_ref_id, staged, None, progress)
    finally:
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()


def delete_from_store(sessions: sessionmaker[Session], settings: StoreSettings, ref_id: str) -> None:
    """Remove a template's file from its store and drop the ref; a missing file is not an error."""
    with sessions() as db:
        ref = db.get(TemplateStoreRef, ref_id)
        if ref is None:
            return
        store, rel = ref.store, ref.install_path
    if store is not None and rel:
        try:
            open_store(store, settings.box, settings.nfs_mount_root).delete(rel)
        except Exception as exc:
            raise TemplateInstallError(f"cannot delete from image store {store.name}: {exc}") from None
    with sessions.begin() as db:
        ref = db.get(TemplateStoreRef, ref_id)
        if ref is not None:
            limits.release(db, ref.template.account_id, {R.SECONDARY_STORAGE: ref.physical_size or 0})
            if ref.download_state == DOWNLOADED:
                usage_events.template_deleted(db, ref.template, ref.zone_id)
            db.delete(ref)


def delete_template(sessions: sessionmaker[Session], settings: StoreSettings, template_id: str,
                    zone_id: str | None = None) -> None:
    """Delete the template's files (in one zone, or all) and, once no copy is left, mark it removed.
    Idempotent: copies already gone are skipped."""
    with sessions() as db:
        stmt = select(TemplateStoreRef.id).where(TemplateStoreRef.template_id == template_id)
        if zone_id:
            stmt = stmt.where(TemplateStoreRef.zone_id == zone_id)
        ref_ids = list(db.scalars(stmt))
    for ref_id in ref_ids:
        delete_from_store(sessions, settings, ref_id)
    with sessions.begin() as db:
        left = db.scalars(select(TemplateStoreRef.id).where(TemplateStoreRef.template_id == template_id)).first()
        template = db.get(VMTemplate, template_id)
        if template is not None and left is None and template.removed is None:
            limits.release(db, template.account_id, {R.TEMPLATE: 1})
            template.removed = utcnow()
            tags.forget(db, (tags.TEMPLATE, tags.ISO), [template_id])
