"""domains: ``state``, ``network_domain`` and ``removed`` on ``domain``, and an index on ``parent_id``

No table is rebuilt (on SQLite, ``domain`` is referenced by most tables, some with ON DELETE
actions): columns are added and dropped in place. ``path`` stays unique; a removed domain's path
gets a ``#removed:<id>`` suffix, so its name may be taken again under the same parent.

Revision ID: 0021_domains
Revises: 0020_affinity
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0021_domains'
down_revision = '0020_affinity'
branch_labels = None
depends_on = None

COLUMNS = ('removed', 'network_domain', 'state')


def upgrade() -> None:
    op.add_column('domain', sa.Column('state', sa.String(length=32), server_default='Active', nullable=False))
    op.add_column('domain', sa.Column('network_domain', sa.String(length=255), nullable=True))
    op.add_column('domain', sa.Column('removed', sa.DateTime(), nullable=True))
    op.create_index('ix_domain_parent_id', 'domain', ['parent_id'])


def downgrade() -> None:
    op.drop_index('ix_domain_parent_id', table_name='domain')
    for column in COLUMNS:
        if op.get_bind().dialect.name == "sqlite":  # in place (SQLite 3.35+), not a batch rebuild
            op.execute(f'ALTER TABLE domain DROP COLUMN {column}')
        else:
            op.drop_column('domain', column)
