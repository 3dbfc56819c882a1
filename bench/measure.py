"""Time the customers list through the real Flask app, signed in as a maintainer.

Runs in a process of its own (see bench.customers_list), so its peak RSS is the app serving pages,
not the dataset the loader held. Each request gets an application context of its own, as in
production and in tests/conftest.py `Browserless`.
"""

from __future__ import annotations

import gc
import json
import math
import re
import resource
import statistics
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import event, func, select

from bench.loader import MAINTAINER_EMAIL, MAINTAINER_PASSWORD, make_app
from bench.raw_pages import RawPages, raw_page
from extensions import db
from models import Contact, Customer, Operator
from services.search import contact_search_conditions, customer_search_conditions

LIST_URL = "/admin/customers/"
CONTACTS_URL = "/admin/contacts/"
CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
CUSTOMER_QUERY = re.compile(r"^\s*SELECT .*\bFROM (customer|contact)(_search_token)?\b", re.S)
FILTER_DATA = re.compile(r'<div id="filter-groups-data"[^>]*>(.*?)</div>', re.S)
WARMUPS = 2


@dataclass
class Scenario:
    name: str
    url: str
    matched: object  # a SELECT count(*) saying how many records the page is drawn from
    expect: str | None = None  # text the page must contain
    repeat: int | None = None  # timed requests, if not the run's own (an export is long)


@dataclass
class StatementLog:
    """Every SQL statement sent to the database while `on`, and the time spent executing them
    (before/after_cursor_execute: the database's share of a request, the rest is Python)."""

    on: bool = False
    statements: list[tuple[str, object]] = field(default_factory=list)
    seconds: float = 0.0
    _started: float = 0.0

    def clear(self) -> None:
        self.statements.clear()
        self.seconds = 0.0

    def before(self, conn, cursor, statement, parameters, context, executemany):
        if self.on:
            self.statements.append((statement, parameters))
            self._started = time.perf_counter()

    def after(self, conn, cursor, statement, parameters, context, executemany):
        if self.on:
            self.seconds += time.perf_counter() - self._started


class Client:
    """The Flask test client, one application context per request."""

    def __init__(self, app):
        self.app, self.client = app, app.test_client()

    def get(self, url: str, **kw):
        with self.app.app_context():
            return self.client.get(url, **kw)

    def login(self) -> None:
        with self.app.app_context():
            page = self.client.get("/login").get_data(as_text=True)
            token = CSRF_INPUT.search(page).group(1)
            answer = self.client.post("/login", data={
                "email": MAINTAINER_EMAIL, "password": MAINTAINER_PASSWORD, "csrf_token": token})
        assert answer.status_code == 302, f"sign-in failed: {answer.status_code}"


def _filter_url(page_html: str, group: str, option: str | None = None) -> tuple[str, str]:
    """The URL Flask-Admin's filter form would build (`flt0_<arg>=<value>`), read from the
    filter definitions the list page renders; the first option unless one is named (or named
    in part)."""
    groups = json.loads(FILTER_DATA.search(page_html).group(1))
    flt = groups[group][0]
    value = next(v for v, label in flt["options"] if option is None or option in label)
    return f"{LIST_URL}?flt0_{flt['arg']}={value}", value


def _name_sort(app) -> int:
    """The `sort=` index of the Name column (Flask-Admin counts the list's columns)."""
    with app.app_context():
        view = next(v for v in app.extensions["admin"][0]._views if getattr(v, "endpoint", "") == "customers")
        return [name for name, _ in view._list_columns].index("display_name")


def scenarios(client: Client) -> list[Scenario]:
    page = client.get(LIST_URL).get_data(as_text=True)
    count = select(func.count()).select_from(Customer)
    contacts = select(func.count()).select_from(Contact)

    def search(term: str):
        return count.where(*customer_search_conditions(term))

    def filtered(group: str, option: str | None, condition) -> Scenario:
        url, value = _filter_url(page, group, option)
        return Scenario(f"filter {group.lower()}", url, count.where(condition(value)))

    operator_url, operator_id = _filter_url(page, "Responsible operator", "Number 1")
    operator_rows = count.where(Customer.operators.any(Operator.id == int(operator_id)))
    candidates = "/admin/customers/quick/candidates"
    return [
        Scenario("page 1", LIST_URL, count),
        Scenario("deep page", f"{LIST_URL}?page=499", count),
        Scenario("sort name descending", f"{LIST_URL}?sort={_name_sort(client.app)}&desc=1", count),
        filtered("Kind", "Company", lambda v: Customer.kind == v),
        filtered("Status", "Inactive", lambda v: Customer.status_id == int(v)),
        filtered("SLA level", None, lambda v: Customer.sla_level_id == int(v)),
        filtered("Site", None, lambda v: Customer.site_id == int(v)),
        filtered("Department", None, lambda v: Customer.department_id == int(v)),
        Scenario("filter responsible operator", operator_url, operator_rows),
        Scenario("search kovac peter", f"{LIST_URL}?search=kovac+peter", search("kovac peter"),
                 "Kováč"),
        Scenario("search nov", f"{LIST_URL}?search=nov", search("nov")),
        Scenario("search horv", f"{LIST_URL}?search=horv", search("horv")),
        Scenario("contacts page 1", CONTACTS_URL, contacts),
        Scenario("contacts search kovac peter", f"{CONTACTS_URL}?search=kovac+peter",
                 contacts.where(*contact_search_conditions("kovac peter")), "Kováč"),
        Scenario("contacts search nov", f"{CONTACTS_URL}?search=nov",
                 contacts.where(*contact_search_conditions("nov"))),
        Scenario("export CSV, one operator's customers", f"{LIST_URL}export/csv/?flt0_"
                 + operator_url.split("flt0_", 1)[1], operator_rows, repeat=3),
        # The quick form's live duplicate list (services.duplicates): "matched" counts the
        # customers having every typed name word, the common-name case the index must keep cheap.
        # No text is expected: at a million namesakes the list asks for more than a name.
        Scenario("duplicates kovac peter", f"{candidates}?kind=person&name=Kovac+Peter",
                 search("kovac peter")),
        Scenario("duplicates common name", f"{candidates}?kind=person&name=Jana+Novakova",
                 search("jana novakova")),
        Scenario("duplicates company", f"{candidates}?kind=company&name=Stavby+Zilina+sro",
                 search("stavby zilina")),
    ]


def _percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: of 30 samples, p95 is the 29th fastest (the second slowest)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * share)) - 1]


def _timed_get(client: Client, log: StatementLog, scenario: Scenario) -> tuple[float, int, float]:
    """One request: total ms, SQL statements, ms executing them."""
    log.clear()
    log.on = True
    started = time.perf_counter()
    answer = client.get(scenario.url)
    html = answer.get_data(as_text=True)  # a streamed answer (an export) is written now
    elapsed = time.perf_counter() - started
    log.on = False
    assert answer.status_code == 200, f"{scenario.url}: HTTP {answer.status_code}"
    assert scenario.expect is None or scenario.expect in html, f"{scenario.url}: no {scenario.expect}"
    return elapsed * 1000, len(log.statements), log.seconds * 1000


def _peak_alloc_mib(client: Client, url: str) -> float:
    """Python heap peak of one request (tracemalloc slows requests, so it is a separate one)."""
    tracemalloc.start()
    client.get(url).get_data()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def _peak_rss_mib() -> float:
    """Peak RSS of this process (VmHWM). Not ru_maxrss: Linux carries that over from the
    parent through fork and exec, so it would report the loader's dataset-sized peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _explain(app, log: StatementLog) -> list[str]:
    """The plans of the last request's queries on customer (EXPLAIN ANALYZE on PostgreSQL)."""
    lines = []
    with app.app_context(), db.engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
        for statement, params in log.statements:
            if not CUSTOMER_QUERY.search(statement):
                continue  # the user loader and the filters' lookup lists: a few rows each
            lines.append("  SQL: " + " ".join(statement.split())[:400])
            for row in conn.exec_driver_sql(prefix + statement, params):
                lines.append("    " + (row[0] if postgres else f"{row[1]:>3} {row[3]}"))
    return lines


def _timing(values: list[float]) -> dict:
    return {"median_ms": statistics.median(values), "p95_ms": _percentile(values, 0.95),
            "max_ms": max(values)}


def _raw_timing(url: str, name: str, repeat: int) -> dict | None:
    """The same page as hand-written SQL through the bare driver (bench.raw_pages)."""
    page = raw_page(name)
    if page is None:
        return None
    raw = RawPages(url)
    try:
        for _ in range(WARMUPS):
            page(raw)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            page(raw)
            times.append((time.perf_counter() - started) * 1000)
        return _timing(times)
    finally:
        raw.close()


def run(url: str, repeat: int, explain: bool = False, raw_repeat: int = 10) -> dict:
    """Measure every scenario; returns plain data for the report (it crosses processes)."""
    app = make_app(url)
    gc.freeze()  # as a gunicorn worker does once the app is loaded (gunicorn.conf.py)
    log = StatementLog()
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", log.before)
        event.listen(db.engine, "after_cursor_execute", log.after)
        sqlite = db.engine.dialect.name == "sqlite"
        server = db.session.scalar(select(func.sqlite_version() if sqlite else func.version()))
    client = Client(app)
    client.login()
    results, plans = [], []
    for scenario in scenarios(client):
        for _ in range(WARMUPS):
            _timed_get(client, log, scenario)
        samples = [_timed_get(client, log, scenario) for _ in range(scenario.repeat or repeat)]
        if explain:
            plans += [f"== {scenario.name}: {scenario.url}", *_explain(app, log)]
        with app.app_context():
            matched = db.session.scalar(scenario.matched)
        results.append({
            "name": scenario.name, "url": scenario.url, "matched": matched,
            **_timing([ms for ms, _, _ in samples]),
            "statements": max(n for _, n, _ in samples),
            "sql_median_ms": statistics.median(sql for _, _, sql in samples),
            "peak_alloc_mib": _peak_alloc_mib(client, scenario.url),
            "max_rss_mib": _peak_rss_mib(),
            "raw": _raw_timing(url, scenario.name, raw_repeat if "search" in scenario.name else repeat),
        })
    return {"server": str(server).split(" on ")[0], "results": results, "plans": plans}
