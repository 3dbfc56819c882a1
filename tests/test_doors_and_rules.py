"""Doors × rules (issue 12): the same bad input gets the same refusal through every door that can
express it — the plain form, the quick form, the wizard, the edit tabs, the API and the CSV
import — on SQLite and PostgreSQL, and nothing is written.

The table is data. `CASES` maps (door, rule) to who acts and what they send; `LEFT_OUT` names each
pair that has no meaning on its door and why; `EXPECTED` says how each door refuses and which
messages it must show (the domain's own text), `OWN_WORDS` where a door may word it otherwise and
why, `ON_FIELD` on which field. Every case also checks that nothing was written: no customer,
contact or audit event more, no version or value changed.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from html import unescape

import pytest
from sqlalchemy import func, select

from models import AuditEvent, Contact, Customer, GlobalSettings, Team, WizardDraft
from models.enums import CustomerKind
from services.contacts import CONTACT_EMAIL_NEEDED
from services.customers import SaveOptions, update_customer
from services.duplicates import DuplicateSuspected
from services.errors import FORM
from services.limits import max_length, too_long
from services.transactions import unit_of_work
from tests.conftest import Browserless, csrf_from, written
from tests.test_api import Api, token_of
from tests.test_bulk_import import wait_until_done
from tests.test_customer_views import form_of
from tests.test_wizard import COMPANY, post_step, save, start, walk

# form: /admin/customers/new/ (or its edit form, where the rule is about a change); quick: the
# modal's POST; wizard: step 1 (or the operators step); wizard_save: Save on the summary (the
# command decides there); tab: Basic information, Contacts (and a contact's Edit from it),
# Operators; api: /api/v1; csv: upload → mapping → preview → import → result.
DOORS = ("form", "quick", "wizard", "wizard_save", "tab", "api", "csv")
RULES = ("too_long", "missing_contact", "duplicate_email", "stale_version", "view_only", "not_visible",
         "operators_by_operator")
LIMIT = max_length(Customer.company_name)
LONG_NAME = "N" * (LIMIT + 1)
TOO_LONG = too_long(LIMIT, LIMIT + 1)  # "At most 200 characters, please (201 given)."
DUPLICATE = DuplicateSuspected([]).errors[FORM][0]  # "This looks like a customer or contact that …"
TAKEN = "peter.kovac@example.sk"  # Kováč's e-mail, typed again for a new person
MATCH = "Kováč, Peter (same e-mail)"  # the existing record as every door names it
STALE = "This record was changed while you were editing it: colleague@example.com changed Notes at"
NEW = "/admin/customers/new/"
NEW_PERSON = {"first_name": "Zuzana", "last_name": "Iná", "email": TAKEN}
CONTACT = {"contacts-0-last_name": "Nový", "contacts-0-email": "novy@firma.sk", "contacts-0-is_main": "y"}
API_CONTACT = {"last_name": "Nový", "email": "novy@firma.sk"}


@dataclass
class Answer:
    """What a door showed: a status (an HTTP code, or where the import put the row), the text a
    user reads, and the messages per field where the door has fields."""

    status: int | str
    text: str = ""
    fields: dict[str, list[str]] = field(default_factory=dict)


FEEDBACK = r'class="(?:invalid-feedback|text-danger)[^"]*"[^>]*>(.*?)</(?:div|ul)>'  # under a field


def page(response) -> Answer:
    """A panel page: its text, and the messages shown under each field of its form."""
    html = response.get_data(as_text=True)
    fields: dict[str, list[str]] = {}
    for name, rest in re.findall(r'id="([\w-]+)"(.*?)(?=<div class="form-group|</form>|$)', html, re.S):
        for block in re.findall(FEEDBACK, rest, re.S):
            items = re.findall(r"<li>(.*?)</li>", block, re.S) or [block]
            fields.setdefault(name, []).extend(unescape(m).strip() for m in items)
    return Answer(response.status_code, page_text(html), fields)


def page_text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def answer(response) -> Answer:
    """A JSON door (the quick form, the API): its messages, and candidates as "label (reasons)"."""
    body = response.get_json() or {}
    candidates = [f"{c['label']} ({', '.join(c['reasons'])})" for c in body.get("candidates", [])]
    errors = body.get("errors", {})
    messages = [m for ms in errors.values() for m in ms]
    text = " ".join([body.get("message") or "", *body.get("messages", []), *candidates, *messages])
    return Answer(response.status_code, text, errors)


def quick(browser, data: dict):
    token = csrf_from(browser.get("/admin/customers/").get_data(as_text=True))
    return browser.post("/admin/customers/quick/create", data={**data, "csrf_token": token})


def tampered(browser, url: str, data: dict):
    """A POST with a valid token to a page the user may not change (or not even open)."""
    token = csrf_from(browser.get("/admin/").get_data(as_text=True))
    return browser.post(url, data={**data, "csrf_token": token})


def to_operators_step(browser):
    """The wizard walked by Olga up to its last step; the draft's base URL."""
    base = start(browser)
    for step, data in (("customer", COMPANY), ("cmonitor", {}), ("mail", {}), ("notifications", {}),
                       ("requests", {})):
        assert post_step(browser, base, step, data).status_code == 302, step
    return base


def saved_draft(w, browser, typed: dict) -> Answer:
    """The wizard's Save of a draft whose steps hold `typed` — stored before a rule, or tampered
    with: step 1 is only a preview, the command at Save decides."""
    base = start(browser)
    walk(browser, base, COMPANY)
    w.session.expire_all()
    draft = w.session.scalars(select(WizardDraft)).one()
    steps = dict(draft.data["steps"])
    for step, values in typed.items():
        steps[step] = {**steps.get(step, {}), **values}
    with unit_of_work(w.session):
        draft.data = {**draft.data, "steps": steps}
    return page(save(browser, base))


FILE = "Názov firmy;Meno;Priezvisko;E-mail;Poznámka;Priezvisko kontaktu;E-mail kontaktu"
SUGGESTED = r'<select[^>]*name="(map-\d+)"[^>]*>.*?value="([a-z_]*)" selected'
ROWS = re.compile(r'data-testid="rows-\w+".*?</table>', re.S)


def imported(browser, header: str, row: str, rules: tuple[str, ...] = (), on_match: str = "skip") -> Answer:
    """The CSV door: upload, the suggested mapping, preview, import. The status is where the row
    went (rejected, duplicates…), the messages per file column those of the result page, which
    lists the rows as the preview did."""
    upload = browser.submit("/admin/customers/import/", {"file": (io.BytesIO(f"{header}\n{row}\n".encode()),
                                                                  "zakaznici.csv")},
                            content_type="multipart/form-data")
    mapping_url = upload.headers["Location"]
    html = browser.get(mapping_url).get_data(as_text=True)
    suggested = dict(re.findall(SUGGESTED, html, re.S))
    assert len(suggested) == len(header.split(";")), suggested  # every column recognised
    preview_url = browser.submit(mapping_url, {**suggested, "rule": list(rules),
                                               "on_match": on_match}).headers["Location"]
    preview = browser.get(preview_url).get_data(as_text=True)
    result_url = browser.submit(preview_url, {}, post_url=preview_url.replace("/preview/", "/run/"))
    counts = wait_until_done(browser, result_url.headers["Location"])["counts"]
    result = browser.get(result_url.headers["Location"]).get_data(as_text=True)
    assert ROWS.findall(preview) == ROWS.findall(result)  # the preview said what the import did
    fields: dict[str, list[str]] = {}
    for column, message in re.findall(r"<li><strong>(.*?)</strong>: (.*?)</li>", result):
        fields.setdefault(unescape(column), []).append(unescape(message))
    return Answer(",".join(group for group, n in counts.items() if n), page_text(result), fields)


class World:
    """What every case starts from. ACME (a company; its one contact Jana) is Olga's and Cyril's:
    both may edit it, and Cyril has just changed its notes (`read` is the version before). The
    viewer may only view it (Olga's team mate, with "view by team members"); the stranger may not
    even view it. Kováč (a person) holds the e-mail that a duplicate types again."""

    def __init__(self, app, session, make_operator, new_customer, maintainer, operator):
        self.app, self.session, self.make_operator = app, session, make_operator
        colleague = make_operator("colleague@example.com", first_name="Cyril")
        self.who = {"maintainer": maintainer, "operator": operator}
        self.acme = new_customer(kind=CustomerKind.COMPANY, company_name="ACME s.r.o.", notes="Original",
                                 operators=[operator, colleague], contacts=[
                                     {"first_name": "Jana", "last_name": "Nová", "email": "jana@acme.sk"}])
        new_customer(kind=CustomerKind.PERSON, first_name="Peter", last_name="Kováč", email=TAKEN)
        self.team = Team(name="Desk")
        operator.teams = [self.team]
        session.get(GlobalSettings, 1).view_by_team_members = True
        session.commit()
        self.read = self.acme.version
        written(session, lambda: update_customer(session, self.acme, colleague, SaveOptions("SK"),
                                                 {"notes": "Changed by Cyril"}, seen_version=self.read))
        self.jana = self.acme.contacts[0]

    def client(self, door: str, who: str):
        """The door's client for `who`, signed in (signing in and tokens write audit events)."""
        if who not in self.who:  # made only where needed: hashing a password takes a while
            self.who[who] = self.make_operator(f"{who}@example.com", first_name=who.title())
            if who == "viewer":
                self.who[who].teams = [self.team]
                self.session.commit()
        if door == "api":
            return Api(self.app.test_client(), token_of(self.session, self.who[who]))
        browser = Browserless(self.app.test_client())
        assert browser.login(self.who[who].email).status_code == 302
        return browser

    def url(self, page_name: str) -> str:
        return f"/admin/customers/{page_name}/?id={self.acme.id}"

    def basic(self, version: int | None = None, **typed) -> dict:
        """Basic information (the edit form, ACME's first tab) as the browser posts it."""
        return form_of("company", **{"company_name": "ACME s.r.o.", "notes": "Mine",
                                     "version_seen": str(version or self.acme.version), **typed})


# (door, rule) → (who acts, what the door sends: (world, client) → Answer)
CASES = {
    # A company name one character over its column.
    ("form", "too_long"): ("maintainer", lambda w, c: page(c.submit(NEW, form_of(
        "company", company_name=LONG_NAME, **CONTACT)))),
    ("quick", "too_long"): ("maintainer", lambda w, c: answer(quick(c, {
        "kind": "company", "name": LONG_NAME, "email": "a@firma.sk", **CONTACT}))),
    ("wizard", "too_long"): ("maintainer", lambda w, c: page(post_step(
        c, start(c), "customer", {**COMPANY, "company_name": LONG_NAME}))),
    ("wizard_save", "too_long"): ("maintainer", lambda w, c: saved_draft(w, c, {"customer": {
        "company_name": LONG_NAME}})),
    ("tab", "too_long"): ("operator", lambda w, c: page(c.submit(w.url("edit"),
                                                                 w.basic(company_name=LONG_NAME)))),
    ("api", "too_long"): ("maintainer", lambda w, c: answer(c.post("/customers", json={
        "kind": "company", "company_name": LONG_NAME, "contacts": [API_CONTACT]}))),
    ("csv", "too_long"): ("maintainer", lambda w, c: imported(c, FILE, f"{LONG_NAME};;;;;Nový;n@firma.sk")),
    # A company whose contacts have no e-mail (new), or whose last e-mail contact loses it.
    ("form", "missing_contact"): ("maintainer", lambda w, c: page(c.submit(NEW, form_of(
        "company", company_name="Bez Kontaktu s.r.o.", **{"contacts-0-last_name": "Telefónny",
                                                          "contacts-0-phone": "0903 111 222"})))),
    ("quick", "missing_contact"): ("maintainer", lambda w, c: answer(quick(c, {
        "kind": "company", "name": "Bez Kontaktu s.r.o.", "email": "a@bez.sk",
        "contacts-0-last_name": "Bez"}))),
    ("wizard", "missing_contact"): ("maintainer", lambda w, c: page(post_step(
        c, start(c), "customer", {**COMPANY, "contact_email": ""}))),
    ("wizard_save", "missing_contact"): ("maintainer", lambda w, c: saved_draft(w, c, {"customer": {
        "contact_email": ""}})),
    ("tab", "missing_contact"): ("operator", lambda w, c: page(c.submit(  # the Contacts tab's Edit link
        f"/admin/contacts/edit/?id={w.jana.id}", {"customer": str(w.acme.id), "first_name": "Jana",
                                                  "last_name": "Nová", "email": "",
                                                  "version_seen": str(w.jana.version)}))),
    ("api", "missing_contact"): ("maintainer", lambda w, c: answer(c.post("/customers", json={
        "kind": "company", "company_name": "Bez Kontaktu s.r.o.", "contacts": [{"last_name": "Bez"}]}))),
    ("csv", "missing_contact"): ("maintainer", lambda w, c: imported(c, FILE, "Bez Kontaktu;;;;;Bez;")),
    # A new person with Kováč's e-mail, "create anyway" not ticked.
    ("form", "duplicate_email"): ("maintainer", lambda w, c: page(c.submit(NEW, form_of("person",
                                                                                        **NEW_PERSON)))),
    ("quick", "duplicate_email"): ("maintainer", lambda w, c: answer(quick(c, {
        "kind": "person", "name": "Zuzana Iná", "email": TAKEN}))),
    ("wizard", "duplicate_email"): ("maintainer", lambda w, c: page(post_step(
        c, start(c), "customer", {"kind": "person", **NEW_PERSON}))),
    ("wizard_save", "duplicate_email"): ("maintainer", lambda w, c: saved_draft(w, c, {"customer": {
        "kind": "person", **NEW_PERSON, "confirm_duplicate": False}})),
    ("api", "duplicate_email"): ("maintainer", lambda w, c: answer(c.post("/customers", json={
        "kind": "person", **NEW_PERSON}))),
    ("csv", "duplicate_email"): ("maintainer", lambda w, c: imported(c, FILE, f";Zuzana;Iná;{TAKEN};;;")),
    # Saved on the version read before Cyril changed the notes.
    ("form", "stale_version"): ("operator", lambda w, c: page(c.submit(w.url("edit"), w.basic(w.read)))),
    ("tab", "stale_version"): ("maintainer", lambda w, c: page(c.submit(w.url("operators-tab"), {
        "operators": [str(w.who["operator"].id)], "version_seen": str(w.read)}))),
    ("api", "stale_version"): ("operator", lambda w, c: answer(c.patch(f"/customers/{w.acme.id}", json={
        "notes": "Mine", "version": w.read}))),
    # The viewer may open ACME but not change it.
    ("form", "view_only"): ("viewer", lambda w, c: page(tampered(c, w.url("edit"), w.basic()))),
    ("tab", "view_only"): ("viewer", lambda w, c: page(c.submit(w.url("contacts-tab"), {
        "last_name": "Verin", "email": "v@acme.sk", "role": "contact"}))),
    ("api", "view_only"): ("viewer", lambda w, c: answer(c.patch(f"/customers/{w.acme.id}", json={
        "notes": "Vera's", "version": w.acme.version}))),
    ("csv", "view_only"): ("viewer", lambda w, c: imported(c, FILE, "ACME s.r.o.;;;;Vera's;;", ("name",),
                                                           "update_all")),
    # The stranger may not even learn that ACME exists.
    ("form", "not_visible"): ("stranger", lambda w, c: page(tampered(c, w.url("edit"), w.basic()))),
    ("tab", "not_visible"): ("stranger", lambda w, c: page(tampered(c, w.url("contacts-tab"), {
        "last_name": "Stanov", "role": "contact"}))),
    ("api", "not_visible"): ("stranger", lambda w, c: answer(c.patch(f"/customers/{w.acme.id}", json={
        "notes": "Stan's", "version": w.acme.version}))),
    ("csv", "not_visible"): ("stranger", lambda w, c: imported(c, FILE, "ACME s.r.o.;;;;Stan's;;", ("name",),
                                                              "update_all")),
    # Only a maintainer assigns operators; Olga, who may edit ACME, tries.
    ("form", "operators_by_operator"): ("operator", lambda w, c: page(tampered(c, NEW, form_of(
        "company", company_name="Mine s.r.o.", operators=[str(w.who["maintainer"].id)], **CONTACT)))),
    ("wizard", "operators_by_operator"): ("operator", lambda w, c: page(post_step(
        c, to_operators_step(c), "operators", {"operators": [str(w.who["maintainer"].id)]}))),
    ("wizard_save", "operators_by_operator"): ("operator", lambda w, c: saved_draft(w, c, {
        "operators": {"operators": [str(w.who["maintainer"].id)]}})),
    ("tab", "operators_by_operator"): ("operator", lambda w, c: page(tampered(c, w.url("operators-tab"), {
        "operators": [str(w.who["maintainer"].id)], "version_seen": str(w.acme.version)}))),
    ("api", "operators_by_operator"): ("operator", lambda w, c: answer(c.put(
        f"/customers/{w.acme.id}/operators", json={"operator_ids": [w.who["maintainer"].id]}))),
}

CREATE_ONLY = "the door only creates customers: no existing record to be {}"
LEFT_OUT = {
    ("quick", "stale_version"): CREATE_ONLY.format("stale"),
    ("quick", "view_only"): CREATE_ONLY.format("refused to a viewer (every operator may create)"),
    ("quick", "not_visible"): CREATE_ONLY.format("hidden"),
    ("quick", "operators_by_operator"): "the quick form has no operators field",
    ("wizard", "stale_version"): CREATE_ONLY.format("stale"),
    ("wizard", "view_only"): CREATE_ONLY.format("refused to a viewer (every operator may create)"),
    ("wizard", "not_visible"): CREATE_ONLY.format("hidden"),
    ("wizard_save", "stale_version"): CREATE_ONLY.format("stale"),
    ("wizard_save", "view_only"): CREATE_ONLY.format("refused to a viewer (every operator may create)"),
    ("wizard_save", "not_visible"): CREATE_ONLY.format("hidden"),
    ("tab", "duplicate_email"): "tabs change an existing customer; the duplicate refusal is for a new one",
    ("csv", "stale_version"): "an import row is based on no version its user read: a match updates the "
                              "current record (empty fields only, or all mapped ones)",
    ("csv", "operators_by_operator"): "the import maps no operators column",
}

# How each door says no, and the messages every door that shows text must show: the domain's.
PAGE, FORBIDDEN, NOT_FOUND = 200, 403, 404  # PAGE: the form again, with the messages
VIEW_ONLY = "You may view this customer but not edit it."  # services.access.load_customer
EXPECTED = {
    "too_long": ({"form": PAGE, "quick": 422, "wizard": PAGE, "wizard_save": PAGE, "tab": PAGE, "api": 422,
                  "csv": "rejected"}, (TOO_LONG,)),
    "missing_contact": ({"form": PAGE, "quick": 422, "wizard": PAGE, "wizard_save": PAGE, "tab": PAGE,
                         "api": 422, "csv": "rejected"}, (CONTACT_EMAIL_NEEDED,)),
    "duplicate_email": ({"form": PAGE, "quick": 409, "wizard": PAGE, "wizard_save": PAGE, "api": 409,
                         "csv": "duplicates"}, (MATCH, DUPLICATE)),
    "stale_version": ({"form": PAGE, "tab": PAGE, "api": 412}, (STALE,)),
    "view_only": ({"form": FORBIDDEN, "tab": FORBIDDEN, "api": FORBIDDEN, "csv": "rejected"}, (VIEW_ONLY,)),
    # A 404 says nothing of the record; that ACME exists is not shown either (below).
    "not_visible": ({"form": NOT_FOUND, "tab": NOT_FOUND, "api": NOT_FOUND, "csv": "rejected"}, ()),
    "operators_by_operator": ({"form": FORBIDDEN, "wizard": FORBIDDEN, "wizard_save": FORBIDDEN,
                               "tab": FORBIDDEN, "api": FORBIDDEN},
                              ("Only a maintainer may",)),  # services.access.require_maintainer
}
# Doors that say a rule in words of their own, and why.
OWN_WORDS = {
    ("csv", "duplicate_email"): (MATCH,),  # the import asks nothing: the row is skipped, with its match
    ("csv", "view_only"): ("The row matches ACME s.r.o. (by name), which you may not edit.",),  # which row
    ("csv", "not_visible"): ("The row matches a customer you cannot open",),
}
# The field the message is shown on (the quick form calls the company's name "name"; the wizard
# asks for the main contact's e-mail on step 1; the contact's edit page has "email"; the import
# names the file's column). The plain form shows the contacts' message under its inline
# contacts, which tests/test_customer_views.py checks.
ON_FIELD = {
    "too_long": {"form": "company_name", "quick": "name", "wizard": "company_name", "tab": "company_name",
                 "api": "company_name", "csv": "Názov firmy"},
    "missing_contact": {"quick": "contacts", "wizard": "contact_email", "tab": "email", "api": "contacts",
                        "csv": "E-mail kontaktu"},
    "duplicate_email": dict.fromkeys(("form", "quick", "wizard"), "confirm_duplicate"),
}


def test_the_table_has_every_door_and_rule():
    pairs = {(door, rule) for door in DOORS for rule in RULES}
    assert not set(CASES) & set(LEFT_OUT)
    assert pairs - set(CASES) - set(LEFT_OUT) == set(), "a pair is neither tested nor left out with a reason"
    assert {(door, rule) for rule, (statuses, _) in EXPECTED.items() for door in statuses} == set(CASES)
    assert set(OWN_WORDS) | {(door, rule) for rule, doors in ON_FIELD.items() for door in doors} <= set(CASES)


def state(session) -> tuple:
    """What a refusal leaves as it was: row counts, each customer's and contact's version and values."""
    session.expire_all()
    counts = [session.scalar(select(func.count()).select_from(model))
              for model in (Customer, Contact, AuditEvent)]
    customers = sorted((c.id, c.version, c.display_name, c.notes, c.email, sorted(o.id for o in c.operators))
                       for c in session.scalars(select(Customer)))
    contacts = sorted((c.id, c.version, c.customer_id, c.email) for c in session.scalars(select(Contact)))
    return counts, customers, contacts


@pytest.fixture
def world(app, session, make_operator, new_customer, maintainer, operator):
    return World(app, session, make_operator, new_customer, maintainer, operator)


@pytest.mark.parametrize("door, rule", sorted(CASES), ids=[f"{d}-{r}" for d, r in sorted(CASES)])
def test_the_same_bad_input_gets_the_same_refusal_on_every_door(world, session, door, rule):
    who, send = CASES[(door, rule)]
    client = world.client(door, who)
    statuses, messages = EXPECTED[rule]
    before = state(session)
    got = send(world, client)
    assert got.status == statuses[door], (got.status, got.text[:2000])
    for message in OWN_WORDS.get((door, rule), messages):
        assert message in got.text, (got.fields, got.text[-1500:])
    on_field = ON_FIELD.get(rule, {}).get(door)
    if on_field is not None:  # the rule's first message, under the field it is about
        assert any(messages[0] in shown for shown in got.fields.get(on_field, [])), got.fields
    if rule == "not_visible":
        assert "ACME" not in got.text
    assert state(session) == before


# "Create anyway" is the one way past a duplicate, on every door that offers it (the import
# skips duplicates: it has no such question).
CONFIRMED = {
    "form": lambda c: c.submit(NEW, form_of("person", **NEW_PERSON,
                                            confirm_duplicate="y")).status_code == 302,
    "quick": lambda c: quick(c, {"kind": "person", "name": "Zuzana Iná", "email": TAKEN,
                                 "confirm_duplicate": "1"}).status_code == 201,
    "wizard": lambda c: save(c, walk_through(c)).status_code == 302,
    "api": lambda c: c.post("/customers", json={"kind": "person", **NEW_PERSON,
                                                "confirm_duplicate": True}).status_code == 201,
}


def walk_through(browser) -> str:
    base = start(browser)
    walk(browser, base, {"kind": "person", **NEW_PERSON, "confirm_duplicate": "y"})
    return base


@pytest.mark.parametrize("door", sorted(CONFIRMED))
def test_create_anyway_passes_a_duplicate(world, session, door):
    before = state(session)[0]
    assert CONFIRMED[door](world.client(door, "maintainer"))
    assert state(session)[0][0] == before[0] + 1
    assert session.scalars(select(Customer).where(Customer.email == TAKEN, Customer.last_name == "Iná")).one()
