"""directory runs as jobs: queued, leases, cancel, resume, schedules

Revision ID: d6e7f8a9b0c1
Revises: c5d6e7f8a9b0
Create Date: 2026-12-01 01:45:00

A run is made `queued` by the door that starts it and run by a worker holding a lease (worker,
heartbeat_at, cancel_requested); `cancelled` and `interrupted` are new outcomes. At most one run
of a source is queued or running: a partial unique index on both databases. Runs still
`running` when this migration runs were threads of the web processes that the upgrade replaces:
they are marked interrupted first (two of them for one source would stop the index), and can be
resumed from the page. Sources get a nightly full sync time and a changes-only interval.
"""
import warnings
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = 'd6e7f8a9b0c1'
down_revision = 'c5d6e7f8a9b0'
branch_labels = None
depends_on = None

OLD_STATUSES = ('running', 'succeeded', 'failed')
NEW_STATUSES = ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')
STATUS_CHECK = 'ck_directory_sync_run_sync_run_status'
ACTIVE_RUN = "status IN ('queued', 'running')"
INTERRUPTED = ("Interrupted by the upgrade to background workers: what it committed is kept; "
               "Resume continues from there.")

_TYPES = {'VARCHAR(5)': sa.String(length=5), 'INTEGER': sa.Integer(), 'DATETIME': sa.DateTime()}
SOURCE_COLUMNS = (  # name, SQLite type, check
    ('full_sync_at', 'VARCHAR(5)', "full_sync_at IS NULL OR full_sync_at LIKE '__:__'"),
    ('changes_every_minutes', 'INTEGER',
     'changes_every_minutes IS NULL OR changes_every_minutes BETWEEN 5 AND 1440'),
    ('full_sync_due_at', 'DATETIME', None),
    ('changes_due_at', 'DATETIME', None),
)


@contextmanager
def _runs_table():
    """directory_sync_run in batch mode (SQLite copies it, for its CHECK). Reflecting it reflects
    the tables it refers to, down to customer, whose lower(email) indexes SQLite cannot reflect:
    harmless here (customer is read, not copied), so that warning is not shown."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        with op.batch_alter_table('directory_sync_run', schema=None) as batch_op:
            yield batch_op


def _statuses(values):
    return 'status IN (' + ', '.join(f"'{v}'" for v in values) + ')'


def upgrade():
    with _runs_table() as batch_op:
        batch_op.drop_constraint(op.f(STATUS_CHECK), type_='check')
        batch_op.alter_column('status', existing_type=sa.String(length=9), type_=sa.String(length=11),
                              existing_nullable=False)
        batch_op.create_check_constraint(op.f(STATUS_CHECK), _statuses(NEW_STATUSES))
        batch_op.add_column(sa.Column('worker', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('cancel_requested', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('scheduled', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('confirm_deactivation', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('resumes_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(op.f('fk_directory_sync_run_resumes_id_directory_sync_run'),
                                    'directory_sync_run', ['resumes_id'], ['id'], ondelete='SET NULL')

    now = "timezone('utc', now())" if op.get_bind().dialect.name == 'postgresql' else 'CURRENT_TIMESTAMP'
    op.execute(sa.text(f"UPDATE directory_sync_run SET status = 'interrupted', message = :message, "
                       f"finished_at = {now} WHERE status = 'running'").bindparams(message=INTERRUPTED))
    op.create_index('uq_directory_sync_run_active_source', 'directory_sync_run', ['source_id'], unique=True,
                    sqlite_where=sa.text(ACTIVE_RUN), postgresql_where=sa.text(ACTIVE_RUN))

    # SQLite: no table copy of directory_source (batch mode would drop it, and with foreign keys
    # on that deletes its runs and unlinks its people): plain ADD COLUMN with the checks inline.
    for name, type_, check in SOURCE_COLUMNS:
        if op.get_bind().dialect.name == 'sqlite':
            constraint = f' CONSTRAINT ck_directory_source_{name} CHECK ({check})' if check else ''
            op.execute(f'ALTER TABLE directory_source ADD COLUMN {name} {type_}{constraint}')
        else:
            op.add_column('directory_source', sa.Column(name, _TYPES[type_],
                                                        nullable=True))
            if check:
                op.create_check_constraint(op.f(f'ck_directory_source_{name}'), 'directory_source', check)


def downgrade():
    for name, _type, check in reversed(SOURCE_COLUMNS):
        if op.get_bind().dialect.name == 'sqlite':
            op.execute(f'ALTER TABLE directory_source DROP COLUMN {name}')
        else:
            if check:
                op.drop_constraint(op.f(f'ck_directory_source_{name}'), 'directory_source', type_='check')
            op.drop_column('directory_source', name)

    op.drop_index('uq_directory_sync_run_active_source', table_name='directory_sync_run')
    # The old statuses only: what did not end (queued, running) or ended otherwise becomes failed.
    op.execute(sa.text("UPDATE directory_sync_run SET status = 'failed' WHERE status NOT IN "
                       "('succeeded', 'failed')"))
    with _runs_table() as batch_op:
        batch_op.drop_constraint(op.f('fk_directory_sync_run_resumes_id_directory_sync_run'),
                                 type_='foreignkey')
        batch_op.drop_column('resumes_id')
        batch_op.drop_column('confirm_deactivation')
        batch_op.drop_column('scheduled')
        batch_op.drop_column('cancel_requested')
        batch_op.drop_column('heartbeat_at')
        batch_op.drop_column('worker')
        batch_op.drop_constraint(op.f(STATUS_CHECK), type_='check')
        batch_op.alter_column('status', existing_type=sa.String(length=11), type_=sa.String(length=9),
                              existing_nullable=False)
        batch_op.create_check_constraint(op.f(STATUS_CHECK), _statuses(OLD_STATUSES))
