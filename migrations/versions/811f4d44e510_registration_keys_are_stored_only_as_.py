"""registration keys are stored only as their hash

A registration key is a credential: it is shown once when made (POST
/api/v1/customers/ID/registration-key, or the Computers tab) and stored only as its SHA-256
hash, like the operators' API tokens. The encrypted copy that let a GET show (and first mint)
the key goes; the existing hashes keep registering computers.

Revision ID: 811f4d44e510
Revises: c8d9e0f1a2b3
Create Date: 2026-11-27 10:12:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '811f4d44e510'
down_revision = 'c8d9e0f1a2b3'
branch_labels = None
depends_on = None


# Batch mode without the table copy: SQLite (3.35+) drops a plain column in place, and a copy of
# customer would lose the lower(email) expression indexes, which SQLite cannot reflect.
def upgrade():
    with op.batch_alter_table('customer', recreate='never') as batch_op:
        batch_op.drop_column('registration_key_encrypted')


def downgrade():
    # The keys themselves are gone for good: the column comes back empty; the hashes still work.
    with op.batch_alter_table('customer', recreate='never') as batch_op:
        batch_op.add_column(sa.Column('registration_key_encrypted', sa.Text(), nullable=True))
