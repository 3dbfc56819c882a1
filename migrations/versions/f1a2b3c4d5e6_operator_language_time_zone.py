"""operators: their own language and time zone (the profile page's choice; empty: the defaults)

Revision ID: f1a2b3c4d5e6
Revises: d2e3f4a5b6c7
Create Date: 2026-12-02 00:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'f1a2b3c4d5e6'
down_revision = 'd2e3f4a5b6c7'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('operator', sa.Column('language', sa.String(length=5), nullable=True))
    op.add_column('operator', sa.Column('time_zone', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('operator', schema=None) as batch_op:
        batch_op.drop_column('time_zone')
        batch_op.drop_column('language')
