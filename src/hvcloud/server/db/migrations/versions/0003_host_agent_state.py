"""host agent state: status reason, host stats, VM power reports, local pool uuids

Revision ID: 0003
Revises: 0002_jobs_templates
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002_jobs_templates'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('vm_power_report',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('host_id', sa.String(length=36), nullable=False),
    sa.Column('instance_name', sa.String(length=255), nullable=False),
    sa.Column('power_state', sa.String(length=32), nullable=False),
    sa.Column('state_changed', sa.DateTime(), nullable=False),
    sa.Column('last_reported', sa.DateTime(), nullable=False),
    sa.Column('missing_since', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['host_id'], ['host.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('host_id', 'instance_name')
    )
    with op.batch_alter_table('vm_power_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vm_power_report_host_id'), ['host_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_vm_power_report_instance_name'), ['instance_name'], unique=False)

    with op.batch_alter_table('host', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_reason', sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column('cpu_used_percent', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('memory_used', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('network_read_kbs', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('network_write_kbs', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('stats_updated', sa.DateTime(), nullable=True))

    with op.batch_alter_table('storage_pool', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_uuid', sa.String(length=255), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('storage_pool', schema=None) as batch_op:
        batch_op.drop_column('external_uuid')

    with op.batch_alter_table('host', schema=None) as batch_op:
        batch_op.drop_column('stats_updated')
        batch_op.drop_column('network_write_kbs')
        batch_op.drop_column('network_read_kbs')
        batch_op.drop_column('memory_used')
        batch_op.drop_column('cpu_used_percent')
        batch_op.drop_column('status_reason')

    with op.batch_alter_table('vm_power_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vm_power_report_instance_name'))
        batch_op.drop_index(batch_op.f('ix_vm_power_report_host_id'))

    op.drop_table('vm_power_report')
