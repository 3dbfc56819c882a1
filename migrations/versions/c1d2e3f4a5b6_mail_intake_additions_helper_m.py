"""requests by e-mail: no schema change was needed (an empty step the later revisions chain after)

Revision ID: c1d2e3f4a5b6
Revises: e9b9bf3281cf
Create Date: 2026-12-01 06:40:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = 'c1d2e3f4a5b6'
down_revision = 'e9b9bf3281cf'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
