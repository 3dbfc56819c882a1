"""Shared tools of the seed journeys in Chromium (tests/browser/test_journeys_*.py).

`journey` is the one signed-in page of a journey (1366×800) with a `Guard` watching it: the
test FAILS on any browser console error or uncaught page error, on any 4xx/5xx answer of the
desk's own server the journey did not announce (`guard.refused(...)`), and on lost input
(`guard.fill(...)` remembers what was typed; `guard.kept()` checks it is all still there
after the server refused a value). `shoot` takes the end-of-journey screenshots.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, expect

from models.enums import CustomerKind
from services.customers import SaveOptions, create_customer
from services.operators import create_operator
from tests.browser.conftest import sign_in

WIDTH, HEIGHT = 1366, 800
OLGA = "olga@example.com"
OLGA_PASSWORD = "correct horse battery"


@dataclass
class Refusal:
    status: int
    url_part: str


@dataclass
class Guard:
    """What went wrong on the page so far, as a person would have noticed it."""

    page: Page
    origin: str
    problems: list[str] = field(default_factory=list)
    allowed: list[Refusal] = field(default_factory=list)
    typed: list[tuple[Locator, str]] = field(default_factory=list)
    reported: int = 0

    def watch(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("response", self._response)

    def _expected(self, status: int, url: str) -> bool:
        return any(r.status == status and r.url_part in url for r in self.allowed)

    def _console(self, message) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        found = re.search(r"status of (\d{3})", message.text)
        if found and self._expected(int(found.group(1)), url):
            return  # Chromium's own line about an announced refusal
        self.problems.append(f"console error: {message.text} at {url}")

    def _response(self, response) -> None:
        if response.status >= 400 and response.url.startswith(self.origin):
            if not self._expected(response.status, response.url):
                self.problems.append(f"{response.status} {response.request.method} {response.url}")

    @contextmanager
    def refused(self, status: int, url_part: str) -> Iterator[None]:
        """Within this block the journey expects the desk to refuse with `status` (an invalid
        value, a record the operator may not see): that answer is no problem."""
        refusal = Refusal(status, url_part)
        self.allowed.append(refusal)
        try:
            yield
        finally:
            self.allowed.remove(refusal)

    # Lost input -------------------------------------------------------------------------
    def fill(self, locator: Locator, value: str) -> Locator:
        locator.fill(value)
        self.typed.append((locator, value))
        return locator

    def select(self, locator: Locator, value: str) -> Locator:
        locator.select_option(value)
        self.typed.append((locator, value))
        return locator

    def kept(self, *but: Locator) -> None:
        """Every field typed since the last `forget()` still holds what was typed (except the
        refused ones named in `but`, which the page may mark and the person then corrects)."""
        for locator, value in self.typed:
            if not any(locator is other for other in but):
                expect(locator, f"lost input: {locator}").to_have_value(value)

    def forget(self) -> None:
        self.typed.clear()

    # Reporting --------------------------------------------------------------------------
    def check(self) -> None:
        new = self.problems[self.reported:]
        self.reported = len(self.problems)
        assert not new, "the journey met: " + "; ".join(new)


# Each page may wait this long for what a person waits for: on a loaded 2-core machine an answer
# of the desk takes seconds. (A wait, not a sleep: it ends when the page shows it.)
expect.set_options(timeout=15_000)


@pytest.fixture(name="guard")
def guard_fixture(signed_in: Page, base_url: str) -> Iterator[Guard]:
    page = signed_in
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    watcher = Guard(page, base_url)
    watcher.watch()
    yield watcher
    # Problems after the last check (or of a journey that stopped early) are reported too.
    watcher.check()


@pytest.fixture(name="journey")
def journey_fixture(guard: Guard) -> Page:
    return guard.page


@pytest.fixture(name="import_folder")
def import_folder_fixture(desk, tmp_path, monkeypatch) -> Path:
    monkeypatch.setitem(desk.app.config, "BULK_IMPORT_DIR", str(tmp_path / "bulk_import"))
    return tmp_path


def shoot(guard: Guard, artifacts: Path, name: str, widths: tuple[int, ...] = (WIDTH,)) -> None:
    """The end of a journey: nothing went wrong, and the page as it looks at each width."""
    page = guard.page
    guard.check()
    for width in widths:
        page.set_viewport_size({"width": width, "height": HEIGHT})
        page.screenshot(path=str(artifacts / f"journey-{name}-{width}.png"), full_page=True,
                        animations="disabled")
        assert not scrolls_sideways(page), f"the page scrolls sideways at {width} px"
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    guard.check()


def scrolls_sideways(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth"))


def png(colour: tuple[int, int, int] = (40, 110, 180)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (200, 160), colour).save(buffer, "PNG")
    return buffer.getvalue()


# Seeds (through the services, as another operator would have left them) --------------------

def add_olga(session):
    return create_operator(session, email=OLGA, password=OLGA_PASSWORD, first_name="Olga",
                           last_name="Operator").id


def add_person(session, first: str, last: str, **fields):
    fields.setdefault("confirm_duplicate", True)
    return create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.PERSON, first_name=first,
                           last_name=last, **fields).id


def add_company(session, name: str, *contacts: tuple[str, str, str], **fields):
    fields.setdefault("confirm_duplicate", True)
    rows = [{"first_name": f, "last_name": la, "email": e, "is_main": i == 0}
            for i, (f, la, e) in enumerate(contacts)]
    return create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.COMPANY, company_name=name,
                           contacts=rows, **fields).id


# Steps a person takes ----------------------------------------------------------------------

def open_customer(page: Page, name: str) -> None:
    """From the navbar's Customers, the customer's name in the list."""
    page.get_by_role("navigation").get_by_role("link", name="Customers", exact=True).click()
    page.wait_for_url("**/admin/customers/")
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    # The heading is there while the page is still parsing; a click on "Change Status" before
    # Bootstrap's scripts ran opened nothing (a busy CI machine).
    page.wait_for_load_state("load")


def tab(page: Page, name: str) -> None:
    page.get_by_test_id("customer-tabs").get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_test_id("customer-tabs").locator(".nav-link.active")).to_have_text(name)
    page.wait_for_load_state("load")


def success(page: Page) -> Locator:
    return page.locator(".alert-success")


def quick_modal(page: Page) -> Locator:
    """The quick form opened from the Customers list."""
    page.get_by_role("navigation").get_by_role("link", name="Customers", exact=True).click()
    page.wait_for_url("**/admin/customers/")
    page.get_by_role("button", name="Quick add").click()
    modal = page.get_by_role("dialog")
    expect(modal).to_be_visible()
    return modal


def contact_row_field(row: Locator, label: str) -> Locator:
    """A field of one contact row of the quick form, by the label a person reads above it."""
    return row.get_by_label(re.compile(rf"^{re.escape(label)}( \*)?$"))


def sign_in_as_olga(page: Page) -> None:
    """Sign out through the profile menu and sign in as the plain operator."""
    page.get_by_test_id("signed-in-as").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login**")
    sign_in(page, OLGA, OLGA_PASSWORD)
    page.wait_for_url("**/admin/")
