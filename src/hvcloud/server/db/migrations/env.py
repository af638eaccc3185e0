"""Alembic environment: always runs online, on the connection handed over by ``migrate.upgrade``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from hvcloud.server.db.models import Base

config = context.config
connection = config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("hvcloud migrations must be run through hvcloud.server.db.migrate")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
