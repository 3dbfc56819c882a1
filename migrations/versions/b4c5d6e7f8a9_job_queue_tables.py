"""the job queue's tables on PostgreSQL (Huey's SQL storage, jobs/queue.py)

Revision ID: b4c5d6e7f8a9
Revises: a3b4c5d6e7f8
Create Date: 2026-12-01 01:40:00

Made here, not by Huey at start-up: two hosts starting at once would race on CREATE TABLE. On
SQLite the queue is a file of its own beside the database (no tables here).
"""
from alembic import op

revision = 'b4c5d6e7f8a9'
down_revision = 'a3b4c5d6e7f8'
branch_labels = None
depends_on = None

STATEMENTS = (
    'CREATE TABLE job_queue_kv (queue VARCHAR(255) NOT NULL, key VARCHAR(255) NOT NULL, '
    'value BYTEA NOT NULL, PRIMARY KEY (queue, key))',
    'CREATE TABLE job_queue_schedule (id SERIAL PRIMARY KEY, queue VARCHAR(255) NOT NULL, '
    'data BYTEA NOT NULL, timestamp BIGINT NOT NULL)',
    'CREATE INDEX ix_job_queue_schedule_queue_timestamp ON job_queue_schedule (queue, timestamp)',
    'CREATE TABLE job_queue_task (id SERIAL PRIMARY KEY, queue VARCHAR(255) NOT NULL, '
    'data BYTEA NOT NULL, priority REAL NOT NULL DEFAULT 0)',
    'CREATE INDEX ix_job_queue_task_priority_id ON job_queue_task (priority DESC, id)',
    'CREATE TABLE job_queue_counter (queue VARCHAR(255) NOT NULL, key VARCHAR(255) NOT NULL, '
    'value INTEGER NOT NULL, PRIMARY KEY (queue, key))',
)


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table in ('job_queue_counter', 'job_queue_task', 'job_queue_schedule', 'job_queue_kv'):
        op.execute(f'DROP TABLE {table}')
