"""The jobs by name: modules register their work here; `jobs.queue` gives each to Huey."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from huey import crontab


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[..., Any]
    schedule: Any = None  # a huey.crontab for periodic jobs


JOBS: dict[str, Job] = {}


def job(name: str):
    """Register `fn(*args)` as the job `name`; its arguments must be plain values (ids)."""
    def register(fn):
        JOBS[name] = Job(name, fn)
        return fn
    return register


def periodic(name: str, schedule=None):
    """Register `fn()` to run on `schedule` (default: every minute) in whichever worker's turn it is."""
    def register(fn):
        JOBS[name] = Job(name, fn, schedule or crontab(minute="*"))
        return fn
    return register
