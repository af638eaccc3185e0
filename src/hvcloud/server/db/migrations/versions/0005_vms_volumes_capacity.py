"""VMs, volumes, templates on primary pools, host capacity accounting, zone details

Revision ID: 0005
Revises: 0004_host_leases
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004_host_leases'
branch_labels = None
depends_on = None


def upgrade() -> None:
    sequences = op.create_table('id_sequence',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.bulk_insert(sequences, [{'name': 'vm', 'value': 0}, {'name': 'account', 'value': 1}])
    op.create_table('vm_instance',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=False),
    sa.Column('instance_name', sa.String(length=255), nullable=False),
    sa.Column('vm_number', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('zone_id', sa.String(length=36), nullable=False),
    sa.Column('host_id', sa.String(length=36), nullable=True),
    sa.Column('last_host_id', sa.String(length=36), nullable=True),
    sa.Column('capacity_host_id', sa.String(length=36), nullable=True),
    sa.Column('requested_host_id', sa.String(length=36), nullable=True),
    sa.Column('template_id', sa.String(length=36), nullable=True),
    sa.Column('iso_id', sa.String(length=36), nullable=True),
    sa.Column('service_offering_id', sa.String(length=36), nullable=False),
    sa.Column('os_type_id', sa.String(length=36), nullable=True),
    sa.Column('cpu_number', sa.Integer(), nullable=False),
    sa.Column('cpu_speed', sa.Integer(), nullable=False),
    sa.Column('memory', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('state_reason', sa.String(length=1024), nullable=True),
    sa.Column('state_changed', sa.DateTime(), nullable=False),
    sa.Column('user_data', sa.Text(), nullable=True),
    sa.Column('group_name', sa.String(length=255), nullable=True),
    sa.Column('ha_enabled', sa.Boolean(), nullable=False),
    sa.Column('display_vm', sa.Boolean(), nullable=False),
    sa.Column('vnc_password_enc', sa.Text(), nullable=True),
    sa.Column('mac_address', sa.String(length=17), nullable=False),
    sa.Column('nic_id', sa.String(length=36), nullable=False),
    sa.Column('network_label', sa.String(length=255), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('removed', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['capacity_host_id'], ['host.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['host_id'], ['host.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['iso_id'], ['vm_template.id'], ),
    sa.ForeignKeyConstraint(['last_host_id'], ['host.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['os_type_id'], ['os_type.id'], ),
    sa.ForeignKeyConstraint(['service_offering_id'], ['service_offering.id'], ),
    sa.ForeignKeyConstraint(['template_id'], ['vm_template.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['zone_id'], ['zone.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('instance_name'),
    sa.UniqueConstraint('mac_address'),
    sa.UniqueConstraint('vm_number')
    )
    with op.batch_alter_table('vm_instance', schema=None) as batch_op:
        batch_op.create_index('ix_vm_instance_account_state', ['account_id', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_vm_instance_capacity_host_id'), ['capacity_host_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_vm_instance_host_id'), ['host_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_vm_instance_state'), ['state'], unique=False)

    op.create_table('template_pool_ref',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('template_id', sa.String(length=36), nullable=False),
    sa.Column('pool_id', sa.String(length=36), nullable=False),
    sa.Column('install_path', sa.String(length=1024), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['pool_id'], ['storage_pool.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['template_id'], ['vm_template.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('template_id', 'pool_id')
    )
    op.create_table('volume',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('zone_id', sa.String(length=36), nullable=False),
    sa.Column('vm_id', sa.String(length=36), nullable=True),
    sa.Column('volume_type', sa.String(length=16), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('pool_id', sa.String(length=36), nullable=True),
    sa.Column('host_id', sa.String(length=36), nullable=True),
    sa.Column('path', sa.String(length=1024), nullable=True),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('disk_offering_id', sa.String(length=36), nullable=True),
    sa.Column('template_id', sa.String(length=36), nullable=True),
    sa.Column('allocated_size', sa.BigInteger(), nullable=False),
    sa.Column('attached', sa.DateTime(), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('removed', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['disk_offering_id'], ['disk_offering.id'], ),
    sa.ForeignKeyConstraint(['host_id'], ['host.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['pool_id'], ['storage_pool.id'], ),
    sa.ForeignKeyConstraint(['template_id'], ['vm_template.id'], ),
    sa.ForeignKeyConstraint(['vm_id'], ['vm_instance.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['zone_id'], ['zone.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('volume', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volume_vm_id'), ['vm_id'], unique=False)

    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('number', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint('uq_account_number', ['number'])

    with op.batch_alter_table('host', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cpu_allocated', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('memory_allocated', sa.BigInteger(), server_default='0', nullable=False))

    with op.batch_alter_table('zone', schema=None) as batch_op:
        batch_op.add_column(sa.Column('details_json', sa.Text(), nullable=True))

    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('zone', schema=None) as batch_op:
        batch_op.drop_column('details_json')

    with op.batch_alter_table('host', schema=None) as batch_op:
        batch_op.drop_column('memory_allocated')
        batch_op.drop_column('cpu_allocated')

    with op.batch_alter_table('account', schema=None) as batch_op:
        # WARNING: constraint name is None; this directive will fail as
        # rendered.  Add a name, or use a naming convention; see
        # https://alembic.sqlalchemy.org/en/latest/naming.html
        batch_op.drop_constraint('uq_account_number', type_='unique')
        batch_op.drop_column('number')

    with op.batch_alter_table('volume', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_volume_vm_id'))

    op.drop_table('volume')
    op.drop_table('template_pool_ref')
    with op.batch_alter_table('vm_instance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vm_instance_state'))
        batch_op.drop_index(batch_op.f('ix_vm_instance_host_id'))
        batch_op.drop_index(batch_op.f('ix_vm_instance_capacity_host_id'))
        batch_op.drop_index('ix_vm_instance_account_state')

    op.drop_table('vm_instance')
    op.drop_table('id_sequence')
    # ### end Alembic commands ###
