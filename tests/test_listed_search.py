"""A maintainer's list search reads its page and count from the token index alone
(services.search.customer_listed_page): the word tokens carry the name their record is listed
under. What users see must not change: the same rows in the same order as an operator's search
through the list query, on every page; a renamed record found under its new name in its new
place; a merged-away customer gone from the results and back after the merge is undone; and a
registry upgraded from before the column was filled."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from extensions import db
from models import AuditEvent, Contact, ContactSearchToken, Customer, CustomerSearchToken
from models.enums import CustomerKind
from models.names import fold
from models.search_index import is_word
from services.customers import SaveOptions, save_customer_changes
from services.merge import merge_customers, undo_merge
from services.transactions import unit_of_work
from tests.test_merge import BOX

NAME = re.compile(r'<td class="col-display_name"><a href="[^"]+"[^>]*>([^<]*)</a>')
CONTACT_NAME = re.compile(r'<td class="col-display_name">([^<]*)</td>')
COUNT = re.compile(r'class="nav-link active">[^<]*\(([^)]*)\)</a>')


def names(html: str) -> list[str]:
    return [unescape(name) for name in NAME.findall(html)]


def listed_everywhere(session) -> None:
    """Every word token is listed under its owner's sort name (NULL for a merged-away customer),
    every name pair and whole name not at all."""
    for token_model in (CustomerSearchToken, ContactSearchToken):
        for row in session.scalars(select(token_model)):
            if token_model is CustomerSearchToken:
                record = session.get(Customer, row.customer_id)
                expected = record.sort_name if record.merged_into_id is None else None
            else:
                expected = session.get(Contact, row.contact_id).sort_name
            assert row.sort_name == (expected if is_word(row.token) else None), (row.token, row.sort_name)


@pytest.fixture
def namesakes(new_customer, maintainer, operator):
    # 26 people whose surname starts "Nov" (one page and a bit), in a scrambled creation order,
    # all assigned to `operator` so their list is the same set; and people who do not match.
    made = {}
    for number in (7, 3, 21, 0, 12, 25, 1, 18, 9, 14, 5, 23, 2, 16, 11, 20, 8, 24, 4, 13, 19, 6, 22, 10,
                   15, 17):
        made[number] = new_customer(maintainer, kind=CustomerKind.PERSON, first_name=f"Eva{number:02d}",
                                    last_name="Novotná" if number % 2 else "Nováková", operators=[operator])
    new_customer(maintainer, kind=CustomerKind.PERSON, first_name="Peter", last_name="Horváth",
                 operators=[operator])
    return made


def _search(client, text: str, page: int = 0, url: str = "/admin/customers/") -> tuple[list[str], str]:
    html = client.get(f"{url}?search={text}&page={page}").get_data(as_text=True)
    counted = COUNT.search(html)  # the tab shows no count for an empty list
    return names(html), counted.group(1) if counted else "0"


def test_a_maintainers_search_lists_what_an_operators_list_query_lists(
        maintainer_client, operator_client, namesakes):
    for text in ("nov", "NOVÁ", "eva1", "nov eva2", "novotna eva"):
        for page in (0, 1):
            assert _search(maintainer_client, text, page) == _search(operator_client, text, page), text
    first, count = _search(maintainer_client, "nov")
    assert count == "26" and len(first) == 20 and first == sorted(first, key=fold)
    assert first[0] == "Nováková, Eva00" and _search(maintainer_client, "nov", 1)[0][-1] == "Novotná, Eva25"


def test_a_renamed_customer_is_found_under_its_new_name_in_its_new_place(
        maintainer_client, namesakes, session, maintainer):
    renamed = namesakes[0]
    with unit_of_work(session):
        renamed.last_name = "Novy"
        save_customer_changes(session, renamed, maintainer, SaveOptions("SK"), confirm_duplicate=True)
    listed_everywhere(session)
    second_page, count = _search(maintainer_client, "nov", 1)
    assert count == "26" and second_page[-1] == "Novy, Eva00"
    assert "Novy, Eva00" in _search(maintainer_client, "novy")[0]


def test_a_merged_away_customer_leaves_the_search_until_the_merge_is_undone(
        maintainer_client, namesakes, session, maintainer):
    with unit_of_work(session):
        event = merge_customers(session, maintainer, namesakes[2], namesakes[4], BOX, choices={},
                                decisions={})
    listed_everywhere(session)
    found, count = _search(maintainer_client, "eva04")
    assert found == [] and _search(maintainer_client, "nov")[1] == "25"
    with unit_of_work(session):
        undo_merge(session, maintainer, session.get(AuditEvent, event.id))
    listed_everywhere(session)
    assert _search(maintainer_client, "eva04")[0] == ["Nováková, Eva04"]


def test_contacts_are_searched_the_same_way(maintainer_client, new_customer, maintainer, session):
    new_customer(maintainer, kind=CustomerKind.COMPANY, company_name="Stavby", contacts=[
        {"first_name": "Jana", "last_name": "Nováková", "email": "jana@stavby.sk", "is_main": True},
        {"first_name": "Adam", "last_name": "Novotný", "email": "adam@stavby.sk"},
        {"first_name": "Peter", "last_name": "Horváth", "email": "novak@stavby.sk"}])
    listed_everywhere(session)
    html = maintainer_client.get("/admin/contacts/?search=nov").get_data(as_text=True)
    # Name order (sort name: last name first); the third matches by its e-mail's word "novak".
    shown = [unescape(name) for name in CONTACT_NAME.findall(html)]
    assert shown == ["Peter Horváth", "Jana Nováková", "Adam Novotný"]
    assert COUNT.search(html).group(1) == "3"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_an_upgraded_registry_lists_its_existing_tokens(backend, tmp_path, request):
    from datetime import datetime

    from flask_migrate import upgrade
    from sqlalchemy import insert

    from models import CustomerStatus
    from services.search import customer_listed_page
    from tests.conftest import make_app, scratch_database_url

    url = scratch_database_url(backend, tmp_path, request, "listed")
    app = make_app(url)
    with app.app_context():
        upgrade(revision="b8c9d0e1f2a3")
        now = datetime(2026, 1, 1)
        status = db.session.execute(insert(CustomerStatus.__table__).values(
            name="Active", is_default=True, is_active=True)).inserted_primary_key[0]
        stamps = {"created_at": now, "updated_at": now, "version": 1, "kind": "person", "status_id": status}
        for number, (first, last, merged) in enumerate([("Jana", "Nováková", None), ("Eva", "Novotná", None),
                                                        ("Ida", "Nováková", 1)], start=1):
            db.session.execute(insert(Customer.__table__).values(
                id=number, first_name=first, last_name=last, display_name=f"{last}, {first}",
                sort_name=f"{last} {first}".lower().replace("á", "a"), merged_into_id=merged, **stamps))
            for token in (last.lower().replace("á", "a"), first.lower(), f"~{first.lower()} x"):
                db.session.execute(insert(CustomerSearchToken.__table__).values(
                    token=token, customer_id=number))
        db.session.commit()
        upgrade()
        count, ids = customer_listed_page(db.session, "nov", 0, 20)
        assert (count, ids) == (2, [1, 2])  # the merged-away Ida is not listed
        assert db.session.scalar(select(CustomerSearchToken.sort_name).where(
            CustomerSearchToken.token == "~jana x")) is None
        db.session.remove()
        db.engine.dispose()


def test_a_record_with_several_matching_words_is_listed_once(maintainer_client, operator_client,
                                                             new_customer, maintainer, operator):
    # Each has two words starting "nov" (first and last name): 50 token rows, 25 people; a page
    # of 20 needs 40 rows in order, more than the page reads at first.
    for number in range(25):
        new_customer(maintainer, kind=CustomerKind.PERSON, first_name=f"Nova{number:02d}",
                     last_name="Novakova", operators=[operator])
    first, count = _search(maintainer_client, "nov")
    second, _ = _search(maintainer_client, "nov", 1)
    assert count == "25" and first + second == [f"Novakova, Nova{n:02d}" for n in range(25)]
    assert (first, count) == _search(operator_client, "nov")
