"""CSV/XLSX imports: the upload and the run's state in the database

Revision ID: c5d6e7f8a9b0
Revises: b4c5d6e7f8a9
Create Date: 2026-12-01 01:45:00

The uploaded file, its mapping, the preview and the import's progress and report were files in
instance/bulk_import/ of the host that took the upload; they are rows now (`bulk_import`, and
`bulk_import_batch` for the committed batches of a run), so any web process shows them and
any worker runs them. Files left in instance/bulk_import/ are not read any more and can be
deleted (an import in progress when upgrading must be uploaded again).
"""
import sqlalchemy as sa
from alembic import op

revision = 'c5d6e7f8a9b0'
down_revision = 'b4c5d6e7f8a9'
branch_labels = None
depends_on = None

STATUSES = ('uploaded', 'preview_queued', 'previewing', 'previewed', 'queued', 'running', 'done', 'failed',
            'cancelled', 'interrupted')


def upgrade():
    op.create_table(
        'bulk_import',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token', sa.String(length=64), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('file_name', sa.String(length=120), nullable=False),
        sa.Column('encoding', sa.String(length=20), nullable=False),
        sa.Column('read_as', sa.String(length=20), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=True),
        sa.Column('headers', sa.JSON(), nullable=False),
        sa.Column('samples', sa.JSON(), nullable=False),
        sa.Column('mapping', sa.JSON(), nullable=True),
        sa.Column('rules', sa.JSON(), nullable=True),
        sa.Column('on_match', sa.String(length=20), nullable=True),
        sa.Column('status', sa.Enum(*STATUSES, name='bulk_import_status', native_enum=False,
                                    create_constraint=True), nullable=False),
        sa.Column('batch_size', sa.Integer(), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('counts', sa.JSON(), nullable=True),
        sa.Column('preview_report', sa.JSON(), nullable=True),
        sa.Column('result_report', sa.JSON(), nullable=True),
        sa.Column('message', sa.Text(), nullable=True),
        sa.Column('started_at', sa.DateTime(), nullable=True),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('worker', sa.String(length=200), nullable=True),
        sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
        sa.Column('cancel_requested', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['owner_id'], ['operator.id'], name=op.f('fk_bulk_import_owner_id_operator'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_bulk_import')),
        sa.UniqueConstraint('token', name=op.f('uq_bulk_import_token')),
    )
    with op.batch_alter_table('bulk_import', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bulk_import_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bulk_import_status'), ['status'], unique=False)

    op.create_table(
        'bulk_import_batch',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('bulk_import_id', sa.Integer(), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('results', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['bulk_import_id'], ['bulk_import.id'], ondelete='CASCADE',
                                name=op.f('fk_bulk_import_batch_bulk_import_id_bulk_import')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_bulk_import_batch')),
    )
    with op.batch_alter_table('bulk_import_batch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bulk_import_batch_bulk_import_id'), ['bulk_import_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('bulk_import_batch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bulk_import_batch_bulk_import_id'))
    op.drop_table('bulk_import_batch')
    with op.batch_alter_table('bulk_import', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bulk_import_status'))
        batch_op.drop_index(batch_op.f('ix_bulk_import_owner_id'))
    op.drop_table('bulk_import')
