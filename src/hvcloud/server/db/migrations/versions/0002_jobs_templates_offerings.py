"""jobs engine (leases, per-object ordering, recovery), templates and ISOs, offerings

Revision ID: 0002_jobs_templates
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hvcloud.server.db.models

revision = '0002_jobs_templates'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('disk_offering',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('display_text', sa.String(length=4096), nullable=False),
    sa.Column('disk_size_gb', sa.BigInteger(), nullable=False),
    sa.Column('customized', sa.Boolean(), nullable=False),
    sa.Column('storage_type', sa.String(length=16), nullable=False),
    sa.Column('provisioning_type', sa.String(length=16), nullable=False),
    sa.Column('tags', sa.String(length=1024), nullable=True),
    sa.Column('display_offering', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('removed', hvcloud.server.db.models.UTCDateTime(), nullable=True),
    sa.Column('created', hvcloud.server.db.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('management_server',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('started', hvcloud.server.db.models.UTCDateTime(), nullable=False),
    sa.Column('heartbeat', hvcloud.server.db.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('service_offering',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('display_text', sa.String(length=4096), nullable=False),
    sa.Column('cpu_number', sa.Integer(), nullable=True),
    sa.Column('cpu_speed', sa.Integer(), nullable=True),
    sa.Column('memory', sa.Integer(), nullable=True),
    sa.Column('storage_type', sa.String(length=16), nullable=False),
    sa.Column('provisioning_type', sa.String(length=16), nullable=False),
    sa.Column('offer_ha', sa.Boolean(), nullable=False),
    sa.Column('limit_cpu_use', sa.Boolean(), nullable=False),
    sa.Column('is_volatile', sa.Boolean(), nullable=False),
    sa.Column('is_system', sa.Boolean(), nullable=False),
    sa.Column('host_tags', sa.String(length=1024), nullable=True),
    sa.Column('storage_tags', sa.String(length=1024), nullable=True),
    sa.Column('root_disk_size', sa.BigInteger(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('removed', hvcloud.server.db.models.UTCDateTime(), nullable=True),
    sa.Column('created', hvcloud.server.db.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('vm_template',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('display_text', sa.String(length=4096), nullable=False),
    sa.Column('is_iso', sa.Boolean(), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('hypervisor', sa.String(length=32), nullable=True),
    sa.Column('os_type_id', sa.String(length=36), nullable=True),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=True),
    sa.Column('checksum', sa.String(length=255), nullable=True),
    sa.Column('is_public', sa.Boolean(), nullable=False),
    sa.Column('is_featured', sa.Boolean(), nullable=False),
    sa.Column('is_extractable', sa.Boolean(), nullable=False),
    sa.Column('password_enabled', sa.Boolean(), nullable=False),
    sa.Column('sshkey_enabled', sa.Boolean(), nullable=False),
    sa.Column('bootable', sa.Boolean(), nullable=False),
    sa.Column('requires_hvm', sa.Boolean(), nullable=False),
    sa.Column('bits', sa.Integer(), nullable=False),
    sa.Column('template_type', sa.String(length=16), nullable=False),
    sa.Column('template_tag', sa.String(length=255), nullable=True),
    sa.Column('cross_zones', sa.Boolean(), nullable=False),
    sa.Column('details_json', sa.Text(), nullable=True),
    sa.Column('removed', hvcloud.server.db.models.UTCDateTime(), nullable=True),
    sa.Column('created', hvcloud.server.db.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['os_type_id'], ['os_type.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('template_store_ref',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('template_id', sa.String(length=36), nullable=False),
    sa.Column('zone_id', sa.String(length=36), nullable=False),
    sa.Column('store_id', sa.String(length=36), nullable=True),
    sa.Column('install_path', sa.String(length=1024), nullable=True),
    sa.Column('download_state', sa.String(length=32), nullable=False),
    sa.Column('download_percent', sa.Integer(), nullable=False),
    sa.Column('error_text', sa.String(length=1024), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('physical_size', sa.BigInteger(), nullable=True),
    sa.Column('checksum', sa.String(length=255), nullable=True),
    sa.Column('created', hvcloud.server.db.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['image_store.id'], ),
    sa.ForeignKeyConstraint(['template_id'], ['vm_template.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['zone_id'], ['zone.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('template_id', 'zone_id')
    )
    with op.batch_alter_table('async_job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handler', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('params_json', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('phase', sa.String(length=16), nullable=False, server_default=sa.text("'done'")))
        batch_op.add_column(sa.Column('object_key', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('queued_us', sa.BigInteger(), nullable=False, server_default=sa.text('0')))
        batch_op.add_column(sa.Column('owner_server_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('proc_percent', sa.Integer(), nullable=False, server_default=sa.text('0')))
        batch_op.add_column(sa.Column('proc_text', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default=sa.text('0')))
        batch_op.add_column(sa.Column('started', hvcloud.server.db.models.UTCDateTime(), nullable=True))
        batch_op.create_index('ix_async_job_object', ['object_key', 'status'], unique=False)
        batch_op.create_index('ix_async_job_phase_queued', ['phase', 'queued_us'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('async_job', schema=None) as batch_op:
        batch_op.drop_index('ix_async_job_phase_queued')
        batch_op.drop_index('ix_async_job_object')
        batch_op.drop_column('started')
        batch_op.drop_column('attempts')
        batch_op.drop_column('proc_text')
        batch_op.drop_column('proc_percent')
        batch_op.drop_column('owner_server_id')
        batch_op.drop_column('queued_us')
        batch_op.drop_column('object_key')
        batch_op.drop_column('phase')
        batch_op.drop_column('params_json')
        batch_op.drop_column('handler')

    op.drop_table('template_store_ref')
    op.drop_table('vm_template')
    op.drop_table('service_offering')
    op.drop_table('management_server')
    op.drop_table('disk_offering')
