"""How the job queue behaves on each storage the product offers: the cost of enqueuing, the time
from enqueue to a worker starting the job (idle queue), and how many jobs a second one worker
process with two threads drains from a burst.

    .venv/bin/python -m bench.job_queue [--jobs 500] [--db sqlite|postgres|both]

The queue is Huey (jobs/queue.py): on SQLite a queue file beside the database, on PostgreSQL the
database's job_queue_* tables (dequeued with FOR UPDATE SKIP LOCKED). The consumer runs in this
process with two threads, as `flask --app app worker --threads 2` would.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from jobs import enqueue, job, queue_of

_latencies: list[float] = []
_done = threading.Condition()


@job("bench.noop")
def _noop(enqueued_at: float) -> None:
    with _done:
        _latencies.append(time.time() - enqueued_at)
        _done.notify_all()


def _wait(count: int, timeout: float = 120) -> None:
    with _done:
        _done.wait_for(lambda: len(_latencies) >= count, timeout)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(url: str, jobs: int, folder: Path) -> dict:
    from tests.conftest import make_app, migrate_to_head
    from tests.job_fixtures import real_queue_config, worker_in_thread

    migrate_to_head(url)
    app = make_app(url, **real_queue_config(folder, url))
    with app.app_context():
        queue_of(app).flush()
        costs = []
        for _ in range(jobs):  # enqueue cost, nobody consuming
            started = time.perf_counter()
            enqueue("bench.noop", time.time())
            costs.append(time.perf_counter() - started)
        _latencies.clear()
        burst_started = time.perf_counter()
        with worker_in_thread(app, threads=2):
            _wait(jobs)
            drained = time.perf_counter() - burst_started
            _latencies.clear()
            for _ in range(50):  # an idle queue: one job at a time
                enqueue("bench.noop", time.time())
                _wait(len(_latencies) + 1)
                time.sleep(0.05)
            idle = list(_latencies)
    return {"enqueue_ms": statistics.median(costs) * 1000, "enqueue_p95_ms": _percentile(costs, .95) * 1000,
            "throughput": jobs / drained, "pickup_ms": statistics.median(idle) * 1000,
            "pickup_p95_ms": _percentile(idle, .95) * 1000, "pickup_max_ms": max(idle) * 1000}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as folder:
        kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
        for kind in kinds:
            if kind == "sqlite":
                url, cluster = f"sqlite:///{folder}/bench.db", None
            else:
                from testing.postgres import PostgresCluster

                cluster = PostgresCluster().start()
                url = cluster.create_database("bench_queue")
            try:
                figures = measure(url, args.jobs, Path(folder))
            finally:
                if cluster is not None:
                    cluster.stop()
            print(f"{kind:9} enqueue median {figures['enqueue_ms']:.2f} ms "
                  f"(p95 {figures['enqueue_p95_ms']:.2f}) | "
                  f"burst of {args.jobs}: {figures['throughput']:.0f} jobs/s | pickup when idle median "
                  f"{figures['pickup_ms']:.0f} ms, p95 {figures['pickup_p95_ms']:.0f}, "
                  f"max {figures['pickup_max_ms']:.0f}")


if __name__ == "__main__":
    main()
