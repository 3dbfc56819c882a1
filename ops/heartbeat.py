"""The periodic job that shows a worker is running the periodic jobs (read by /health/ready)."""

from __future__ import annotations

import time

from jobs import periodic, queue_of

HEARTBEAT_KEY = "ops:periodic-heartbeat"


@periodic("ops.heartbeat")
def heartbeat() -> None:
    """Stamp the time in the queue's key-value storage (one row, overwritten every minute)."""
    queue_of().put(HEARTBEAT_KEY, time.time())


def last_heartbeat(queue) -> float | None:
    """When a worker last stamped (seconds since the epoch), None if never; a read only."""
    value = queue.get(HEARTBEAT_KEY, peek=True)
    return float(value) if value is not None else None
