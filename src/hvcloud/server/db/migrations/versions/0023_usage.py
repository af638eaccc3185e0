"""usage: ``usage_event`` (VM and template starts and ends), ``usage_record`` (aggregated records) and
``usage_job`` (the aggregation's progress).

Existing VMs and stored templates get the events that open their current usage, dated when the VM
was created (and last changed state, for a running VM) or the template copy was made, so the first
aggregation charges what is already there.

Revision ID: 0023_usage
Revises: 0022_projects
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0023_usage'
down_revision = '0022_projects'
branch_labels = None
depends_on = None

SEED = (
    "INSERT INTO usage_event (event_type, created, account_id, zone_id, resource_id, resource_name, offering_id, "
    "template_id, size) SELECT 'VM.CREATE', created, account_id, zone_id, id, instance_name, service_offering_id, "
    "template_id, NULL FROM vm_instance WHERE removed IS NULL AND state NOT IN ('Destroyed', 'Expunging')",
    "INSERT INTO usage_event (event_type, created, account_id, zone_id, resource_id, resource_name, offering_id, "
    "template_id, size) SELECT 'VM.START', state_changed, account_id, zone_id, id, instance_name, "
    "service_offering_id, template_id, NULL FROM vm_instance "
    "WHERE removed IS NULL AND state IN ('Running', 'Stopping', 'Migrating')",
    "INSERT INTO usage_event (event_type, created, account_id, zone_id, resource_id, resource_name, offering_id, "
    "template_id, size) SELECT CASE WHEN t.is_iso THEN 'ISO.CREATE' ELSE 'TEMPLATE.CREATE' END, r.created, "
    "t.account_id, r.zone_id, t.id, t.name, NULL, NULL, COALESCE(r.physical_size, r.size, 0) "
    "FROM template_store_ref r JOIN vm_template t ON t.id = r.template_id "
    "WHERE t.removed IS NULL AND r.download_state = 'DOWNLOADED'",
)


def upgrade() -> None:
    op.create_table(
        'usage_event',
        sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('event_type', sa.String(length=32), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.Column('account_id', sa.String(length=36), nullable=False),
        sa.Column('zone_id', sa.String(length=36), nullable=True),
        sa.Column('resource_id', sa.String(length=36), nullable=False),
        sa.Column('resource_name', sa.String(length=255), nullable=True),
        sa.Column('offering_id', sa.String(length=36), nullable=True),
        sa.Column('template_id', sa.String(length=36), nullable=True),
        sa.Column('size', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('seq'),
    )
    op.create_index('ix_usage_event_created', 'usage_event', ['created', 'seq'])
    op.create_index('ix_usage_event_resource_id', 'usage_event', ['resource_id'])
    op.create_table(
        'usage_record',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('account_id', sa.String(length=36), nullable=False),
        sa.Column('domain_id', sa.String(length=36), nullable=False),
        sa.Column('zone_id', sa.String(length=36), nullable=True),
        sa.Column('usage_type', sa.Integer(), nullable=False),
        sa.Column('usage_id', sa.String(length=36), nullable=False),
        sa.Column('description', sa.String(length=1024), nullable=False),
        sa.Column('raw_usage', sa.Float(), nullable=False),
        sa.Column('vm_id', sa.String(length=36), nullable=True),
        sa.Column('name', sa.String(length=255), nullable=True),
        sa.Column('offering_id', sa.String(length=36), nullable=True),
        sa.Column('template_id', sa.String(length=36), nullable=True),
        sa.Column('size', sa.BigInteger(), nullable=True),
        sa.Column('source_nat', sa.Boolean(), nullable=True),
        sa.Column('start_date', sa.DateTime(), nullable=False),
        sa.Column('end_date', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_usage_record_start', 'usage_record', ['start_date', 'usage_type'])
    op.create_index('ix_usage_record_account_start', 'usage_record', ['account_id', 'start_date'])
    op.create_index('ix_usage_record_domain_id', 'usage_record', ['domain_id'])
    op.create_table(
        'usage_job',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('aggregated_until', sa.DateTime(), nullable=False),
        sa.Column('updated', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    for statement in SEED:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table('usage_job')
    op.drop_index('ix_usage_record_domain_id', table_name='usage_record')
    op.drop_index('ix_usage_record_account_start', table_name='usage_record')
    op.drop_index('ix_usage_record_start', table_name='usage_record')
    op.drop_table('usage_record')
    op.drop_index('ix_usage_event_resource_id', table_name='usage_event')
    op.drop_index('ix_usage_event_created', table_name='usage_event')
    op.drop_table('usage_event')
