"""search at a million customers: word tokens carry the name they are listed under

Revision ID: c9d0e1f2a3b4
Revises: b8c9d0e1f2a3
Create Date: 2026-12-02 17:40:00

A list search for a common prefix ("nov": 17,000 of a million customers) read every match's row
to learn its name and whether it was merged, then sorted them all to show 20. Each word token
now holds its record's sort name (NULL for name pairs and whole names, which only the duplicate
lookups read, and for a merged-away customer), and a partial index (token, sort_name, owner)
answers a page of matches in name order and their capped count from the index alone
(services.search.listed_page). The record writes keep it current (models.search_index.sync_tokens).
"""
import sqlalchemy as sa
from alembic import op

revision = 'c9d0e1f2a3b4'
down_revision = 'b8c9d0e1f2a3'
branch_labels = None
depends_on = None

LISTED = sa.text("sort_name IS NOT NULL")
# (token table, owner column, owner table, owner length of sort_name, the owner's listed rows)
TABLES = [("customer_search_token", "customer_id", "customer", 255, "owner.merged_into_id IS NULL"),
          ("contact_search_token", "contact_id", "contact", 200, "1 = 1")]


def upgrade():
    for table, owner_id, owner, length, listed in TABLES:
        op.add_column(table, sa.Column("sort_name", sa.String(length), nullable=True))
        op.execute(f"UPDATE {table} SET sort_name = (SELECT owner.sort_name FROM {owner} AS owner "
                   f"WHERE owner.id = {table}.{owner_id} AND {listed}) "
                   f"WHERE substr(token, 1, 1) NOT IN ('~', '=')")
        op.create_index(f"ix_{table}_listed", table, ["token", "sort_name", owner_id],
                        sqlite_where=LISTED, postgresql_where=LISTED)


def downgrade():
    for table, *_ in TABLES:
        op.drop_index(f"ix_{table}_listed", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("sort_name")
