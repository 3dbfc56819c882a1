"""search at a million customers: finer planner statistics on the search tokens and sort names

Revision ID: a7b8c9d0e1f2
Revises: f2b3c4d5e6f7
Create Date: 2026-12-02 13:20:00

PostgreSQL estimates how many tokens a typed prefix ("nov" <= token < "now") covers from a
histogram of the column; with the default 100 buckets over tens of millions of tokens one bucket
spans thousands of distinct words, so the estimate, and with it the plan (gather the matches and
sort them, or walk the name index), depended on which rows ANALYZE happened to sample. 1,000
buckets make the estimate of a three-letter prefix steady from one ANALYZE to the next
(bench/customers_list.py --explain). SQLite keeps no such histogram: nothing to do there.
"""
from alembic import op

revision = 'a7b8c9d0e1f2'
down_revision = 'f2b3c4d5e6f7'
branch_labels = None
depends_on = None

COLUMNS = [("customer_search_token", "token"), ("contact_search_token", "token"),
           ("customer", "sort_name"), ("contact", "sort_name")]


def _set(target: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS {target}")


def upgrade():
    _set(1000)


def downgrade():
    _set(-1)
