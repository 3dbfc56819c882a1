"""Attacks on issue 18's merge of two customers and on the users' words of History, the audit
trail and the merge pages, as a hostile operator and a confused user make them: forged POSTs,
stale tabs, real concurrent requests against a served app, values that break rendering, secrets
on pages, GETs that write. A test marked xfail(strict) shows a bug that is still there (its
reason says it in one line); the others are attacks that held and guard against their return.
Both databases (the `app` fixture runs each test on SQLite and on PostgreSQL)."""

from __future__ import annotations

import itertools
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from flask import Flask
from sqlalchemy import select

from extensions import db
from models import AuditEvent, Contact, Customer, GlobalSettings, Request, Team
from models.enums import CustomerKind, OperatorRole
from services.contacts import save_contact
from services.customer_settings import save_customer_settings
from services.customers import SaveOptions, create_customer, update_customer
from services.merge import merge_customers, undo_merge
from services.operators import create_operator
from services.portal import create_portal_account
from services.reference_data import ensure_reference_data
from services.transactions import unit_of_work
from tests.attack18_helpers import (
    MERGE,
    aged,
    hidden,
    html_of,
    merge_events,
    merge_form,
    merge_url,
    raw_event,
    text,
)
from tests.conftest import PASSWORD, Browserless, make_app, migrate_to_head, written
from tests.served_app import Served, WebClient, last_line, served
from tests.test_get_never_writes import changed, snapshot

SCRIPT = '<script>alert("x")</script>'
IMG = '<img src=x onerror=alert(1)>'


def box_of(app):
    return app.extensions["secret_box"]


def merged(app, session, actor, survivor, other, **kw):
    return written(session, lambda: merge_customers(session, actor, survivor, other, box_of(app),
                                                    choices=kw.get("choices", {}),
                                                    decisions=kw.get("decisions", {})))


@pytest.fixture
def twins(session, new_customer, operator):
    """Two records of one person, both assigned to `operator`: the older one fuller."""
    older = aged(session, new_customer(kind=CustomerKind.PERSON, first_name="Ján", last_name="Šťastný",
                                       email="jan@example.sk", title="Accountant", operators=[operator]), 40)
    newer = new_customer(kind=CustomerKind.PERSON, first_name="Ján", last_name="Šťastný",
                         primary_phone="0903 123 456", operators=[operator])
    return older, newer


def state(session, *customers) -> list[tuple]:
    session.expire_all()
    return [(c.id, session.get(Customer, c.id).merged_into_id, session.get(Customer, c.id).version)
            for c in customers]


# --- forged POSTs ---------------------------------------------------------------------------------

def test_keep_naming_a_third_customer_merges_only_the_two_named(operator_client, session, twins,
                                                                new_customer, operator):
    older, newer = twins
    third = new_customer(kind=CustomerKind.PERSON, first_name="Ján", last_name="Tretí", operators=[operator])
    page = html_of(operator_client.get(merge_url(newer.id, older.id)))
    form = merge_form(page, keep=str(third.id))
    answer = operator_client.submit(merge_url(newer.id, older.id, keep=third.id), form)
    assert answer.status_code == 302, text(answer)[:800]
    session.expire_all()
    assert session.get(Customer, third.id).merged_into_id is None
    assert session.get(Customer, third.id).version == third.version
    assert session.get(Customer, newer.id).merged_into_id == older.id  # the proposal: the older stays


def test_a_survivor_or_other_forged_as_a_third_customers_id_is_refused(operator_client, session, twins,
                                                                        new_customer, operator):
    """The form's hidden survivor/other swapped for a third record the page never showed: the
    versions posted are those of the two shown, so the third is refused as changed meanwhile."""
    older, newer = twins
    third = new_customer(kind=CustomerKind.PERSON, first_name="Jana", last_name="Iná", operators=[operator])
    for n in range(3):  # its version is past the posted ones
        third.notes = f"edited {n}"
        session.commit()
    page = html_of(operator_client.get(merge_url(newer.id, older.id)))
    form = merge_form(page, survivor=str(third.id), keep=str(third.id))
    answer = operator_client.submit(MERGE, form)
    assert answer.status_code in (200, 409), text(answer)[:800]
    assert merge_events(session) == []


@pytest.mark.parametrize("query", [
    "survivor={a}&other=999999", "survivor={a}&other=99999999999999999999", "survivor={a}&other=-1",
    "survivor={a}&other=abc", "survivor={a}&other=%EF%BC%91", "survivor=&other={b}",
    "survivor={a}&other={b}&keep=99999999999999999999", "survivor={a}&other={b}&keep=-5",
    "survivor={a}&other={b}&keep=abc", "survivor=0&other={b}",
])
def test_ids_out_of_range_answer_a_page_not_a_500(maintainer_client, session, twins, query):
    older, newer = twins
    url = MERGE + "?" + query.format(a=older.id, b=newer.id)
    answer = maintainer_client.get(url)
    assert answer.status_code in (200, 404, 409), (url, answer.status_code)
    assert "Traceback" not in text(answer)
    posted = maintainer_client.submit(MERGE + "?survivor=" + str(older.id), {}, post_url=url)
    assert posted.status_code in (200, 302, 404, 409), (url, posted.status_code)
    assert merge_events(session) == []


def test_merging_a_record_with_itself_is_refused_with_words(maintainer_client, session, twins):
    older, _newer = twins
    answer = maintainer_client.get(merge_url(older.id, older.id))
    assert answer.status_code == 409 and "two different customers" in text(answer)
    form = {"survivor": older.id, "other": older.id, "keep": older.id, "survivor_version": older.version,
            "other_version": older.version}
    posted = maintainer_client.submit(merge_url(older.id, older.id), form,
                                      post_url=merge_url(older.id, older.id))
    assert posted.status_code == 409 and merge_events(session) == []


def test_merge_without_the_csrf_token_writes_nothing(maintainer_client, session, twins):
    older, newer = twins
    page = html_of(maintainer_client.get(merge_url(newer.id, older.id)))
    form = merge_form(page)
    answer = maintainer_client.post(merge_url(newer.id, older.id), data=form)
    assert answer.status_code == 400
    assert merge_events(session) == []


def test_a_customer_the_operator_may_not_see_cannot_be_merged_in(operator_client, session, twins,
                                                                 new_customer, make_operator):
    older, newer = twins
    stranger = make_operator("stranger@example.com")
    hidden_one = new_customer(kind=CustomerKind.PERSON, first_name="Ján", last_name="Šťastný",
                              notes="Private to stranger", operators=[stranger])
    before = state(session, older, newer, hidden_one)
    for url in (merge_url(older.id, hidden_one.id), merge_url(hidden_one.id, older.id),
                merge_url(older.id, newer.id, keep=hidden_one.id)):
        page = operator_client.get(url)
        assert "Private to stranger" not in html_of(page)
    answer = operator_client.get(merge_url(older.id, hidden_one.id))
    assert answer.status_code == 404
    form = {"survivor": older.id, "other": hidden_one.id, "keep": older.id,
            "survivor_version": older.version, "other_version": hidden_one.version}
    posted = operator_client.submit(merge_url(older.id, newer.id), form,
                                    post_url=merge_url(older.id, hidden_one.id))
    assert posted.status_code == 404
    assert state(session, older, newer, hidden_one) == before


def test_a_customer_the_operator_may_view_but_not_edit_cannot_be_merged(app, session, operator_client,
                                                                         twins, new_customer,
                                                                         make_operator, operator):
    older, _newer = twins
    colleague = make_operator("colleague@example.com")
    team = Team(name="Helpdesk")
    session.add(team)
    colleague.teams.append(team)
    operator.teams.append(team)
    rights = session.get(GlobalSettings, 1)
    rights.view_by_team_members = True
    session.commit()
    theirs = new_customer(kind=CustomerKind.PERSON, first_name="Ján", last_name="Šťastný",
                          operators=[colleague])
    assert operator_client.get(f"/admin/customers/overview/?id={theirs.id}").status_code == 200
    before = state(session, older, theirs)
    answer = operator_client.get(merge_url(older.id, theirs.id))
    assert answer.status_code == 403
    form = {"survivor": older.id, "other": theirs.id, "keep": older.id,
            "survivor_version": older.version, "other_version": theirs.version}
    assert operator_client.submit(merge_url(older.id, older.id), form,
                                  post_url=merge_url(older.id, theirs.id)).status_code == 403
    assert state(session, older, theirs) == before


def test_forged_field_choices_and_fields_not_on_the_page_are_ignored(maintainer_client, session, twins):
    older, newer = twins
    page = html_of(maintainer_client.get(merge_url(newer.id, older.id)))
    form = merge_form(page, field_email="other", field_title="OTHER", field_primary_phone="third",
                      field_kind="other", field_id="other", field_merged_into_id="other",
                      field_directory_guid="other", field_created_by_id="other", field_version="other")
    answer = maintainer_client.submit(merge_url(newer.id, older.id), form)
    assert answer.status_code == 302, text(answer)[:800]
    session.expire_all()
    kept = session.get(Customer, older.id)
    assert kept.kind == CustomerKind.PERSON and kept.merged_into_id is None
    assert kept.title == "Accountant"  # a side that is neither keeps the survivor's value


def test_undecided_or_forged_decisions_are_refused_on_the_page(app, maintainer_client, session, twins,
                                                               maintainer):
    older, newer = twins
    for customer, password in ((older, "first-agent-pass"), (newer, "second-agent-pass")):
        written(session, lambda c=customer, p=password: save_customer_settings(
            session, c, maintainer, box_of(app), {"cmonitor_password": p}))
    page = html_of(maintainer_client.get(merge_url(newer.id, older.id)))
    assert 'name="decide_cmonitor_password"' in page
    form = merge_form(page, decide_cmonitor_password="both")
    answer = maintainer_client.submit(merge_url(newer.id, older.id), form)
    assert answer.status_code == 200 and "C-Monitor access passwords" in text(answer)
    assert merge_events(session) == []


# --- stale pages: two tabs -------------------------------------------------------------------------

def test_the_second_tab_merging_the_same_pair_again_is_told_and_writes_nothing(maintainer_client, session,
                                                                               twins):
    older, newer = twins
    first = html_of(maintainer_client.get(merge_url(newer.id, older.id)))
    second = html_of(maintainer_client.get(merge_url(older.id, newer.id, keep=newer.id)))  # swapped
    third = html_of(maintainer_client.get(merge_url(older.id, newer.id)))
    done = maintainer_client.submit(merge_url(newer.id, older.id), merge_form(first))
    assert done.status_code == 302
    for page, url in ((second, merge_url(older.id, newer.id, keep=newer.id)),
                      (third, merge_url(older.id, newer.id))):
        again = maintainer_client.submit(url, merge_form(page))
        assert again.status_code in (200, 409), again.status_code
        assert "already merged" in text(again) or "changed" in text(again)
    assert len(merge_events(session)) == 1
    assert session.get(Customer, newer.id).merged_into_id == older.id


def test_a_merge_after_someone_edited_the_survivor_is_refused_with_who_and_what(
        maintainer_client, session, twins, operator):
    older, newer = twins
    page = html_of(maintainer_client.get(merge_url(newer.id, older.id)))
    written(session, lambda: update_customer(session, older, operator, SaveOptions("SK"),
                                             {"title": "Head of accounting"}, seen_version=older.version))
    answer = maintainer_client.submit(merge_url(newer.id, older.id), merge_form(page))
    assert answer.status_code == 200, answer.status_code
    words = text(answer)
    assert "changed while you were editing" in words and "olga@example.com" in words and "Title" in words
    assert merge_events(session) == []
    assert session.get(Customer, older.id).title == "Head of accounting"


def test_a_merge_after_someone_edited_the_other_record_is_refused(maintainer_client, session, twins,
                                                                  operator):
    older, newer = twins
    page = html_of(maintainer_client.get(merge_url(newer.id, older.id)))
    written(session, lambda: update_customer(session, newer, operator, SaveOptions("SK"),
                                             {"notes": "Call after 5 pm"}, seen_version=newer.version))
    answer = maintainer_client.submit(merge_url(newer.id, older.id), merge_form(page))
    assert answer.status_code == 200 and "changed while you were editing" in text(answer)
    assert merge_events(session) == []


def test_a_merge_post_without_versions_is_refused(maintainer_client, session, twins):
    older, newer = twins
    page = html_of(maintainer_client.get(merge_url(newer.id, older.id)))
    form = merge_form(page)
    form.pop("survivor_version")
    form["other_version"] = "abc"
    answer = maintainer_client.submit(merge_url(newer.id, older.id), form)
    assert answer.status_code in (200, 409) and merge_events(session) == []


# --- undo --------------------------------------------------------------------------------------

def test_undo_by_a_non_maintainer_forged_post_is_403(app, session, operator_client, twins, maintainer):
    older, newer = twins
    event = merged(app, session, maintainer, older, newer)
    page = html_of(operator_client.get(f"/admin/customers/merge/done/{event.id}"))
    assert "Undo the merge" not in page
    answer = operator_client.submit(f"/admin/customers/merge/done/{event.id}", {},
                                    post_url=f"/admin/customers/merge/undo/{event.id}")
    assert answer.status_code == 403
    assert session.get(Customer, newer.id).merged_into_id == older.id


def test_undo_of_a_non_merge_event_or_a_get_of_undo_writes_nothing(app, session, maintainer_client, twins,
                                                                    maintainer):
    older, newer = twins
    event = merged(app, session, maintainer, older, newer)
    other_event = session.scalar(select(AuditEvent).where(AuditEvent.action == "merged_into"))
    before = snapshot()
    assert maintainer_client.get(f"/admin/customers/merge/undo/{event.id}").status_code == 405
    for event_id in (other_event.id, 2**31 - 1, 2**40):
        answer = maintainer_client.submit("/admin/customers/", {},
                                          post_url=f"/admin/customers/merge/undo/{event_id}")
        assert answer.status_code == 404
    assert changed(before, snapshot()) == []


def test_undo_twice_from_two_tabs_is_told_not_a_500(app, session, maintainer_client, twins, maintainer):
    older, newer = twins
    event = merged(app, session, maintainer, older, newer)
    done = f"/admin/customers/merge/done/{event.id}"
    page1, page2 = html_of(maintainer_client.get(done)), html_of(maintainer_client.get(done))
    assert "Undo the merge" in page1 and "Undo the merge" in page2
    first = maintainer_client.post(f"/admin/customers/merge/undo/{event.id}",
                                   data={"csrf_token": hidden(page1, "csrf_token")})
    assert first.status_code == 302
    second = maintainer_client.post(f"/admin/customers/merge/undo/{event.id}",
                                    data={"csrf_token": hidden(page2, "csrf_token")})
    assert second.status_code == 302
    shown = text(maintainer_client.get(second.headers["Location"]))
    assert "can still be undone" in shown or "was undone" in shown
    assert len(session.scalars(select(AuditEvent).where(AuditEvent.action == "unmerge")).all()) == 1


def test_undo_leaves_alone_a_contact_moved_to_a_third_company_after_the_merge(app, session, maintainer,
                                                                              new_customer):
    acme = new_customer(kind=CustomerKind.COMPANY, company_name="Acme",
                        contacts=[{"first_name": "Mia", "last_name": "Main", "email": "mia@acme.sk",
                                   "is_main": True}])
    acme2 = new_customer(kind=CustomerKind.COMPANY, company_name="Acme s.r.o.", contacts=[
        {"first_name": "Nora", "last_name": "Nová", "email": "nora@acme.sk", "is_main": True},
        {"first_name": "Cyril", "last_name": "Contact", "email": "cyril@acme.sk"}])
    beta = new_customer(kind=CustomerKind.COMPANY, company_name="Beta")
    event = merged(app, session, maintainer, acme, acme2)
    cyril = session.scalar(select(Contact).where(Contact.email == "cyril@acme.sk"))
    cyril.customer = session.get(Customer, beta.id)  # Cyril now works for Beta
    written(session, lambda: save_contact(session, cyril, maintainer, "SK"))
    written(session, lambda: undo_merge(session, maintainer, session.get(AuditEvent, event.id)))
    session.expire_all()
    assert session.scalar(select(Contact.customer_id).where(Contact.email == "cyril@acme.sk")) == beta.id


def test_undo_gives_back_the_notes_exactly_as_they_were(app, session, maintainer, new_customer):
    token = "gAAAAA" + "B" * 80
    older = aged(session, new_customer(kind=CustomerKind.PERSON, first_name="Eva", last_name="Malá",
                                       notes=f"Licence key {token}", email="eva@example.sk"), 10)
    newer = new_customer(kind=CustomerKind.PERSON, first_name="Eva", last_name="Malá", notes="Newer notes")
    event = merged(app, session, maintainer, older, newer, choices={"notes": "other"})
    written(session, lambda: undo_merge(session, maintainer, session.get(AuditEvent, event.id)))
    session.expire_all()
    assert session.get(Customer, older.id).notes == f"Licence key {token}"


# --- managers ---------------------------------------------------------------------------------

def manager_loop(session, start: Customer) -> list[int]:
    """The chain of managers from `start` until it ends or repeats (the repeat included)."""
    session.expire_all()
    chain, current = [start.id], session.get(Customer, start.id).manager_id
    while current is not None and current not in chain:
        chain.append(current)
        current = session.get(Customer, current).manager_id
    return chain + ([current] if current is not None else [])


def test_a_merge_never_makes_a_loop_of_managers_through_moved_reports(app, session, maintainer,
                                                                      new_customer):
    survivor = aged(session, new_customer(kind=CustomerKind.PERSON, first_name="Ema", last_name="Vrchná",
                                          email="ema@example.sk", title="Director"), 30)
    other = new_customer(kind=CustomerKind.PERSON, first_name="Ema", last_name="Vrchná")
    middle = new_customer(kind=CustomerKind.PERSON, first_name="Ivo", last_name="Stredný")
    middle.manager_id = other.id
    survivor.manager_id = middle.id
    session.commit()
    merged(app, session, maintainer, session.get(Customer, survivor.id), session.get(Customer, other.id))
    chain = manager_loop(session, survivor)
    assert len(chain) == len(set(chain)), f"managers loop: {chain}"


def test_taking_the_other_records_manager_never_makes_a_loop(app, session, maintainer, new_customer):
    survivor = aged(session, new_customer(kind=CustomerKind.PERSON, first_name="Ema", last_name="Vrchná",
                                          email="ema@example.sk", title="Director"), 30)
    other = new_customer(kind=CustomerKind.PERSON, first_name="Ema", last_name="Vrchná")
    deputy = new_customer(kind=CustomerKind.PERSON, first_name="Ivo", last_name="Zástupca")
    deputy.manager_id = survivor.id
    other.manager_id = deputy.id
    session.commit()
    try:
        merged(app, session, maintainer, session.get(Customer, survivor.id), session.get(Customer, other.id),
               choices={"manager_id": "other"})
    except Exception:  # noqa: BLE001 — a refusal with words would do
        return
    chain = manager_loop(session, survivor)
    assert len(chain) == len(set(chain)), f"managers loop: {chain}"


# --- rendering: markup, odd stored shapes, huge values --------------------------------------------

def assert_escaped(html: str) -> None:
    assert SCRIPT not in html and IMG not in html, "markup of a stored value reached the page raw"
    assert "<script>alert" not in html


def test_markup_in_names_and_values_is_escaped_on_every_merge_and_history_page(app, session,
                                                                               maintainer_client,
                                                                               maintainer, new_customer):
    older = aged(session, new_customer(kind=CustomerKind.COMPANY, company_name=f"Acme {SCRIPT}",
                                       email="office@acme.sk", notes=IMG, vat_id="SK2020111222",
                                       contacts=[{"first_name": SCRIPT, "last_name": IMG,
                                                  "email": "x@acme.sk", "is_main": True}]), 10)
    newer = new_customer(kind=CustomerKind.COMPANY, company_name=f"Acme {IMG}", notes=SCRIPT,
                         vat_id="SK2020333444", location_code=IMG)
    pages = [merge_url(newer.id, older.id), merge_url(older.id, newer.id, keep=newer.id),
             f"{MERGE}?survivor={older.id}&q=Acme"]
    for url in pages:
        answer = maintainer_client.get(url)
        assert answer.status_code == 200, url
        assert_escaped(html_of(answer))
    page = html_of(maintainer_client.get(merge_url(newer.id, older.id)))
    done = maintainer_client.submit(merge_url(newer.id, older.id), merge_form(page, field_notes="other",
                                                                               field_vat_id="other"))
    assert done.status_code == 302
    for url in (done.headers["Location"], f"/admin/customers/history/?id={older.id}", "/admin/audit/",
                f"/admin/audit/details/?id={merge_events(session)[0].id}"):
        answer = maintainer_client.get(url)
        assert answer.status_code == 200, url
        assert_escaped(html_of(answer))
    undo = maintainer_client.submit(done.headers["Location"], {},
                                    post_url=done.headers["Location"].replace("/done/", "/undo/"))
    assert undo.status_code == 302
    after = maintainer_client.get(undo.headers["Location"])
    assert_escaped(html_of(after))


ODD_SHAPES = [
    ["a", "list", "at", "the", "top"],
    "just a text",
    42,
    True,
    {"title": ["one", "two", "three"]},
    {"title": [SCRIPT, IMG]},
    {"notes": {"nested": {"deeper": [1, {"x": SCRIPT}]}}},
    {"": ["", None]},
    {"123": [1, 2]},
    {"photo": ["a.jpg", "b.jpg"]},
    {"photo": [None, {"odd": True}]},
    {"merged": "not a pair"},
    {"merged_into": [None]},
    {"undo": "x", "title": [None, "Boss"]},
    {"status": [None, ["a", "b"]]},
    {"primary_phone": ["+999 not a phone", "+"]},
    {"primary_phone": ["+4219" + "0" * 5000, "+1"]},
    {"employee_type": ["no such member", "employee"]},
    {"created_at": ["2024-02-30T10:00:00", "2024-13-01"]},
    {"notes": [None, "x" * 100_000]},
    {"workgroups": [[], [SCRIPT, None, 3, {"a": 1}]]},
    {"manager": [{"id": 3}, [1, [2, [3]]]]},
]


@pytest.mark.parametrize("changes", ODD_SHAPES, ids=[f"shape{i}" for i in range(len(ODD_SHAPES))])
def test_any_stored_shape_of_changes_renders_escaped_on_history_and_the_audit_trail(
        maintainer_client, session, new_customer, changes):
    customer = new_customer(kind=CustomerKind.PERSON, first_name="Oto", last_name="Odd")
    event_id = raw_event("customer", customer.id, changes, label=SCRIPT, actor_label=IMG)
    for url in (f"/admin/customers/history/?id={customer.id}", "/admin/audit/",
                f"/admin/audit/details/?id={event_id}"):
        answer = maintainer_client.get(url)
        assert answer.status_code == 200, (url, text(answer)[:500])
        assert_escaped(html_of(answer))


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59", "0001-01-01T00:00:00+14:00",
                                   "9999-12-31 23:30"])
def test_text_that_looks_like_an_extreme_time_does_not_break_history(app, session, maintainer_client,
                                                                     maintainer, new_customer, value):
    customer = new_customer(kind=CustomerKind.PERSON, first_name="Tina", last_name="Time")
    written(session, lambda: update_customer(session, customer, maintainer, SaveOptions("SK"),
                                             {"notes": value}, seen_version=customer.version))
    assert maintainer_client.get(f"/admin/customers/history/?id={customer.id}").status_code == 200
    assert maintainer_client.get("/admin/audit/").status_code == 200


def test_notes_that_look_like_a_time_are_shown_as_typed(session, maintainer_client, maintainer,
                                                        new_customer):
    customer = new_customer(kind=CustomerKind.PERSON, first_name="Tina", last_name="Time")
    written(session, lambda: update_customer(session, customer, maintainer, SaveOptions("SK"),
                                             {"notes": "2024-05-01 10:00"}, seen_version=customer.version))
    history = text(maintainer_client.get(f"/admin/customers/history/?id={customer.id}"))
    assert "10:00" in history, history[-600:]


def test_a_huge_value_renders(session, maintainer_client, maintainer, new_customer):
    customer = new_customer(kind=CustomerKind.PERSON, first_name="Hugo", last_name="Huge")
    huge = "Ž" * 60_000
    written(session, lambda: update_customer(session, customer, maintainer, SaveOptions("SK"),
                                             {"notes": huge}, seen_version=customer.version))
    for url in (f"/admin/customers/history/?id={customer.id}", "/admin/audit/"):
        assert maintainer_client.get(url).status_code == 200


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "", " ", "Europe/"])
def test_an_invalid_time_zone_on_the_operator_does_not_break_the_pages(app, session, maintainer,
                                                                       twins, zone):
    older, newer = twins
    maintainer.time_zone = zone
    session.commit()
    client = Browserless(app.test_client())
    assert client.login(maintainer.email).status_code == 302
    event = merged(app, session, maintainer, older, newer)
    for url in (f"/admin/customers/history/?id={older.id}", "/admin/audit/",
                f"/admin/audit/details/?id={event.id}", f"/admin/customers/merge/done/{event.id}",
                f"{MERGE}?survivor={older.id}&q=Ján"):
        assert client.get(url).status_code == 200, url


def test_a_phone_that_does_not_parse_is_shown_as_stored(session, maintainer_client, new_customer):
    customer = new_customer(kind=CustomerKind.PERSON, first_name="Pavol", last_name="Phone")
    raw_event("customer", customer.id, {"primary_phone": ["+421 903", "+99999999999999999999999"]})
    history = text(maintainer_client.get(f"/admin/customers/history/?id={customer.id}"))
    assert "Primary phone" in history and "+99999999999999999999999" in history


# --- secrets -----------------------------------------------------------------------------------

SECRETS = ("agent-secret-pass-1", "agent-secret-pass-2", "pop3-secret-pass", "smtp-secret-pass",
           "portal-secret-pass-1", "portal-secret-pass-2")


def assert_no_secret(html: str) -> None:
    for secret in SECRETS:
        assert secret not in html, f"{secret} on the page"
    assert "gAAAAA" not in html, "ciphertext on the page"
    for hash_mark in ("$argon2", "pbkdf2", "$2b$"):
        assert hash_mark not in html, "a password hash on the page"


def test_no_secret_on_history_the_audit_trail_or_the_merge_pages(app, session, maintainer_client,
                                                                 maintainer, twins):
    older, newer = twins
    box = box_of(app)
    for customer, agent, portal in ((older, SECRETS[0], SECRETS[4]), (newer, SECRETS[1], SECRETS[5])):
        written(session, lambda c=customer, a=agent, p=portal: (
            save_customer_settings(session, c, maintainer, box, {
                "cmonitor_password": a, "use_builtin_mail_servers": False,
                "pop3_host": "pop.example.sk", "pop3_username": "desk", "pop3_password": SECRETS[2],
                "smtp_primary_host": "smtp.example.sk", "smtp_primary_username": "desk",
                "smtp_primary_password": SECRETS[3]}),
            create_portal_account(session, c, maintainer, username=f"portal-{c.id}", password=p,
                                  security_group=None)))
    page = maintainer_client.get(merge_url(newer.id, older.id))
    html = html_of(page)
    assert_no_secret(html)
    done = maintainer_client.submit(merge_url(newer.id, older.id), merge_form(
        html, decide_portal="other", decide_cmonitor_password="other"))
    assert done.status_code == 302, text(done)[:800]
    event = merge_events(session)[0]
    urls = [done.headers["Location"], f"/admin/customers/history/?id={older.id}", "/admin/audit/",
            f"/admin/audit/details/?id={event.id}", "/admin/audit/?flt0_0=customersettings"]
    urls += [f"/admin/audit/details/?id={e.id}" for e in session.scalars(select(AuditEvent))]
    for url in urls:
        answer = maintainer_client.get(url)
        assert answer.status_code == 200, url
        assert_no_secret(html_of(answer))
    history = text(maintainer_client.get(f"/admin/customers/history/?id={older.id}"))
    assert "C-Monitor access password" in history and "changed" in history


@pytest.mark.parametrize("entity_type,changes", [
    ("portalaccount", {"password_hash": ["$argon2id$v=19$m=65536$old", "$argon2id$v=19$m=65536$new"]}),
    ("customersettings", {"cmonitor_password_encrypted": [None, "gAAAAA" + "x" * 80]}),
    ("customersettings", {"smtp_primary_password": ["smtp-secret-pass", None]}),
    ("customer", {"portal_account": {"username": "eva", "password_hash": "$argon2id$v=19$deep"}}),
    ("customer", {"settings": [{"pop3_password": "pop3-secret-pass"}, None]}),
    ("customer", {"credentials": ["portal-secret-pass-1", "portal-secret-pass-2"]}),
])
def test_secrets_an_older_event_stored_raw_still_show_as_changed(session, maintainer_client, new_customer,
                                                                 entity_type, changes):
    customer = new_customer(kind=CustomerKind.PERSON, first_name="Sára", last_name="Secret")
    event_id = raw_event(entity_type, customer.id, changes)
    for url in ("/admin/audit/", f"/admin/audit/details/?id={event_id}"):
        answer = maintainer_client.get(url)
        assert answer.status_code == 200
        assert_no_secret(html_of(answer))


def test_ciphertext_under_a_plain_field_of_an_older_event_is_not_shown(session, maintainer_client,
                                                                       new_customer):
    customer = new_customer(kind=CustomerKind.PERSON, first_name="Sára", last_name="Secret")
    event_id = raw_event("customersettings", customer.id, {"cmonitor": [None, "gAAAAA" + "y" * 80]})
    assert "gAAAAA" not in html_of(maintainer_client.get(f"/admin/audit/details/?id={event_id}"))


# --- GETs never write --------------------------------------------------------------------------

def test_the_merge_history_and_audit_pages_write_nothing_on_get(app, session, maintainer_client, maintainer,
                                                                operator_client, new_customer):
    older = aged(session, new_customer(kind=CustomerKind.COMPANY, company_name="Gama", vat_id="SK1111111111",
                                       registration_number="11111111"), 5)
    newer = new_customer(kind=CustomerKind.COMPANY, company_name="Gama", vat_id="SK2222222222")
    third = new_customer(kind=CustomerKind.COMPANY, company_name="Gama Three")
    fourth = new_customer(kind=CustomerKind.COMPANY, company_name="Gama Four")
    event = merged(app, session, maintainer, third, fourth)
    before = snapshot()
    for url in (merge_url(newer.id, older.id), merge_url(older.id, newer.id, keep=newer.id),
                merge_url(older.id, newer.id, keep=third.id), f"{MERGE}?survivor={older.id}&q=Gama",
                f"/admin/customers/merge/done/{event.id}", f"/admin/customers/history/?id={older.id}",
                f"/admin/customers/history/?id={third.id}", "/admin/audit/",
                f"/admin/audit/details/?id={event.id}", merge_url(third.id, fourth.id),
                merge_url(fourth.id, older.id)):
        maintainer_client.get(url)
        operator_client.get(url)
    assert changed(before, snapshot()) == []


# --- the pages a confused user meets -----------------------------------------------------------

def test_the_pick_list_offers_no_merged_away_record(app, session, maintainer_client, maintainer,
                                                    new_customer):
    first = new_customer(kind=CustomerKind.PERSON, first_name="Rudo", last_name="Pick", email="r1@example.sk")
    second = new_customer(kind=CustomerKind.PERSON, first_name="Rudo", last_name="Pick")
    third = new_customer(kind=CustomerKind.PERSON, first_name="Rudo", last_name="Pick")
    merged(app, session, maintainer, first, second)
    page = html_of(maintainer_client.get(f"{MERGE}?survivor={third.id}&q=Pick"))
    assert f"other={second.id}" not in page.replace("&amp;", "&")
    assert f"other={first.id}" in page.replace("&amp;", "&")


def test_the_result_page_of_an_earlier_merge_still_opens_after_a_later_merge(app, session,
                                                                            maintainer_client,
                                                                            maintainer, new_customer):
    first = new_customer(kind=CustomerKind.PERSON, first_name="Rudo", last_name="Chain")
    second = new_customer(kind=CustomerKind.PERSON, first_name="Rudo", last_name="Chain")
    third = new_customer(kind=CustomerKind.PERSON, first_name="Rudo", last_name="Chain")
    event = merged(app, session, maintainer, second, first)
    merged(app, session, maintainer, third, session.get(Customer, second.id))
    answer = maintainer_client.get(f"/admin/customers/merge/done/{event.id}")
    assert answer.status_code in (200, 302), (answer.status_code, text(answer)[:400])


def test_the_result_page_does_not_claim_a_cleared_manager_was_taken(app, session, maintainer_client,
                                                                    maintainer, new_customer):
    boss = aged(session, new_customer(kind=CustomerKind.PERSON, first_name="Marek", last_name="Šéf",
                                      email="marek@example.sk", title="Director"), 10)
    employee = new_customer(kind=CustomerKind.PERSON, first_name="Marek", last_name="Šéf", manager=boss)
    page = html_of(maintainer_client.get(merge_url(boss.id, employee.id, keep=employee.id)))
    done = maintainer_client.submit(merge_url(boss.id, employee.id, keep=employee.id), merge_form(page))
    assert done.status_code == 302
    result = text(maintainer_client.get(done.headers["Location"]))
    taken = re.search(r"Values taken from the merged record: (.*?) Contacts moved", result).group(1)
    assert "Manager" not in taken, result


# --- real concurrency: a served app, threads that press Merge / Undo at the same moment ---------

RACE_BOSS = "merge.race@example.com"
ROUNDS = 4


@dataclass
class RaceDesk:
    app: Flask = field(repr=False)
    server: Served = field(repr=False)
    clients: list[WebClient] = field(repr=False)
    tags: itertools.count = field(default_factory=lambda: itertools.count(1))

    def people(self, count: int) -> list[int]:
        """`count` records of one person (their own name each time), oldest first; their ids."""
        tag = next(self.tags)
        with self.app.app_context():
            try:
                with unit_of_work(db.session):
                    made = [create_customer(db.session, None, SaveOptions("SK"), kind=CustomerKind.PERSON,
                                            first_name="Race", last_name=f"Twin {tag}",
                                            email=f"twin.{tag}.{n}@example.sk", confirm_duplicate=True,
                                            contacts=[])
                            for n in range(count)]
                return [c.id for c in made]
            finally:
                db.session.remove()

    def read(self, call):
        """`call()` in a session of its own, closed at once (SQLite: no read holding writers)."""
        with self.app.app_context():
            try:
                return call(db.session)
            finally:
                db.session.remove()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def race_desk(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('merge-race') / 'desk.db'}"
    else:
        url = request.getfixturevalue("postgres_cluster").create_database("attack18_merge_race")
    migrate_to_head(url)
    app = make_app(url)
    with app.app_context():
        with unit_of_work(db.session):
            ensure_reference_data(db.session)
            create_operator(db.session, email=RACE_BOSS, password=PASSWORD, first_name="Rita",
                            last_name="Race", role=OperatorRole.MAINTAINER)
        db.session.remove()
    try:
        with served(app) as server:
            clients = [WebClient(server.url) for _ in range(4)]
            try:
                for client in clients:
                    client.login(RACE_BOSS)
                    client.csrf()
                yield RaceDesk(app, server, clients)
            finally:
                for client in clients:
                    client.close()
    finally:
        with app.app_context():
            db.engine.dispose()


def at_once(sends: list) -> list:
    """Every `send()` at the same moment (one barrier); each answer, or the exception."""
    barrier = threading.Barrier(len(sends))

    def run(send):
        barrier.wait(timeout=120)
        try:
            return send()
        except Exception as exc:  # noqa: BLE001 — no answer is an outcome too
            return exc

    with ThreadPoolExecutor(max_workers=len(sends)) as pool:
        return list(pool.map(run, sends))


def prepared_merge(client: WebClient, survivor: int, other: int, keep: int | None = None):
    """The merge page opened in `client`'s browser; the send of its Merge button."""
    url = merge_url(survivor, other, keep)
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code, text(page)[:500])
    form = {**merge_form(page.text), "csrf_token": client.csrf()}
    return lambda: client.post(url, data=form)


def judged(desk: RaceDesk, answers: list, mark: int) -> tuple[int, list[str]]:
    """(merges answered as done, what went wrong: a 500, no answer, an unexpected status)."""
    wrong, done = [], 0
    for answer in answers:
        if isinstance(answer, Exception):
            wrong.append(f"no answer: {answer!r}")
        elif answer.status_code == 302 and "/merge/done/" in answer.headers.get("Location", ""):
            done += 1
        elif answer.status_code not in (200, 409) or "Traceback" in answer.text:
            wrong.append(f"{answer.status_code}: {text(answer)[:300]}")
    logged = desk.server.log.since(mark, at_least=0, timeout=0.5)
    wrong += [last_line(entry) for entry in logged]
    return done, wrong


def alive_children_on_tombstones(session) -> list[str]:
    """Contacts / requests left on a merged-away record, and records merged into a tombstone."""
    tombstones = select(Customer.id).where(Customer.merged_into_id.is_not(None))
    found = []
    for name, model in (("contact", Contact), ("request", Request)):
        rows = session.scalars(select(model.id).where(model.customer_id.in_(tombstones)))
        found += [f"{name} {i}" for i in rows]
    return found


@pytest.mark.parametrize("directions", ["same", "opposite"])
def test_two_merges_of_one_pair_at_once_make_one_merge(race_desk, directions):
    for _round in range(ROUNDS):
        older, newer = race_desk.people(2)
        first, second = race_desk.clients[:2]
        sends = [prepared_merge(first, newer, older),
                 prepared_merge(second, older, newer, keep=newer if directions == "opposite" else None)]
        mark = race_desk.server.log.mark()
        answers = at_once(sends)
        done, wrong = judged(race_desk, answers, mark)
        assert wrong == [], wrong
        assert done == 1, [a.status_code for a in answers]

        def check(session, pair=(older, newer)):
            rows = [session.get(Customer, i) for i in pair]
            merged_away = [c for c in rows if c.merged_into_id is not None]
            events = session.scalars(select(AuditEvent).where(
                AuditEvent.action == "merge", AuditEvent.entity_id.in_(pair))).all()
            return len(merged_away), len(events), [c.merged_into_id for c in rows]

        assert race_desk.read(check)[:2] == (1, 1), race_desk.read(check)


def test_a_chain_of_merges_at_once_leaves_nothing_on_a_tombstone(race_desk):
    """A←B and B←C pressed at the same moment: at most one goes through, or both in an order that
    leaves no record merged into a merged-away one."""
    for _round in range(ROUNDS):
        a, b, c = race_desk.people(3)

        def add_request(session, customer_id=c):
            with unit_of_work(session):
                session.add(Request(customer_id=customer_id, subject="Printer"))

        race_desk.read(add_request)
        sends = [prepared_merge(race_desk.clients[0], a, b, keep=a),
                 prepared_merge(race_desk.clients[1], b, c, keep=b)]
        mark = race_desk.server.log.mark()
        done, wrong = judged(race_desk, at_once(sends), mark)
        assert wrong == [], wrong
        assert done >= 1
        assert race_desk.read(alive_children_on_tombstones) == []


def merged_in_panel(desk: RaceDesk, survivor: int, other: int) -> str:
    """`other` merged into `survivor` through the panel; the result page's address."""
    done = prepared_merge(desk.clients[0], other, survivor, keep=survivor)()
    assert done.status_code == 302, text(done)[:500]
    return done.headers["Location"]


def failures(desk: RaceDesk, answers: list, mark: int) -> list[str]:
    """500s, requests without an answer, and what the server logged at ERROR."""
    wrong = [f"no answer: {a!r}" if isinstance(a, Exception) else f"{a.status_code}: {text(a)[:200]}"
             for a in answers if isinstance(a, Exception) or a.status_code >= 500]
    return wrong + [last_line(e) for e in desk.server.log.since(mark, at_least=0, timeout=0.5)]


@pytest.mark.parametrize("race", ["one record into two survivors", "undo while the survivor is merged on"])
def test_crossing_merges_and_undos_leave_nothing_on_a_tombstone(race_desk, race):
    for _round in range(ROUNDS):
        a, b, c = race_desk.people(3)

        def add_request(session, customer_id=b):
            with unit_of_work(session):
                session.add(Request(customer_id=customer_id, subject="Printer"))

        race_desk.read(add_request)
        if race == "one record into two survivors":
            sends = [prepared_merge(race_desk.clients[0], a, b, keep=a),
                     prepared_merge(race_desk.clients[1], c, b, keep=c)]
        else:
            done = merged_in_panel(race_desk, a, b)
            page = race_desk.clients[1].get(done)
            assert "Undo the merge" in page.text
            client = race_desk.clients[1]
            undo = done.replace("/done/", "/undo/")
            sends = [lambda c=client, u=undo: c.post(u, data={"csrf_token": c.csrf()}),
                     prepared_merge(race_desk.clients[0], c, a, keep=c)]
        mark = race_desk.server.log.mark()
        answers = at_once(sends)
        assert failures(race_desk, answers, mark) == []
        assert race_desk.read(alive_children_on_tombstones) == []


def test_two_undos_of_one_merge_at_once_undo_it_once(race_desk):
    for _round in range(ROUNDS):
        older, newer = race_desk.people(2)
        done = prepared_merge(race_desk.clients[0], newer, older)()
        assert done.status_code == 302, text(done)[:500]
        undo = done.headers["Location"].replace("/done/", "/undo/")
        sends = []
        for client in race_desk.clients[:2]:
            assert "Undo the merge" in client.get(done.headers["Location"]).text
            sends.append(lambda c=client, u=undo: c.post(u, data={"csrf_token": c.csrf()}))
        mark = race_desk.server.log.mark()
        answers = at_once(sends)
        assert failures(race_desk, answers, mark) == []

        def unmerges(session, pair=(older, newer)):
            return len(session.scalars(select(AuditEvent).where(
                AuditEvent.action == "unmerge", AuditEvent.entity_id.in_(pair))).all())

        assert race_desk.read(unmerges) == 1
