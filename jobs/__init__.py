"""Background work: a door of its own, like the panel, the API and the CLI.

Jobs run on Huey (https://huey.readthedocs.io) in worker processes (`flask --app app worker`),
never in a web process: a web reload, a killed web worker or a deploy leaves them running. The
queue lives where the data lives, so the embedded default needs no server of its own — a SQLite
file beside the database (`instance/jobs.sqlite3`) — and several machines on one PostgreSQL share
its queue tables (`job_queue_*`, created by the migrations) with no Redis to run. Tests run jobs
at once in the enqueuing thread (JOB_QUEUE_IMMEDIATE), except those that start real workers.

A job is registered by name with `@job("…")` (or `@periodic("…", crontab)`) in the module of the
work it does and runs inside an application context with its own database session; what it does
to the database is its own unit of work (services.transactions). What a run has done, its state
and its heartbeat live in the database (services.run_leases), never in the queue: the queue only
says "run number 42 now".
"""

from __future__ import annotations

from jobs.queue import enqueue, enqueue_after_commit, init_jobs, queue_of
from jobs.registry import job, periodic

__all__ = ["enqueue", "enqueue_after_commit", "init_jobs", "job", "periodic", "queue_of"]
