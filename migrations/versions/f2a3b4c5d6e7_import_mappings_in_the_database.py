"""remembered import mappings live in the database, bounded

Revision ID: f2a3b4c5d6e7
Revises: e1f2a3b4c5d6
Create Date: 2026-11-30 22:30:00

The mappings were kept in instance/import_mappings.json; that file is not read any more (it was
never pruned and may be large) and can be deleted. A mapping is remembered again the next time
a user maps a file with those headers.
"""
import sqlalchemy as sa
from alembic import op

revision = 'f2a3b4c5d6e7'
down_revision = 'e1f2a3b4c5d6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'import_mapping',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('signature', sa.String(length=64), nullable=False),
        sa.Column('mapping', sa.JSON(), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_mapping')),
        sa.UniqueConstraint('signature', name=op.f('uq_import_mapping_signature')),
    )
    op.create_index(op.f('ix_import_mapping_used_at'), 'import_mapping', ['used_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_import_mapping_used_at'), table_name='import_mapping')
    op.drop_table('import_mapping')
