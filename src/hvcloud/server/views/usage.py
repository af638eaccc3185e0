"""CloudStack's ``usagerecord`` and ``usagetype`` objects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server.db.models import Account, Domain, UsageRecord
from hvcloud.server.orchestration.usage import raw_usage_text, usage_display
from hvcloud.server.views.fields import compact


def usage_record_view(record: UsageRecord, account: str, domain: str) -> dict[str, Any]:
    """``enddate`` is the period's last second (CloudStack prints ``…23:59:59`` for a day)."""
    return compact({
        "account": account, "accountid": record.account_id, "domainid": record.domain_id, "domain": domain,
        "zoneid": record.zone_id, "description": record.description, "usage": usage_display(record.raw_usage),
        "usagetype": record.usage_type, "rawusage": raw_usage_text(record.raw_usage),
        "virtualmachineid": record.vm_id, "name": record.name, "offeringid": record.offering_id,
        "templateid": record.template_id, "usageid": record.usage_id, "size": record.size,
        "issourcenat": record.source_nat, "startdate": record.start_date,
        "enddate": record.end_date - timedelta(seconds=1),
    })


def usage_record_views(db: Session, records: Sequence[UsageRecord]) -> list[dict[str, Any]]:
    """A page of records, with their accounts' and domains' names (one query)."""
    ids = {r.account_id for r in records}
    names = {row.id: (row.name, row.domain) for row in db.execute(
        select(Account.id, Account.name, Domain.name.label("domain")).join(Domain, Domain.id == Account.domain_id)
        .where(Account.id.in_(ids)))} if ids else {}
    return [usage_record_view(r, *names.get(r.account_id, ("", ""))) for r in records]


def usage_type_view(type_id: int, name: str, description: str) -> dict[str, Any]:
    return {"usagetypeid": type_id, "name": name, "description": description}
