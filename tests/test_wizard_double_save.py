"""One wizard draft makes one customer, however often its Save is sent (issue 15, point 3).

A double click, or the summary open in two tabs, sends the final step's POST several times at
once. The app is served over real HTTP (tests/served_app.py: one thread per request, each with its
own database session, as in production) on a SQLite file and on a PostgreSQL database; one
operator's browser (one session cookie, several connections: the tabs) walks a draft to its
summary, then THREADS requests send Save from one barrier. Five tries per database.

What the user must see: one customer and one settings row made from the draft; every answer a
redirect to that customer — the first Save's as "created", the others' with a plain "already
saved" message — never an error page, a refusal or a second customer. The draft is claimed by a
conditional UPDATE inside the Save's unit of work (wizards.drafts.claim), so the database decides
which Save creates, not a check in Python.
"""

from __future__ import annotations

import itertools
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select

from extensions import db
from models import Customer, CustomerSettings, WizardDraft
from models.enums import OperatorRole
from services.operators import create_operator
from services.reference_data import ensure_reference_data
from services.transactions import unit_of_work
from tests.conftest import PASSWORD, make_app, migrate_to_head
from tests.served_app import Served, WebClient, last_line, page_text, served

THREADS = 4
TRIES = 5
OPERATOR = "double.click@example.com"
WIZARD = "/admin/customers/wizard"
LATER_STEPS = ("cmonitor", "mail", "notifications", "requests", "operators")  # left empty
ALERT = re.compile(r'class="alert alert-\w+ alert-dismissable">.*?</button>(.*?)</div>', re.S)


@dataclass
class Desk:
    app: object = field(repr=False)
    server: Served = field(repr=False)
    tabs: list[WebClient] = field(repr=False)
    tags: itertools.count = field(default_factory=lambda: itertools.count(1))

    def read(self, statement):
        """One value read in a session of its own, closed at once (an open read on SQLite would
        hold back the server's writers)."""
        with self.app.app_context():
            try:
                return db.session.scalar(statement)
            finally:
                db.session.remove()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def desk(request, tmp_path_factory):
    """A fresh app on a fresh database, served over HTTP; one operator signed in once, and
    THREADS tabs of that browser (the same session cookie, a connection each)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('wizard-double-save') / 'desk.db'}"
    else:
        url = request.getfixturevalue("postgres_cluster").create_database("wizard_double_save")
    migrate_to_head(url)
    app = make_app(url)
    with app.app_context():
        with unit_of_work(db.session):
            ensure_reference_data(db.session)
            create_operator(db.session, email=OPERATOR, password=PASSWORD, first_name="Dora",
                            last_name="Double", role=OperatorRole.MAINTAINER)
        db.session.remove()
    try:
        with served(app) as server:
            browser = WebClient(server.url)
            browser.login(OPERATOR)
            tabs = [WebClient(server.url) for _ in range(THREADS)]
            for tab in tabs:
                tab.session.cookies.update(browser.session.cookies)
            try:
                yield Desk(app, server, tabs)
            finally:
                for client in (browser, *tabs):
                    client.close()
    finally:
        with app.app_context():
            db.engine.dispose()


def walk_to_summary(tab: WebClient, tag: int) -> str:
    """A new draft for a person walked through every step ("create anyway" confirmed on step 1,
    as a user does for a family sharing an e-mail: nothing else can keep a second customer out).
    Returns the summary's URL."""
    first = {"kind": "person", "first_name": "Dvojitý", "last_name": f"Klik-{tag}",
             "email": f"family.{tag}@example.sk", "confirm_duplicate": "y"}
    # "Add a customer" opens step 1 without a draft; its Next makes the draft.
    key = re.search(r'name="draft_key" value="([^"]+)"', tab.get(f"{WIZARD}/new").text).group(1)
    started = tab.submit(f"{WIZARD}/new", {**first, "draft_key": key, "nav": "next"})
    assert started.status_code == 302, page_text(started.text)[:500]
    base = started.headers["Location"].rsplit("/", 1)[0]
    for step, data in ((s, {}) for s in LATER_STEPS):
        answer = tab.submit(f"{base}/{step}", {**data, "nav": "next"})
        assert answer.status_code == 302, (step, page_text(answer.text)[:500])
    return f"{base}/summary"


def landed(tab: WebClient, location: str) -> str:
    """The page a browser ends on from `location` (the customer's page may redirect once more)."""
    for _ in range(4):
        answer = tab.get(location)
        if answer.status_code not in (301, 302, 303):
            return answer.text
        location = answer.headers["Location"]
    raise AssertionError(f"too many redirects from {location}")


def save_at_once(desk: Desk, summary: str) -> list[tuple[int, str, str]]:
    """Save sent by every tab at the same moment: (status, where it sent the browser, the
    messages on top of the page there, joined by " | ")."""
    barrier = threading.Barrier(len(desk.tabs))

    def save(tab: WebClient) -> tuple[int, str, str]:
        barrier.wait(timeout=60)
        answer = tab.submit(summary)
        location = answer.headers.get("Location", "")
        if answer.status_code != 302:
            return answer.status_code, location, page_text(answer.text)[:300]
        return 302, location, " | ".join(page_text(m) for m in ALERT.findall(landed(tab, location)))

    with ThreadPoolExecutor(max_workers=len(desk.tabs)) as pool:
        return list(pool.map(save, desk.tabs))


@pytest.mark.parametrize("attempt", range(TRIES))
def test_saving_one_draft_at_once_from_several_tabs_makes_one_customer(desk, attempt):
    tag = next(desk.tags)
    summary = walk_to_summary(desk.tabs[0], tag)
    draft_id = int(summary.rsplit("/", 2)[1])
    mark = desk.server.log.mark()
    answers = save_at_once(desk, summary)
    made = Customer.last_name == f"Klik-{tag}"
    customers = desk.read(select(func.count()).select_from(Customer).where(made))
    settings = desk.read(select(func.count()).select_from(CustomerSettings).join(Customer).where(made))
    errors = desk.server.log.since(mark, at_least=sum(status >= 500 for status, _, _ in answers))
    assert (customers, settings) == (1, 1), (
        f"{customers} customers and {settings} settings rows from one draft; answers: "
        f"{[(s, loc) for s, loc, _ in answers]}; server errors: {[last_line(e) for e in errors]}")
    customer_id = desk.read(select(Customer.id).where(made))
    assert all(status == 302 for status, _, _ in answers), answers
    # Every tab lands on the one customer's page.
    assert all(f"id={customer_id}" in location for _, location, _ in answers), answers
    # The tabs share the browser's session, so a message may show in whichever tab loads first.
    said = [m for _, _, text in answers for m in text.split(" | ") if m]
    assert sorted(said) == sorted([f"Klik-{tag}, Dvojitý was created."]
                                  + ["This draft was saved already: here is the customer it made."]
                                  * (THREADS - 1)), said
    assert not errors, errors
    # The draft is no longer offered, and opening it again shows the customer.
    assert f"/wizard/{draft_id}/" not in desk.tabs[0].get(f"{WIZARD}/").text
    again = desk.tabs[0].get(summary)
    assert again.status_code == 302 and f"id={customer_id}" in again.headers["Location"]
    assert "This draft was saved already" in landed(desk.tabs[0], again.headers["Location"])
    assert desk.read(select(func.count()).select_from(WizardDraft)
                     .where(WizardDraft.id == draft_id, WizardDraft.saved_at.is_(None))) == 0
