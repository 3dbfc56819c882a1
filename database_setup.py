"""What every database connection of the app is told when it opens (web, worker and CLI alike).

SQLite has one writer at a time. In its default rollback journal a writer also waits for every
reader and every reader for the writer, and pysqlite gives up after 5 s with "database is
locked": one long transaction (an import preview) locked everybody out. So each SQLite
connection runs with

- journal_mode=WAL: readers never wait for the writer, nor the writer for readers;
- a busy timeout of SQLITE_BUSY_TIMEOUT_MS (15 s by default): a writer queues that long for the
  write lock before it gives up (pysqlite's `timeout`, SQLite's sqlite3_busy_timeout);
- synchronous=NORMAL: in WAL mode a commit survives a crash of the application; a power cut can
  lose the last commits, never consistency (SQLite's advice for WAL);
- foreign_keys=ON: SQLite checks foreign keys only when asked.

An in-memory database (`sqlite://`) has no WAL and no other connection: it only gets the foreign
keys. PostgreSQL needs none of this.

The WAL trap: a transaction that began with a read and then wants to write gets SQLITE_BUSY at
once, without the busy handler (another writer may have committed after its snapshot). Our write
paths do not meet it with pysqlite's default transaction handling (Python 3.11,
isolation_level=""): a unit of work's reads before its first change run outside any
transaction, pysqlite opens the transaction with the change itself (BEGIN, then the INSERT /
UPDATE / DELETE, which waits for the write lock), and the paths that must read inside the
transaction (savepoints, the duplicate check, version checks, batches) open it with
services.transactions.hold_transaction — BEGIN IMMEDIATE, which waits too.
tests/unit/test_database_setup.py keeps both facts true.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

BUSY_TIMEOUT_KEY = "SQLITE_BUSY_TIMEOUT_MS"


def init_database(app: Flask) -> None:
    """Set up the app's database connections; called before `db.init_app(app)`, which makes the
    engine from the engine options completed here."""
    if make_url(app.config["SQLALCHEMY_DATABASE_URI"]).get_backend_name() == "sqlite":
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        connect_args = dict(options.get("connect_args") or {})
        connect_args.setdefault("timeout", int(app.config[BUSY_TIMEOUT_KEY]) / 1000)
        options["connect_args"] = connect_args
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    # On the Engine class: every engine of the process gets it, a dry run's snapshot too
    # (services.dry_runs); registered once however many apps are made.
    if not event.contains(Engine, "connect", sqlite_pragmas):
        event.listen(Engine, "connect", sqlite_pragmas)


def sqlite_pragmas(dbapi_connection, _record) -> None:
    """Tell a new SQLite connection how to behave (see the module's docstring)."""
    if not type(dbapi_connection).__module__.startswith("sqlite3"):
        return
    # SQLite's own lower() folds ASCII only ("Š" stays "Š"); this one folds like Python and
    # PostgreSQL (services.portal compares user names with it). Not a replacement of lower():
    # the lower(email) indexes were built with SQLite's.
    dbapi_connection.create_function("py_lower", 1, _py_lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        if not in_memory(dbapi_connection):
            # Persistent in the file; switching an old database waits (busy timeout) for the
            # connections it still has to end their transactions.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _py_lower(value):
    return value.lower() if isinstance(value, str) else value


def in_memory(dbapi_connection) -> bool:
    """True for an in-memory (or temporary) SQLite database: its main file has no name."""
    for _seq, name, filename in dbapi_connection.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return not filename
    return True
