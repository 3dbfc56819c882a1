"""The duplicate refusal holds under concurrency (issue 13, point 3), proved with real HTTP.

The app is served by a threaded werkzeug server (tests/served_app.py) on a database of its own —
a SQLite file, and a database on the throwaway PostgreSQL cluster — and twenty browsers and
scripts, each signed in on its own (its own session cookie, its own API token), send the same
identifying key at the same moment: every thread prepares its create first (a wizard draft
walked to its summary, an import file uploaded and previewed), then all wait on one barrier and
send the final request together. The doors are mixed: the quick form, the plain create form of
the Customers view, the wizard's Save, the JSON API and the CSV import (its Run; the import works
in a thread of the server).

What a user must see: exactly one customer with that key in the database, one create answered as
created, and every other one refused with a message — 409 with the candidates from the quick
form and the API, the form again with the matches on the plain form and the wizard, a
"Skipped as duplicates" row naming the existing record in the import report — and never a 500 or
an import that stopped. Every refusal names the candidates — also for a company ID and a VAT ID,
which are unique columns too: the create command runs the duplicate check (under the key's lock)
before the field checks, so the loser of a race hears which customer has the key, not only that
some customer has it.

"Create anyway" is the user's decision: sent with the same e-mail by twenty at once, every create
is made.

The keys are typed in different formats on different doors ("+421 903 …" and "0903 …", upper
and lower case, company IDs with spaces): the refusal is about the normalised key. The tests of
this module share one served app per database; each uses keys of its own.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select

from extensions import db
from models import Customer
from models.enums import OperatorRole
from services.api_tokens import create_token
from services.customers import default_status
from services.operators import create_operator
from services.reference_data import ensure_reference_data
from services.transactions import unit_of_work
from tests.conftest import PASSWORD, make_app, migrate_to_head
from tests.served_app import Served, WebClient, last_line, page_text, served

THREADS = 20
ROUNDS = 10
MAINTAINER = "race.boss@example.com"
QUICK = "/admin/customers/quick/create"
NEW = "/admin/customers/new/"
WIZARD = "/admin/customers/wizard"
IMPORT = "/admin/customers/import"
WIZARD_STEPS = ("cmonitor", "mail", "notifications", "requests", "operators")  # after step 1, all left empty
PERSON_DOORS = ("quick", "form", "wizard", "api", "csv")
COMPANY_DOORS = ("form", "wizard", "api", "csv")  # the quick form has no company ID or VAT ID field
CONFIRM_DOORS = ("quick", "form", "wizard", "api")  # the import asks nothing: it has no "create anyway"
FIRST = ("Adam", "Beáta", "Cyril", "Dana", "Emil", "Filoména", "Gustáv", "Hana", "Igor", "Jarmila",
         "Karol", "Lucia", "Marek", "Nina", "Oto", "Petra", "Rudolf", "Sára", "Tibor", "Ursula")
LAST = ("Adamec", "Bartoš", "Cibuľa", "Dudáš", "Eliáš", "Frlička", "Gajdoš", "Hrnčiar", "Ihnát", "Jurík",
        "Kollár", "Lipták", "Mravec", "Nemček", "Ondrejka", "Pavlík", "Rusnák", "Sloboda", "Tomko", "Urban")
FIRMS = ("Agat", "Bazalt", "Cinabar", "Diorit", "Epidot", "Fluorit", "Granát", "Halit", "Ilmenit", "Jaspis",
         "Kremeň", "Lazurit", "Malachit", "Nefrit", "Opál", "Pyrit", "Rubín", "Sádrovec", "Topás", "Uraninit")
SYLLABLES = ("ba", "ce", "di", "fo", "gu", "ha", "ji", "ko", "lu", "mo")
FEEDBACK = re.compile(r'class="(?:invalid-feedback|text-danger)[^"]*"[^>]*>(.*?)</(?:div|ul)>', re.S)
ALERT = re.compile(r'class="alert alert-\w+ alert-dismissable">.*?</button>(.*?)</div>', re.S)
CANDIDATE_ITEMS = re.compile(r'data-testid="duplicate-candidates".*?</ul>', re.S)
REPORT_ROWS = re.compile(r'data-testid="rows-(\w+)".*?<tbody>(.*?)</tbody>', re.S)


# -- the served app ---------------------------------------------------------------------------

@dataclass
class Desk:
    """The served app on one database, with THREADS clients signed in as the maintainer."""

    app: object = field(repr=False)
    server: Served = field(repr=False)
    clients: list[WebClient] = field(repr=False)
    status_id: int
    tags: itertools.count = field(default_factory=lambda: itertools.count(1))

    def count(self, *conditions) -> int:
        """Customers matching `conditions`, read in a session of its own that is closed at once
        (an open read on SQLite would hold back the server's writers)."""
        with self.app.app_context():
            try:
                return db.session.scalar(select(func.count()).select_from(Customer).where(*conditions))
            finally:
                db.session.remove()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def desk(request, tmp_path_factory):
    """A fresh app on a fresh database (a SQLite file; a database on the PostgreSQL cluster),
    served over HTTP; one maintainer, signed in separately by each of THREADS clients, each with
    an API token of its own."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('concurrent-duplicates') / 'desk.db'}"
    else:
        url = request.getfixturevalue("postgres_cluster").create_database("concurrent_duplicates")
    migrate_to_head(url)
    app = make_app(url)
    with app.app_context():
        with unit_of_work(db.session):
            ensure_reference_data(db.session)
            boss = create_operator(db.session, email=MAINTAINER, password=PASSWORD, first_name="Rita",
                                   last_name="Race", role=OperatorRole.MAINTAINER)
            tokens = [create_token(db.session, boss, f"race {n}")[1] for n in range(THREADS)]
        status_id = default_status(db.session).id
        db.session.remove()
    try:
        with served(app) as server:
            clients = [WebClient(server.url, api_token=token) for token in tokens]
            try:
                for client in clients:
                    client.login(MAINTAINER)
                    client.csrf()
                yield Desk(app, server, clients, status_id)
            finally:
                for client in clients:
                    client.close()
    finally:
        with app.app_context():
            db.engine.dispose()


# -- what each thread types -------------------------------------------------------------------

@dataclass(frozen=True)
class Typed:
    """One new customer as typed on a door: a person or a company with its main contact."""

    company: bool
    first_name: str = ""
    last_name: str = ""
    company_name: str = ""
    email: str = ""
    phone: str = ""
    registration_number: str = ""
    vat_id: str = ""
    contact_first_name: str = ""
    contact_last_name: str = ""
    contact_email: str = ""
    confirm: bool = False

    @property
    def kind(self) -> str:
        return "company" if self.company else "person"

    @property
    def name(self) -> str:
        return self.company_name if self.company else f"{self.first_name} {self.last_name}"

    def customer_fields(self) -> dict[str, str]:
        """The customer's own fields, by their names on the plain form, the wizard and the API."""
        if self.company:
            values = {"company_name": self.company_name, "registration_number": self.registration_number,
                      "vat_id": self.vat_id}
        else:
            values = {"first_name": self.first_name, "last_name": self.last_name, "email": self.email,
                      "primary_phone": self.phone}
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class Key:
    """The identifying key the threads share: its name, how each thread types it, the
    condition that finds the customers holding it."""

    name: str
    typed: tuple[str, ...]  # one way of typing it per format; thread i types typed[i % len]
    condition: Callable[[], object]
    company: bool
    # A unique column: besides the candidates, its field's message tells the user why — the
    # domain's check, or the database's unique constraint when it refused the insert.
    field_messages: tuple[str, ...] = ()


def shared_key(name: str, tag: int) -> Key:
    if name == "email":
        local, domain = f"race.mail.{tag}", "example.sk"
        typed = (f"{local}@{domain}", f"Race.Mail.{tag}@{domain}", f"{local.upper()}@{domain.upper()}")
        return Key(name, typed,
                   lambda: func.lower(Customer.email) == f"{local}@{domain}", company=False)
    if name == "phone":
        digits = f"{tag % 1000:03d}{tag // 1000 % 1000:03d}"
        e164 = f"+421903{digits}"
        return Key(name, (f"0903 {digits[:3]} {digits[3:]}", f"+421 903 {digits[:3]} {digits[3:]}", e164),
                   lambda: Customer.primary_phone == e164, company=False)
    if name == "registration_number":
        number = f"5{tag:07d}"
        return Key(name, (number, f"{number[:2]} {number[2:5]} {number[5:]}"),
                   lambda: Customer.registration_number == number, company=True)
    if name == "vat_id":
        number = f"SK20{tag:08d}"
        spaced = f"{number[:2]} {number[2:6]} {number[6:9]} {number[9:]}"
        return Key(name, (number, spaced, number.lower()),
                   lambda: Customer.vat_id == number, company=True)
    raise ValueError(name)


def typed_for(key: Key, tag: int, index: int, *, confirm: bool = False) -> Typed:
    """Thread `index`'s customer: a name and other keys of its own, and the shared key."""
    value = key.typed[index % len(key.typed)]
    if key.company:
        return Typed(company=True, company_name=f"{FIRMS[index]} {tag} s.r.o.",
                     contact_first_name=FIRST[index], contact_last_name=LAST[index],
                     contact_email=f"contact.{tag}.{index}@firm{index}.example.sk",
                     **{key.name: value}, confirm=confirm)
    fields = {"email": f"person.{tag}.{index}@race.example.sk", key.name: value}
    return Typed(company=False, first_name=FIRST[index], last_name=f"{LAST[index]}-{family(tag)}",
                 confirm=confirm, **fields)


def family(tag: int) -> str:
    """A surname part of its own for each tag (101 → "Cebace"): no two tests' people share a
    name, so whatever the name rule, only the shared key can make them duplicates."""
    return "".join(SYLLABLES[int(d)] for d in str(tag)).title()


# -- the doors: each prepares its create, then sends the final request when told ---------------

@dataclass
class Outcome:
    """What the user saw of one create. `status` is the HTTP status of the final request (for
    the import: the group its row went to, or "failed"); `error` a 500, a stopped import or a
    request that never got an answer."""

    door: str
    status: int | str
    created: bool = False
    messages: list[str] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)
    error: str = ""
    started: float = 0.0
    ended: float = 0.0

    @property
    def refused(self) -> bool:
        return not self.created and not self.error


@dataclass
class Create:
    door: str
    send: Callable[[], Outcome]


def json_outcome(door: str, answer, created_status: int = 201) -> Outcome:
    """The quick form's and the API's answer: 201, or the refusal's messages and candidates."""
    if answer.status_code == created_status:
        return Outcome(door, answer.status_code, created=True)
    if answer.status_code >= 500:
        return Outcome(door, answer.status_code, error=page_text(answer.text)[:300])
    try:
        body = answer.json()
    except ValueError:
        return Outcome(door, answer.status_code, error=f"not JSON: {page_text(answer.text)[:300]}")
    messages = [body.get("message") or "", *body.get("messages", []),
                *(m for ms in (body.get("errors") or {}).values() for m in ms)]
    candidates = [f"{c.get('label') or 'a record you cannot open'} ({', '.join(c.get('reasons', []))})"
                  for c in body.get("candidates", [])]
    return Outcome(door, answer.status_code, messages=[m for m in messages if m], candidates=candidates)


def page_outcome(door: str, client: WebClient, answer, created_unless: str) -> Outcome:
    """A panel page's answer: a redirect away from the form is the customer created (followed,
    as the browser does, so its "created" message is shown now and not on a later page); the
    page again (200) is a refusal, its messages flashed on top and under the fields."""
    location = answer.headers.get("Location", "")
    if answer.status_code == 302 and created_unless not in location:
        shown = client.get(location)
        while shown.status_code == 302:  # the wizard lands on the customer's page by way of its tab
            shown = client.get(shown.headers["Location"])
        return Outcome(door, 302, created=True, error="" if shown.status_code == 200 else
                       f"the created customer's page answered {shown.status_code}")
    if answer.status_code != 200:  # a 500, or anything but the form again
        return Outcome(door, answer.status_code, error=f"{location} {page_text(answer.text)[:300]}")
    html = answer.text
    messages = [page_text(m) for m in ALERT.findall(html)]
    for block in FEEDBACK.findall(html):
        messages.extend(page_text(m) for m in (re.findall(r"<li>(.*?)</li>", block, re.S) or [block]))
    messages = [m for m in messages if m and not m.startswith("*")]  # not a required field's mark
    candidates = [m for m in messages if m.startswith("Matches:")]
    candidates += [page_text(b) for b in CANDIDATE_ITEMS.findall(html)]
    return Outcome(door, 200, messages=messages, candidates=candidates)


def location_of(answer) -> str:
    assert answer.status_code == 302, (answer.status_code, page_text(answer.text)[:1500])
    return answer.headers["Location"]


def quick_door(desk: Desk, client: WebClient, typed: Typed) -> Create:
    data = {"kind": typed.kind, "name": typed.name, "email": typed.email, "phone": typed.phone}
    if typed.confirm:
        data["confirm_duplicate"] = "1"
    return Create("quick", lambda: json_outcome("quick", client.submit(QUICK, data)))


def form_door(desk: Desk, client: WebClient, typed: Typed) -> Create:
    data = {"kind": typed.kind, "status": str(desk.status_id), **typed.customer_fields()}
    if typed.company:
        data.update({"contacts-0-first_name": typed.contact_first_name,
                     "contacts-0-last_name": typed.contact_last_name,
                     "contacts-0-email": typed.contact_email, "contacts-0-is_main": "y"})
    if typed.confirm:
        data["confirm_duplicate"] = "y"
    return Create("form", lambda: page_outcome("form", client, client.submit(NEW, data), "/new/"))


def wizard_door(desk: Desk, client: WebClient, typed: Typed) -> Create:
    """A draft walked through every step now (step 1 finds no duplicate yet); Save later."""
    location_of(client.submit(f"{WIZARD}/start"))  # opens step 1; no draft until its first save
    first = {"kind": typed.kind, **typed.customer_fields(), "draft_key": secrets.token_urlsafe(18)}
    if typed.company:
        first.update(contact_first_name=typed.contact_first_name, contact_last_name=typed.contact_last_name,
                     contact_email=typed.contact_email)
    if typed.confirm:
        first["confirm_duplicate"] = "y"
    base = location_of(client.submit(f"{WIZARD}/new", {**first, "nav": "next"})).rsplit("/", 1)[0]
    for step in WIZARD_STEPS:
        location_of(client.submit(f"{base}/{step}", {"nav": "next"}))
    summary = f"{base}/summary"
    return Create("wizard", lambda: page_outcome("wizard", client, client.submit(summary), "/summary"))


def api_door(desk: Desk, client: WebClient, typed: Typed) -> Create:
    payload: dict = {"kind": typed.kind, **typed.customer_fields()}
    if typed.company:
        payload["contacts"] = [{"first_name": typed.contact_first_name, "last_name": typed.contact_last_name,
                                "email": typed.contact_email, "is_main": True}]
    if typed.confirm:
        payload["confirm_duplicate"] = True
    return Create("api", lambda: json_outcome("api", client.api("POST", "/customers", json=payload)))


def csv_door(desk: Desk, client: WebClient, typed: Typed) -> Create:
    """The file uploaded, mapped (no match rules: every row is a new customer) and previewed
    now; Run later, then the result page once the import has ended."""
    if typed.company:
        columns = {"Company name": ("company_name", typed.company_name),
                   "Company ID": ("registration_number", typed.registration_number),
                   "VAT ID": ("vat_id", typed.vat_id),
                   "Contact first name": ("contact_first_name", typed.contact_first_name),
                   "Contact last name": ("contact_last_name", typed.contact_last_name),
                   "Contact e-mail": ("contact_email", typed.contact_email)}
    else:
        columns = {"First name": ("first_name", typed.first_name),
                   "Last name": ("last_name", typed.last_name),
                   "E-mail": ("email", typed.email), "Phone": ("primary_phone", typed.phone)}
    text = io.StringIO()
    writer = csv.writer(text, delimiter=";")
    writer.writerow(columns)
    writer.writerow(value for _, value in columns.values())
    uploaded = client.post(f"{IMPORT}/", data={"csrf_token": client.csrf(), "encoding": "utf-8"},
                           files={"file": ("race.csv", text.getvalue().encode(), "text/csv")})
    mapping_url = location_of(uploaded)
    token = mapping_url.rstrip("/").rsplit("/", 1)[1]
    mapping = {f"map-{i}": target for i, (target, _) in enumerate(columns.values())}
    location_of(client.submit(mapping_url, {**mapping, "on_match": "skip"}))  # the preview

    def send() -> Outcome:
        location_of(client.submit(f"{IMPORT}/run/{token}"))
        status: dict = {}
        for _ in range(1200):
            status = client.get(f"{IMPORT}/status/{token}.json").json()
            if status.get("done"):
                break
            time.sleep(0.05)
        else:
            return Outcome("csv", "running", error=f"the import did not end: {status}")
        if status["status"] == "failed":
            return Outcome("csv", "failed", error=status.get("message", ""))
        groups = [name for name, n in status["counts"].items() if n]
        html = client.get(f"{IMPORT}/result/{token}").text
        rows = {name: [page_text(cell) for cell in re.findall(r"<td>(.*?)</td>", body, re.S)[2::3]]
                for name, body in REPORT_ROWS.findall(html)}
        group = ",".join(groups)
        if groups == ["created"]:
            return Outcome("csv", group, created=True)
        messages = [m for name in groups for m in rows.get(name, [])]
        return Outcome("csv", group, messages=messages,
                       candidates=rows.get("duplicates", []) if groups == ["duplicates"] else [])

    return Create("csv", send)


DOORS: dict[str, Callable[[Desk, WebClient, Typed], Create]] = {
    "quick": quick_door, "form": form_door, "wizard": wizard_door, "api": api_door, "csv": csv_door}


def prepare(desk: Desk, doors: tuple[str, ...], typed: list[Typed]) -> list[Create]:
    """Thread i's create through door i mod len(doors), prepared one after the other."""
    pairs = enumerate(zip(desk.clients[:len(typed)], typed, strict=True))
    return [DOORS[doors[i % len(doors)]](desk, client, t) for i, (client, t) in pairs]


def race(creates: list[Create]) -> list[Outcome]:
    """Every create's final request at once: the threads start together from one barrier."""
    barrier = threading.Barrier(len(creates))

    def run(create: Create) -> Outcome:
        barrier.wait(timeout=120)
        started = time.monotonic()
        try:
            outcome = create.send()
        except Exception as exc:  # no answer at all (a reset connection, a timeout) is an outcome too
            outcome = Outcome(create.door, "no answer", error=repr(exc))
        outcome.started, outcome.ended = started, time.monotonic()
        return outcome

    with ThreadPoolExecutor(max_workers=len(creates)) as pool:
        return list(pool.map(run, creates))


# -- what a failure says ------------------------------------------------------------------------

def overlap(outcomes: list[Outcome]) -> int:
    """How many of the creates were waiting for their answer at the same moment, at most."""
    events = sorted([(o.started, 1) for o in outcomes] + [(o.ended, -1) for o in outcomes])
    return max(itertools.accumulate(change for _, change in events))


def summary(outcomes: list[Outcome]) -> str:
    """Per door: how often each answer came ("quick: 201 created ×1, 409 refused ×4")."""
    lines = []
    for door in dict.fromkeys(o.door for o in outcomes):
        seen = Counter(f"{o.status} {'created' if o.created else 'ERROR' if o.error else 'refused'}"
                       for o in outcomes if o.door == door)
        lines.append(f"{door}: " + ", ".join(f"{k} ×{n}" for k, n in sorted(seen.items())))
    return "; ".join(lines)


def server_errors(desk: Desk, mark: int, answered_500: int) -> str:
    """The server's errors since `mark`: each kind once, with how often and its traceback's end."""
    entries = desk.server.log.since(mark, at_least=answered_500)
    kinds: dict[str, list[str]] = {}
    for entry in entries:
        kinds.setdefault(last_line(entry), []).append(entry)
    parts = []
    for kind, same in kinds.items():
        tail = "\n".join(same[0].strip().splitlines()[-40:])
        parts.append(f"--- {len(same)}× {kind}\n{tail}")
    return "\n".join(parts)


def verdict(desk: Desk, what: str, outcomes: list[Outcome], stored: int, mark: int, *,
            expected: int = 1, or_said: tuple[str, ...] = ()) -> list[str]:
    """What is wrong with one race, in words (empty: it held). Every refusal must name the
    existing record (its candidates) or say one of `or_said`."""
    problems = []
    created = sum(o.created for o in outcomes)
    if stored != expected:
        problems.append(f"{stored} customers with {what} in the database, expected {expected}")
    if created != expected:
        problems.append(f"{created} creates answered as created, expected {expected}")
    errors = [o for o in outcomes if o.error]
    if errors:
        problems.append(f"{len(errors)} answered with an error: "
                        + "; ".join(f"{o.door} {o.status}: {o.error[:200]}" for o in errors[:5]))
    silent = [o for o in outcomes if o.refused and not o.messages]
    if silent:
        problems.append(f"{len(silent)} refused without a message: {[(o.door, o.status) for o in silent]}")
    blind = [o for o in outcomes if o.refused and not o.candidates
             and not any(m in said for said in o.messages for m in or_said)]
    if blind:
        problems.append(f"{len(blind)} refused without naming the existing record: "
                        + "; ".join(f"{o.door} {o.status}: {' | '.join(o.messages)[:200]}"
                                    for o in blind[:5]))
    if problems:
        problems.append(f"answers: {summary(outcomes)}")
        log = server_errors(desk, mark, sum(o.status == 500 for o in outcomes))
        if log:
            problems.append(f"server log:\n{log}")
    return problems


def report(what: str, outcomes: list[Outcome], stored: int) -> None:
    """The race's figures on the test's output (pytest -s or -rP), with one refusal per door
    and answer as the user read it."""
    print(f"\n{what}: {stored} stored; {summary(outcomes)}; "
          f"up to {overlap(outcomes)} creates in flight at once")
    shown = {}
    for o in outcomes:
        if o.refused:
            shown.setdefault((o.door, o.status), o)
    for (door, status), o in shown.items():
        said = o.candidates[0] if o.candidates else " | ".join(o.messages)
        print(f"  {door} {status}: {said[:150]}")


# -- the tests --------------------------------------------------------------------------------

KEYS = {"email": "the e-mail", "phone": "the phone", "registration_number": "the company ID",
        "vat_id": "the VAT ID"}


@pytest.mark.parametrize("key_name", list(KEYS))
def test_twenty_creates_with_one_key_through_every_door_make_one_customer(desk, key_name):
    tag = next(desk.tags) + 100 * (list(KEYS).index(key_name) + 1)
    key = shared_key(key_name, tag)
    doors = COMPANY_DOORS if key.company else PERSON_DOORS
    creates = prepare(desk, doors, [typed_for(key, tag, i) for i in range(THREADS)])
    assert desk.count(key.condition()) == 0  # the drafts and previews wrote no customer
    mark = desk.server.log.mark()
    outcomes = race(creates)
    stored = desk.count(key.condition())
    report(f"{KEYS[key_name]} ×{THREADS} through {'/'.join(doors)}", outcomes, stored)
    problems = verdict(desk, KEYS[key_name], outcomes, stored, mark, or_said=key.field_messages)
    assert not problems, "\n".join(problems)


def test_ten_rounds_of_twenty_quick_creates_with_one_email_make_one_customer_each(desk):
    failed = []
    for round_number in range(1, ROUNDS + 1):
        tag = 5000 + next(desk.tags) * 10 + round_number
        key = shared_key("email", tag)
        creates = prepare(desk, ("quick",), [typed_for(key, tag, i) for i in range(THREADS)])
        mark = desk.server.log.mark()
        outcomes = race(creates)
        stored = desk.count(key.condition())
        report(f"round {round_number}: the e-mail ×{THREADS} through the quick form", outcomes, stored)
        problems = verdict(desk, "the e-mail", outcomes, stored, mark)
        if problems:
            failed.append(f"round {round_number}: " + "\n".join(problems))
    assert not failed, f"{len(failed)} of {ROUNDS} rounds failed:\n" + "\n".join(failed)


def test_create_anyway_lets_every_concurrent_create_through(desk):
    tag = 9000 + next(desk.tags)
    key = shared_key("email", tag)
    existing = prepare(desk, ("api",), [typed_for(key, tag, THREADS - 1)])[0].send()
    assert existing.created, existing
    creates = prepare(desk, CONFIRM_DOORS, [typed_for(key, tag, i, confirm=True) for i in range(THREADS)])
    mark = desk.server.log.mark()
    outcomes = race(creates)
    stored = desk.count(key.condition())
    report(f"the e-mail ×{THREADS} with “create anyway” through {'/'.join(CONFIRM_DOORS)}", outcomes, stored)
    problems = verdict(desk, "the e-mail", outcomes, stored - 1, mark, expected=THREADS)
    assert not problems, "\n".join(problems)
