"""The simulated users of the load benchmark (bench/load.py starts locust headless on this file).

Operators and maintainers, each signed in once with an account of their own, doing what a
service desk does all day, with a pause between actions (BENCH_THINK seconds, "1-3"):

    customers list, search, open a customer, live duplicate lookup while typing a name, quick-create
    a person (typing with its lookups, then the create), edit a customer (the form as rendered, one
    field changed), create a request for a customer

and, when the run has an import, one maintainer importing CSV files one after the other through
the import pages (upload, mapping as suggested, preview, run, progress polling), as a person does.

Everything a page would do is done as a browser does it: the forms are posted as they were
rendered, with their CSRF token and version; a refused form (the page again, 200) is an error with
the page's own message. bench/load.py writes the plan (accounts, the customers each account works
on, search terms, names to type, import files) to BENCH_PLAN; every request (its action, time
and, on failure, status and first message) is written to BENCH_RESULTS when locust stops.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import threading
import time
from html import unescape
from pathlib import Path
from urllib.parse import urlencode, urljoin

from locust import HttpUser, between, events, task

from testing.forms import Forms

PLAN = json.loads(Path(os.environ["BENCH_PLAN"]).read_text())
THINK = [float(x) for x in os.environ.get("BENCH_THINK", "1-3").split("-")]
SIGN_IN_TRIES = 10
IMPORT_WORKING = {"uploaded", "preview_queued", "previewing", "queued", "running"}
_accounts = itertools.count()
_new_people = itertools.count()
RECORDS: list[list] = []  # [action, start, ms, ok, message]
IMPORTS: list[dict] = []
IN_FLIGHT: dict[object, tuple[str, float]] = {}  # requests sent and not answered yet: action, start
STOPPING = threading.Event()  # the run's time is up: the importer stops following its import


@events.request.add_listener
def _record(request_type, name, response_time, response_length, exception=None, start_time=None, **_kw):
    RECORDS.append([name, start_time or time.time(), response_time, exception is None,
                    None if exception is None else str(exception)[:300]])


@events.test_stopping.add_listener
def _stopping(**_kw):
    STOPPING.set()


@events.quitting.add_listener
def _write(environment, **_kw):
    # A request still unanswered when locust stops (after --stop-timeout) is an error: a person
    # would still be waiting for that page.
    now = time.time()
    for name, start in list(IN_FLIGHT.values()):
        RECORDS.append([name, start, (now - start) * 1000, False,
                        f"no answer when the run ended, after {now - start:.0f} s"])
    Path(os.environ["BENCH_RESULTS"]).write_text(json.dumps({"requests": RECORDS, "imports": IMPORTS}))


# -- pages as a browser reads them ------------------------------------------------------------------

def form_posting_to(html: str, page_url: str, fragment: str) -> tuple[str, dict[str, list[str]]] | None:
    """(absolute action, name → values) of the first form whose action contains `fragment`."""
    parser = Forms()
    parser.feed(html)
    for action, fields in parser.forms:
        target = urljoin(page_url, action or page_url)
        if fragment in target:
            values: dict[str, list[str]] = {}
            for name, value in fields:
                values.setdefault(name, []).append(value)
            return target, values
    return None


CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
MESSAGES = re.compile(r'class="[^"]*(?:alert-danger|invalid-feedback|help-block)[^"]*"[^>]*>(.*?)</',
                      re.S)
TITLE = re.compile(r"<title>(.*?)</title>", re.S)


def page_message(response) -> str:
    """The first thing a person would read on a refused or failed page: its error message,
    else its title, else the start of its text."""
    body = response.text or ""
    if "json" in response.headers.get("Content-Type", ""):
        return body[:200]
    for found in (MESSAGES.search(body), TITLE.search(body)):
        if found and found.group(1).strip():
            return " ".join(unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())[:200]
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())[:200]


def expect(response, *statuses: int) -> bool:
    """Mark the response a failure unless its status is one of `statuses`."""
    if response.status_code in statuses:
        response.success()
        return True
    response.failure(f"{response.status_code} {page_message(response)}")
    return False


# -- the desk's users -----------------------------------------------------------------------------

class DeskUser(HttpUser):
    """An operator or maintainer: signs in once with an account of its own, then works."""

    abstract = True
    wait_time = between(*THINK) if len(THINK) == 2 else between(THINK[0], THINK[0])

    def on_start(self):
        sent = self.client.request

        def tracked(method, url, name=None, **kw):
            key = object()
            IN_FLIGHT[key] = (name or url, time.time())
            try:
                return sent(method, url, name=name, **kw)
            finally:
                IN_FLIGHT.pop(key, None)

        self.client.request = tracked  # HttpSession.get/post call self.request
        self.account = self.take_account()
        self.sign_in(self.account["email"])

    def take_account(self) -> dict:
        return PLAN["accounts"][next(_accounts) % len(PLAN["accounts"])]

    def sign_in(self, email: str) -> None:
        for _ in range(SIGN_IN_TRIES):
            page = self.client.get("/login", name="sign in: page")
            token = CSRF.search(page.text or "")
            with self.client.post("/login", name="sign in", allow_redirects=False, catch_response=True,
                                  data={"email": email, "password": PLAN["password"],
                                        "csrf_token": token.group(1) if token else ""}) as answer:
                if answer.status_code == 302 and "/login" not in answer.headers.get("Location", ""):
                    answer.success()
                    return
                answer.failure(f"{answer.status_code} {page_message(answer)}")
            time.sleep(6)  # a person told to wait tries again a little later
        raise RuntimeError(f"{email} could not sign in")

    def get(self, url: str, name: str, *statuses: int):
        with self.client.get(url, name=name, catch_response=True) as response:
            expect(response, *(statuses or (200,)))
            return response

    def post_form(self, url: str, data: dict, name: str, after: str):
        """POST a form as a browser does; success is the redirect after a save (302), which is
        followed as its own request (`after`). A 200 is the form again: refused, with its message."""
        with self.client.post(url, data=data, name=name, allow_redirects=False,
                              catch_response=True) as response:
            if not expect(response, 302, 303):
                return None
            location = response.headers.get("Location", "")
        return self.get(urljoin(url, location), after) if location else None

    def customer(self) -> int:
        return random.choice(self.account["customers"])


class Desk(DeskUser):
    """The mix of one working day."""

    @task(20)
    def customers_list(self):
        page = random.choice([1, 1, 1, 2, 3])
        self.get("/admin/customers/" + (f"?page={page - 1}" if page > 1 else ""), "customers list")

    @task(20)
    def search(self):
        term = random.choice(PLAN["search_terms"])
        self.get("/admin/customers/?" + urlencode({"search": term}), "search")

    @task(20)
    def open_customer(self):
        self.get(f"/admin/customers/details/?id={self.customer()}", "open a customer")

    def type_name(self, kind: str, name: str, email: str = "", phone: str = "") -> None:
        """The quick form's live list while a name is typed: one lookup per pause in typing
        (the page waits 250 ms after a key), a few letters at a time."""
        typed = ""
        for word in name.split():
            for cut in range(3, len(word) + 3, 3):
                part = word[:cut]
                query = urlencode({"kind": kind, "name": (typed + " " + part).strip(), "email": email,
                                   "phone": phone})
                self.get("/admin/customers/quick/candidates?" + query, "duplicate lookup while typing")
                time.sleep(random.uniform(0.3, 0.8))
                if cut >= len(word):
                    break
            typed = (typed + " " + word).strip()

    @task(10)
    def duplicate_lookup(self):
        """Someone on the phone: is this caller a customer already? Type their name, read the list."""
        self.type_name("person", random.choice(PLAN["existing_names"]))

    @task(5)
    def quick_create_person(self):
        person = PLAN["new_people"][next(_new_people) % len(PLAN["new_people"])]
        page = self.get("/admin/customers/", "customers list")
        token = CSRF.search(page.text or "")
        name = f"{person['first_name']} {person['last_name']}"
        self.type_name("person", name)
        self.type_name("person", name, email=person["email"])
        data = {"kind": "person", "name": name, "email": person["email"], "phone": person["phone"],
                "csrf_token": token.group(1) if token else ""}
        with self.client.post("/admin/customers/quick/create", data=data, name="quick-create a person",
                              catch_response=True) as answer:
            if answer.status_code == 409:  # a namesake: the person confirms it is somebody else
                answer.success()
                data["confirm_duplicate"] = "1"
            else:
                expect(answer, 201)
                return
        with self.client.post("/admin/customers/quick/create", data=data, catch_response=True,
                              name="quick-create a person (namesake confirmed)") as answer:
            expect(answer, 201)

    @task(10)
    def edit_customer(self):
        url = f"/admin/customers/edit/?id={self.customer()}"
        page = self.get(url, "edit a customer: form")
        form = form_posting_to(page.text or "", page.url or url, "/admin/customers/edit/")
        if form is None:
            return
        action, values = form
        values["notes"] = [f"Called on {time.strftime('%Y-%m-%d %H:%M:%S')} about the invoice."]
        self.post_form(action, values, "edit a customer: save", "page after a save")

    @task(10)
    def create_request(self):
        url = f"/admin/requests/new/?customer={self.customer()}"
        page = self.get(url, "create a request: form")
        form = form_posting_to(page.text or "", page.url or url, "/admin/requests/new/")
        if form is None:
            return
        action, values = form
        values["subject"] = [random.choice(["Printer does not print", "New laptop for a colleague",
                                            "VPN disconnects", "Mailbox full", "Password reset"])]
        values["description"] = ["Reported by phone; details in the call notes."]
        self.post_form(action, values, "create a request: save", "page after a save")


class Importer(DeskUser):
    """A maintainer importing CSV files, one after the other, through the import pages."""

    fixed_count = 1
    wait_time = between(2, 2)

    def take_account(self) -> dict:
        return PLAN["importer"]

    @task
    def import_a_file(self):
        path = Path(PLAN["import_files"][len(IMPORTS) % len(PLAN["import_files"])])
        started = time.time()
        summary = {"file": path.name, "rows": PLAN["import_rows"], "status": "not started", "counts": {}}
        IMPORTS.append(summary)
        page = self.get("/admin/customers/import/", "import: upload page")
        token = CSRF.search(page.text or "")
        with self.client.post("/admin/customers/import/", name="import: upload", catch_response=True,
                              data={"csrf_token": token.group(1) if token else "", "encoding": "auto"},
                              files={"file": (path.name, path.read_bytes(), "text/csv")}) as page:
            if not expect(page, 200) or "/mapping/" not in page.url:
                page.failure(f"{page.status_code} the upload led elsewhere: {page_message(page)}")
                return
        status = self.follow(page, summary)
        if STOPPING.is_set():  # still going when the run ended: reported as such, not timed
            return
        summary.update(status=status, seconds=time.time() - started)
        events.request.fire(request_type="IMPORT", name="import: a whole file", response_length=0,
                            response_time=(time.time() - started) * 1000, start_time=started, context={},
                            exception=None if status == "done" else RuntimeError(f"import ended {status}"))

    def follow(self, page, summary: dict) -> str:
        """Go through the import's pages as a person does until the import has ended; its status."""
        deadline = time.time() + 3600
        while time.time() < deadline and not STOPPING.is_set():
            html, url = page.text or "", page.url
            box = re.search(r'data-import-status="([^"]+)"[^>]*data-shown-status="([^"]+)"', html)
            if box and box.group(2) in IMPORT_WORKING:
                status = self.wait_while(urljoin(url, unescape(box.group(1))), box.group(2), summary)
                if status is None:
                    return "status not readable"
                page = self.get(url, "import: page")
                continue
            for fragment, name in (("/mapping/", "import: mapping (preview starts)"),
                                   ("/run/", "import: run")):
                form = form_posting_to(html, url, fragment)
                if form is not None:
                    with self.client.post(form[0], data=form[1], name=name, catch_response=True) as page:
                        expect(page, 200)
                    break
            else:
                return box.group(2) if box else "ended without a status"
        return summary.get("status") or "not started" if STOPPING.is_set() else "still running after an hour"

    def wait_while(self, status_url: str, shown: str, summary: dict) -> str | None:
        while not STOPPING.is_set():
            time.sleep(0.7)  # as static/bulk_import.js polls
            answer = self.get(status_url, "import: progress")
            try:
                state = answer.json()
            except ValueError:
                return None
            summary.update(status=state.get("status"), counts=state.get("counts", {}),
                           progress=state.get("progress", {}))
            if state.get("status") != shown:
                return state.get("status")
        return shown
