"""directory sources: which accounts are left out (built-in and service accounts)

A source leaves out AD's built-in, computer and service accounts by default
(exclude_system_accounts, on for existing sources too: their next full run deactivates such
accounts imported before), and the accounts in the OUs and with the names it lists
(exclude_ous, exclude_accounts: one per line). A run counts what it left out
(directory_sync_run.left_out).

Plain ADD COLUMN on both databases: in SQLite a batch copy of directory_source would drop the
table, and with foreign keys on that deletes its runs and unlinks its people.

Revision ID: a9b0c1d2e3f4
Revises: f8a9b0c1d2e3
Create Date: 2026-12-01 04:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'a9b0c1d2e3f4'
down_revision = 'f8a9b0c1d2e3'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('directory_source', sa.Column('exclude_system_accounts', sa.Boolean(),
                                                server_default=sa.true(), nullable=False))
    op.add_column('directory_source', sa.Column('exclude_ous', sa.Text(), nullable=True))
    op.add_column('directory_source', sa.Column('exclude_accounts', sa.Text(), nullable=True))
    op.add_column('directory_sync_run', sa.Column('left_out', sa.Integer(), server_default='0',
                                                  nullable=False))


def downgrade():
    op.drop_column('directory_sync_run', 'left_out')
    op.drop_column('directory_source', 'exclude_accounts')
    op.drop_column('directory_source', 'exclude_ous')
    op.drop_column('directory_source', 'exclude_system_accounts')
