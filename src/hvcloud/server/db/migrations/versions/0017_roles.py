"""dynamic roles: role, role_permission, account.role_id (CloudStack's four default roles)

Revision ID: 0017_roles
Revises: 0016_configuration

The default roles are inserted here with hvcloud's fixed ids (a migration keeps its own copy of them,
as history must not change with the code) and every account gets its type's default role. The default
roles' rules are written at server start (``orchestration.roles.sync_default_rules``), from the API
commands that server has.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0017_roles'
down_revision = '0016_configuration'
branch_labels = None
depends_on = None

_ROLES = (
    ("79206e26-2d24-4c83-a823-9563bbf655cb", "Root Admin", "Admin", "Default root admin role"),
    ("c69b8d09-91d3-47c1-aac8-6f020dff7286", "Resource Admin", "ResourceAdmin", "Default resource admin role"),
    ("cbf6a289-4ca2-430e-afcf-5a1ad60e56f2", "Domain Admin", "DomainAdmin", "Default domain admin role"),
    ("adc61351-b550-4464-8b06-fc1b7220ca94", "User", "User", "Default user role"),
)
_ROOT_ADMIN, _USER = _ROLES[0][0], _ROLES[3][0]


def upgrade() -> None:
    role = op.create_table(
        'role',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('role_type', sa.String(length=32), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('is_default', sa.Boolean(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.Column('removed', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'role_permission',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('role_id', sa.String(length=36), nullable=False),
        sa.Column('rule', sa.String(length=255), nullable=False),
        sa.Column('permission', sa.String(length=8), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('sort_order', sa.Integer(), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['role_id'], ['role.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('role_id', 'rule'),
    )
    with op.batch_alter_table('role_permission', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_permission_role_id'), ['role_id'], unique=False)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)  # naive UTC, as UTCDateTime stores it
    op.bulk_insert(role, [{"id": i, "name": n, "role_type": t, "description": d, "is_default": True, "version": 0,
                           "created": now} for i, n, t, d in _ROLES])
    # plain ALTER TABLEs (no batch): rebuilding ``account`` on SQLite would touch every table that
    # references it; the new column needs no foreign key (roles are never deleted)
    op.add_column('account', sa.Column('role_id', sa.String(length=36), server_default=_USER, nullable=False))
    op.execute(sa.text("UPDATE account SET role_id = :admin WHERE account_type = 1").bindparams(admin=_ROOT_ADMIN))
    op.create_index(op.f('ix_account_role_id'), 'account', ['role_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_account_role_id'), table_name='account')
    op.execute(sa.text("ALTER TABLE account DROP COLUMN role_id"))  # native on SQLite >= 3.35 and PostgreSQL
    with op.batch_alter_table('role_permission', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_role_permission_role_id'))
    op.drop_table('role_permission')
    op.drop_table('role')
