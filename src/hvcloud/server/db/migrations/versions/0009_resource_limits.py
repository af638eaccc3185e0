"""resource limits and counts per account and domain (listResourceLimits, updateResourceLimit,
updateResourceCount); counts are filled from the real rows on first use

Revision ID: 0009_resource_limits
Revises: 0008_account_cleanup
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0009_resource_limits'
down_revision = '0008_account_cleanup'
branch_labels = None
depends_on = None


def _owner_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('account_id', sa.String(length=36), nullable=True),
        sa.Column('domain_id', sa.String(length=36), nullable=True),
        sa.Column('resource_type', sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    for table, value in (('resource_limit', 'max'), ('resource_count', 'count')):
        op.create_table(
            table, *_owner_columns(),
            sa.Column(value, sa.BigInteger(), nullable=False),
            sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='CASCADE'),
            sa.ForeignKeyConstraint(['domain_id'], ['domain.id'], ondelete='CASCADE'),
            sa.PrimaryKeyConstraint('id'),
            sa.UniqueConstraint('account_id', 'resource_type'),
            sa.UniqueConstraint('domain_id', 'resource_type'),
        )


def downgrade() -> None:
    op.drop_table('resource_count')
    op.drop_table('resource_limit')
