"""Information by message (issue 14, item 7): no message, status or redirect reveals a record the
actor may not view — on SQLite and PostgreSQL.

Olga (the `operator` fixture) works on ACME; Stan, another operator, has his own company with a
contact Olga may not see, and his own person. A door that takes ids of other records answers an
id of Stan's exactly as it answers an id that names nothing.
"""

from __future__ import annotations

import difflib
import re
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from models import Request
from models.enums import CustomerKind
from services.merge import merge_customers
from services.secrets import SecretBox
from tests.conftest import ENCRYPTION_KEY, Browserless, written
from tests.test_api import Api, token_of
from tests.test_doors_and_rules import page_text

BOX = SecretBox(ENCRYPTION_KEY)
SECRET_NAME = "Tajomná"  # the last name of Stan's contact: never shown to Olga
UNKNOWN = 2_000_000  # an id that names nothing


class World:
    def __init__(self, app, session, make_operator, new_customer, operator, maintainer):
        self.app, self.session = app, session
        self.olga, self.boss = operator, maintainer
        self.stan = make_operator("stan@example.com", first_name="Stan")
        self.acme = new_customer(kind=CustomerKind.COMPANY, company_name="ACME s.r.o.", operators=[operator],
                                 contacts=[{"last_name": "Nová", "email": "nova@acme.sk"}])
        self.theirs = new_customer(kind=CustomerKind.COMPANY, company_name="Stanova Firma",
                                   operators=[self.stan], contacts=[{
                                       "first_name": "Tereza", "last_name": SECRET_NAME,
                                       "email": "tereza@stanova.sk"}])
        self.hidden_person = new_customer(kind=CustomerKind.PERSON, first_name="Skrytý", last_name="Človek",
                                          email="skryty@example.com", primary_phone="0905 111 222",
                                          operators=[self.stan])

    def api(self, who) -> Api:
        return Api(self.app.test_client(), token_of(self.session, who))

    def browser(self, who) -> Browserless:
        browser = Browserless(self.app.test_client())
        assert browser.login(who.email).status_code == 302
        return browser


@pytest.fixture
def world(app, session, make_operator, new_customer, operator, maintainer):
    return World(app, session, make_operator, new_customer, operator, maintainer)


def requests_count(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Request))


# -- contact ids of another customer --------------------------------------------------------

def test_a_request_with_another_operators_contact_answers_as_for_an_unknown_id(world, session):
    api = world.api(world.olga)
    theirs = world.theirs.contacts[0].id
    answers = {}
    for label, contact_id in (("foreign", theirs), ("unknown", UNKNOWN)):
        answer = api.post(f"/customers/{world.acme.id}/requests",
                          json={"subject": "Printer", "contact_ids": [contact_id]})
        assert answer.status_code == 422, answer.get_json()
        body = answer.get_json()
        assert SECRET_NAME not in str(body) and "Tereza" not in str(body)
        assert str(contact_id) in body["errors"]["contact_ids"][0]  # only what Olga sent
        answers[label] = re.sub(rf"\b{contact_id}\b", "ID", str(body))
    assert answers["foreign"] == answers["unknown"]
    assert requests_count(session) == 0


def test_a_contact_of_another_visible_customer_gets_the_same_message(world, session, new_customer):
    mine_too = new_customer(kind=CustomerKind.COMPANY, company_name="Druhá Olgina", operators=[world.olga],
                            contacts=[{"last_name": "Olgin", "email": "olgin@druha.sk"}])
    api = world.api(world.olga)
    answer = api.post(f"/customers/{world.acme.id}/requests",
                      json={"subject": "Printer", "contact_ids": [mine_too.contacts[0].id, UNKNOWN]})
    assert answer.status_code == 422
    message = answer.get_json()["errors"]["contact_ids"][0]
    assert message.startswith("Assign only contacts of the request's customer")
    assert str(mine_too.contacts[0].id) in message and str(UNKNOWN) in message
    assert "Olgin" not in message
    own = api.post(f"/customers/{world.acme.id}/requests",
                   json={"subject": "Printer", "contact_ids": [world.acme.contacts[0].id]})
    assert own.status_code == 201 and own.get_json()["contact_ids"] == [world.acme.contacts[0].id]


def test_the_request_form_does_not_name_a_contact_olga_may_not_see(world, session):
    browser = world.browser(world.olga)
    answer = browser.submit("/admin/requests/new/", {
        "customer": str(world.acme.id), "subject": "Printer", "status": "new",
        "contacts": [str(world.theirs.contacts[0].id)]})
    html = answer.get_data(as_text=True)
    assert SECRET_NAME not in html and "Tereza" not in html
    # Saved without Stan's contact, or refused: never with it.
    session.expire_all()
    for row in session.scalars(select(Request)):
        assert [c.id for c in row.contacts] != [world.theirs.contacts[0].id]


def test_operator_ids_tell_nothing_to_someone_who_may_not_assign_them(world):
    api = world.api(world.olga)
    known = api.put(f"/customers/{world.acme.id}/operators",
                    json={"operator_ids": [world.stan.id], "version": world.acme.version})
    unknown = api.put(f"/customers/{world.acme.id}/operators",
                      json={"operator_ids": [UNKNOWN], "version": world.acme.version})
    assert known.status_code == unknown.status_code == 403
    assert known.get_json() == unknown.get_json()


# -- a merged-away id -----------------------------------------------------------------------

@pytest.fixture
def merged(world, session):
    """Stan's company merged (by the maintainer) into Olga's ACME: the survivor gets Stan too."""
    written(session, lambda: merge_customers(session, world.boss, world.acme, world.theirs, BOX,
                                             choices={}, decisions={}))
    return world.theirs.id, world.acme.id


def test_a_merged_away_id_olga_could_not_view_is_not_found_even_though_she_sees_the_survivor(
        world, merged):
    gone, survivor = merged
    browser, api = world.browser(world.olga), world.api(world.olga)
    for url in (f"/admin/customers/details/?id={gone}", f"/admin/customers/edit/?id={gone}",
                f"/admin/customers/contacts-tab/?id={gone}", f"/admin/customers/history/?id={gone}"):
        answer = browser.get(url)
        assert answer.status_code == 404, (url, answer.status_code, answer.headers.get("Location"))
        assert "ACME" not in answer.get_data(as_text=True)
    for tail in ("", "/contacts", "/requests"):
        answer = api.get(f"/customers/{gone}{tail}")
        assert answer.status_code == 404 and "Location" not in answer.headers, tail
    patched = api.patch(f"/customers/{gone}", json={"notes": "x", "version": 1})
    assert patched.status_code == 404


def test_a_merged_away_id_leads_to_the_survivor_for_those_who_could_view_it(world, merged):
    gone, survivor = merged
    answer = world.browser(world.stan).get(f"/admin/customers/details/?id={gone}")
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"id={survivor}")
    moved = world.api(world.stan).get(f"/customers/{gone}")
    assert moved.status_code == 308 and moved.headers["Location"].endswith(f"/customers/{survivor}")
    boss = world.api(world.boss).get(f"/customers/{gone}")
    assert boss.status_code == 308


def test_a_merged_away_id_whose_survivor_is_hidden_is_not_found(world, session, make_operator, merged):
    gone, _ = merged
    outsider = make_operator("outsider@example.com", first_name="Oto")
    assert world.browser(outsider).get(f"/admin/customers/details/?id={gone}").status_code == 404
    assert world.api(outsider).get(f"/customers/{gone}").status_code == 404


# -- duplicate candidates Olga may not view -------------------------------------------------

def _hidden_candidates(candidates: list[dict]) -> list[dict]:
    return [c for c in candidates if not c["visible"]]


def test_a_duplicate_candidate_olga_may_not_view_carries_no_score_and_no_name(world):
    body = world.api(world.olga).post("/duplicates", json={
        "kind": "person", "name": "Niekto Iný", "email": "skryty@example.com"}).get_json()
    hidden = _hidden_candidates(body["candidates"])
    assert hidden, body  # the typed e-mail is a key: the match is said, unnamed
    for candidate in hidden:
        assert candidate["score"] is None
        assert candidate["id"] is None and candidate["customer_id"] is None
    assert "Skrytý" not in str(body) and "Človek" not in str(body)


def test_the_quick_forms_candidates_show_no_score_of_a_hidden_record(world):
    browser = world.browser(world.olga)
    answer = browser.get("/admin/customers/quick/candidates?kind=person&name=Niekto&email="
                         + quote("skryty@example.com"))
    body = answer.get_json()
    hidden = _hidden_candidates(body["candidates"])
    assert hidden, body
    for candidate in hidden:
        assert candidate["score"] is None
        assert candidate["id"] is None and candidate["customer_id"] is None
    assert "Skrytý" not in str(body) and "Človek" not in str(body)
    assert not re.search(r"Stanov", str(body))



# -- every other door that takes an id of another record ------------------------------------

def _same_answer(browser, send, foreign: int) -> str:
    """What a door answers for `foreign` and for an unknown id, with the id itself blanked: the
    same status and the same text, and never the foreign record's name."""
    answers = []
    for record_id in (foreign, UNKNOWN):
        response = send(browser, record_id)
        text = page_text(response.get_data(as_text=True))  # what the user reads
        answers.append((response.status_code, re.sub(rf"\b{record_id}\b", "ID", text)))
    assert answers[0] == answers[1], difflib.ndiff([answers[0][1]], [answers[1][1]])
    return answers[0][1]


@pytest.mark.parametrize("door", ["request's customer", "request's contacts", "contact's company",
                                  "merge target"])
def test_a_foreign_id_is_answered_as_an_unknown_one(world, door):
    browser = world.browser(world.olga)
    sends = {
        "request's customer": (world.theirs.id, lambda b, i: b.submit("/admin/requests/new/", {
            "customer": str(i), "subject": "Printer", "status": "new"})),
        "request's contacts": (world.theirs.contacts[0].id, lambda b, i: b.submit("/admin/requests/new/", {
            "customer": str(world.acme.id), "subject": "Printer", "status": "new", "contacts": [str(i)]})),
        "contact's company": (world.theirs.id, lambda b, i: b.submit("/admin/contacts/new/", {
            "customer": str(i), "last_name": "Nový", "email": "novy@example.com"})),
        "merge target": (world.theirs.id, lambda b, i: b.get(
            f"/admin/customers/merge/?survivor={world.acme.id}&other={i}")),
    }
    foreign, send = sends[door]
    text = _same_answer(browser, send, foreign)
    assert SECRET_NAME not in text and "Stanova" not in text and "Tereza" not in text
