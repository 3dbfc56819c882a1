"""A dry run's session (services.dry_runs) on both databases: it sees what is committed, writes
nothing, and on SQLite works on a private copy, so other users' saves never wait for it."""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from extensions import db
from models import Operator, SlaLevel
from services.batches import rolled_back
from services.dry_runs import FOLDER_PREFIX, IN_USE, dry_run_session
from services.transactions import unit_of_work


def levels(session) -> set[str]:
    session.expire_all()
    return set(session.scalars(select(SlaLevel.name)))


def test_a_dry_run_writes_nothing_and_other_saves_do_not_wait_for_it(app, session, maintainer):
    sqlite = db.engine.dialect.name == "sqlite"
    # Another user's save on the real database. On SQLite it would wait for a writer holding the
    # lock: a short busy timeout makes such a wait fail at once instead of after 15 s.
    other = create_engine(db.engine.url, connect_args={"timeout": 0.2}) if sqlite else db.engine
    copy = None
    with dry_run_session(session) as dry:
        assert dry is not session
        assert dry.get(Operator, maintainer.id).email == maintainer.email  # what was committed
        with rolled_back(dry):
            dry.add(SlaLevel(name="Dry gold"))
            dry.flush()  # the dry run holds its transaction, and its writes, open from here
            with Session(other) as real, unit_of_work(real):
                real.add(SlaLevel(name="Saved meanwhile"))
            assert dry.scalar(select(func.count()).where(SlaLevel.name == "Dry gold")) == 1
        if sqlite:
            copy = Path(dry.get_bind().url.database or "")
            assert copy != Path(db.engine.url.database or "")
            assert copy.exists()
            assert dry.execute(text("PRAGMA foreign_keys")).scalar() == 1  # the same connect settings
        else:
            assert dry.get_bind() is db.engine
    if other is not db.engine:
        other.dispose()
    saved = levels(session)
    assert "Saved meanwhile" in saved and "Dry gold" not in saved
    if copy is not None:
        assert not copy.parent.exists()  # the copy and its WAL files are deleted


def test_the_copy_of_a_killed_dry_run_is_deleted_by_the_next_one(tmp_path, monkeypatch):
    """A worker killed during a dry run leaves its copy (as large as the database) behind: the
    next dry run deletes it — not the copy of a dry run still working, nor one just made."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    engine = create_engine(f"sqlite:///{tmp_path / 'live.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY)"))
    folders = {name: temp / f"{FOLDER_PREFIX}{name}" for name in ("killed", "working", "just-made")}
    for folder in folders.values():
        folder.mkdir()
        (folder / "snapshot.db").write_bytes(b"a copy")
    long_ago = time.time() - 3600
    os.utime(folders["killed"], (long_ago, long_ago))
    os.utime(folders["working"], (long_ago, long_ago))
    with (folders["working"] / IN_USE).open("w") as working:
        fcntl.flock(working, fcntl.LOCK_EX)  # as the dry run working there holds it
        with Session(engine) as session, dry_run_session(session) as dry:
            assert dry.execute(text("SELECT count(*) FROM note")).scalar() == 0
        left = sorted(p.name for p in temp.iterdir())
    assert left == [folders["just-made"].name, folders["working"].name]
    engine.dispose()
