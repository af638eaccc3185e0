"""the nic table is the one truth of a VM's NICs: vm_instance's mac_address, nic_id and network_label
go (0010 copied them into nic)

On SQLite, dropping a UNIQUE column means rebuilding vm_instance (batch mode: copy, DROP, RENAME),
and with foreign keys enforced the DROP runs the ON DELETE actions of the tables that reference it:
every NIC would be deleted (CASCADE) and every volume detached (SET NULL). Those references are kept
aside and put back around each rebuild.

Revision ID: 0012_vm_nic_columns
Revises: 0011_keys_userdata
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = '0012_vm_nic_columns'
down_revision = '0011_keys_userdata'
branch_labels = None
depends_on = None


@contextmanager
def _children_kept() -> Iterator[None]:
    """Keep what references vm_instance across a SQLite rebuild of the table (no-op elsewhere)."""
    if op.get_bind().dialect.name != "sqlite":
        yield
        return
    op.execute("CREATE TEMP TABLE keep_0012_nic AS SELECT * FROM nic")
    op.execute("CREATE TEMP TABLE keep_0012_volume AS SELECT id, vm_id FROM volume WHERE vm_id IS NOT NULL")
    yield
    op.execute("DELETE FROM nic")
    op.execute("INSERT INTO nic SELECT * FROM keep_0012_nic")
    op.execute("UPDATE volume SET vm_id = (SELECT k.vm_id FROM keep_0012_volume k WHERE k.id = volume.id) "
               "WHERE id IN (SELECT id FROM keep_0012_volume)")
    op.execute("DROP TABLE keep_0012_nic")
    op.execute("DROP TABLE keep_0012_volume")


def upgrade() -> None:
    with _children_kept(), op.batch_alter_table('vm_instance', schema=None) as batch_op:
        batch_op.drop_column('mac_address')
        batch_op.drop_column('nic_id')
        batch_op.drop_column('network_label')


def downgrade() -> None:
    with op.batch_alter_table('vm_instance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mac_address', sa.String(length=17), nullable=True))
        batch_op.add_column(sa.Column('nic_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('network_label', sa.String(length=255), nullable=True))
    # each VM's default NIC back into its columns (the legacy label when it has no guest network)
    first = ("(SELECT n.{col} FROM nic n WHERE n.vm_id = vm_instance.id ORDER BY n.is_default DESC, "
             "n.removed IS NOT NULL, n.device_id LIMIT 1)")
    op.execute(f"UPDATE vm_instance SET mac_address = {first.format(col='mac_address')}, "
               f"nic_id = {first.format(col='id')}, "
               f"network_label = COALESCE({first.format(col='network_label')}, 'guest')")
    with _children_kept(), op.batch_alter_table('vm_instance', schema=None) as batch_op:
        batch_op.alter_column('network_label', existing_type=sa.String(length=255), nullable=False)
        batch_op.create_unique_constraint('uq_vm_instance_mac_address', ['mac_address'])
