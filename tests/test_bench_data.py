"""Benchmark data is data the product accepts (issue 15, item 9), on SQLite and PostgreSQL.

The benchmarks' generators — bench.dataset (the customers list and load benchmarks), the
labelled registry tests.labelled_duplicates.Background (bench.fast_load: the duplicate and load
benchmarks) and the CSV files bench.load imports while users work — write rows straight into the
tables or hand them to the import. A sample of each goes through the product's own doors here as
if typed anew: `create_customer` (what the edit and create forms, the quick form, the wizard, the
API and the import call; every field rule, the company's contacts with theirs) and a dry run of
the import. A value the product refuses would be data that an operator could not save again
through the edit form: the old generator drew Bratislava numbers (+421 20…, +421 21…) that
phonenumbers rejects, and this test refused a fifth of its companies.
"""

from __future__ import annotations

import random

import pytest

from bench import dataset
from models.enums import CustomerKind
from services.bulk_import import MatchRule, OnMatch, run_import
from services.bulk_import_files import SourceRow, suggest_mapping
from services.customers import SaveOptions, create_customer
from services.errors import ValidationFailed
from services.transactions import unit_of_work
from tests.labelled_duplicates import CONTACT_COLUMNS, CUSTOMER_COLUMNS, Background

pytestmark = pytest.mark.postgres

SAMPLE = 100  # customers per generator, with every contact of the sampled companies
# What a person or the import types; ids of lookups, derived names and bookkeeping are not typed.
CUSTOMER_TYPED = ("kind", "company_name", "registration_number", "vat_id", "first_name", "middle_name",
                  "last_name", "employee_type", "title", "email", "secondary_email", "primary_phone",
                  "primary_phone_type", "secondary_phone", "secondary_phone_type")
CONTACT_TYPED = ("first_name", "last_name", "email", "phone", "phone_type", "title", "is_main")


def refusals(session, customers: list[tuple[dict, list[dict]]]) -> list[str]:
    """Create each (customer fields, contact fields) through the domain's command, as a door
    would (its own unit of work; a confirmed namesake is no refusal); the refusals' messages."""
    found = []
    for fields, contacts in customers:
        try:
            with unit_of_work(session):
                create_customer(session, None, SaveOptions("SK"), contacts=contacts, confirm_duplicate=True,
                                **fields)
        except ValidationFailed as exc:
            label = fields.get("company_name") or f"{fields.get('first_name')} {fields.get('last_name')}"
            found.append(f"{label}: {exc.errors}")
    return found


def typed(row: dict, names: tuple[str, ...]) -> dict:
    return {k: row[k] for k in names if row.get(k) not in (None, "")}


def test_the_benchmark_dataset_is_made_of_values_the_product_accepts(app, session):
    data = dataset.build(customers=1_000, contacts=3_000, password_hash="not used")
    contacts: dict[int, list[dict]] = {}
    for contact in data.contacts:
        contacts.setdefault(contact["customer_id"], []).append(typed(contact, CONTACT_TYPED))
    sample = random.Random(15).sample(data.customers, SAMPLE)
    assert {c["kind"] for c in sample} == {CustomerKind.COMPANY, CustomerKind.PERSON}
    assert all(contacts.get(c["id"]) for c in data.customers if c["kind"] == CustomerKind.COMPANY), \
        "a company without a contact cannot be created in the product"
    refused = refusals(session, [(typed(c, CUSTOMER_TYPED), contacts.get(c["id"], [])) for c in sample])
    assert refused == [], f"{len(refused)} of {SAMPLE} refused, e.g. {refused[:5]}"


def test_the_labelled_registry_is_made_of_values_the_product_accepts(app, session):
    background = Background(2_000)
    customers: dict[int, tuple[dict, list[dict]]] = {}
    for chunk in background.chunks(1_000):
        for values in chunk.customers:
            row = dict(zip(CUSTOMER_COLUMNS, values, strict=True))
            customers[row["id"]] = (typed(row, CUSTOMER_TYPED), [])
        for values in chunk.contacts:
            row = dict(zip(CONTACT_COLUMNS, values, strict=True))
            customers[row["customer_id"]][1].append(typed(row, CONTACT_TYPED))
    sample = random.Random(15).sample(sorted(customers), SAMPLE)
    refused = refusals(session, [customers[i] for i in sample])
    assert refused == [], f"{len(refused)} of {SAMPLE} refused, e.g. {refused[:5]}"


def test_the_benchmark_import_file_maps_itself_and_every_row_would_be_created(app, session):
    rows = dataset.import_rows(150, batch=1)
    mapping = suggest_mapping(dataset.IMPORT_HEADERS, {})
    assert all(mapping[h] for h in dataset.IMPORT_HEADERS), mapping  # the benchmark posts it as suggested
    table = [SourceRow(number, values) for number, values in enumerate(rows, start=2)]
    report = run_import(session, None, table, mapping, [MatchRule.REGISTRATION_NUMBER, MatchRule.EMAIL],
                        OnMatch.UPDATE_EMPTY, SaveOptions("SK"), dry_run=True)
    assert report.counts() == {"created": 150, "updated": 0, "unchanged": 0, "skipped": 0, "duplicates": 0,
                               "rejected": 0}, report.rejected[:5]
