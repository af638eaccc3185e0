"""Raising alerts (CloudStack's ``AlertManager`` types that hvcloud emits)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hvcloud.server.db.models import Alert

ALERT_TYPE_HOST = 7
ALERT_TYPE_STORAGE_MISC = 25
ALERT_NAMES = {ALERT_TYPE_HOST: "ALERT.HOST", ALERT_TYPE_STORAGE_MISC: "ALERT.STORAGE.MISC"}


def raise_alert(db: Session, alert_type: int, subject: str, *, zone_id: str | None = None,
                pod_id: str | None = None, cluster_id: str | None = None) -> Alert:
    alert = Alert(alert_type=alert_type, name=ALERT_NAMES.get(alert_type, f"ALERT.TYPE.{alert_type}"),
                  subject=subject, zone_id=zone_id, pod_id=pod_id, cluster_id=cluster_id)
    db.add(alert)
    db.flush()
    return alert
