"""Scheduled directory syncs, set on the source: a nightly full sync at HH:MM of the server's local
time, and a changes-only run every N minutes (uSNChanged). A periodic job (jobs.directory) asks
each minute what is due (`queue_due_run`, per source).

Each schedule keeps when it is next due (UTC). A due run is queued at most once: the scheduler
moves the due time on with a conditional UPDATE (two workers' schedulers at once: one wins) in
the unit of work that queues the run. The next due time is counted from now, not from the
missed one, so after downtime a source gets one run, not one per missed slot. A source busy
with a run (whoever started it) is skipped and stays due: its scheduled run starts at the first
tick after the source is free. A full run also serves as the changes run then due.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import update

from i18n import _
from models import DirectorySource, DirectorySyncRun
from models.base import utcnow
from models.directory import MAX_CHANGES_MINUTES, MIN_CHANGES_MINUTES
from services.directory.runs import queue_run
from services.errors import N_
from services.run_leases import DEFAULT_LEASE_SECONDS
from services.transactions import DbSession

log = logging.getLogger(__name__)
_TIME = re.compile(r"^\s*(\d{1,2})[:.](\d{2})\s*$")
# English (compared by tests); the form shows them translated.
TIME_MESSAGE = N_("Write the time as HH:MM (24-hour clock), e.g. 02:30; empty for no nightly sync.")
_MINUTES = N_("From %(low)s to %(high)s minutes (a day); empty for no scheduled changes-only runs.")
MINUTES_MESSAGE = _MINUTES % {"low": MIN_CHANGES_MINUTES, "high": MAX_CHANGES_MINUTES}


def parse_time(text: str | None) -> str | None:
    """ "2:30", "02:30" or "02.30" → "02:30"; empty → None. ValueError with the form's words."""
    if text is None or not str(text).strip():
        return None
    match = _TIME.match(str(text))
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(_(TIME_MESSAGE))
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def check_minutes(value: int | None) -> int | None:
    if value is None:
        return None
    if not MIN_CHANGES_MINUTES <= value <= MAX_CHANGES_MINUTES:
        raise ValueError(_(_MINUTES, low=MIN_CHANGES_MINUTES, high=MAX_CHANGES_MINUTES))
    return value


def server_zone() -> str:
    """The server's time zone as a maintainer reads it: "Europe/Bratislava, UTC+01:00"."""
    now = datetime.now().astimezone()
    offset = now.strftime("%z") or "+0000"
    name = os.environ.get("TZ", "").lstrip(":") or _zoneinfo_name() or now.tzname() or "local time"
    return f"{name}, UTC{offset[:3]}:{offset[3:]}"


def _zoneinfo_name() -> str | None:
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        return None
    return target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else None


def next_full_sync(at: str, after: datetime) -> datetime:
    """The first moment strictly after `after` (UTC) when the server's clock shows `at` (HH:MM),
    in UTC. Local days, so a change of daylight saving time keeps the wall-clock time."""
    hour, minute = (int(part) for part in at.split(":"))
    day = after.replace(tzinfo=UTC).astimezone().date()
    for offset in range(3):
        local = datetime.combine(day + timedelta(days=offset), time(hour, minute)).astimezone()
        moment = local.astimezone(UTC).replace(tzinfo=None)
        if moment > after:
            return moment
    raise AssertionError("a local time comes back within two days")  # pragma: no cover


def local_time(moment: datetime | None) -> str:
    """A UTC time as the server's clock shows it (the page's "next sync")."""
    if moment is None:
        return "within a minute"
    return moment.replace(tzinfo=UTC).astimezone().strftime("%Y-%m-%d %H:%M")


def _move_due(session: DbSession, source_id: int, column: str, old: datetime | None, new: datetime) -> bool:
    """Set the source's due time `column` from `old` to `new` unless another scheduler did."""
    attribute = getattr(DirectorySource, column)
    result = session.execute(
        update(DirectorySource)
        .where(DirectorySource.id == source_id, attribute.is_(None) if old is None else attribute == old)
        .values({column: new, "updated_at": DirectorySource.updated_at})  # no edit of the settings
        .execution_options(synchronize_session=False))
    return result.rowcount == 1  # type: ignore[attr-defined]


def queue_due_run(session: DbSession, source: DirectorySource, *, now: datetime | None = None,
                  lease_seconds: int = DEFAULT_LEASE_SECONDS) -> DirectorySyncRun | None:
    """The scheduled run of `source` due at `now` (UTC), queued (flushed; the door commits it and
    hands it to a worker), or None. A schedule without a due time yet (just set) gets its first
    one, after `now`. Raises services.directory.runs.RunActive when the source is busy: the
    door's unit of work then rolls back, and the run stays due."""
    now = now or utcnow()
    if not source.is_active:
        return None
    full_due, changes_due = source.full_sync_due_at, source.changes_due_at
    every = timedelta(minutes=source.changes_every_minutes or 0)
    if source.full_sync_at and full_due is None:
        _move_due(session, source.id, "full_sync_due_at", None, next_full_sync(source.full_sync_at, now))
    if source.changes_every_minutes and changes_due is None:
        _move_due(session, source.id, "changes_due_at", None, now + every)
    full = bool(source.full_sync_at and full_due is not None and full_due <= now)
    changes = bool(source.changes_every_minutes and changes_due is not None and changes_due <= now)
    if full:
        assert source.full_sync_at is not None
        if not _move_due(session, source.id, "full_sync_due_at", full_due,
                         next_full_sync(source.full_sync_at, now)):
            return None  # another scheduler queued it
        if source.changes_every_minutes:  # the full run reads every change too
            _move_due(session, source.id, "changes_due_at", changes_due, now + every)
    elif changes:
        if not _move_due(session, source.id, "changes_due_at", changes_due, now + every):
            return None
    else:
        return None
    run = queue_run(session, source, None, full=full, scheduled=True, lease_seconds=lease_seconds)
    log.info("Scheduled %s run %s of directory source %s queued", "full" if full else "changes-only",
             run.id, source.id)
    return run
