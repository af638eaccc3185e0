"""domains: ``state``, ``network_domain`` and ``removed`` on ``domain``; paths unique among live
domains only (a deleted domain's name may be taken again under the same parent)

Revision ID: 0019_domains
Revises: 0018_tags
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019_domains'
down_revision = '0018_tags'
branch_labels = None
depends_on = None

LIVE = sa.text("removed IS NULL")
#: the name SQLite's batch mode gives 0001's unnamed UNIQUE(path), so that it can be dropped
BATCH_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _path_unique_name() -> str:
    """The name of the UNIQUE(path) constraint: unnamed in 0001 (PostgreSQL names it, SQLite's batch
    mode takes the naming convention's), named by this migration's downgrade."""
    for constraint in sa.inspect(op.get_bind()).get_unique_constraints('domain'):
        if constraint["column_names"] == ['path'] and constraint["name"]:
            return str(constraint["name"])
    return "uq_domain_path"


def upgrade() -> None:
    with op.batch_alter_table('domain', schema=None, naming_convention=BATCH_NAMES) as batch_op:
        batch_op.add_column(sa.Column('state', sa.String(length=32), server_default='Active', nullable=False))
        batch_op.add_column(sa.Column('network_domain', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('removed', sa.DateTime(), nullable=True))
        batch_op.drop_constraint(_path_unique_name(), type_='unique')
        batch_op.create_index('uq_domain_live_path', ['path'], unique=True, sqlite_where=LIVE, postgresql_where=LIVE)
        batch_op.create_index('ix_domain_parent_id', ['parent_id'])


def downgrade() -> None:
    with op.batch_alter_table('domain', schema=None) as batch_op:
        batch_op.drop_index('ix_domain_parent_id')
        batch_op.drop_index('uq_domain_live_path')
        batch_op.create_unique_constraint('domain_path_key', ['path'])
        batch_op.drop_column('removed')
        batch_op.drop_column('network_domain')
        batch_op.drop_column('state')
