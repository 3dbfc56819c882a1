"""A list longer than services.counting.COUNT_CAP: counted as "more than 10,000" on every door
(panel lists in each language, the API), its pages reach as far as it is counted, and its export
still writes every row (streamed, bench/customers_list.py measures the memory)."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from bench.fast_load import load
from extensions import db
from models import Contact, Customer
from services.counting import COUNT_CAP
from tests.labelled_duplicates import Background
from tests.test_api import Api, token_of

CUSTOMERS = COUNT_CAP + 45
LIST_TAB = re.compile(r'class="nav-link active">[^<]*\(([^)]*)\)</a>')


@pytest.fixture
def registry(app, database_url, maintainer):
    db.session.commit()  # the loader writes through a connection of its own
    load(database_url, Background(CUSTOMERS, 300, seed=11))
    db.session.expire_all()
    return app


def _count_shown(page: str) -> str:
    return LIST_TAB.search(page).group(1)


def _names(page: str) -> list[str]:
    return re.findall(r'<td class="col-display_name">\s*<a[^>]*>([^<]+)</a>', page)


def test_a_long_list_says_more_than_the_cap_in_the_readers_language(registry, maintainer_client):
    page = maintainer_client.get("/admin/customers/").get_data(as_text=True)
    assert _count_shown(page) == "more than 10,000"
    slovak = maintainer_client.get("/admin/customers/", headers={"Accept-Language": "sk"})
    assert _count_shown(slovak.get_data(as_text=True)) == "viac ako 10\xa0000"
    contacts = maintainer_client.get("/admin/contacts/").get_data(as_text=True)
    held = db.session.scalar(select(func.count()).select_from(Contact))
    assert 0 < held <= COUNT_CAP and _count_shown(contacts) == f"{held:,}"  # under the cap: exact


def test_a_search_narrowing_the_list_shows_its_exact_count(registry, maintainer_client):
    word = db.session.scalar(select(Customer.last_name).where(Customer.kind == "person")
                             .order_by(Customer.id).limit(1))
    page = maintainer_client.get(f"/admin/customers/?search={word}").get_data(as_text=True)
    shown = _count_shown(page)
    assert shown.replace(",", "").isdigit() and 0 < int(shown.replace(",", "")) <= COUNT_CAP


def test_the_pages_reach_the_end_of_the_counted_rows_and_no_further(registry, maintainer_client):
    ordered = db.session.scalars(select(Customer.display_name)
                                 .order_by(Customer.sort_name, Customer.id)).all()
    last = maintainer_client.get("/admin/customers/?page=500").get_data(as_text=True)
    assert _names(last)[0] == ordered[10_000]
    beyond = maintainer_client.get("/admin/customers/?page=501").get_data(as_text=True)
    assert _names(beyond) == _names(last)  # past the counted rows: their last page
    assert 'page=500' in last and 'page=501' not in last  # the pager offers no page past it


def test_the_export_of_a_long_list_writes_every_row(registry, maintainer_client):
    answer = maintainer_client.get("/admin/customers/export/csv/")
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert len(rows) == 1 + db.session.scalar(select(func.count()).select_from(Customer)) == 1 + CUSTOMERS


def test_the_api_counts_to_the_cap_and_says_the_total_is_not_exact(registry, session, maintainer):
    api = Api(registry.test_client(), token_of(session, maintainer))
    page = api.get("/customers?per_page=5").get_json()
    assert (page["total"], page["total_exact"]) == (COUNT_CAP + 1, False)
    narrow = api.get("/customers?kind=company&per_page=5").get_json()
    companies = db.session.scalar(select(func.count()).where(Customer.kind == "company"))
    assert (narrow["total"], narrow["total_exact"]) == (companies, True)


def test_a_maintainer_lists_the_contacts_of_every_company_but_not_of_a_merged_away_one(
        session, company, new_customer, maintainer_client):
    # The maintainer's contact list asks "is its company listed?" row by row (admin_views.contacts);
    # a tombstone left by a merge is nobody's to list, whoever owns it.
    other = new_customer(kind="company", company_name="Beta", contacts=[
        {"first_name": "Boris", "last_name": "Beta", "email": "boris@beta.sk", "is_main": True}])
    page = maintainer_client.get("/admin/contacts/").get_data(as_text=True)
    assert all(email in page for email in ("mia@acme.sk", "cyril@acme.sk", "boris@beta.sk"))
    other.merged_into_id = company.id  # as services.merge leaves the merged-away record
    session.commit()
    page = maintainer_client.get("/admin/contacts/").get_data(as_text=True)
    assert "mia@acme.sk" in page and "boris@beta.sk" not in page
