"""lists at a million customers: the live customers' name order as an index of its own

Revision ID: b8c9d0e1f2a3
Revises: a7b8c9d0e1f2
Create Date: 2026-12-02 17:20:00

Every list shows live customers only (merged_into_id IS NULL). With that condition outside the
name index, a page read each row it skipped to learn whether it was merged: page 500 of a
million customers read 10,000 rows. A partial index of the live customers' (sort_name, id)
lets both databases skip and sort on the index alone (admin_views.base.SecuredModelView.get_list
selects a page's ids first).
"""
import sqlalchemy as sa
from alembic import op

revision = 'b8c9d0e1f2a3'
down_revision = 'a7b8c9d0e1f2'
branch_labels = None
depends_on = None

LIVE = sa.text("merged_into_id IS NULL")


def upgrade():
    op.create_index("ix_customer_live_sort_name_id", "customer", ["sort_name", "id"],
                    sqlite_where=LIVE, postgresql_where=LIVE)


def downgrade():
    op.drop_index("ix_customer_live_sort_name_id", table_name="customer")
