"""case-insensitive e-mail indexes for the duplicate search

Revision ID: b7c1d2e3f4a5
Revises: f352c0c0fc6b
Create Date: 2026-11-25 15:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'b7c1d2e3f4a5'
down_revision = 'f352c0c0fc6b'
branch_labels = None
depends_on = None

# SQLite cannot reflect expression indexes, so a later batch_alter_table that recreates customer or
# contact would silently drop these: such a migration must create them again.
INDEXES = [("ix_customer_email_lower", "customer", "email"),
           ("ix_customer_secondary_email_lower", "customer", "secondary_email"),
           ("ix_contact_email_lower", "contact", "email")]


def upgrade():
    for name, table, column in INDEXES:
        op.create_index(name, table, [sa.text(f"lower({column})")], unique=False)


def downgrade():
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
