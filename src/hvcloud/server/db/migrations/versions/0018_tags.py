"""resource tags: resource_tag

Revision ID: 0018_tags
Revises: 0017_roles
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018_tags'
down_revision = '0017_roles'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'resource_tag',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('value', sa.String(length=255), nullable=False),
        sa.Column('resource_type', sa.String(length=32), nullable=False),
        sa.Column('resource_id', sa.String(length=36), nullable=False),
        sa.Column('account_id', sa.String(length=36), nullable=False),
        sa.Column('domain_id', sa.String(length=36), nullable=False),
        sa.Column('customer', sa.String(length=255), nullable=True),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id']),
        sa.ForeignKeyConstraint(['domain_id'], ['domain.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('resource_type', 'resource_id', 'key', name='uq_resource_tag_key'),
    )
    with op.batch_alter_table('resource_tag', schema=None) as batch_op:
        batch_op.create_index('ix_resource_tag_type_key_value', ['resource_type', 'key', 'value', 'resource_id'],
                              unique=False)
        batch_op.create_index('ix_resource_tag_account', ['account_id', 'created', 'id'], unique=False)
        batch_op.create_index('ix_resource_tag_created', ['created', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('resource_tag', schema=None) as batch_op:
        batch_op.drop_index('ix_resource_tag_created')
        batch_op.drop_index('ix_resource_tag_account')
        batch_op.drop_index('ix_resource_tag_type_key_value')
    op.drop_table('resource_tag')
