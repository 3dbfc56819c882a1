"""portal accounts: a session epoch raised by every sign-out (ends every session of the account)

Revision ID: d2e3f4a5b6c7
Revises: c1d2e3f4a5b6
Create Date: 2026-12-01 06:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'd2e3f4a5b6c7'
down_revision = 'c1d2e3f4a5b6'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('portal_account', sa.Column('session_epoch', sa.Integer(), server_default='0',
                                              nullable=False))


def downgrade():
    with op.batch_alter_table('portal_account', schema=None) as batch_op:
        batch_op.drop_column('session_epoch')
