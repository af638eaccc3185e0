"""affinity groups and instance groups: affinity_group, affinity_group_vm_map, instance_group;
vm_instance.group_id replaces vm_instance.group_name (each account's group names become groups)

Revision ID: 0020_affinity
Revises: 0019_vm_stats
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0020_affinity'
down_revision = '0019_vm_stats'
branch_labels = None
depends_on = None

_VM = sa.table('vm_instance', sa.column('id', sa.String), sa.column('account_id', sa.String),
               sa.column('group_name', sa.String), sa.column('group_id', sa.String))
_GROUP = sa.table('instance_group', sa.column('id', sa.String), sa.column('name', sa.String),
                  sa.column('account_id', sa.String), sa.column('domain_id', sa.String),
                  sa.column('created', sa.DateTime))
_ACCOUNT = sa.table('account', sa.column('id', sa.String), sa.column('domain_id', sa.String))


def upgrade() -> None:
    op.create_table(
        'instance_group',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('account_id', sa.String(length=36), nullable=False),
        sa.Column('domain_id', sa.String(length=36), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['domain_id'], ['domain.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'name'),
    )
    op.create_index('ix_instance_group_account_created', 'instance_group', ['account_id', 'created', 'id'])
    op.create_table(
        'affinity_group',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('group_type', sa.String(length=64), nullable=False),
        sa.Column('description', sa.String(length=4096), nullable=True),
        sa.Column('account_id', sa.String(length=36), nullable=False),
        sa.Column('domain_id', sa.String(length=36), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['domain_id'], ['domain.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'name'),
    )
    op.create_index('ix_affinity_group_account_created', 'affinity_group', ['account_id', 'created', 'id'])
    op.create_table(
        'affinity_group_vm_map',
        sa.Column('affinity_group_id', sa.String(length=36), nullable=False),
        sa.Column('vm_id', sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(['affinity_group_id'], ['affinity_group.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['vm_id'], ['vm_instance.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('affinity_group_id', 'vm_id'),
    )
    op.create_index('ix_affinity_group_vm_map_vm_id', 'affinity_group_vm_map', ['vm_id'])
    # plain ALTER TABLEs (no batch): rebuilding vm_instance on SQLite would run the ON DELETE actions
    # of the tables that reference it when foreign keys are on
    op.add_column('vm_instance', sa.Column('group_id', sa.String(length=36), nullable=True))
    op.add_column('vm_instance', sa.Column('affinity_group_count', sa.Integer(), server_default='0',
                                           nullable=False))
    op.create_index('ix_vm_instance_group_id', 'vm_instance', ['group_id'], unique=False)
    _groups_from_names()
    op.drop_column('vm_instance', 'group_name')


def _groups_from_names() -> None:
    """Every (account, group name) the VMs carry becomes an instance group the VMs point at."""
    conn = op.get_bind()
    pairs = conn.execute(sa.select(_VM.c.account_id, _VM.c.group_name, _ACCOUNT.c.domain_id)
                         .join(_ACCOUNT, _ACCOUNT.c.id == _VM.c.account_id)
                         .where(_VM.c.group_name.is_not(None), _VM.c.group_name != '').distinct()).all()
    now = datetime.now(UTC).replace(tzinfo=None)
    for account_id, name, domain_id in pairs:
        group_id = str(uuid.uuid4())
        conn.execute(_GROUP.insert().values(id=group_id, name=name, account_id=account_id, domain_id=domain_id,
                                            created=now))
        conn.execute(_VM.update().where(_VM.c.account_id == account_id, _VM.c.group_name == name)
                     .values(group_id=group_id))


def downgrade() -> None:
    op.add_column('vm_instance', sa.Column('group_name', sa.String(length=255), nullable=True))
    conn = op.get_bind()
    conn.execute(_VM.update().values(group_name=sa.select(_GROUP.c.name).where(_GROUP.c.id == _VM.c.group_id)
                                     .scalar_subquery()))
    op.drop_index('ix_vm_instance_group_id', table_name='vm_instance')
    op.drop_column('vm_instance', 'affinity_group_count')
    op.drop_column('vm_instance', 'group_id')
    op.drop_index('ix_affinity_group_vm_map_vm_id', table_name='affinity_group_vm_map')
    op.drop_table('affinity_group_vm_map')
    op.drop_index('ix_affinity_group_account_created', table_name='affinity_group')
    op.drop_table('affinity_group')
    op.drop_index('ix_instance_group_account_created', table_name='instance_group')
    op.drop_table('instance_group')
