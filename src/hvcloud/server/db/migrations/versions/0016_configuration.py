"""configuration: configuration_value (settings changed through the API) and configuration_version

Revision ID: 0016_configuration
Revises: 0015_console
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016_configuration'
down_revision = '0015_console'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'configuration_value',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('scope', sa.String(length=16), nullable=False),
        sa.Column('scope_id', sa.String(length=36), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('updated', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name', 'scope', 'scope_id'),
    )
    version = op.create_table(
        'configuration_version',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.bulk_insert(version, [{'id': 1, 'version': 0}])


def downgrade() -> None:
    op.drop_table('configuration_version')
    op.drop_table('configuration_value')
