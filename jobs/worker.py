"""`flask --app app worker`: the process that runs background jobs (Huey's consumer)."""

from __future__ import annotations

import logging

import click
from flask import current_app
from flask.cli import with_appcontext

from jobs.queue import queue_of


@click.command("worker")
@click.option("--threads", default=2, show_default=True,
              help="Jobs this process runs at once (each in a thread with its own database session).")
@click.option("--no-periodic", is_flag=True,
              help="Do not run the periodic jobs here (the lease check, scheduled directory syncs).")
@with_appcontext
def worker_command(threads: int, no_periodic: bool) -> None:
    """Run background jobs until stopped: SIGINT waits for running jobs, SIGTERM stops at once
    (a job stopped so is found by its lapsed heartbeat and shown as interrupted, resumable)."""
    queue = queue_of()
    if queue.immediate:
        raise click.ClickException("JOB_QUEUE_IMMEDIATE is set: jobs run where they are enqueued, not here.")
    # The consumer's start and stop at INFO; each job's "executing … executed" only at WARNING and
    # above (the periodic checks would write four lines a minute; the jobs log what they did).
    logging.getLogger("huey").setLevel(logging.WARNING)
    logging.getLogger("huey.consumer").setLevel(logging.INFO)
    current_app.logger.info("worker: %s threads, queue %s", threads, type(queue.storage).__name__)
    consumer = queue.create_consumer(workers=threads, worker_type="thread", periodic=not no_periodic,
                                     initial_delay=0.1, backoff=1.15, max_delay=1.0,
                                     check_worker_health=True)
    consumer.run()
