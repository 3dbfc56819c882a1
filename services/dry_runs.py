"""Where a dry run (a CSV preview, a directory dry run) does its writing.

A dry run does the real work and rolls it back (services.batches.rolled_back), so its report is
what the real run would do. Its transaction lasts as long as the run: minutes for a large file
or directory. On PostgreSQL that costs nobody anything (row locks on rows nobody else has yet).
On SQLite a writing transaction holds the database's only write lock, so a dry run on the live
file would make every other writer — sign-ins included — wait for it and fail. There the dry
run works on a private copy of the database instead, made with SQLite's online backup
(`sqlite3.Connection.backup`: consistent, and in WAL mode it never stops the writers), in a
temporary folder (TMPDIR chooses where; it needs as much free space as the database) that is
deleted afterwards. The copy costs about a second per 100 MB, once per dry run
(a 472 MB database of 100,000 customers and 300,000 contacts: see the README). A dry run holds
a lock on its folder while it works; the folders of runs whose process died (a worker killed)
are deleted by the next dry run on that machine.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from services.errors import DomainError
from services.transactions import DbSession

log = logging.getLogger(__name__)
FOLDER_PREFIX = "customer-desk-dry-run-"
IN_USE = "in-use.lock"  # locked (flock) by the dry run working in the folder
SETTLING_SECONDS = 60  # a folder younger than this may not have its lock yet: never swept
COPY_FAILED = ("The dry run works on a copy of the database, and the copy could not be made ({reason}). "
               "Ask the administrator to free space for temporary files, then try again.")


@contextmanager
def dry_run_session(session: DbSession) -> Iterator[Session]:
    """A session for a dry run's writes, closed at the end (the caller rolls back what it wrote).

    On a SQLite file: a Session on a private copy of the database as it is committed now, with
    the connect settings of every connection (database_setup); the copy is deleted when the
    block ends. Anywhere else (PostgreSQL, an in-memory SQLite): a Session of its own on the same
    engine. Objects of `session` are not this session's: load what the run needs in it
    (`dry.get(Operator, actor_id)`). Run state (progress, the report) must be written through a
    session on the real database, never through this one. Raises DomainError when the copy
    cannot be made (no space for it)."""
    engine = session.get_bind().engine
    if engine.dialect.name != "sqlite" or _in_memory(engine):
        private = Session(bind=engine, expire_on_commit=False)
        try:
            yield private
        finally:
            private.close()
        return
    sweep_left_behind()
    try:
        folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))  # mode 0700: customers' data
        in_use = (folder / IN_USE).open("w")
    except OSError as exc:
        raise DomainError(COPY_FAILED.format(reason=exc.strerror)) from None
    try:
        fcntl.flock(in_use, fcntl.LOCK_EX)
        copy = snapshot(engine, folder / "snapshot.db")
        private = Session(bind=copy, expire_on_commit=False)
        try:
            yield private
        finally:
            private.close()
            copy.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        in_use.close()


def snapshot(engine: Engine, path: Path) -> Engine:
    """Copy the SQLite database of `engine` to `path` (its committed state at one moment) and
    return an engine on the copy, with the same options as far as they matter here."""
    started = time.perf_counter()
    live = engine.raw_connection()  # a connection of the pool: the connect settings are applied
    try:
        target = sqlite3.connect(path)
        try:
            live.driver_connection.backup(target)  # type: ignore[union-attr]  # one step: consistent
        except sqlite3.Error as exc:
            raise DomainError(COPY_FAILED.format(reason=str(exc))) from None
        finally:
            target.close()
    finally:
        live.close()
    log.info("Dry run on a copy of the database: %.1f MB copied in %.2f s",
             path.stat().st_size / 1e6, time.perf_counter() - started)
    return create_engine(engine.url.set(database=str(path), query={}), hide_parameters=engine.hide_parameters)


def sweep_left_behind() -> None:
    """Delete the copies of dry runs whose process ended without deleting them (killed): their
    folder's lock is free. A folder another user owns, or one in use, is left alone."""
    now = time.time()
    for folder in Path(tempfile.gettempdir()).glob(FOLDER_PREFIX + "*"):
        try:
            if now - folder.stat().st_mtime < SETTLING_SECONDS:
                continue
            with (folder / IN_USE).open("a") as handle:
                if _locked_by_another(handle):
                    continue
                shutil.rmtree(folder)
            log.warning("Deleted the copy of a dry run that ended without deleting it: %s", folder)
        except OSError:
            continue


def _locked_by_another(handle: IO) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    return False


def _in_memory(engine: Engine) -> bool:
    database = engine.url.database or ""
    return database in ("", ":memory:") or "memory" in str(engine.url.query.get("mode", ""))
