"""the user's count of consecutive failed logins (CloudStack's ``incorrect.login.attempts.allowed``)

Revision ID: 0007_login_security
Revises: 0006_scale_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_login_security'
down_revision = '0006_scale_indexes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('login_attempts', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('login_attempts')
