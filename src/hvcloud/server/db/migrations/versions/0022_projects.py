"""projects: ``project`` (a domain's project and the account that owns its resources) and
``project_account`` (its member accounts with their role)

Revision ID: 0022_projects
Revises: 0021_domains
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0022_projects'
down_revision = '0021_domains'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'project',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('display_text', sa.String(length=255), nullable=False),
        sa.Column('domain_id', sa.String(length=36), nullable=False),
        sa.Column('project_account_id', sa.String(length=36), nullable=False),
        sa.Column('state', sa.String(length=32), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.Column('removed', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['domain_id'], ['domain.id']),
        sa.ForeignKeyConstraint(['project_account_id'], ['account.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('project_account_id'),
    )
    op.create_index('uq_project_live_name', 'project', ['domain_id', 'name'], unique=True,
                    sqlite_where=sa.text('removed IS NULL'), postgresql_where=sa.text('removed IS NULL'))
    op.create_table(
        'project_account',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('project_id', sa.String(length=36), nullable=False),
        sa.Column('account_id', sa.String(length=36), nullable=False),
        sa.Column('role', sa.String(length=32), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['project.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['account_id'], ['account.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('project_id', 'account_id', name='uq_project_account'),
    )
    op.create_index('ix_project_account_account_id', 'project_account', ['account_id'])


def downgrade() -> None:
    op.drop_index('ix_project_account_account_id', table_name='project_account')
    op.drop_table('project_account')
    op.drop_index('uq_project_live_name', table_name='project')
    op.drop_table('project')
