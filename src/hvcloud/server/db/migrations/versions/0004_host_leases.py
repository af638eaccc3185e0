"""host leases: the management server that owns each host; server version and last stop

Revision ID: 0004_host_leases
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_host_leases'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('host', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_server_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('owner_since', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_host_owner_server_id'), ['owner_server_id'], unique=False)

    with op.batch_alter_table('management_server', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stopped', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('version', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('management_server', schema=None) as batch_op:
        batch_op.drop_column('version')
        batch_op.drop_column('stopped')

    with op.batch_alter_table('host', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_host_owner_server_id'))
        batch_op.drop_column('owner_since')
        batch_op.drop_column('owner_server_id')
