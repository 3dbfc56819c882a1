"""SQLite connections (database_setup) and batches (services.batches) under other writers, on real
SQLite files: WAL and the busy timeout, the WAL trap our write paths stay clear of, and a long
import's batches that let other writers in."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
from flask import Flask
from sqlalchemy import Column, Integer, String, create_engine, event, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session

import services.batches as batches_module
from database_setup import init_database, sqlite_pragmas
from services.batches import batch_unit, batches
from services.transactions import unit_of_work


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "note"
    id = Column(Integer, primary_key=True)
    text = Column(String(50))


def sqlite_engine(url: str, busy_seconds: float = 5.0):
    engine = create_engine(url, connect_args={"timeout": busy_seconds})
    event.listen(engine, "connect", sqlite_pragmas)
    return engine


@pytest.fixture
def database(tmp_path):
    url = f"sqlite:///{tmp_path / 'notes.db'}"
    engine = sqlite_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session, unit_of_work(session):
        session.add_all([Note(text=f"note {n}") for n in range(3)])
    yield url, engine
    engine.dispose()


def pragmas(connection) -> tuple:
    return tuple(connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                 for name in ("journal_mode", "synchronous", "foreign_keys"))


def test_every_connection_to_a_file_runs_in_wal_with_foreign_keys(database):
    _, engine = database
    with engine.connect() as first, engine.connect() as second:
        assert pragmas(first) == pragmas(second) == ("wal", 1, 1)  # synchronous 1 = NORMAL


def test_an_in_memory_database_gets_the_foreign_keys_only():
    engine = sqlite_engine("sqlite://")
    with engine.connect() as connection:
        assert pragmas(connection) == ("memory", 2, 1)


def test_the_busy_timeout_comes_from_the_configuration():
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite:////tmp/x.db", SQLITE_BUSY_TIMEOUT_MS=4321,
                      SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "connect_args": {"uri": False}})
    init_database(app)
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"] == {"pool_pre_ping": True,
                                                       "connect_args": {"uri": False, "timeout": 4.321}}
    postgres = Flask(__name__)
    postgres.config.update(SQLALCHEMY_DATABASE_URI="postgresql+psycopg://u@h/db", SQLITE_BUSY_TIMEOUT_MS=1,
                           SQLALCHEMY_ENGINE_OPTIONS={})
    init_database(postgres)
    assert postgres.config["SQLALCHEMY_ENGINE_OPTIONS"] == {}


class Writer:
    """Another connection holding the write lock for `seconds` (another user's save)."""

    def __init__(self, url: str, seconds: float):
        self.url, self.seconds, self.ready = url, seconds, threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self):
        engine = sqlite_engine(self.url)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                connection.exec_driver_sql("INSERT INTO note (text) VALUES ('other user')")
                self.ready.set()
                time.sleep(self.seconds)
                connection.exec_driver_sql("COMMIT")
        finally:
            self.ready.set()
            engine.dispose()

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        self.thread.join(10)


def test_a_unit_of_work_that_reads_first_waits_for_the_writer(database):
    """The WAL trap — a transaction that read, then writes, fails at once while another writer
    holds the lock — does not catch our units of work: pysqlite reads outside a transaction and
    opens it with the first change, whose lock the busy timeout waits for; a savepoint's
    transaction begins IMMEDIATE (hold_transaction), and waits too."""
    url, engine = database
    with Writer(url, 0.5), Session(engine) as session:
        with unit_of_work(session):
            first = session.scalars(select(Note).order_by(Note.id)).first()
            first.text = "changed after a read"
            session.add(Note(text="added after a read"))
    with Writer(url, 0.5), Session(engine) as session:
        with unit_of_work(session):
            session.scalar(select(func.count()).select_from(Note))
            with unit_of_work(session, savepoint=True):
                session.add(Note(text="in a savepoint after a read"))
    with Session(engine) as session:
        assert set(session.scalars(select(Note.text))) >= {
            "changed after a read", "added after a read", "in a savepoint after a read", "other user"}


def test_the_trap_itself_a_deferred_transaction_that_read_fails_without_waiting(database):
    """Why no write path of ours may open a transaction with a plain BEGIN before reading."""
    url, engine = database
    with Writer(url, 0.5), engine.connect() as connection:
        connection.exec_driver_sql("BEGIN")
        connection.execute(select(func.count()).select_from(Note)).scalar()
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            connection.execute(text("INSERT INTO note (text) VALUES ('too late')"))
        assert time.monotonic() - started < 0.4  # at once: the busy timeout (5 s) was not used
        connection.exec_driver_sql("ROLLBACK")


def test_batches_start_small_and_then_hold_what_fits_in_the_time(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(batches_module, "time", SimpleNamespace(monotonic=lambda: clock[0], sleep=time.sleep))
    sizes = []
    costs = iter([0.01] * 3 + [0.1] * 3 + [0.001] * 3)  # seconds per item, batch after batch
    for batch in batches(range(10_000), 200, seconds=1.0):
        sizes.append(len(batch))
        clock[0] += len(batch) * next(costs, 0.001)
        if len(sizes) == 9:
            break
    # 10 to learn; 100 a second at 0.01 s an item; 10 at 0.1 s; at 0.001 s no more than 200.
    assert sizes == [10, 100, 100, 100, 10, 10, 10, 200, 200]


def test_a_writer_waiting_between_batches_gets_the_lock(database):
    """SQLite queues no writers: without a pause after each commit, a writer waiting in its busy
    handler never finds the lock free between two batches, and gives up after its timeout."""
    url, engine = database
    started, stop = threading.Event(), threading.Event()

    def long_import():
        with Session(engine) as session:
            for batch in batches(range(8), 1):
                with batch_unit(session):
                    session.add(Note(text=f"imported {batch[0]}"))
                    session.flush()
                    started.set()
                    time.sleep(0.3)  # the batch's work, holding the lock
                if stop.is_set():
                    return

    importer = threading.Thread(target=long_import)
    importer.start()
    try:
        assert started.wait(10)
        user = sqlite_engine(url, busy_seconds=1.0)  # a batch takes less: it must get its turn
        try:
            with Session(user) as session, unit_of_work(session):
                session.add(Note(text="a user's save"))
        finally:
            user.dispose()
    finally:
        stop.set()
        importer.join(20)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).where(Note.text == "a user's save")) == 1
