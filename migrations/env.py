"""Alembic environment for Flask-Migrate: the app's engine and the models' metadata."""

import fcntl
import logging
from contextlib import contextmanager
from logging.config import fileConfig

from alembic import context
from flask import current_app

config = context.config
if config.config_file_name and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

db = current_app.extensions["migrate"].db
target_metadata = db.metadata


# The job queue's tables (jobs/queue.py) are created by a migration but belong to Huey's models.
QUEUE_TABLE_PREFIX = "job_queue_"
# Any fixed number: the advisory lock every host starting migrations takes first.
MIGRATION_LOCK_KEY = 7_406_312_015


def include_object(obj, name, type_, reflected, compare_to):
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return not (table is not None and str(table.name).startswith(QUEUE_TABLE_PREFIX))


@contextmanager
def migration_lock(connection):
    """One host migrates at a time: the others wait here, then find the schema at head (two
    `flask db upgrade` on an empty PostgreSQL database at once: one failed on pg_type)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
        connection.commit()  # the lock is the session's; the migrations open their own transaction
        try:
            yield
        finally:
            connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
            connection.commit()
    elif connection.dialect.name == "sqlite":
        database = connection.engine.url.database
        with open(f"{database}.migrate-lock" if database not in (None, "", ":memory:") else "/dev/null",
                  "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                with foreign_keys_off(connection):
                    yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    else:
        yield


@contextmanager
def foreign_keys_off(connection):
    """SQLite: batch mode alters a table by copying it and dropping the old one, and with foreign
    keys on that DROP runs every ON DELETE CASCADE / SET NULL of the rows referring to it — an
    upgrade would erase contacts or unlink records. Off during the migrations (the pragma only
    works outside a transaction), checked once they are done, on again for the pooled connection."""
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"The migrations left {len(broken)} rows referring to missing rows: "
                               f"{broken[:5]}")
    finally:
        connection.rollback()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


def run_migrations_offline() -> None:
    context.configure(url=str(db.engine.url), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    def skip_empty_autogenerate(context_, revision, directives):
        # `flask db migrate` without model changes should not write an empty revision.
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", skip_empty_autogenerate)
    conf_args.setdefault("include_object", include_object)
    with db.engine.connect() as connection, migration_lock(connection):
        context.configure(connection=connection, target_metadata=target_metadata, **conf_args)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
