"""merged customers leave a tombstone pointing to the survivor

Revision ID: c8d9e0f1a2b3
Revises: 3cb39eacf2bf
Create Date: 2026-11-25 15:45:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c8d9e0f1a2b3'
down_revision = '3cb39eacf2bf'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('customer', sa.Column('merged_at', sa.DateTime(), nullable=True))
    op.add_column('customer', sa.Column('merged_into_id', sa.Integer(), nullable=True))
    op.create_index('ix_customer_merged_into_id', 'customer', ['merged_into_id'], unique=False)


def downgrade():
    op.drop_index('ix_customer_merged_into_id', table_name='customer')
    op.drop_column('customer', 'merged_into_id')
    op.drop_column('customer', 'merged_at')
