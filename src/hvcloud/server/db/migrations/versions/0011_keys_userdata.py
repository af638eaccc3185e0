"""SSH key pairs, registered user data, and a VM's key pairs, user data reference and guest password

Revision ID: 0011_keys_userdata
Revises: 0010_networks
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011_keys_userdata'
down_revision = '0010_networks'
branch_labels = None
depends_on = None


def _owned(name: str, *columns: sa.Column[str]) -> None:
    op.create_table(
        name,
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('account_id', sa.String(length=36), nullable=False),
        sa.Column('domain_id', sa.String(length=36), nullable=False),
        *columns,
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['domain_id'], ['domain.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'name'),
    )


def upgrade() -> None:
    _owned('ssh_keypair', sa.Column('public_key', sa.Text(), nullable=False),
           sa.Column('fingerprint', sa.String(length=128), nullable=False))
    op.create_index(op.f('ix_ssh_keypair_fingerprint'), 'ssh_keypair', ['fingerprint'], unique=False)
    _owned('user_data', sa.Column('user_data', sa.Text(), nullable=False),
           sa.Column('params', sa.Text(), nullable=True))
    with op.batch_alter_table('vm_instance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('keypairs', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('ssh_public_keys', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('user_data_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('user_data_details', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('password_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('password_pending', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index(batch_op.f('ix_vm_instance_user_data_id'), ['user_data_id'], unique=False)
        batch_op.create_foreign_key('fk_vm_instance_user_data_id', 'user_data', ['user_data_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('vm_instance', schema=None) as batch_op:
        batch_op.drop_constraint('fk_vm_instance_user_data_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_vm_instance_user_data_id'))
        for column in ('password_pending', 'password_enc', 'user_data_details', 'user_data_id', 'ssh_public_keys',
                       'keypairs'):
            batch_op.drop_column(column)
    op.drop_table('user_data')
    op.drop_index(op.f('ix_ssh_keypair_fingerprint'), table_name='ssh_keypair')
    op.drop_table('ssh_keypair')
