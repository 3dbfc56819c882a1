"""registration keys of customers, when computers received settings

Revision ID: 3cb39eacf2bf
Revises: b7c1d2e3f4a5
Create Date: 2026-11-25 15:27:59.592104

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3cb39eacf2bf'
down_revision = 'b7c1d2e3f4a5'
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not batch mode: on SQLite a batch copy of customer would drop the lower(email)
# expression indexes, which SQLite cannot reflect.
def upgrade():
    op.add_column('computer', sa.Column('settings_received_at', sa.DateTime(), nullable=True))
    op.add_column('customer', sa.Column('registration_key_hash', sa.String(length=64), nullable=True))
    op.add_column('customer', sa.Column('registration_key_encrypted', sa.Text(), nullable=True))
    op.create_index('ix_customer_registration_key_hash', 'customer', ['registration_key_hash'], unique=True)


def downgrade():
    op.drop_index('ix_customer_registration_key_hash', table_name='customer')
    op.drop_column('customer', 'registration_key_encrypted')
    op.drop_column('customer', 'registration_key_hash')
    op.drop_column('computer', 'settings_received_at')
