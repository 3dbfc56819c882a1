"""Duplicate matching measured on a labelled set, on SQLite and PostgreSQL.

A generated registry of 3,000 customers with their contacts (tests/labelled_duplicates.py) goes
into the database through the benchmark's fast loader (bench/fast_load.py), then more than a
thousand labelled queries — variants of existing records and legitimate new ones — go through
`find_duplicates` as the quick form and the API send them. The first test checks that the fast
loader writes what the application writes, so the figures are those of real data.
"""

from __future__ import annotations

import inspect

from sqlalchemy import select, text

from bench.fast_load import load
from extensions import db
from models import Contact, CustomerStatus
from services.customers import SaveOptions, create_customer
from services.duplicates import find_duplicates, make_probe
from services.reference_data import ensure_reference_data
from services.transactions import unit_of_work
from tests.conftest import empty_all_tables, fresh_app
from tests.labelled_duplicates import (
    CONTACT_COLUMNS,
    CUSTOMER_COLUMNS,
    Background,
    Scores,
    judge,
)

SIZE = 3_000
QUERIES = 1_200
LISTED = 0.97
STRONG = 0.99
FALSE_REFUSALS = 0.01
# Columns that differ by when and by whom a row was written, not by what it says.
# What the generator fills in that the application derives or assigns itself.
DERIVED = {"id", "display_name", "sort_name", "status_id", "version"}
CIRCUMSTANTIAL = {"id", "customer_id", "contact_id", "created_at", "updated_at", "created_by_id",
                  "updated_by_id", "status_id"}


def _snapshot(session) -> dict[str, list]:
    """Every row of the tables a load writes, ids replaced by the row's position (the app's ids
    continue from earlier tests on SQLite), statuses by their names."""
    customers = {cid: n for n, cid in enumerate(session.scalars(text("SELECT id FROM customer ORDER BY id")))}
    contacts = {cid: n for n, cid in enumerate(session.scalars(text("SELECT id FROM contact ORDER BY id")))}
    statuses = dict(session.execute(select(CustomerStatus.id, CustomerStatus.name)).all())

    def rows(table: str, order: str, owner: str | None = None, owners: dict | None = None) -> list:
        found = []
        for row in session.execute(text(f"SELECT * FROM {table} ORDER BY {order}")).mappings():
            values = {k: v for k, v in row.items() if k not in CIRCUMSTANTIAL}
            if owner:
                values[owner] = owners[row[owner]]
            if "status_id" in row:
                values["status"] = statuses[row["status_id"]]
            found.append(values)
        return found

    return {
        "customer": rows("customer", "id", "id", customers),
        "contact": rows("contact", "id", "customer_id", customers),
        "customer_search_token": sorted(
            (r["token"], r["customer_id"]) for r in rows("customer_search_token", "token", "customer_id",
                                                          customers)),
        "contact_search_token": sorted(
            (r["token"], r["contact_id"]) for r in rows("contact_search_token", "token", "contact_id",
                                                         contacts)),
        "name_word": [r["word"] for r in rows("name_word", "word")],
        "name_word_variant": [(r["variant"], r["word"]) for r in rows("name_word_variant", "variant, word")],
    }


def _create_through_the_app(session, background: Background) -> None:
    """Every generated customer through services.customers.create_customer, contacts included
    (confirmed, so the duplicate refusal does not stop namesakes)."""
    statuses = {s.id: s for s in session.scalars(select(CustomerStatus))}
    background.status_ids = (next(s.id for s in statuses.values() if s.is_default),
                             next(s.id for s in statuses.values() if not s.is_active))
    for chunk in background.chunks(100):
        contacts: dict[int, list[dict]] = {}
        for row in chunk.contacts:
            values = dict(zip(CONTACT_COLUMNS, row, strict=True))
            contacts.setdefault(values["customer_id"], []).append(
                {k: values[k] for k in ("first_name", "last_name", "email", "phone", "phone_type", "title",
                                        "is_main")})
        for row in chunk.customers:
            values = dict(zip(CUSTOMER_COLUMNS, row, strict=True))
            fields = {k: v for k, v in values.items() if k not in DERIVED}
            with unit_of_work(session):
                create_customer(session, None, SaveOptions("SK"), contacts=contacts.get(values["id"], []),
                                confirm_duplicate=True, status=statuses[values["status_id"]], **fields)


def test_the_fast_loader_writes_what_the_application_writes(database_url):
    with fresh_app(database_url):
        session = db.session
        _create_through_the_app(session, Background(120, 300, seed=5))
        assert session.scalar(select(Contact.id).limit(1)) is not None
        through_the_app = _snapshot(session)
        session.remove()
        empty_all_tables()
        with unit_of_work(session):
            ensure_reference_data(session)
        session.remove()
        load(database_url, Background(120, 300, seed=5), rebuild=True)  # as at scale
        loaded = _snapshot(session)
    for table, rows in through_the_app.items():
        assert loaded[table] == rows, f"{table} differs from what the application writes"


def _probe(query) -> object:
    arguments = query.probe_arguments()
    if "partial" in inspect.signature(make_probe).parameters:
        arguments["partial"] = False
    return make_probe(**arguments)


def test_duplicate_matching_finds_duplicates_and_does_not_refuse_new_records(database_url):
    with fresh_app(database_url):
        background = Background(SIZE)
        load(database_url, background)
        queries = background.queries(QUERIES)
        assert len(queries) >= 1_000
        verdicts = []
        for query in queries:
            verdicts.append(judge(query, find_duplicates(db.session, None, _probe(query))))
            db.session.remove()
    scores = Scores.of(verdicts)
    missed = [v for v in verdicts if v.missed]
    report = f"{scores}\n{len(missed)} missed:\n" + "\n".join(v.describe() for v in missed)
    print(report)
    assert scores.recall >= LISTED, report
    assert scores.strong_recall >= STRONG, report
    assert scores.false_refusals <= FALSE_REFUSALS, report
