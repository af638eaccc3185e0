"""CloudStack's ``template`` and ``iso`` objects: a template as one image store copy shows it."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import object_session

from hvcloud.server.db.models import AsyncJob, TemplateStoreRef
from hvcloud.server.orchestration import templates as tpl
from hvcloud.server.orchestration.resource_tags import ISO, TEMPLATE
from hvcloud.server.views.fields import compact
from hvcloud.server.views.tags import tags_of

STATUS_TEXT = {tpl.DOWNLOADED: "Download Complete", tpl.NOT_DOWNLOADED: "Not Downloaded",
               tpl.NOT_UPLOADED: "Not Uploaded", tpl.UPLOAD_IN_PROGRESS: "Upload in progress"}

def template_view(ref: TemplateStoreRef, pending_job: AsyncJob | None = None, *, full: bool = True,
                  tags: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``full``: the viewer owns the template or is an admin. Others (a public template's users) see
    neither its source URL (which may carry a token in its query) nor why its download failed.
    ``tags``: the template's, when a list loaded those of its whole page."""
    t = ref.template
    if ref.download_state == tpl.DOWNLOAD_IN_PROGRESS:
        status = f"{ref.download_percent}% Downloaded"
    elif ref.download_state == tpl.DOWNLOAD_ERROR:
        status = (ref.error_text if full else None) or "Download Failed"
    else:
        status = STATUS_TEXT.get(ref.download_state, ref.download_state)
    details = json.loads(t.details_json) if t.details_json else None
    out: dict[str, Any] = {
        "id": t.id, "name": t.name, "displaytext": t.display_text, "ispublic": t.is_public,
        "created": t.created, "isready": ref.download_state == tpl.DOWNLOADED,
        "passwordenabled": t.password_enabled, "format": t.format, "isfeatured": t.is_featured,
        "crossZones": t.cross_zones, "ostypeid": t.os_type_id,
        "ostypename": t.os_type.description if t.os_type else None,
        "account": t.account.name, "accountid": t.account_id, "domainid": t.account.domain_id,
        "domain": t.account.domain.name, "zoneid": ref.zone_id, "zonename": ref.zone.name, "status": status,
        "size": ref.size, "physicalsize": ref.physical_size,
        "templatetype": t.template_type, "hypervisor": t.hypervisor, "isextractable": t.is_extractable,
        "checksum": t.checksum, "sshkeyenabled": t.sshkey_enabled, "isdynamicallyscalable": False,
        "directdownload": False, "deployasis": False, "requireshvm": t.requires_hvm, "bits": t.bits,
        "bootable": t.bootable, "templatetag": t.template_tag, "details": details,
        "tags": tags if tags is not None else tags_of(object_session(t), ISO if t.is_iso else TEMPLATE, t.id),
        "url": t.url if full else None,
    }
    if pending_job is not None:
        out["jobid"], out["jobstatus"] = pending_job.id, pending_job.status
    return compact(out)
