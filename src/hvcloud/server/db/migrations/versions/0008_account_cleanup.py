"""tombstones for deleted accounts and users: ``removed`` on both, and names unique among live rows
only (a deleted user's username and a deleted account's name can be taken again)

Revision ID: 0008_account_cleanup
Revises: 0007_login_security
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_account_cleanup'
down_revision = '0007_login_security'
branch_labels = None
depends_on = None

LIVE = sa.text("removed IS NULL")
#: names SQLite's batch mode gives the unnamed UNIQUE constraints of 0001, so they can be dropped
BATCH_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _unique_name(table: str, columns: list[str]) -> str:
    """The name of the unnamed UNIQUE constraint 0001 created: PostgreSQL's own, or the batch name."""
    if op.get_bind().dialect.name == "postgresql":
        return f"{table}_{'_'.join(columns)}_key"
    return f"uq_{table}_{columns[0]}"


def upgrade() -> None:
    with op.batch_alter_table('account', schema=None, naming_convention=BATCH_NAMES) as batch_op:
        batch_op.add_column(sa.Column('removed', sa.DateTime(), nullable=True))
        batch_op.drop_constraint(_unique_name('account', ['domain_id', 'name']), type_='unique')
        batch_op.create_index('uq_account_live_name', ['domain_id', 'name'], unique=True,
                              sqlite_where=LIVE, postgresql_where=LIVE)
    with op.batch_alter_table('user', schema=None, naming_convention=BATCH_NAMES) as batch_op:
        batch_op.add_column(sa.Column('removed', sa.DateTime(), nullable=True))
        batch_op.drop_constraint(_unique_name('user', ['username']), type_='unique')
        batch_op.create_index('uq_user_live_username', ['username'], unique=True,
                              sqlite_where=LIVE, postgresql_where=LIVE)


def downgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_index('uq_user_live_username')
        batch_op.create_unique_constraint('user_username_key', ['username'])
        batch_op.drop_column('removed')
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_index('uq_account_live_name')
        batch_op.create_unique_constraint('account_domain_id_name_key', ['domain_id', 'name'])
        batch_op.drop_column('removed')
