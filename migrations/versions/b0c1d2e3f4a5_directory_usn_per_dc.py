"""directory sources: the change counter kept per domain controller

Active Directory's update sequence numbers (uSNChanged, highestCommittedUSN) are counted by
each domain controller on its own: directory_source.usn_by_dc keeps, per DC (its invocationId),
the highestCommittedUSN read when the last successful run there began. last_usn stays (what
the latest run reached, shown to maintainers, and the position on a server without DC
counters such as OpenLDAP). It is not copied into usn_by_dc: which DC it came from is not
known, so the first changes-only run after the upgrade reads every entry on AD once.

Revision ID: b0c1d2e3f4a5
Revises: a9b0c1d2e3f4
Create Date: 2026-12-01 04:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'b0c1d2e3f4a5'
down_revision = 'a9b0c1d2e3f4'
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN on SQLite too: no copy of directory_source (batch mode would drop the
    # table, and with foreign keys on that deletes its runs and unlinks its people).
    op.add_column('directory_source', sa.Column('usn_by_dc', sa.JSON(), nullable=True))


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':  # SQLite 3.35+: DROP COLUMN in place, no table copy
        op.execute('ALTER TABLE directory_source DROP COLUMN usn_by_dc')
    else:
        op.drop_column('directory_source', 'usn_by_dc')
