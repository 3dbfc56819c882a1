"""A maintainer's journey in Chromium against a real Active Directory (a Samba AD DC of
testing/samba_dc.py with 600 users): a source over ldaps:// with the DC's CA file, Test
connection shows the bind and the count, a dry run shows what it would do — old → new for the
customer an operator had typed, which the import links by e-mail — the import runs on a real
worker with its progress bar to the end, and a person imported from AD opens on its customer
page with its manager.

The run is done by a job worker in a thread of this process (tests/job_fixtures.py), as
`flask worker` does it, so the page shows the run queued, running and finished through its own
polling; the import is held after its first batch until the page has shown it mid-way (the
test acts at a known point instead of racing the clock). This module serves an app of its own
(real job queue) beside the browser tier's `desk_server`, so its pages are opened by full URL.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from extensions import db
from models import Customer, DirectorySource, DirectorySyncRun, Operator
from models.enums import CustomerKind, OperatorRole
from services.customers import SaveOptions, create_customer
from services.directory import pipeline
from services.directory.mapping import DEFAULT_FILTER
from services.operators import create_operator
from services.reference_data import ensure_reference_data
from services.transactions import unit_of_work
from testing.samba_dc import SambaUnavailable, start_directory
from tests.conftest import PASSWORD, make_app, migrate_to_head, started
from tests.job_fixtures import real_queue_config, worker_in_thread
from tests.served_app import served

pytestmark = pytest.mark.browser

BOSS = "ad.boss@example.com"
TYPED_TITLE = "Typed by an operator"
# A DC of its own size (its snapshot is built once per machine, like the 3,000 users' one): more
# than one page of 500 and twenty managers, and a journey that stays short on a loaded machine.
USERS = 600
RUN_MS = 120_000  # what Playwright waits for a run on a loaded machine, at most


@pytest.fixture(scope="module")
def small_dc():
    directory = started(lambda: start_directory(USERS), SambaUnavailable, "Samba AD DC")
    yield directory
    directory.remove()


@dataclass
class Served:
    app: object
    url: str

    def read(self, query):
        with self.app.app_context():
            try:
                return query(db.session)
            finally:
                db.session.remove()


@pytest.fixture(scope="module")
def samba_desk(tmp_path_factory) -> Iterator[Served]:
    """The app on its own SQLite file, its jobs on a real queue (a worker takes them), served."""
    folder = tmp_path_factory.mktemp("samba-ui")
    url = f"sqlite:///{folder / 'desk.db'}"
    migrate_to_head(url)
    app = make_app(url, **{**real_queue_config(folder, url), "JOB_LEASE_SECONDS": 30})
    with app.app_context():
        with unit_of_work(db.session):
            ensure_reference_data(db.session)
            create_operator(db.session, email=BOSS, password=PASSWORD, first_name="Ada",
                            last_name="Directory", role=OperatorRole.MAINTAINER)
        db.session.remove()
    try:
        with served(app) as server:
            yield Served(app, server.url)
    finally:
        with app.app_context():
            db.engine.dispose()


def active(person) -> bool:
    return not (person.disabled or person.expired)


def linked_person(dc):
    """The account whose person an operator typed before the first import: active, and so is its
    manager (a report never links to an inactive one)."""
    return next(p for p in sorted(dc.people.values(), key=lambda p: p.n)
                if active(p) and p.manager and active(dc.people[p.manager]))


def typed_before(session, sam: str, samba) -> int:
    """The person an operator typed before the directory was imported: same e-mail as the
    account, a title of their own."""
    person = samba.people[sam]
    boss = session.scalar(select(Operator).where(Operator.email == BOSS))
    customer = create_customer(session, boss, SaveOptions("SK"), kind=CustomerKind.PERSON,
                               first_name=person.given, last_name=person.sn, email=person.mail,
                               title=TYPED_TITLE)
    return customer.id


def test_a_maintainer_imports_a_real_active_directory(page: Page, samba_desk, small_dc, artifacts,
                                                      monkeypatch):
    base, dc = samba_desk.url, small_dc
    linked = linked_person(dc)
    manager = dc.people[linked.manager]
    samba_desk.read(lambda s: in_unit_of_work(s, lambda: typed_before(s, linked.sam, dc)))

    # The import waits after its first batch until the page has shown it mid-way.
    after_batch, shown, batches = pipeline.Import._after_batch, threading.Event(), []

    def held(self, stop):
        if not self.options.dry_run:
            batches.append(self.tally.processed)
            if len(batches) == 1:
                shown.wait(60)
        after_batch(self, stop)

    monkeypatch.setattr(pipeline.Import, "_after_batch", held)

    page.goto(f"{base}/login")
    page.get_by_label("E-mail").fill(BOSS)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/")

    # A source for the DC: ldaps:// verified with the CA file, bound as user@domain.
    page.goto(f"{base}/admin/directory/new/")
    page.get_by_label("Name *").fill("Head office AD")
    page.get_by_label("Server URLs").fill(dc.url)
    page.get_by_label("CA file").fill(dc.ca_file)
    page.get_by_label("Bind DN").fill(dc.admin_upn)
    page.get_by_label("Bind password").fill(dc.password)
    page.get_by_label("Base DN").fill(dc.base_dn)
    expect(page.get_by_label("Search filter")).to_have_value(DEFAULT_FILTER)
    expect(page.get_by_label("Leave out built-in and service accounts")).to_be_checked()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".alert-success")).to_be_visible()
    source_id = samba_desk.read(lambda s: s.scalar(select(DirectorySource.id)))

    page.goto(f"{base}/admin/directory/details/?id={source_id}")
    page.get_by_role("button", name="Test connection").click()
    result = page.get_by_test_id("test-result")
    expect(result).to_contain_text(f"Bound as {dc.admin_upn}; the filter matches", timeout=30_000)
    matched = int(re.search(r"the filter matches (\d+) entries", result.inner_text()).group(1))
    assert matched > dc.count  # the people of Staff and the built-in and service accounts
    expect(result).to_contain_text("of which the source leaves out")
    expect(result).to_contain_text(re.compile(r"· (u\d{4}) · \1@example\.com ·"))  # a sample person
    page.screenshot(path=artifacts / "directory-samba-test-connection.png", full_page=True)

    with worker_in_thread(samba_desk.app), released(shown):
        # The dry run: what the import would do, nothing written.
        page.get_by_role("button", name="Dry run").click()
        dry = page.get_by_test_id("run-1")
        expect(dry).to_contain_text("Dry run", timeout=10_000)
        expect(dry).to_contain_text("Finished", timeout=RUN_MS)
        dry_run = samba_desk.read(lambda s: s.scalar(select(DirectorySyncRun).order_by(
            DirectorySyncRun.id.desc())))
        assert dry_run.created > USERS * 0.9 and dry_run.updated == 1 and dry_run.failed < 10, dry_run.errors
        expect(dry).to_contain_text(f"created {dry_run.created}, updated 1, unchanged 0")
        expect(dry).to_contain_text("Dry run: nothing was written.")
        expect(dry.locator("[data-field=bar]")).to_have_text(f"{dry_run.total} / {dry_run.total}")
        # The customer typed before: linked by e-mail, its title would go from the typed one to AD's,
        # and it would get its manager.
        dry.get_by_text("Would change").click()
        change = dry.locator("[data-field=changes] li", has_text=f"({linked.sam})").first
        expect(change).to_contain_text(f"{linked.sn}, {linked.given}")
        expect(change).to_contain_text(f"Title: {TYPED_TITLE} → {linked.title}")
        expect(change).to_contain_text(f"Manager: — → {manager.sn}, {manager.given}")
        page.screenshot(path=artifacts / "directory-samba-dry-run.png", full_page=True)
        assert samba_desk.read(lambda s: s.scalar(select(func.count()).select_from(Customer))) == 1

        # The import: queued, running with its progress bar, finished.
        page.get_by_role("button", name="Import", exact=True).click()
        running = page.get_by_test_id("run-1")
        expect(running).to_contain_text("Import #", timeout=10_000)
        expect(running.locator("[data-field=status]")).to_contain_text("Running", timeout=RUN_MS)
        bar = running.locator("[data-field=bar]")
        expect(bar).to_have_text(re.compile(rf"^[1-9]\d* / {dry_run.total}$"), timeout=RUN_MS)
        assert bar.inner_text() == f"{batches[0]} / {dry_run.total}"  # held after its first batch
        assert 0 < float(bar.evaluate("b => parseFloat(b.style.width)")) < 100
        page.screenshot(path=artifacts / "directory-samba-import-running.png", full_page=True)
        shown.set()
        done = page.get_by_test_id("run-1")
        expect(done).to_contain_text("Finished", timeout=RUN_MS)
        expect(done.locator("[data-field=bar]")).to_have_text(f"{dry_run.total} / {dry_run.total}")
        expect(done).to_contain_text(f"created {dry_run.created}, updated 1, unchanged 0")
        page.screenshot(path=artifacts / "directory-samba-imported.png", full_page=True)

    # A person imported from AD, found by e-mail in the customers list, opens with its manager.
    page.goto(f"{base}/admin/customers/")
    search = page.get_by_placeholder("Name, company, e-mail or phone")
    search.fill(linked.mail)
    search.press("Enter")
    page.wait_for_url("**search=**")
    page.locator("table.model-list tbody tr", has_text=f"{linked.sn}, {linked.given}") \
        .get_by_test_id("customer-link").click()
    page.wait_for_url("**/admin/customers/overview/**")  # the one customer page
    details = page.get_by_test_id("overview")
    expect(details.locator("dd[data-value='manager']")).to_contain_text(f"{manager.sn}, {manager.given}")
    expect(details.locator("dd[data-value='title']")).to_contain_text(linked.title)
    expect(details.locator("dd[data-value='email']")).to_contain_text(linked.mail)
    page.screenshot(path=artifacts / "directory-samba-person.png", full_page=True)


@contextmanager
def released(event: threading.Event) -> Iterator[None]:
    """A held worker goes on whatever happens in the block (a failed expectation too)."""
    try:
        yield
    finally:
        event.set()


def in_unit_of_work(session, call):
    with unit_of_work(session):
        return call()
