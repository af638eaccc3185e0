"""VM statistics: vm_stats

Revision ID: 0019_vm_stats
Revises: 0018_tags
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019_vm_stats'
down_revision = '0018_tags'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'vm_stats',
        sa.Column('vm_id', sa.String(length=36), nullable=False),
        sa.Column('host_id', sa.String(length=36), nullable=True),
        sa.Column('cpu_used_percent', sa.Float(), nullable=False),
        sa.Column('network_read_kbs', sa.Float(), nullable=False),
        sa.Column('network_write_kbs', sa.Float(), nullable=False),
        sa.Column('disk_read_kbs', sa.Float(), nullable=True),
        sa.Column('disk_write_kbs', sa.Float(), nullable=True),
        sa.Column('disk_read_ios', sa.Float(), nullable=True),
        sa.Column('disk_write_ios', sa.Float(), nullable=True),
        sa.Column('memory_kbs', sa.Float(), nullable=True),
        sa.Column('collected', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['vm_id'], ['vm_instance.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('vm_id'),
    )


def downgrade() -> None:
    op.drop_table('vm_stats')
