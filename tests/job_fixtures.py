"""Real job workers for tests of background work.

`make_app(...)` runs jobs at once in the enqueuing thread (JOB_QUEUE_IMMEDIATE); a test of the
background itself makes its app with `real_queue_config(tmp_path)` and runs Huey's consumer —
`worker_in_thread` in this process (threads, as `flask worker --threads N` runs it), or
`worker_process` as a separate `flask worker` process that a test may kill.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jobs import queue_of

ROOT = Path(__file__).resolve().parent.parent


def real_queue_config(folder: Path, database_url: str) -> dict:
    """Config for an app whose jobs go through a real queue: beside the database (PostgreSQL's
    job_queue_* tables) or in a queue file of the test's own (SQLite)."""
    config: dict = {"JOB_QUEUE_IMMEDIATE": False, "JOB_LEASE_SECONDS": 5}
    if database_url.startswith("sqlite"):
        config["JOB_QUEUE_URL"] = f"sqlite:///{folder / 'jobs.sqlite3'}"
    else:
        config["JOB_QUEUE_URL"] = database_url
    return config


def drain(app) -> None:
    """Forget what earlier tests left on the queue (PostgreSQL's queue tables are shared)."""
    queue_of(app).flush()


@contextmanager
def worker_in_thread(app, threads: int = 1, periodic: bool = False) -> Iterator[object]:
    """Huey's consumer in this process until the block ends (then it stops gracefully: running
    jobs finish). The test process's signal handlers are kept."""
    kept = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    consumer = queue_of(app).create_consumer(workers=threads, worker_type="thread", periodic=periodic,
                                             initial_delay=0.05, backoff=1.1, max_delay=0.2)
    consumer.start()
    for number, handler in kept.items():
        signal.signal(number, handler)
    try:
        yield consumer
    finally:
        consumer.stop(graceful=True)
        consumer.scheduler.join(5)
        for _, thread in consumer.worker_threads:
            thread.join(10)


@contextmanager
def worker_process(env: dict[str, str], *, threads: int = 1, log: Path | None = None,
                   app_module: str = "app") -> Iterator[subprocess.Popen]:
    """`flask worker` as its own process with `env` (DATABASE_URL, JOB_QUEUE_URL, …); killed at the end."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", app_module, "worker",
                                "--threads", str(threads)], cwd=ROOT, env={**os.environ, **env},
                               stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        if log:
            out.close()  # type: ignore[union-attr]


def wait_for(condition, timeout: float = 30.0, interval: float = 0.1, what: str = "the condition"):
    """Poll `condition()` until it returns something true; its value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}.")
