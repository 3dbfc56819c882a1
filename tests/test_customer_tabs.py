"""The per-customer edit page: one tab bar, each tab saving on its own with the access rules and
the version check of the domain."""

from __future__ import annotations

import pytest

from models import AuditEvent, Computer, Contact, Customer, Workgroup
from models.enums import CustomerKind
from tests.conftest import csrf_from
from tests.test_wizard import save, start, walk

TAB_LABELS = ["Overview", "Basic information", "Contacts", "C-Monitor", "Mail servers", "Notifications",
              "Requests by e-mail", "Operators", "Portal access", "Workgroups", "Computers", "Mail",
              "History"]


@pytest.fixture
def acme(new_customer, operator):
    return new_customer(kind=CustomerKind.COMPANY, company_name="ACME s.r.o.", operators=[operator],
                        contacts=[{"first_name": "Jana", "last_name": "Nová", "email": "jana@acme.sk",
                                   "is_main": True}])


def tab_urls(customer_id: int) -> list[str]:
    return [f"/admin/customers/overview/?id={customer_id}",
            f"/admin/customers/edit/?id={customer_id}", f"/admin/customers/contacts-tab/?id={customer_id}",
            *(f"/admin/customers/settings/?id={customer_id}&tab={t}"
              for t in ("cmonitor", "mail", "notifications", "requests")),
            f"/admin/customers/operators-tab/?id={customer_id}", f"/admin/customers/portal/?id={customer_id}",
            f"/admin/customers/workgroups-tab/?id={customer_id}",
            f"/admin/customers/computers-tab/?id={customer_id}",
            f"/admin/customers/mail-tab/?id={customer_id}",
            f"/admin/customers/history/?id={customer_id}"]


def test_every_tab_shows_the_same_tab_bar_with_itself_active(operator_client, acme):
    for url, label in zip(tab_urls(acme.id), TAB_LABELS, strict=True):
        page = operator_client.get(url).get_data(as_text=True)
        bar = page.split('data-testid="customer-tabs"')[1].split("</ul>")[0]
        assert [lbl for lbl in TAB_LABELS if f">{lbl}</a>" in bar] == TAB_LABELS, url
        active = bar.split('aria-current="page"')[1].split("</a>")[0]
        assert active.endswith(f">{label}"), url


def test_basic_information_no_longer_carries_contacts_operators_or_workgroups(maintainer_client, acme):
    page = maintainer_client.get(f"/admin/customers/edit/?id={acme.id}").get_data(as_text=True)
    assert 'name="company_name"' in page
    for name in ('name="operators"', 'name="workgroups"', "contacts-0-last_name"):
        assert name not in page


def test_add_contacts_to_a_company_with_messages_on_the_fields(operator_client, session, acme):
    url = f"/admin/customers/contacts-tab/?id={acme.id}"
    refused = operator_client.submit(url, {"first_name": "Peter", "last_name": "", "email": "not-an-email",
                                           "role": "contact"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 200
    assert "A contact needs a last name." in page and 'value="not-an-email"' in page
    assert session.query(Contact).filter_by(customer_id=acme.id).count() == 1

    added = operator_client.submit(url, {"first_name": "Peter", "last_name": "Malý", "email": "Peter@ACME.sk",
                                         "phone": "0903 123 456", "phone_type": "mobile", "role": "main"})
    assert added.status_code == 302
    session.expire_all()
    peter = session.query(Contact).filter_by(customer_id=acme.id, last_name="Malý").one()
    assert (peter.email, peter.phone, peter.is_main) == ("Peter@acme.sk", "+421903123456", True)
    listing = operator_client.get(url).get_data(as_text=True)
    assert "Peter Malý" in listing and "Main contact" in listing


def test_a_person_has_no_contacts_to_add(operator_client, session, new_customer, operator):
    person = new_customer(kind=CustomerKind.PERSON, first_name="Eva", last_name="Malá", operators=[operator])
    url = f"/admin/customers/contacts-tab/?id={person.id}"
    assert 'data-testid="person-no-contacts"' in operator_client.get(url).get_data(as_text=True)
    operator_client.submit(url, {"last_name": "Smuggled", "role": "main"})
    assert session.query(Contact).count() == 0


def test_only_a_maintainer_changes_operators_on_their_tab(maintainer_client, operator_client, session, acme,
                                                          operator, make_operator):
    friend = make_operator("friend@example.com", first_name="Fero", last_name="Friend")
    url = f"/admin/customers/operators-tab/?id={acme.id}"
    page = operator_client.get(url).get_data(as_text=True)
    assert 'data-testid="read-only"' in page and 'name="operators"' not in page
    token = csrf_from(page)
    refused = operator_client.post(url, data={"csrf_token": token, "operators": [str(friend.id)],
                                              "version_seen": str(acme.version)})
    assert refused.status_code == 403
    session.expire_all()
    assert [o.id for o in session.get(Customer, acme.id).operators] == [operator.id]

    saved = maintainer_client.submit(url, {"operators": [str(operator.id), str(friend.id)],
                                           "version_seen": str(acme.version)})
    assert saved.status_code == 302
    session.expire_all()
    assert {o.id for o in session.get(Customer, acme.id).operators} == {operator.id, friend.id}
    event = (session.query(AuditEvent).filter_by(action="operator_assignment")
             .order_by(AuditEvent.id.desc()).first())
    assert event is not None and event.entity_id == acme.id


def test_a_stale_operators_tab_is_refused_and_keeps_the_choice(maintainer_client, session, acme,
                                                               make_operator):
    friend = make_operator("friend@example.com", first_name="Fero", last_name="Friend")
    url = f"/admin/customers/operators-tab/?id={acme.id}"
    old_version = acme.version
    acme.notes = "changed meanwhile by someone else"
    session.commit()
    refused = maintainer_client.submit(url, {"operators": [str(friend.id)], "version_seen": str(old_version)})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 200
    assert "changed" in page.lower()
    assert f'id="operator-{friend.id}" checked' in page
    session.expire_all()
    assert friend.id not in {o.id for o in session.get(Customer, acme.id).operators}


def test_workgroups_tab_saves_for_editors_and_is_read_only_for_viewers(operator_client, session, acme):
    helpdesk, finance = Workgroup(name="Helpdesk"), Workgroup(name="Finance")
    session.add_all([helpdesk, finance])
    session.commit()
    url = f"/admin/customers/workgroups-tab/?id={acme.id}"
    saved = operator_client.submit(url, {"workgroups": [str(finance.id)], "version_seen": str(acme.version)})
    assert saved.status_code == 302
    session.expire_all()
    assert [w.name for w in session.get(Customer, acme.id).workgroups] == ["Finance"]


def test_computers_tab_lists_registered_computers(operator_client, session, acme):
    session.add(Computer(customer=acme, hostname="ws-01.acme.local", operating_system="Windows 11"))
    session.commit()
    page = operator_client.get(f"/admin/customers/computers-tab/?id={acme.id}").get_data(as_text=True)
    assert "ws-01.acme.local" in page and "Windows 11" in page


def test_a_wizard_company_lands_on_the_add_contacts_prompt(maintainer_client, session):
    base = start(maintainer_client)
    walk(maintainer_client, base, {"kind": "company", "company_name": "Prompt s.r.o.",
                                   "contact_email": "boss@prompt.sk"})
    response = save(maintainer_client, base)
    assert "/contacts-tab/" in response.headers["Location"] and "created=1" in response.headers["Location"]
    page = maintainer_client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-testid="add-contacts-prompt"' in page and "boss@prompt.sk" in page


def test_computers_tab_shows_differences_pushes_and_a_key_made_on_purpose(operator_client, session, acme,
                                                                           operator, maintainer_client):
    from services.computers import register_computer
    from services.customer_settings import save_customer_settings
    from services.secrets import SecretBox
    from tests.conftest import ENCRYPTION_KEY, written

    box = SecretBox(ENCRYPTION_KEY)
    url = f"/admin/customers/computers-tab/?id={acme.id}"
    page = operator_client.get(url).get_data(as_text=True)
    assert "none yet" in page and "Make a key" not in page  # only a maintainer makes one
    page = maintainer_client.get(url).get_data(as_text=True)
    assert "none yet" in page and "Make a key" in page
    made = maintainer_client.submit(url, {"action": "rotate"})
    assert made.status_code == 200 and made.headers["Cache-Control"] == "no-store"
    shown = made.get_data(as_text=True)
    assert "Copy it now: it is not shown again." in shown
    key = shown.split('data-testid="new-registration-key"')[1].split("<code")[1].split(">")[1].split("<")[0]
    page = maintainer_client.get(url).get_data(as_text=True)
    assert key not in page and ">set<" in page  # shown once: not flashed, not on the next page

    computer, _, _ = written(session, lambda: register_computer(session, key, "PC-7", box))
    page = operator_client.get(url).get_data(as_text=True)
    assert "pc-7" in page and ">current<" in page
    written(session, lambda: save_customer_settings(session, acme, operator, box, {
        "requests_by_email_enabled": True, "request_intake_address": "desk@acme.sk"}))
    page = operator_client.get(url).get_data(as_text=True)
    assert "differ from the customer" in page
    assert operator_client.submit(url, {"action": "push", "computer": str(computer.id)}).status_code == 302
    session.expire_all()
    assert session.get(Computer, computer.id).settings_snapshot["requests_by_email"]["enabled"] is True
    assert ">current<" in operator_client.get(url).get_data(as_text=True)
    assert operator_client.submit(url, {"action": "push", "computer": "999999"}).status_code == 404

    again = maintainer_client.submit(url, {"action": "rotate"}).get_data(as_text=True)
    assert key not in again and "Copy it now" in again
    rotations = session.query(AuditEvent).filter_by(action="rotate_registration_key", entity_id=acme.id)
    assert rotations.count() == 2 and key not in repr([e.changes for e in rotations])


def test_opening_the_computers_tab_writes_nothing(operator_client, session, acme):
    version = acme.version
    events = session.query(AuditEvent).count()
    for _ in range(2):
        assert operator_client.get(f"/admin/customers/computers-tab/?id={acme.id}").status_code == 200
    session.expire_all()
    saved = session.get(Customer, acme.id)
    assert saved.registration_key_hash is None and saved.version == version
    assert session.query(AuditEvent).count() == events


def test_a_viewer_sees_whether_a_key_exists_but_cannot_make_one(app, session, acme, make_operator):
    from models import GlobalSettings, Team
    from tests.conftest import Browserless

    team = Team(name="Desk")
    session.add(team)
    make_operator("viewer@example.com").teams = [team]
    acme.operators[0].teams = [team]
    session.get(GlobalSettings, 1).view_by_team_members = True
    session.commit()
    viewer = Browserless(app.test_client())
    viewer.login("viewer@example.com")
    url = f"/admin/customers/computers-tab/?id={acme.id}"
    page = viewer.get(url).get_data(as_text=True)
    assert "none yet" in page and 'value="rotate"' not in page
    assert viewer.submit(url, {"action": "rotate"}).status_code == 403
    session.expire_all()
    assert session.get(Customer, acme.id).registration_key_hash is None


def customer_pages(app):
    from admin_views.customer_page import CustomerPage

    return [v for v in app.extensions["admin"][0]._views if isinstance(v, CustomerPage)]


def test_every_customer_page_declares_its_template_form_and_rights(app):
    from flask_admin.base import BaseView
    from wtforms import Form

    from admin_views.customer_page import CustomerPage
    from services.access import Right

    pages = customer_pages(app)
    assert len(pages) >= 11
    for page in pages:
        own = vars(type(page))
        for name in ("template", "form", "right", "post_right"):
            assert name in own, f"{type(page).__name__} does not declare {name}"
        assert page.right in (*Right, None) and page.post_right in (*Right, None)
        assert page.right or page.post_right, f"{type(page).__name__} answers nothing"
        assert page.form is None or issubclass(page.form, Form)
        if page.template is not None:
            app.jinja_env.get_template(page.template)  # exists
        if page.tabs:
            assert page.template is not None and page.right is not None  # a tab is a page to open
        rules = [r for r in app.url_map.iter_rules() if r.endpoint == f"{page.endpoint}.index"]
        assert [sorted(r.methods - {"HEAD", "OPTIONS"}) for r in rules] == [sorted(page.methods())]
        assert not page.is_visible()  # not in the menu: reached from a customer
    # The customer pages are these classes and nothing else: no page behind CustomerView's back.
    registered = {type(p) for p in pages}
    concrete = {c for c in all_subclasses(CustomerPage)
                if c.__module__.startswith("admin_views") and "template" in vars(c)}  # not a shared base
    assert registered == concrete
    assert all(issubclass(c, BaseView) for c in registered)


def all_subclasses(cls) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *all_subclasses(sub)}
    return found


def test_the_tab_bar_comes_from_the_registered_pages(app):
    from admin_views.customer_page import BASIC_INFORMATION

    bar = app.jinja_env.globals["customer_page_tabs"]
    assert [str(tab.label) for tab in bar] == TAB_LABELS
    assert bar[0].key == "overview" and bar[1] == BASIC_INFORMATION  # the record first, then its form
    declared = [(spec.key, f"{page.endpoint}.index") for page in customer_pages(app) for spec in page.tabs]
    assert [(tab.key, tab.endpoint) for tab in (bar[0], *bar[2:])] == declared


def test_a_merged_away_customer_leads_to_its_survivor_for_those_who_may_view_it(
        operator_client, app, session, acme, new_customer, make_operator):
    from tests.conftest import Browserless

    gone = new_customer(kind=CustomerKind.COMPANY, company_name="ACME old", operators=list(acme.operators))
    gone.merged_into_id = acme.id
    session.commit()
    for path in ("contacts-tab", "history", "settings"):
        response = operator_client.get(f"/admin/customers/{path}/?id={gone.id}&tab=mail")
        assert response.status_code == 302, path
        assert f"id={acme.id}" in response.headers["Location"] and f"/{path}/" in response.headers["Location"]
    make_operator("stranger@example.com")
    stranger = Browserless(app.test_client())
    stranger.login("stranger@example.com")
    assert stranger.get(f"/admin/customers/history/?id={gone.id}").status_code == 404


def test_a_page_answers_only_the_methods_it_declares(operator_client, acme):
    assert operator_client.get(f"/admin/customers/status/?id={acme.id}").status_code == 405
    token = csrf_from(operator_client.get("/admin/").get_data(as_text=True))
    assert operator_client.post(f"/admin/customers/history/?id={acme.id}",
                                data={"csrf_token": token}).status_code == 405
    assert operator_client.get("/admin/customers/history/").status_code == 404  # no id
    assert operator_client.get("/admin/customers/history/?id=abc").status_code == 404
