"""Load a generated registry (tests.labelled_duplicates.Background) into a database, fast, with
exactly the rows the application would have written.

The schema comes from the migrations (`prepare`: the same `flask_migrate.upgrade()` the tests
and bench.loader use, then the reference rows and a maintainer). `load` then writes, per batch of
generated customers: customer, contact, customer_search_token and contact_search_token rows (the
derived display_name, sort_name and tokens as the models' `refresh_derived` computes them), and
at the end the name vocabulary — name_word and name_word_variant, the variants by the product's
own `models.name_vocabulary.word_variants` — as the before_flush hook would have added it.

- SQLite: executemany in large transactions with journal_mode=OFF and synchronous=OFF while
  loading (restored afterwards), foreign keys not checked during the load (every id is given by
  the generator). For a large load the secondary indexes are dropped and re-created from their own
  CREATE INDEX text (checked to be the migrations' afterwards), and the tokens are staged in
  unindexed temporary tables and moved into their tables in key order at the end.
- PostgreSQL: COPY (psycopg's `cursor.copy`). For a large load the tables' primary keys, unique
  constraints, indexes and the foreign keys touching them are dropped and re-created afterwards
  from their own definitions (pg_get_constraintdef, pg_indexes), and the result is checked to be
  the schema the migrations made; then VACUUM ANALYZE (a bulk-loaded table has no visibility map
  until vacuumed, so index-only scans would read the heap).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import make_url

from models.name_vocabulary import word_variants
from tests.labelled_duplicates import CONTACT_COLUMNS, CUSTOMER_COLUMNS, Background, Chunk

TABLES = ("customer", "contact", "customer_search_token", "contact_search_token", "name_word",
          "name_word_variant")
REBUILD_FROM = 50_000  # customers: below this, loading into the indexed tables is as fast
CREATED = datetime(2024, 1, 1, 8, 0)
MAINTAINER_EMAIL = "bench.maintainer@example.com"
MAINTAINER_PASSWORD = "correct horse battery"
OPERATOR_EMAIL = "bench.operator@example.com"  # an ordinary operator, for lookups with access rules


@dataclass
class LoadReport:
    """Seconds per phase and rows per table of one load."""

    seconds: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def prepare(url: str) -> None:
    """A fresh database at `url`: schema by the migrations, reference rows, a maintainer and an
    ordinary operator."""
    from flask_migrate import upgrade

    from bench.loader import make_app
    from extensions import db
    from models.enums import OperatorRole
    from services.operators import create_operator
    from services.reference_data import ensure_reference_data
    from services.transactions import unit_of_work

    app = make_app(url)
    with app.app_context():
        upgrade()
        with unit_of_work(db.session):
            ensure_reference_data(db.session)
            create_operator(db.session, email=MAINTAINER_EMAIL, password=MAINTAINER_PASSWORD,
                            first_name="Bench", last_name="Maintainer", role=OperatorRole.MAINTAINER)
            create_operator(db.session, email=OPERATOR_EMAIL, password=MAINTAINER_PASSWORD,
                            first_name="Bench", last_name="Operator", role=OperatorRole.OPERATOR)
        db.session.remove()
        db.engine.dispose()


def _status_ids(rows: Iterable[tuple]) -> tuple[int, int]:
    """(the default status, an inactive one) from (id, is_default, is_active) rows."""
    rows = list(rows)
    active = next(r[0] for r in rows if r[1])
    inactive = next((r[0] for r in rows if not r[2]), active)
    return active, inactive


def _vocabulary(name_words: set[str]) -> tuple[list[tuple[str]], list[tuple[str, str]]]:
    """name_word and name_word_variant rows, as models.name_vocabulary.add_words makes them."""
    wanted = sorted(w for w in name_words if w)
    variants = sorted({(v, w) for w in wanted for v in word_variants(w)})
    return [(w,) for w in wanted], variants


def load(url: str, background: Background, *, chunk_size: int = 10_000, rebuild: bool | None = None,
         progress: Callable[[str], None] | None = None) -> LoadReport:
    """Write `background` into the database at `url` (migrated, with its reference rows, and
    without customers). `rebuild`: drop and re-create indexes around the load (default: for
    large loads)."""
    rebuild = background.customers >= REBUILD_FROM if rebuild is None else rebuild
    backend = make_url(url).get_backend_name()
    loader = _load_sqlite if backend == "sqlite" else _load_postgres
    report = LoadReport()
    loader(url, background, chunk_size, rebuild, report, progress or (lambda _: None))
    return report


class _Clock:
    def __init__(self, report: LoadReport):
        self.report, self.started = report, time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.report.seconds[phase] = self.report.seconds.get(phase, 0.0) + now - self.started
        self.started = now


def _count(report: LoadReport, chunk: Chunk) -> None:
    rows = report.rows
    rows["customer"] += len(chunk.customers)
    rows["contact"] += len(chunk.contacts)
    rows["customer_search_token"] += sum(len(t) for _, t in chunk.customer_tokens)
    rows["contact_search_token"] += sum(len(t) for _, t in chunk.contact_tokens)


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


def _sqlite_schema(connection) -> list[tuple[str, str, str | None]]:
    marks = ", ".join("?" * len(TABLES))
    return connection.execute(f"SELECT type, name, sql FROM sqlite_master WHERE tbl_name IN ({marks}) "
                              f"ORDER BY type, name", TABLES).fetchall()


# -- SQLite ---------------------------------------------------------------------------------------

def _load_sqlite(url: str, background: Background, chunk_size: int, rebuild: bool, report: LoadReport,
                 progress: Callable[[str], None]) -> None:
    clock = _Clock(report)
    connection = sqlite3.connect(make_url(url).database or "", isolation_level=None)
    try:
        background.status_ids = _status_ids(connection.execute(
            "SELECT id, is_default, is_active FROM customer_status ORDER BY id"))
        journal = connection.execute("PRAGMA journal_mode").fetchone()[0]
        connection.execute("PRAGMA foreign_keys=OFF")  # every id is given; checked by the tests
        if journal != "wal":
            # A WAL database (database_setup.py) keeps WAL: leaving it needs every other connection
            # closed, and its writes are nearly as fast with synchronous=OFF.
            connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-1000000")  # 1 GB: the token index stays in memory
        schema = _sqlite_schema(connection)
        indexes = []
        if rebuild:
            indexes = [(name, sql) for kind, name, sql in schema if kind == "index" and sql]
            for name, _ in indexes:
                connection.execute(f'DROP INDEX "{name}"')
        customer_sql = (f"INSERT INTO customer ({', '.join(CUSTOMER_COLUMNS)}, created_at, updated_at) "
                        f"VALUES ({_placeholders(len(CUSTOMER_COLUMNS) + 2)})")
        contact_sql = (f"INSERT INTO contact ({', '.join(CONTACT_COLUMNS)}, created_at, updated_at) "
                       f"VALUES ({_placeholders(len(CONTACT_COLUMNS) + 2)})")
        # A large load stages the tokens unindexed and moves them into their tables sorted at the
        # end: appending to the primary key's B-tree in order instead of inserting tens of millions
        # of keys at random places (7 minutes for 47 million tokens, most of the load).
        token_sql = {owner: f"INSERT INTO {owner}_search_token (token, {owner}_id, sort_name) "
                            f"VALUES (?, ?, ?)" for owner in ("customer", "contact")}
        if rebuild:
            for owner in token_sql:
                connection.execute(f"CREATE TEMP TABLE stage_{owner}_token (token TEXT, owner INTEGER, "
                                   f"sort_name TEXT)")
                token_sql[owner] = (f"INSERT INTO temp.stage_{owner}_token (token, owner, sort_name) "
                                    f"VALUES (?, ?, ?)")
        clock.lap("prepare")
        for number, chunk in enumerate(background.chunks(chunk_size)):
            # SQLAlchemy's DateTime storage format on SQLite.
            stamp = (CREATED + timedelta(minutes=number)).strftime("%Y-%m-%d %H:%M:%S.%f")
            clock.lap("generate")
            connection.execute("BEGIN")
            connection.executemany(customer_sql, [(*row, stamp, stamp) for row in chunk.customers])
            connection.executemany(token_sql["customer"], chunk.customer_token_rows())
            connection.executemany(contact_sql, [(*row, stamp, stamp) for row in chunk.contacts])
            connection.executemany(token_sql["contact"], chunk.contact_token_rows())
            connection.execute("COMMIT")
            _count(report, chunk)
            clock.lap("insert")
            progress(f"{report.rows['customer']:,} customers, {report.rows['contact']:,} contacts")
        words, variants = _vocabulary(background.name_words)
        connection.execute("BEGIN")
        connection.executemany("INSERT INTO name_word (word) VALUES (?)", words)
        connection.executemany("INSERT INTO name_word_variant (variant, word) VALUES (?, ?)", variants)
        connection.execute("COMMIT")
        report.rows["name_word"], report.rows["name_word_variant"] = len(words), len(variants)
        clock.lap("insert")
        if rebuild:
            for owner in ("customer", "contact"):
                connection.execute("BEGIN")
                connection.execute(f"INSERT INTO {owner}_search_token (token, {owner}_id, sort_name) "
                                   f"SELECT token, owner, sort_name FROM temp.stage_{owner}_token "
                                   f"ORDER BY token, owner")
                connection.execute(f"DROP TABLE temp.stage_{owner}_token")
                connection.execute("COMMIT")
            clock.lap("sorted tokens")
        for _, sql in indexes:
            connection.execute(sql)
        assert _sqlite_schema(connection) == schema, "the re-created indexes differ from the migrations'"
        clock.lap("indexes")
        connection.execute("ANALYZE")
        clock.lap("analyze")
        if journal != "wal":
            connection.execute(f"PRAGMA journal_mode={journal}")
        connection.execute("PRAGMA synchronous=FULL")
        problems = connection.execute("PRAGMA foreign_key_check").fetchall() if not rebuild else []
        assert not problems, f"rows refer to missing rows: {problems[:5]}"
    finally:
        connection.close()


# -- PostgreSQL -----------------------------------------------------------------------------------

def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _copy_text(rows: Iterable[tuple]) -> str:
    """COPY text format. The generator writes no backslash, tab or line break into a value
    (checked), so nothing needs escaping."""
    def value(v) -> str:
        if v is None:
            return "\\N"
        if v is True:
            return "t"
        if v is False:
            return "f"
        return str(v)

    text = "\n".join("\t".join(map(value, row)) for row in rows)
    assert "\\" not in text.replace("\\N", ""), "a value with a backslash needs escaping"
    return text + "\n" if text else ""


_SCHEMA_QUERIES = {
    "foreign keys": """
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint c
        WHERE c.contype = 'f' AND (c.conrelid = ANY(%(tables)s::regclass[])
                                   OR c.confrelid = ANY(%(tables)s::regclass[]))
        ORDER BY 1, 2""",
    "keys": """
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint c
        WHERE c.contype IN ('p', 'u') AND c.conrelid = ANY(%(tables)s::regclass[])
        ORDER BY 1, 2""",
    "indexes": """
        SELECT i.tablename::text, i.indexname::text, i.indexdef
        FROM pg_indexes i
        WHERE i.schemaname = current_schema() AND i.tablename = ANY(%(tables)s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname
                          AND c.conrelid = (quote_ident(i.tablename))::regclass)
        ORDER BY 1, 2""",
}


def _schema(cursor) -> dict[str, list[tuple[str, str, str]]]:
    """The constraints and indexes a load may drop, with their definitions."""
    return {kind: [tuple(r) for r in cursor.execute(sql, {"tables": list(TABLES)})]
            for kind, sql in _SCHEMA_QUERIES.items()}


def _drop(cursor, schema) -> None:
    from psycopg import sql

    for table, name, _ in schema["foreign keys"] + schema["keys"]:
        cursor.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table),
                                                                            sql.Identifier(name)))
    for _, name, _ in schema["indexes"]:
        cursor.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))


def _create(cursor, schema) -> None:
    from psycopg import sql

    def add(table: str, name: str, definition: str) -> None:
        cursor.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
            sql.Identifier(table), sql.Identifier(name)) + sql.SQL(definition))  # type: ignore[arg-type]

    for row in schema["keys"]:
        add(*row)
    for _, _, definition in schema["indexes"]:
        cursor.execute(definition)
    for row in schema["foreign keys"]:
        add(*row)


def _load_postgres(url: str, background: Background, chunk_size: int, rebuild: bool, report: LoadReport,
                   progress: Callable[[str], None]) -> None:
    import psycopg

    clock = _Clock(report)
    with psycopg.connect(_conninfo(url)) as connection, connection.cursor() as cursor:
        background.status_ids = _status_ids(cursor.execute(
            "SELECT id, is_default, is_active FROM customer_status ORDER BY id").fetchall())
        cursor.execute("SET maintenance_work_mem = '1GB'")
        schema = _schema(cursor)
        if rebuild:
            _drop(cursor, schema)
        clock.lap("prepare")
        customer_copy = f"COPY customer ({', '.join(CUSTOMER_COLUMNS)}, created_at, updated_at) FROM STDIN"
        contact_copy = f"COPY contact ({', '.join(CONTACT_COLUMNS)}, created_at, updated_at) FROM STDIN"
        for number, chunk in enumerate(background.chunks(chunk_size)):
            stamp = (CREATED + timedelta(minutes=number)).isoformat(sep=" ")
            clock.lap("generate")
            for statement, text in (
                    (customer_copy, _copy_text((*r, stamp, stamp) for r in chunk.customers)),
                    ("COPY customer_search_token (token, customer_id, sort_name) FROM STDIN",
                     _copy_text(chunk.customer_token_rows())),
                    (contact_copy, _copy_text((*r, stamp, stamp) for r in chunk.contacts)),
                    ("COPY contact_search_token (token, contact_id, sort_name) FROM STDIN",
                     _copy_text(chunk.contact_token_rows()))):
                if text:
                    with cursor.copy(statement) as copy:
                        copy.write(text)
            _count(report, chunk)
            clock.lap("insert")
            progress(f"{report.rows['customer']:,} customers, {report.rows['contact']:,} contacts")
        words, variants = _vocabulary(background.name_words)
        with cursor.copy("COPY name_word (word) FROM STDIN") as copy:
            copy.write(_copy_text(words))
        with cursor.copy("COPY name_word_variant (variant, word) FROM STDIN") as copy:
            copy.write(_copy_text(variants))
        report.rows["name_word"], report.rows["name_word_variant"] = len(words), len(variants)
        for table in ("customer", "contact"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"coalesce((SELECT max(id) FROM {table}), 1))")
        clock.lap("insert")
        if rebuild:
            _create(cursor, schema)
            rebuilt = _schema(cursor)
            assert rebuilt == schema, "the re-created constraints and indexes differ from the migrations'"
        connection.commit()
        clock.lap("indexes")
    with psycopg.connect(_conninfo(url), autocommit=True) as connection:
        for table in TABLES:
            connection.execute(f"VACUUM ANALYZE {table}")
    clock.lap("analyze")


def assign(url: str, email: str = OPERATOR_EMAIL, every: int = 100) -> int:
    """Make the operator `email` responsible for every `every`-th customer (customer_operator
    rows, as services.customers.set_operators writes them); returns how many."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            operator = connection.scalar(text("SELECT id FROM operator WHERE email = :email"),
                                         {"email": email})
            return connection.execute(text(
                "INSERT INTO customer_operator (customer_id, operator_id) SELECT id, :operator FROM customer "
                "WHERE id % :every = 0"), {"operator": operator, "every": every}).rowcount
    finally:
        engine.dispose()


__all__ = ["LoadReport", "MAINTAINER_EMAIL", "MAINTAINER_PASSWORD", "OPERATOR_EMAIL", "assign", "load",
           "prepare"]
