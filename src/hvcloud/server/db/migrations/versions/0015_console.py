"""consoles: console_proxy, console_session, host.console_port

Revision ID: 0015_console
Revises: 0014_security_groups
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015_console'
down_revision = '0014_security_groups'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('host', schema=None) as batch_op:
        batch_op.add_column(sa.Column('console_port', sa.Integer(), nullable=True))
    op.create_table(
        'console_proxy',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('url', sa.String(length=1024), nullable=False),
        sa.Column('active_sessions', sa.Integer(), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.Column('last_seen', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('console_proxy', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_proxy_last_seen'), ['last_seen'], unique=False)
    op.create_table(
        'console_session',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('token_id', sa.String(length=64), nullable=False),
        sa.Column('vm_id', sa.String(length=36), nullable=False),
        sa.Column('account_id', sa.String(length=36), nullable=False),
        sa.Column('user_id', sa.String(length=36), nullable=True),
        sa.Column('protocol', sa.String(length=8), nullable=False),
        sa.Column('client_address', sa.String(length=64), nullable=True),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.Column('expires', sa.DateTime(), nullable=False),
        sa.Column('used', sa.DateTime(), nullable=True),
        sa.Column('proxy_id', sa.String(length=36), nullable=True),
        sa.Column('proxy_client_address', sa.String(length=64), nullable=True),
        sa.Column('closed', sa.DateTime(), nullable=True),
        sa.Column('close_reason', sa.String(length=255), nullable=True),
        sa.Column('bytes_to_client', sa.BigInteger(), nullable=False),
        sa.Column('bytes_from_client', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['vm_id'], ['vm_instance.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_id'),
    )
    with op.batch_alter_table('console_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_session_vm_id'), ['vm_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_console_session_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_console_session_expires'), ['expires'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('console_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_session_expires'))
        batch_op.drop_index(batch_op.f('ix_console_session_account_id'))
        batch_op.drop_index(batch_op.f('ix_console_session_vm_id'))
    op.drop_table('console_session')
    with op.batch_alter_table('console_proxy', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_proxy_last_seen'))
    op.drop_table('console_proxy')
    with op.batch_alter_table('host', schema=None) as batch_op:
        batch_op.drop_column('console_port')
