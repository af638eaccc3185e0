"""indexes for the list and job-claim queries at scale: VM pages in creation order (per account and
for admins' listall), and claimable jobs in queue order with the id tie-break

Revision ID: 0006_scale_indexes
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = '0006_scale_indexes'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('vm_instance', schema=None) as batch_op:
        batch_op.create_index('ix_vm_instance_account_created', ['account_id', 'created', 'vm_number'], unique=False)
        batch_op.create_index('ix_vm_instance_created', ['created', 'vm_number'], unique=False)
    with op.batch_alter_table('async_job', schema=None) as batch_op:
        batch_op.drop_index('ix_async_job_phase_queued')
        batch_op.create_index('ix_async_job_phase_queued', ['phase', 'queued_us', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('async_job', schema=None) as batch_op:
        batch_op.drop_index('ix_async_job_phase_queued')
        batch_op.create_index('ix_async_job_phase_queued', ['phase', 'queued_us'], unique=False)
    with op.batch_alter_table('vm_instance', schema=None) as batch_op:
        batch_op.drop_index('ix_vm_instance_created')
        batch_op.drop_index('ix_vm_instance_account_created')
