"""The panel's fuzzing tier: every route of the app's url_map — each form, each ajax endpoint,
each list with its parameters — driven by Hypothesis as a maintainer and as an operator, on
SQLite and on PostgreSQL. GETs carry hostile query strings, POSTs hostile form values with a
valid CSRF token (so they reach the code behind the token check). Values: long, NUL, control
characters, right-to-left marks, emoji, huge and negative numbers, plus real ids of the records
of a small world so the pages behind them are reached too.

Whatever is sent, the answer is a page, a redirect, a refusal or a 404: never a 500. Runs are
reproducible (derandomize, no example database) and bounded (EXAMPLES per route and method).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from flask import current_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from extensions import db
from models import AuditEvent, DirectorySource, DirectorySyncRun, Request
from models.enums import CustomerKind, OperatorRole, RequestStatus, SyncRunStatus
from services.merge import merge_customers
from services.transactions import unit_of_work
from tests.conftest import Browserless, csrf_from
from wizards import drafts

EXAMPLES = 3  # per route, method and role: ~1,200 requests per database
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

# Never driven: files served as they are, and signing out (it would end the run's session).
SKIPPED = {"static", "admin.static", "api_docs.docs_asset", "auth.logout"}

DESTRUCTIVE = (".delete_view", ".action_view", ".discard", ".merge_undo_view")
HUGE = ["2147483648", "9223372036854775808", "100000000000000000000", "-1", "-2147483649", "0"]
HOSTILE = st.one_of(
    st.sampled_from(["", " ", "\x00", "a\x00b", "\x01\x02\x1f\x7f", "\u202e\u200fעברית", "😀🔥" * 20,
                     "x" * 5000, "1" * 400, "__None", "kept", "on", "y", "1.5", "1e400", "NaN",
                     "2026-13-45", "2026-01-01 to 2025-01-01", "<script>alert(1)</script>",
                     "'; DROP TABLE customer;--", "%s%n", "../../etc/passwd", "company", "person",
                     "survivor", "other", "csv", "xlsx", *HUGE]),
    st.text(max_size=30),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
# Query parameters the panel reads somewhere, and Flask-Admin's list filters flt<n>_<index>.
QUERY_NAMES = ["id", "page", "page_size", "sort", "desc", "search", "name", "query", "offset", "limit",
               "q", "survivor", "other", "customer_id", "url", "modal", "kind", "email", "phone",
               "registration_number", "vat_id", "next", "step", "mode", "tab",
               *(f"flt{n}_{i}" for n in range(2) for i in range(12))]
# Form names of POST-only endpoints (pages without a GET to read their form from).
POST_NAMES = ["rowid", "action", "url", "id", "list_form_pk", "name", "value", "status", "reason",
              "version_seen", "kind", "email", "phone", "contacts-0-last_name", "contacts-0-email",
              "confirm_duplicate", "account", "mode", "changes_only", "confirm_deactivation", "photo",
              "host", "port", "username", "password", "security", "survivor", "other", "operators",
              "workgroups", "mapping", "column_0", "dry_run"]
FORM_NAME = re.compile(r'<(?:input|select|textarea)[^>]*\bname="([^"]+)"')


@dataclass
class World:
    """One record of each kind a route can name, and where each route argument finds one."""

    ids: dict[str, list[int]] = field(default_factory=dict)
    strings: dict[str, list[str]] = field(default_factory=dict)


def build_world(session, make_operator, new_customer) -> World:
    boss = make_operator("boss@example.com", OperatorRole.MAINTAINER, first_name="Mia", last_name="Boss")
    olga = make_operator("olga@example.com", first_name="Olga", last_name="Operator")
    own = new_customer(boss, kind=CustomerKind.COMPANY, company_name="Vlastná s.r.o.", operators=[olga])
    theirs = new_customer(boss, kind=CustomerKind.COMPANY, company_name="Cudzia a.s.")
    manager = new_customer(boss, kind=CustomerKind.PERSON, first_name="Mara", last_name="Skrytá")
    person = new_customer(boss, kind=CustomerKind.PERSON, first_name="Peter", last_name="Fuzz",
                          manager=manager, operators=[olga])
    twin = new_customer(boss, kind=CustomerKind.PERSON, first_name="Peter", last_name="Fuz")
    with unit_of_work(session):
        event = merge_customers(session, boss, manager, twin, current_app.extensions["secret_box"],
                                choices={}, decisions={})
        draft = drafts.start_draft(session, olga)
        own_draft = drafts.start_draft(session, boss)
        source = DirectorySource(name="Fuzz AD", server_urls="ldap://127.0.0.1:9", base_dn="dc=fuzz",
                                 attribute_map={})
        session.add(source)
        session.flush()
        run = DirectorySyncRun(source_id=source.id, status=SyncRunStatus.SUCCEEDED)
        session.add_all([run, Request(customer_id=own.id, subject="Fuzz", status=RequestStatus.NEW,
                                      contacts=list(own.contacts))])
    contacts = [c.id for c in own.contacts + theirs.contacts]
    audit = [e for (e,) in session.query(AuditEvent.id).limit(5)]
    customers = [own.id, theirs.id, person.id, manager.id, twin.id]
    return World(
        ids={"event_id": [event.id], "draft_id": [draft.id, own_draft.id], "source_id": [source.id],
             "run_id": [run.id],
             "customer_id": customers, "computer_id": [1], "id": customers + contacts + audit + [olga.id],
             "survivor": customers, "other": customers},
        strings={"step": ["customer", "mail", "summary"], "prefix": ["pop3", "smtp"],
                 "size": ["full", "thumb"], "export_type": ["csv", "xlsx"], "token": ["0" * 32]},
    )


def record_ids(app, world: World, endpoint: str) -> list[str]:
    """Ids of real records for the `?id=` of an endpoint: its model view's rows, the customers
    for the customer pages, the merge and the wizard."""
    from sqlalchemy import select

    views = {view.endpoint: view for view in app.extensions["admin"][0]._views}
    model = getattr(views.get(endpoint.split(".")[0]), "model", None)
    if model is not None:
        return [str(i) for i in db.session.scalars(select(model.id).order_by(model.id).limit(4))]
    return [str(i) for i in world.ids["customer_id"]]


def routes(app) -> list[tuple[str, object, str]]:
    """(endpoint, rule, method) of every route of the panel and sign-in, in a fixed order."""
    found = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if rule.endpoint in SKIPPED or rule.rule.startswith("/api/"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, rule, method))
    # Deleting the world's records last, so the pages before them still find them.
    return sorted(found, key=lambda route: route[0].endswith(DESTRUCTIVE))


def path_value(world: World, name: str, converter) -> st.SearchStrategy[str]:
    real = [str(i) for i in world.ids.get(name, [])] + world.strings.get(name, [])
    if type(converter).__name__.endswith("IntConverter") or "Integer" in type(converter).__name__:
        hostile = st.sampled_from(["0", "2147483647", *HUGE[:3]])
    else:
        hostile = st.sampled_from(["x", "\u202e", "😀", "..", "a" * 300, "%00", "-1", *HUGE[:2]])
    return st.sampled_from(real) | hostile if real else hostile


def value_for(world: World, name: str) -> st.SearchStrategy[str]:
    real = [str(i) for i in world.ids.get(name, [])]
    return st.sampled_from(real) | HOSTILE if real else HOSTILE


def path_of(rule, values: dict[str, str]) -> str:
    """The rule's URL with the drawn values, quoted as a browser would send them."""
    from urllib.parse import quote

    parts = re.split(r"<(?:[^:<>]+:)?([^<>]+)>", rule.rule)
    return "".join(quote(values[p], safe="") if i % 2 else p for i, p in enumerate(parts))


class Driver:
    """One signed-in client, its CSRF token and the form names of each page it has read."""

    def __init__(self, app, email: str) -> None:
        self.client = Browserless(app.test_client())
        assert self.client.login(email).status_code == 302
        # One token per session, valid for every form of it (Flask-WTF).
        self.token = csrf_from(self.client.get("/admin/customers/new/").get_data(as_text=True))
        self.forms: dict[str, list[str]] = {}

    def form_names(self, endpoint: str, url: str) -> list[str]:
        if endpoint not in self.forms:
            html = self.client.get(url).get_data(as_text=True)
            names = [n for n in dict.fromkeys(FORM_NAME.findall(html)) if n != "csrf_token"]
            self.forms[endpoint] = names or POST_NAMES
        return self.forms[endpoint]


def drive(driver: Driver, world: World, endpoint: str, rule, method: str) -> None:
    pool = record_ids(driver.client.client.application, world, endpoint)
    names = POST_NAMES
    if method == "POST" and "GET" in (rule.methods or ()):
        real = {a: str((world.ids.get(a) or [0])[0]) for a in rule.arguments}
        real.update({a: world.strings[a][0] for a in rule.arguments if a in world.strings})
        names = driver.form_names(endpoint, f"{path_of(rule, real)}?id={pool[0] if pool else 0}")
    arguments = sorted(rule.arguments)
    record = st.sampled_from(pool) | HOSTILE if pool else HOSTILE

    @FUZZ
    @given(path=st.fixed_dictionaries({a: path_value(world, a, rule._converters[a]) for a in arguments}),
           record=record,
           query=st.dictionaries(st.sampled_from(QUERY_NAMES), value_for(world, "id"), max_size=6),
           form=st.dictionaries(st.sampled_from(names), HOSTILE, max_size=12))
    def run(path, record, query, form):
        url = path_of(rule, path)
        query = {"id": record, **query}
        data = {"csrf_token": driver.token, **form} if method == "POST" else None
        try:
            response = driver.client.open(url, method=method, query_string=query, data=data)
        except Exception as exc:  # TESTING propagates the exception a server would answer 500 with
            raise AssertionError(f"{method} {url} {query} {form}: {exc!r}") from exc
        assert response.status_code < 500, (method, url, query, form, response.status_code)

    run()


@pytest.fixture
def world(session, make_operator, new_customer):
    return build_world(session, make_operator, new_customer)


@pytest.mark.parametrize("email", ["boss@example.com", "olga@example.com"], ids=["maintainer", "operator"])
def test_no_route_of_the_panel_answers_500_to_hostile_input(app, world, email):
    driver = Driver(app, email)
    failures = []
    covered = 0
    for endpoint, rule, method in routes(app):
        try:
            drive(driver, world, endpoint, rule, method)
        except AssertionError as exc:
            failures.append(str(exc)[:400])
        covered += 1
    assert covered > 150  # every form, ajax endpoint and list of the panel
    assert not failures, "\n".join(failures)


# --- every field of every form, one at a time ------------------------------------------------
# The random sweep above rarely gets a whole form past its validation; here each form is posted
# as its page rendered it, with ONE field replaced by each of these — so the value reaches the
# domain and the database whenever the form would let it.
FIELD_VALUES = ["-99999999999999999999", "a\x00\u202e😀\x1f" + "ž" * 300]
TYPED = {"text", "number", "email", "tel", "hidden", "textarea", "password", "url", "search", "date",
         "datetime-local", "select"}


class FormReader(HTMLParser):
    """The fields of the page's POST forms as a browser would submit them: (name, kind, value)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: list[tuple[str, str, str]] = []
        self._select: str | None = None
        self._first_option: str | None = None
        self._chosen = False
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind not in ("submit", "button", "file", "image", "reset"):
                self.fields.append((a["name"], kind, a.get("value", "")))
        elif tag == "select" and a.get("name"):
            self._select, self._first_option, self._chosen = a["name"], None, False
        elif tag == "option" and self._select is not None:
            if self._first_option is None:
                self._first_option = a.get("value", "")
            if "selected" in a:
                self.fields.append((self._select, "select", a.get("value", "")))
                self._chosen = True
        elif tag == "textarea" and a.get("name"):
            self._textarea, self._text = a["name"], ""

    def handle_data(self, data):
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "select" and self._select is not None:
            if not self._chosen and self._first_option is not None:
                self.fields.append((self._select, "select", self._first_option))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea, "textarea", self._text.strip("\n")))
            self._textarea = None


def rendered_form(client, url: str) -> list[tuple[str, str, str]] | None:
    response = client.get(url)
    if response.status_code != 200 or "text/html" not in response.content_type:
        return None
    reader = FormReader()
    reader.feed(response.get_data(as_text=True))
    return reader.fields or None


def form_pages(app, world: World) -> list[tuple[str, str]]:
    """(endpoint, URL) of every page that shows a form and takes it back (GET and POST)."""
    pages = []
    for endpoint, rule, method in routes(app):
        if method != "POST" or "GET" not in (rule.methods or ()) or endpoint == "auth.login":
            continue
        real = {a: str((world.ids.get(a) or [0])[0]) for a in rule.arguments}
        real.update({a: world.strings[a][0] for a in rule.arguments if a in world.strings})
        pool = record_ids(app, world, endpoint)
        pages.append((endpoint, f"{path_of(rule, real)}?id={pool[0] if pool else 0}"))
    return pages


@pytest.mark.parametrize("email", ["boss@example.com", "olga@example.com"], ids=["maintainer", "operator"])
def test_every_field_of_every_form_takes_hostile_values(app, world, email):
    driver = Driver(app, email)
    failures, posted = [], 0
    for _endpoint, url in form_pages(app, world):
        base = rendered_form(driver.client, url)
        if base is None:
            continue  # not this role's page (403 / 404), or no form on it
        for index, (name, kind, _) in enumerate(base):
            if name == "csrf_token" or kind not in TYPED:
                continue
            for value in FIELD_VALUES:
                data = MultiDict([(n, value if i == index else v) for i, (n, _, v) in enumerate(base)])
                try:
                    response = driver.client.post(url, data=data)
                except Exception as exc:  # TESTING propagates what a server would answer 500 with
                    failures.append(f"POST {url} {name}={value[:30]!r}: {exc!r}"[:400])
                    continue
                posted += 1
                if response.status_code >= 500:
                    failures.append(f"POST {url} {name}={value[:30]!r}: {response.status_code}")
                if response.status_code == 302:  # saved: the next post starts from the new version
                    base = rendered_form(driver.client, url) or base
    assert posted > 100
    assert not failures, "\n".join(failures)
