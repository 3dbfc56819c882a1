"""A GET never changes anything (issue 12): every GET of the permission matrix, as each role.

The world and the request plan are tests/test_permission_matrix.py's; on top of them the GETs that
need a real record or a token to get past a 404 or a 401: the JSON API with each role's own token,
a directory source and one of its runs, each role's own CSV upload at every stage (mapping,
preview, result, status, rejected rows), every step of a wizard draft, a merged-away customer and
its merge event, a computer under the customer, a few searches and exports. Around each GET the
database is read whole — the row count of every table, a digest of every row, the newest
updated_at / version of customers, contacts and customer settings, the ids of the audit events —
and must not have changed.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from extensions import db
from models import Computer, Customer, DirectorySource, DirectorySyncRun, Operator, Site
from models.enums import CustomerKind, OperatorRole, SyncRunStatus
from services.merge import merge_customers
from services.secrets import SecretBox
from services.transactions import unit_of_work
from tests.conftest import ENCRYPTION_KEY, Browserless, written
from tests.test_api import Api, token_of
from tests.test_permission_matrix import ROLES, build_world, classify, requests_for
from wizards.drafts import start_draft, store_step
from wizards.steps import ORDER, Step

# Bookkeeping a GET may write, and why it is not a change of anything the product shows as data:
# an API token's last use is stamped by the API's door on every call (api.auth.require_operator,
# a GET included). It is not compared below; the token rows are still counted.
BOOKKEEPING = {"api_token": {"last_used_at"}}
# Tables whose newest change and version are compared by name, besides the digest of every row.
VERSIONED = ("customer", "contact", "customer_settings")
EMAILS = {"outsider": "outsider@example.com", "insider": "insider@example.com",
          "maintainer": "boss@example.com"}
CSV = ("Názov firmy;Priezvisko kontaktu;E-mail kontaktu\n"
       "Importovaná {role} s.r.o.;Nová;nova.{role}@import.example.sk\n"
       "Zlá firma;;zle\n")


def snapshot() -> dict[str, Any]:
    """The whole database as a GET must leave it, read on a connection of its own (never the
    test's session, whose identity map could hide a change)."""
    state: dict[str, Any] = {}
    with db.engine.connect() as connection:
        for table in db.metadata.sorted_tables:
            state[f"{table.name}: rows"] = connection.scalar(select(func.count()).select_from(table))
            skipped = BOOKKEEPING.get(table.name, set())
            columns = [c for c in table.columns if c.name not in skipped]
            rows = sorted(repr(tuple(row)) for row in connection.execute(select(*columns)))
            state[f"{table.name}: digest"] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
            for name in ("updated_at", "version"):
                if table.name in VERSIONED and name in table.columns:
                    state[f"{table.name}: max({name})"] = connection.scalar(select(func.max(table.c[name])))
        audit = db.metadata.tables["audit_event"]
        state["audit_event: ids"] = connection.scalars(select(audit.c.id).order_by(audit.c.id)).all()
    return state


def changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [f"{key}: {before[key]!r} → {after[key]!r}" for key in before if before[key] != after[key]]


def more_world(session, ids: dict[str, int], new_customer) -> dict[str, Any]:
    """What the matrix's plan leaves at 404 (its ids are 0): records a GET can really show."""
    insider = session.scalars(select(Operator).filter_by(email="insider@example.com")).one()
    boss = session.scalars(select(Operator).filter_by(email="boss@example.com")).one()
    customer = session.get(Customer, ids["customer"])
    site = Site(name="Bratislava")
    session.add_all([site, Computer(customer=customer, hostname="ws-tajna-01")])
    source = DirectorySource(name="HQ directory", server_urls="ldaps://dc1.example.sk",
                             base_dn="DC=example,DC=sk", attribute_map={})
    session.add(source)
    session.commit()
    run = DirectorySyncRun(source_id=source.id, dry_run=True, status=SyncRunStatus.SUCCEEDED, created=2)
    session.add(run)
    session.commit()
    # Two more of the insider's companies, one merged into the other: a merged-away id (GETs
    # redirect to the survivor) and a merge event (its result page).
    twins = [new_customer(kind=CustomerKind.COMPANY, company_name=f"Dvojča {n} s.r.o.", operators=[insider],
                          contacts=[{"last_name": f"Dvojča {n}", "email": f"dvojca{n}@example.sk"}])
             for n in (1, 2)]
    event = written(session, lambda: merge_customers(session, boss, twins[0], twins[1],
                                                     SecretBox(ENCRYPTION_KEY), choices={}, decisions={}))
    # A draft of the insider's that has reached the summary: every step of it opens.
    typed = {"kind": "company", "company_name": "Návrh s.r.o.", "contact_last_name": "Návrhová",
             "contact_email": "navrh@example.sk"}
    with unit_of_work(session):
        draft = start_draft(session, insider)
        for step, following in zip(ORDER, ORDER[1:], strict=False):
            store_step(session, draft, step, typed if step == Step.CUSTOMER else {},
                       SecretBox(ENCRYPTION_KEY), advance_to=following)
    return {"site": site.id, "source": source.id, "run": run.id, "survivor": twins[0].id,
            "merged": twins[1].id, "merge_event": event.id, "draft": draft.id,
            "other": ids["customers.delete_view"]}


def uploaded(browser: Browserless, role: str) -> tuple[str, str]:
    """The role's own CSV upload taken through mapping and preview (a dry run), and a second one
    imported to the end: the tokens of an upload at the preview and one with a result."""
    tokens = []
    for stage in ("previewed", "imported"):
        upload = browser.submit("/admin/customers/import/", {
            "file": (io.BytesIO(CSV.format(role=f"{role}-{stage}").encode()), "zakaznici.csv")},
            content_type="multipart/form-data")
        assert upload.status_code == 302, upload.get_data(as_text=True)[:500]
        mapping_url = upload.headers["Location"]
        html = browser.get(mapping_url).get_data(as_text=True)
        suggested = dict(re.findall(r'<select[^>]*name="(map-\d+)"[^>]*>.*?value="([a-z_]*)" selected',
                                    html, re.S))
        preview = browser.submit(mapping_url, {**suggested, "rule": ["email"], "on_match": "skip"})
        assert preview.status_code == 302, preview.get_data(as_text=True)[:500]
        token = mapping_url.rsplit("/", 1)[1]
        if stage == "imported":
            browser.submit(preview.headers["Location"], {}, post_url=f"/admin/customers/import/run/{token}")
            for _ in range(400):  # the import runs beside the request: wait for its end
                if browser.get(f"/admin/customers/import/status/{token}.json").get_json()["done"]:
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the import did not end")
        tokens.append(token)
    return tokens[0], tokens[1]


def extra_gets(ids: dict[str, int], more: dict[str, Any], uploads: tuple[str, ...]) -> list[str]:
    """The panel's GETs with real records, beyond the plan (whose record ids are 0 or lookups)."""
    customer, merged = ids["customer"], more["merged"]
    urls = [
        f"/admin/directory/details/?id={more['source']}", f"/admin/directory/edit/?id={more['source']}",
        f"/admin/directory/runs/{more['run']}.json",
        f"/admin/customers/merge/done/{more['merge_event']}",
        f"/admin/customers/merge/?survivor={customer}&other={more['other']}",
        f"/admin/customers/merge/?survivor={customer}&q=tajna",
        f"/admin/customers/buildings/?site={more['site']}",
        "/admin/customers/?search=tajna", "/admin/customers/?sort=1&desc=1", "/admin/contacts/?search=skryta",
        "/admin/requests/?search=incident", "/admin/customers/export/csv/?search=tajna",
        "/admin/customers/quick/candidates?kind=company&name=Tajna+Firma&email=tajne%40tajna-firma.example.sk",
        "/admin/customers/quick/candidates?kind=person&name=Kontaktova&phone=0903111222",
        f"/admin/customers/contacts-tab/?id={customer}&created=1",
        *(f"/admin/customers/settings/?id={customer}&tab={tab}"
          for tab in ("cmonitor", "mail", "notifications", "requests")),
        # A merged-away id: every page of it redirects to the survivor, writing nothing.
        f"/admin/customers/details/?id={merged}", f"/admin/customers/edit/?id={merged}",
        f"/admin/customers/computers-tab/?id={merged}", f"/admin/customers/contacts-tab/?id={merged}",
        f"/admin/customers/history/?id={merged}", f"/admin/customers/delete-confirm/?id={merged}",
        *(f"/admin/customers/wizard/{more['draft']}/{step.value}" for step in ORDER),
    ]
    for token in uploads:
        urls += [f"/admin/customers/import/{page}/{token}{tail}" for page, tail in (
            ("mapping", ""), ("preview", ""), ("result", ""), ("status", ".json"), ("rejected", ".csv"))]
    return urls


def api_gets(ids: dict[str, int], more: dict[str, Any]) -> list[str]:
    """Every GET of the JSON API, for the customer, the merged-away id and one that is not there."""
    urls = ["/customers", "/customers?q=tajna&kind=company&active=true&per_page=5", "/openapi.json"]
    for customer in (ids["customer"], more["merged"], 999999):
        urls += [f"/customers/{customer}{tail}" for tail in (
            "", "/contacts", "/operators", "/requests", "/computers", "/registration-key")]
    return urls


def test_the_plan_has_gets_of_every_kind_of_view(app):
    """The walk below covers every view of the matrix that answers a GET (classify() fails on
    an endpoint the matrix does not know, so a new door reaches this test too)."""
    gets = {classify(rule.endpoint)[0] for rule in app.url_map.iter_rules() if "GET" in rule.methods}
    assert {"customers", "contacts", "directory", "bulk-import", "wizard", "customer_computers",
            "api_customers"} <= gets


@pytest.mark.parametrize("role", ROLES)
def test_no_get_changes_a_row(app, session, role, new_customer, make_operator):
    make_operator("boss@example.com", role=OperatorRole.MAINTAINER, first_name="Mia")
    ids = build_world(new_customer, make_operator)
    more = more_world(session, ids, new_customer)
    browser = Browserless(app.test_client())
    api = Api(app.test_client(), None)
    uploads: tuple[str, ...] = ()
    if role != "anonymous":
        assert browser.login(EMAILS[role]).status_code == 302  # a sign-in is a POST: before the walk
        operator = session.scalars(select(Operator).filter_by(email=EMAILS[role])).one()
        api = Api(app.test_client(), token_of(session, operator))
        uploads = uploaded(browser, role)
    session.commit()  # the test's own reads end here: the walk reads on connections of its own

    gets = [url for _, method, url, _ in requests_for(app, ids) if method == "GET"]
    gets += extra_gets(ids, more, uploads)
    failures, answered = [], {}
    before = snapshot()
    for url in gets:
        response = browser.get(url)
        answered[url] = response.status_code
        assert response.status_code < 500, f"{role} GET {url}: {response.status_code}"
        after = snapshot()
        failures += [f"{role} GET {url} changed {what}" for what in changed(before, after)]
        before = after
    for url in api_gets(ids, more):
        response = api.get(url)
        answered[f"/api/v1{url}"] = response.status_code
        assert response.status_code < 500, f"{role} GET /api/v1{url}: {response.status_code}"
        after = snapshot()
        failures += [f"{role} GET /api/v1{url} changed {what}" for what in changed(before, after)]
        before = after
    assert not failures, "\n".join(failures)
    # The walk reached the pages, not only refusals (a broken sign-in or token would pass above).
    customer, mine = ids["customer"], role in ("insider", "maintainer")
    wanted = {f"/admin/customers/computers-tab/?id={customer}": 200 if mine else 404,
              f"/api/v1/customers/{customer}": 200 if mine else 404,
              f"/admin/customers/wizard/{more['draft']}/summary": 200 if role == "insider" else 404,
              f"/admin/directory/details/?id={more['source']}": 200 if role == "maintainer" else 403,
              **{f"/admin/customers/import/result/{token}": 200 for token in uploads[1:]}}
    if role == "anonymous":
        wanted = {url: 401 if url.startswith("/api/") else 302 for url in wanted}
    assert {url: answered[url] for url in wanted} == wanted
