"""customer settings (issue 18): a CA certificate the customer's own mail servers are trusted through

Revision ID: f2b3c4d5e6f7
Revises: f1a2b3c4d5e6
Create Date: 2026-12-02 00:01:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'f2b3c4d5e6f7'
down_revision = 'f1a2b3c4d5e6'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('customer_settings', sa.Column('mail_ca_certificate', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('customer_settings', schema=None) as batch_op:
        batch_op.drop_column('mail_ca_certificate')
