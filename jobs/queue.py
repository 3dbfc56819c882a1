"""The Huey queue of one application, made from its configuration.

JOB_QUEUE_URL chooses the storage; empty means "beside the database": a SQLite file in the
instance folder for the embedded SQLite database, the database's own `job_queue_*` tables for
PostgreSQL (shared by every machine on it; dequeued with FOR UPDATE SKIP LOCKED). A
`sqlite:///path` URL names another queue file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from huey import Huey, SqliteHuey
from sqlalchemy.engine import make_url

from jobs.registry import JOBS
from services.transactions import DbSession, after_commit

log = logging.getLogger(__name__)
QUEUE_NAME = "customer-desk"
QUEUE_TABLE_PREFIX = "job_queue_"


def _postgres_queue(url: str, immediate: bool) -> Huey:
    from huey.contrib.sql_huey import SqlStorage
    from playhouse.postgres_ext import Psycopg3Database

    parts = make_url(url)
    database = Psycopg3Database(parts.database, host=parts.host, port=parts.port, user=parts.username,
                                password=parts.password, **dict(parts.query))

    class PrefixedSqlStorage(SqlStorage):
        """Huey's SQL storage under table names of ours (created by the migrations: two hosts
        starting at once must not race on CREATE TABLE)."""

        def create_models(self):
            models = super().create_models()
            for model in models:
                model._meta.set_table_name(QUEUE_TABLE_PREFIX + model.__name__.lower())
            return models

    return Huey(QUEUE_NAME, storage_class=PrefixedSqlStorage, database=database, create_tables=False,
                immediate=immediate, utc=True, results=False)


def make_queue(app: Flask) -> Huey:
    immediate = bool(app.config["JOB_QUEUE_IMMEDIATE"])
    url = app.config["JOB_QUEUE_URL"] or app.config["SQLALCHEMY_DATABASE_URI"]
    backend = make_url(url).get_backend_name()
    if backend == "postgresql":
        return _postgres_queue(url, immediate)
    if backend == "sqlite":
        filename = make_url(url).database if app.config["JOB_QUEUE_URL"] else None
        filename = filename or str(Path(app.instance_path) / "jobs.sqlite3")
        Path(filename).parent.mkdir(parents=True, exist_ok=True)
        # The queue file is not the database: enqueuing never waits for the database's write lock.
        return SqliteHuey(QUEUE_NAME, filename=filename, immediate=immediate, utc=True, results=False,
                          timeout=30)
    raise ValueError(f"JOB_QUEUE_URL: no job queue storage for {backend!r} (use sqlite or postgresql).")


def init_jobs(app: Flask) -> None:
    """Give every registered job to this application's queue; each runs in an app context with
    its own session, removed when it ends (whatever it raised)."""
    import jobs.tasks  # noqa: F401  # registers the jobs of every module that has some

    queue = make_queue(app)
    tasks: dict[str, Any] = {}
    for name, registered in JOBS.items():
        def run(*args, _fn=registered.run, _name=name):
            from extensions import db

            with app.app_context():
                try:
                    return _fn(*args)
                except Exception:
                    log.exception("The job %s%r stopped on an error", _name, args)
                    raise
                finally:
                    db.session.remove()

        run.__name__ = name.replace(".", "_")
        if registered.schedule is not None:
            tasks[name] = queue.periodic_task(registered.schedule, name=name)(run)
        else:
            tasks[name] = queue.task(name=name)(run)
    app.extensions["job_queue"] = queue
    app.extensions["job_tasks"] = tasks


def queue_of(app: Flask | None = None) -> Huey:
    return (app or current_app).extensions["job_queue"]


def enqueue(name: str, *args) -> None:
    """Put the job `name` on the current application's queue now."""
    current_app.extensions["job_tasks"][name](*args)


def enqueue_in(seconds: float, name: str, *args) -> None:
    """Put the job `name` on the current application's queue to run in `seconds` (a retry's
    back-off; the consumer's scheduler holds it until then). With JOB_QUEUE_IMMEDIATE (tests) it
    waits in Huey's memory schedule and never runs by itself: a test runs the due work itself."""
    current_app.extensions["job_tasks"][name].schedule(args=args, delay=seconds)


def enqueue_after_commit(session: DbSession, name: str, *args) -> None:
    """Put the job on the queue once the door's unit of work has committed what it will read
    (a worker must never pick up a run that is not in the database yet, or was rolled back). A
    queue that fails then is logged, never the door's error (services.transactions._settle): the
    run waits as queued and the minute's lease check of its kind delivers it again."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def put() -> None:
        with app.app_context():
            enqueue(name, *args)

    after_commit(session, put)
