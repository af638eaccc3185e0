"""CloudStack events (``listEvents``): what a user did, recorded in the transaction that did it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hvcloud.server.db.models import Event, User


def record(db: Session, actor: User, event_type: str, description: str, *, resource_type: str | None = None,
           resource_id: str | None = None, level: str = "INFO") -> None:
    db.add(Event(event_type=event_type, level=level, description=description, account_id=actor.account_id,
                 user_id=actor.id, resource_type=resource_type, resource_id=resource_id))
