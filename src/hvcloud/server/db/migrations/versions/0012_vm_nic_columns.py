"""the nic table is the one truth of a VM's NICs: vm_instance's mac_address, nic_id and network_label
go (0010 copied them into nic)

Revision ID: 0012_vm_nic_columns
Revises: 0010_networks
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012_vm_nic_columns'
down_revision = '0010_networks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('vm_instance', schema=None) as batch_op:
        batch_op.drop_column('mac_address')
        batch_op.drop_column('nic_id')
        batch_op.drop_column('network_label')


def downgrade() -> None:
    with op.batch_alter_table('vm_instance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mac_address', sa.String(length=17), nullable=True))
        batch_op.add_column(sa.Column('nic_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('network_label', sa.String(length=255), nullable=True))
    # each VM's default NIC back into its columns (the legacy label when it has no guest network)
    op.execute("UPDATE vm_instance SET mac_address = (SELECT n.mac_address FROM nic n WHERE n.vm_id = vm_instance.id "
               "AND n.is_default = {true} ORDER BY n.device_id LIMIT 1), nic_id = (SELECT n.id FROM nic n WHERE "
               "n.vm_id = vm_instance.id AND n.is_default = {true} ORDER BY n.device_id LIMIT 1), network_label = "
               "COALESCE((SELECT n.network_label FROM nic n WHERE n.vm_id = vm_instance.id AND n.is_default = {true} "
               "ORDER BY n.device_id LIMIT 1), 'guest')".replace(
                   "{true}", "true" if op.get_bind().dialect.name == "postgresql" else "1"))
    with op.batch_alter_table('vm_instance', schema=None) as batch_op:
        batch_op.alter_column('network_label', existing_type=sa.String(length=255), nullable=False)
        batch_op.create_unique_constraint('uq_vm_instance_mac_address', ['mac_address'])
