"""Fresh database for the benchmark: schema by the migrations, then the dataset by bulk inserts.

The schema is built exactly as tests/conftest.py builds it (`flask_migrate.upgrade()` in an app
made with a test config), so the benchmark measures the indexes production gets. Rows go in as
Core `INSERT … executemany` batches: going through ORM objects one by one would take longer than
the whole benchmark. Every id is given, so tokens and links can refer to rows before they exist;
PostgreSQL's sequences are moved past them afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from itertools import islice

from cryptography.fernet import Fernet
from sqlalchemy import insert, text

from app import create_app
from bench.dataset import Dataset
from extensions import db
from models import (
    Contact,
    ContactSearchToken,
    Customer,
    CustomerSearchToken,
    Operator,
    customer_operator,
)
from models.enums import OperatorRole
from services.operators import create_operator
from services.reference_data import ensure_reference_data

MAINTAINER_EMAIL = "bench.maintainer@example.com"
MAINTAINER_PASSWORD = "correct horse battery"
ENCRYPTION_KEY = Fernet.generate_key().decode()
LOOKUP_TABLES = ("customer_status", "sla_level", "department", "site", "building")
SEQUENCE_TABLES = (*LOOKUP_TABLES, "operator", "customer", "contact")


def make_app(url: str):
    """The real application with the test suite's configuration (no rate limit on sign-in)."""
    return create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "bench-secret-key-not-for-production",
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "PHONE_DEFAULT_REGION": "SK",
        "RATELIMIT_ENABLED": False,
    })


def migrate_to_head(url: str) -> None:
    """Same as tests/conftest.py: the schema comes from the migrations, not create_all()."""
    from flask_migrate import upgrade

    app = make_app(url)
    with app.app_context():
        upgrade()
        db.engine.dispose()


def _batches(rows: Iterable, size: int) -> Iterator[list]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _insert(table, rows: Iterable[dict], batch_size: int) -> int:
    """Bulk insert `rows` in executemany batches; returns how many."""
    count = 0
    for batch in _batches(rows, batch_size):
        db.session.execute(insert(table), batch)
        count += len(batch)
    db.session.commit()
    return count


def _reset_sequences() -> None:
    """PostgreSQL: serial sequences past the ids we gave (SQLite's AUTOINCREMENT follows alone)."""
    if db.engine.dialect.name != "postgresql":
        return
    for table in SEQUENCE_TABLES:
        db.session.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"coalesce((SELECT max(id) FROM {table}), 1))"))
    db.session.commit()


def _analyze() -> None:
    """Planner statistics. PostgreSQL also gets VACUUM: a freshly bulk-loaded table has no
    visibility map, so its index-only scans would read the heap until autovacuum came by."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def _load_rows(data: Dataset, batch_size: int) -> dict[str, float]:
    """Insert the dataset table by table; returns seconds per table."""
    timings: dict[str, float] = {}

    def timed(name: str, table, rows: Iterable[dict]) -> None:
        started = time.perf_counter()
        _insert(table, rows, batch_size)
        timings[name] = time.perf_counter() - started

    for name in LOOKUP_TABLES:
        _insert(db.metadata.tables[name], data.lookups[name], batch_size)
    ensure_reference_data(db.session)  # the global settings row (statuses exist already)
    _insert(Operator.__table__, data.operators, batch_size)
    _reset_sequences()
    create_operator(db.session, email=MAINTAINER_EMAIL, password=MAINTAINER_PASSWORD,
                    first_name="Bench", last_name="Maintainer", role=OperatorRole.MAINTAINER)
    timed("customer", Customer.__table__, data.customers)
    # Tokens go in record by record, as the app's flushes write them: a record's tokens then
    # share heap pages. Sorting them by token would load faster but scatter each record's
    # tokens, and make PostgreSQL's per-record probes several times slower than in production.
    timed("customer_search_token", CustomerSearchToken.__table__,
          ({"token": t, "customer_id": i, "sort_name": n} for t, i, n in data.customer_tokens))
    timed("customer_operator", customer_operator,
          ({"customer_id": c, "operator_id": o} for c, o in data.customer_operators))
    timed("contact", Contact.__table__, data.contacts)
    timed("contact_search_token", ContactSearchToken.__table__,
          ({"token": t, "contact_id": i, "sort_name": n} for t, i, n in data.contact_tokens))
    _reset_sequences()
    return timings


def load(url: str, data: Dataset, batch_size: int = 10_000) -> dict[str, float]:
    """Migrate a fresh database at `url` and fill it; returns seconds per phase."""
    started = time.perf_counter()
    migrate_to_head(url)
    timings = {"migrate": time.perf_counter() - started}
    app = make_app(url)
    with app.app_context():
        timings.update(_load_rows(data, batch_size))
        started = time.perf_counter()
        _analyze()
        timings["analyze"] = time.perf_counter() - started
        db.session.remove()
        db.engine.dispose()
    return timings
