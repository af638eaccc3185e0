"""security groups: security_group, security_group_rule, security_group_vm_map, vm_ruleset_log

Revision ID: 0014_security_groups
Revises: 0013_public_ips_rules
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014_security_groups'
down_revision = '0013_public_ips_rules'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'security_group',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('description', sa.String(length=4096), nullable=True),
        sa.Column('account_id', sa.String(length=36), nullable=False),
        sa.Column('domain_id', sa.String(length=36), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['domain_id'], ['domain.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'name'),
    )
    with op.batch_alter_table('security_group', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_security_group_account_id'), ['account_id'], unique=False)
    op.create_table(
        'security_group_rule',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('security_group_id', sa.String(length=36), nullable=False),
        sa.Column('rule_type', sa.String(length=16), nullable=False),
        sa.Column('protocol', sa.String(length=16), nullable=False),
        sa.Column('start_port', sa.Integer(), nullable=False),
        sa.Column('end_port', sa.Integer(), nullable=False),
        sa.Column('allowed_cidr', sa.String(length=64), nullable=True),
        sa.Column('allowed_group_id', sa.String(length=36), nullable=True),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['allowed_group_id'], ['security_group.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['security_group_id'], ['security_group.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('security_group_rule', schema=None) as batch_op:
        batch_op.create_index('ix_security_group_rule_group', ['security_group_id', 'rule_type'], unique=False)
        batch_op.create_index(batch_op.f('ix_security_group_rule_allowed_group_id'), ['allowed_group_id'],
                              unique=False)
    op.create_table(
        'security_group_vm_map',
        sa.Column('security_group_id', sa.String(length=36), nullable=False),
        sa.Column('vm_id', sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(['security_group_id'], ['security_group.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['vm_id'], ['vm_instance.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('security_group_id', 'vm_id'),
    )
    with op.batch_alter_table('security_group_vm_map', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_security_group_vm_map_vm_id'), ['vm_id'], unique=False)
    op.create_table(
        'vm_ruleset_log',
        sa.Column('vm_id', sa.String(length=36), nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['vm_id'], ['vm_instance.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('vm_id'),
    )


def downgrade() -> None:
    op.drop_table('vm_ruleset_log')
    with op.batch_alter_table('security_group_vm_map', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_security_group_vm_map_vm_id'))
    op.drop_table('security_group_vm_map')
    with op.batch_alter_table('security_group_rule', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_security_group_rule_allowed_group_id'))
        batch_op.drop_index('ix_security_group_rule_group')
    op.drop_table('security_group_rule')
    with op.batch_alter_table('security_group', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_security_group_account_id'))
    op.drop_table('security_group')
