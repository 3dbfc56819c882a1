"""Blind overwrites (issue 14, item 9): every write that edits an existing record requires the
version it was based on, on every door — on SQLite and PostgreSQL.

The table is data, like tests/test_doors_and_rules.py: `CASES` names each door that changes an
existing record (customer, contact, customer or global settings, request, portal account,
operator; a photo and a merge change customers), and what it sends; each is tried with the
version left out (the panel says "reload", the API answers 428) and with a stale one (the
panel's "changed meanwhile" message naming who changed what, the API's 412), and nothing may be
written. A control sends the same change with the version the page rendered (or the API read)
and it is saved: the forms send what they rendered. Every POST/PUT/PATCH endpoint of the panel
and the API is either in the table or in `LEFT_OUT` with a reason — a new door fails
`test_every_write_door_is_in_the_table` until someone decides.

Two saves based on the same version, sent at the same time to the app served in threads, end
with one saved and the other refused as stale (412), never both, never a 422.
"""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urljoin

import pytest
from flask_admin.contrib.sqla import ModelView
from sqlalchemy import func, inspect, select

from extensions import db
from models import (
    AuditEvent,
    Contact,
    Customer,
    CustomerSettings,
    CustomerStatus,
    GlobalSettings,
    Operator,
    PortalAccount,
    Request,
    Workgroup,
)
from models.enums import CustomerKind
from services.contacts import save_contact
from services.customer_settings import save_customer_settings
from services.operators import save_operator
from services.portal import create_portal_account, reset_portal_password
from services.requests import save_request
from services.secrets import SecretBox
from services.settings import save_quick_create_rules
from services.versions import NO_VERSION
from testing.forms import Forms
from tests.conftest import ENCRYPTION_KEY, csrf_from, written
from tests.served_app import WebClient, served
from tests.test_api import Api, token_of
from tests.test_doors_and_rules import World, page_text
from tests.test_photos import png

BOX = SecretBox(ENCRYPTION_KEY)
STALE = "This record was changed while you were editing it: colleague@example.com changed"
STALE_BY_BOSS = "This record was changed while you were editing it: boss@example.com changed"
# The portal's events are on the customer (its History), so the account's own trail is empty.
STALE_PORTAL = "This record was changed while you were editing it: Somebody else changed it"
MISSING, STALE_VERSION = "missing", "stale"


# -- the forms as the browser posts them ----------------------------------------------------

def rendered_form(browser, page_url: str, action: str) -> dict[str, list[str]]:
    """The form on `page_url` that posts to `action` (a path), as rendered: name → values."""
    parser = Forms()
    parser.feed(browser.get(page_url).get_data(as_text=True))
    for form_action, fields in parser.forms:
        target = urljoin(page_url, form_action or page_url)
        if target.split("?")[0].rstrip("/") == urljoin(page_url, action).split("?")[0].rstrip("/"):
            values: dict[str, list[str]] = {}
            for name, value in fields:
                values.setdefault(name, []).append(value)
            return values
    raise AssertionError(f"no form posting to {action} on {page_url}")


# -- the world: ACME, changed by Cyril after Olga read it ------------------------------------

class Desk(World):
    """tests/test_doors_and_rules.World (ACME, Olga and Cyril, who changed ACME's notes after
    `read`), plus: Cyril also changed Jana (after `jana_read`), ACME's settings (after
    `settings_read`), ACME's request (after `request_read`) and the password of ACME's portal
    account (after `portal_read`); the maintainer changed the quick-create rules (after
    `global_read`) and Cyril's operator account (after `operator_read`); a workgroup to tick; a
    twin of ACME to merge."""

    def __init__(self, *args):
        super().__init__(*args)  # (app, session, make_operator, new_customer, maintainer, operator)
        session = self.session
        colleague = next(o for o in self.acme.operators if o.email == "colleague@example.com")
        operator = self.who["operator"]
        self.workgroup = Workgroup(name="Helpdesk")
        session.add(self.workgroup)
        session.commit()
        settings = written(session, lambda: save_customer_settings(session, self.acme, operator, BOX,
                                                                   {"pop3_address": "old@acme.sk"}))
        self.settings_read = settings.version
        written(session, lambda: save_customer_settings(session, self.acme, colleague, BOX,
                                                        {"pop3_address": "cyril@acme.sk"},
                                                        seen_version=settings.version))
        self.jana_read = self.jana.version
        self.jana.title = "Cyril's"
        written(session, lambda: save_contact(session, self.jana, colleague, "SK",
                                              seen_version=self.jana_read))
        self.inactive = session.scalar(select(CustomerStatus).where(CustomerStatus.is_active.is_(False)))
        boss = self.who["maintainer"]
        self.request = written(session, lambda: save_request(
            session, Request(customer=self.acme, subject="Printer"), operator))
        self.request_read = self.request.version
        self.request.subject = "Printer on the 2nd floor"
        written(session, lambda: save_request(session, self.request, colleague,
                                              seen_version=self.request_read))
        account = written(session, lambda: create_portal_account(
            session, self.acme, operator, username="acme-portal", password="a long portal password",
            security_group=None))
        self.portal_read = account.version
        written(session, lambda: reset_portal_password(session, self.acme, colleague, "Cyril's long password",
                                                       seen_version=self.portal_read))
        self.global_read = session.get(GlobalSettings, 1).version
        written(session, lambda: save_quick_create_rules(session, boss, requires_email=True, threshold=90,
                                                         seen_version=self.global_read))
        self.colleague = colleague
        self.operator_read = colleague.version
        colleague.last_name = "Changed"
        written(session, lambda: save_operator(session, colleague, boss, None,
                                               seen_version=self.operator_read))
        self.twin = args[3](kind=CustomerKind.COMPANY, company_name="ACME a.s.", operators=[operator])


@pytest.fixture
def desk(app, session, make_operator, new_customer, maintainer, operator):
    return Desk(app, session, make_operator, new_customer, maintainer, operator)


def state(session) -> tuple:
    """What a refused write must leave as it was."""
    session.expire_all()
    counts = [session.scalar(select(func.count()).select_from(m)) for m in (Customer, Contact, AuditEvent)]
    customers = sorted((c.id, c.version, c.notes, c.status_id, c.photo, c.merged_into_id,
                        sorted(o.id for o in c.operators), sorted(w.id for w in c.workgroups))
                       for c in session.scalars(select(Customer)))
    contacts = sorted((c.id, c.version, c.title) for c in session.scalars(select(Contact)))
    settings = sorted((s.id, s.version, s.pop3_address) for s in session.scalars(select(CustomerSettings)))
    others = [sorted((r.id, r.version, r.subject) for r in session.scalars(select(Request))),
              sorted((a.id, a.version, a.password_hash, a.is_active)
                     for a in session.scalars(select(PortalAccount))),
              sorted((o.id, o.version, o.first_name, o.last_name) for o in session.scalars(select(Operator))),
              [(g.version, g.view_by_managers, g.duplicate_name_threshold)
               for g in session.scalars(select(GlobalSettings))]]
    return counts, customers, contacts, settings, others


# -- the doors ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PanelDoor:
    """A panel form: the page that renders it, where it posts, who uses it, what they change,
    which record's version it carries (see `read`) in which field, and the stale message."""

    endpoint: str
    who: str
    page: str  # a format string over the desk
    action: str
    change: dict
    record: str = "customer"
    field: str = "version_seen"
    stale: str = STALE

    def read(self, desk: Desk) -> int:
        return {"customer": desk.read, "contact": desk.jana_read, "settings": desk.settings_read,
                "request": desk.request_read, "portal": desk.portal_read, "global": desk.global_read,
                "operator": desk.operator_read}[self.record]

    def send(self, desk: Desk, browser, version: str | int | None):
        """Post the rendered form with the change; `version` "rendered" keeps what the page
        rendered, None leaves the field out, a number replaces it."""
        page = self.page.format(d=desk)
        action = self.action.format(d=desk)
        data = rendered_form(browser, page, action)
        assert self.field in data, f"{self.endpoint}: the form sends no {self.field}"
        data.update({k: v(desk) if callable(v) else v for k, v in self.change.items()})
        if version is None:
            del data[self.field]
        elif version != "rendered":
            data[self.field] = [str(version)]
        answer = browser.post(action, data=data)
        text = page_text(answer.get_data(as_text=True))
        if answer.status_code == 302:  # a dialog answers with the page it came from: its messages
            text = page_text(browser.get(answer.headers["Location"]).get_data(as_text=True))
        return answer.status_code, text


@dataclass(frozen=True)
class ApiDoor:
    endpoint: str
    who: str
    method: str
    path: str
    body: dict

    def send(self, desk: Desk, api, version: int | None, *, if_match: bool = False):
        body = {k: v(desk) if callable(v) else v for k, v in self.body.items()}
        headers = {}
        if version is not None and if_match:
            headers["If-Match"] = f'"{version}"'
        elif version is not None:
            body["version"] = version
        answer = getattr(api, self.method)(self.path.format(d=desk), json=body, headers=headers)
        return answer.status_code, answer.get_json() or {}


def _settings(tab: str, change: dict) -> PanelDoor:
    url = f"/admin/customers/settings/?id={{d.acme.id}}&tab={tab}"
    return PanelDoor("customer_settings", "operator", url, url, change, "settings")


MERGE = "/admin/customers/merge/?survivor={d.acme.id}&other={d.twin.id}"
CASES: dict[str, PanelDoor | ApiDoor] = {
    "edit form (Basic information)": PanelDoor(
        "customers.edit_view", "operator", "/admin/customers/edit/?id={d.acme.id}",
        "/admin/customers/edit/?id={d.acme.id}", {"notes": ["Mine"]}),
    "status dialog": PanelDoor(
        "customer_status", "operator", "/admin/customers/overview/?id={d.acme.id}",
        "/admin/customers/status/?id={d.acme.id}", {"status": lambda d: [str(d.inactive.id)]}),
    "operators tab": PanelDoor(
        "customer_operators", "maintainer", "/admin/customers/operators-tab/?id={d.acme.id}",
        "/admin/customers/operators-tab/?id={d.acme.id}",
        {"operators": lambda d: [str(o.id) for o in d.acme.operators] + [str(d.who["maintainer"].id)]}),
    "workgroups tab": PanelDoor(
        "customer_workgroups", "operator", "/admin/customers/workgroups-tab/?id={d.acme.id}",
        "/admin/customers/workgroups-tab/?id={d.acme.id}", {"workgroups": lambda d: [str(d.workgroup.id)]}),
    "C-Monitor tab": _settings("cmonitor", {"cmonitor_password": ["New-secret-123"],
                                            "cmonitor_password_confirm": ["New-secret-123"]}),
    "Mail servers tab": _settings("mail", {"pop3_address": ["olga@acme.sk"]}),
    "Notifications tab": _settings("notifications", {"notification_to_address": ["noc@acme.sk"]}),
    "Requests by e-mail tab": _settings("requests", {"request_intake_address": ["requests@acme.sk"]}),
    "contact's edit form": PanelDoor(
        "contacts.edit_view", "operator", "/admin/contacts/edit/?id={d.jana.id}",
        "/admin/contacts/edit/?id={d.jana.id}", {"title": ["Olga's"]}, "contact"),
    "photo upload": PanelDoor(
        "customer_photo", "operator", "/admin/customers/overview/?id={d.acme.id}",
        "/admin/customers/photo/?id={d.acme.id}",
        {"photo": lambda d: [(io.BytesIO(png(size=(40, 30))), "photo.png")]}),
    "merge": PanelDoor(
        "customers.merge_view", "maintainer", MERGE, MERGE, {}, field="survivor_version"),
    "request's edit form": PanelDoor(
        "requests.edit_view", "operator", "/admin/requests/edit/?id={d.request.id}",
        "/admin/requests/edit/?id={d.request.id}", {"subject": ["Olga's subject"]}, "request"),
    "portal: reset the password": PanelDoor(
        "customer_portal", "operator", "/admin/customers/portal/?id={d.acme.id}",
        "/admin/customers/portal/?id={d.acme.id}", {"password": ["Olga's long password"]}, "portal",
        stale=STALE_PORTAL),
    "ownership rights": PanelDoor(
        "ownership-rights", "maintainer", "/admin/ownership-rights/", "/admin/ownership-rights/",
        {"edit_by_managers": ["on"]}, "global", stale=STALE_BY_BOSS),
    "request's status form": PanelDoor(
        "requests.status_view", "operator", "/admin/requests/details/?id={d.request.id}",
        "/admin/requests/status/?id={d.request.id}", {"status": ["resolved"]}, "request"),
    "quick-create rules": PanelDoor(
        "quick-create-rules", "maintainer", "/admin/quick-create-rules/", "/admin/quick-create-rules/",
        {"duplicate_name_threshold": ["75"]}, "global", stale=STALE_BY_BOSS),
    "operator's edit form": PanelDoor(
        "operators.edit_view", "maintainer", "/admin/operators/edit/?id={d.colleague.id}",
        "/admin/operators/edit/?id={d.colleague.id}", {"first_name": ["Cyrilo"]}, "operator",
        stale=STALE_BY_BOSS),
    "API PATCH customer": ApiDoor("api_customers.update", "operator", "patch", "/customers/{d.acme.id}",
                                  {"notes": "Mine"}),
    "API PUT operators": ApiDoor("api_customers.set_operators", "maintainer", "put",
                                 "/customers/{d.acme.id}/operators",
                                 {"operator_ids": lambda d: [d.who["maintainer"].id]}),
    "API deactivate": ApiDoor("api_customers.deactivate", "operator", "post",
                              "/customers/{d.acme.id}/deactivate", {}),
}

NEW_ONLY = "creates a new record: there is no version to be based on"
DELETES = "deletes (the delete right and the confirmation page decide; nothing typed is overwritten)"
ACTION = "one deliberate action with nothing typed (a new key, a push of the current settings)"
# Endpoints of the panel and the API that write but edit no versioned record of theirs, and why.
LEFT_OUT = {
    "customers.create_view": NEW_ONLY, "contacts.create_view": NEW_ONLY, "requests.create_view": NEW_ONLY,
    "customer_contacts": NEW_ONLY + " (the Contacts tab adds; its Edit link is the contact's edit form)",
    "api_customers.create": NEW_ONLY, "api_customers.add_contact": NEW_ONLY,
    "api_customers.create_request": NEW_ONLY,
    "customers.delete_view": DELETES, "contacts.delete_view": DELETES, "requests.delete_view": DELETES,
    "customers.action_view": DELETES + " (the only bulk action is delete)",
    "contacts.action_view": DELETES + " (the only bulk action is delete)",
    "requests.action_view": DELETES + " (the only bulk action is delete)",
    "customers.ajax_update": "no column_editable_list: Flask-Admin answers 404 (tested below)",
    "contacts.ajax_update": "no column_editable_list: Flask-Admin answers 404 (tested below)",
    "requests.ajax_update": "no column_editable_list: Flask-Admin answers 404",
    "customer_computers": ACTION, "api_customers.rotate_key": ACTION, "api_customers.push": ACTION,
    "customers.quick_create_view": NEW_ONLY,
    "customers.quick_reactivate_view": "reactivates based on the version the quick form's match showed "
                                       "(change_status with version_seen; tests/test_quick_create.py)",
    "customer_settings.test_connection": "tests a connection with what was typed: writes nothing",
    "wizard": NEW_ONLY + " (the wizard's draft is the user's own)",
    "customers.merge_undo_view": "undoing a merge checks the survivor is unchanged since (services.merge)",
    "audit": "the audit trail cannot be created, edited or deleted (Flask-Admin refuses)",
    "bulk-import": "a CSV/XLSX row is based on no version a person read: it updates the current record "
                   "(services.versions.ON_CURRENT)",
    "directory": "directory sources have no version column; a directory run is a system job (ON_CURRENT)",
    "operators.create_view": NEW_ONLY, "operators.delete_view": DELETES, "operators.action_view": DELETES,
    "operators.ajax_update": "no column_editable_list: Flask-Admin answers 404",
    "profile": "the signed-in operator's own password: the current password is the precondition",
    "api-tokens": "creates or revokes a token: nothing typed is overwritten",
    "api_computers.register": "the agent's door: registers a computer", "api_computers.agent_settings":
        "the agent's door: reads its settings", "api_customers.duplicates": "a search: writes nothing",
    "auth.login": "signs in", "auth.logout": "signs out",
    "contact_portal": "a contact's portal access: the customer's Portal access commands with the contact "
                      "(services.portal), its reset and enable/disable based on the version the page showed "
                      "(tests/test_portal_admin.py); its create is new only",
    # The customer portal's own forms (portal/views.py): nothing typed is overwritten.
    "portal.sign_in": "signs in", "portal.sign_out": "signs out",
    "portal.password": "the account's own password: the current password is the precondition",
    "portal.new_request": NEW_ONLY, "portal.comment": NEW_ONLY + " (a comment)",
    "portal.accept": "one status step services.discussion checks against the current status",
    "portal.reopen": "one status step services.discussion checks against the current status",
    "portal.rate": "a rating given once (services.discussion.rate refuses a second)",
    "portal.mail_link": "a signed link works once (services.mail_links.use_link): nothing is overwritten",
    "held-mail.create": "decides a held mail once (a second decision is refused): nothing is overwritten",
    "held-mail.add": "decides a held mail once (a second decision is refused): nothing is overwritten",
    "held-mail.discard": "decides a held mail once (a second decision is refused): nothing is overwritten",
    "requests.comment_view": "adds a comment or an internal note to the thread: nothing is overwritten",
    "customer_mail": "Resend queues a new copy of a sent or failed message: nothing is overwritten",
}
# Lookup tables (teams, statuses, SLA levels, sites, buildings, departments, workgroups, security
# groups) have no version column; a view of a versioned model must be decided above.
VERSIONED = {"Customer", "Contact", "CustomerSettings", "GlobalSettings", "Request", "PortalAccount",
             "Operator"}


def write_endpoints(app) -> set[str]:
    """Every endpoint of the panel and the API that accepts a write method."""
    found = set()
    for rule in app.url_map.iter_rules():
        if set(rule.methods or ()) & {"POST", "PUT", "PATCH", "DELETE"} and rule.endpoint != "static":
            found.add(rule.endpoint)
    return found


def unversioned_lookups(app) -> set[str]:
    """The endpoint prefixes of ModelViews over models without a version column."""
    admin = app.extensions["admin"][0]
    return {view.endpoint for view in admin._views if isinstance(view, ModelView)
            and inspect(view.model).version_id_col is None and view.model.__name__ not in VERSIONED
            and view.endpoint not in ("requests", "operators", "audit", "directory")}


def decided(endpoint: str, lookups: set[str]) -> bool:
    prefix = endpoint.split(".")[0]
    doors = {door.endpoint for door in CASES.values()}
    page = endpoint.endswith(".index")  # a BaseView's (a customer page's) own door
    return (endpoint in doors or page and prefix in doors or endpoint in LEFT_OUT
            or prefix in LEFT_OUT or prefix in lookups)


def test_every_write_door_is_in_the_table(app):
    lookups = unversioned_lookups(app)
    undecided = sorted(e for e in write_endpoints(app) if not decided(e, lookups))
    assert undecided == [], f"neither tested for its version nor left out with a reason: {undecided}"
    assert not {door.endpoint for door in CASES.values()} & set(LEFT_OUT)


def client_for(desk: Desk, door) -> object:
    desk.client("form", door.who)  # makes the user where needed
    if isinstance(door, ApiDoor):
        return Api(desk.app.test_client(), token_of(desk.session, desk.who[door.who]))
    return desk.client("form", door.who)


@pytest.mark.parametrize("name", list(CASES))
def test_an_edit_without_its_version_or_with_a_stale_one_changes_nothing(desk, session, name):
    door = CASES[name]
    client = client_for(desk, door)
    before = state(session)
    for sent in (MISSING, STALE_VERSION):
        if isinstance(door, ApiDoor):
            status, body = door.send(desk, client, None if sent == MISSING else desk.read)
            assert status == (428 if sent == MISSING else 412), (sent, body)
            if sent == STALE_VERSION:
                assert body["message"].startswith(STALE), body
        else:
            status, text = door.send(desk, client, None if sent == MISSING else door.read(desk))
            assert status in (200, 302), (sent, status, text[:1500])
            assert (NO_VERSION if sent == MISSING else door.stale) in text, (sent, text[-2000:])
        assert state(session) == before, sent


@pytest.mark.parametrize("name", list(CASES))
def test_the_same_change_with_the_version_read_is_saved(desk, session, name):
    """The forms send the version they rendered; the API the version it read, by body or If-Match."""
    door = CASES[name]
    client = client_for(desk, door)
    before = state(session)
    if isinstance(door, ApiDoor):
        session.expire_all()
        current = session.get(Customer, desk.acme.id).version
        status, body = door.send(desk, client, current, if_match=name.endswith("operators"))
        assert status == 200, body
    else:
        status, text = door.send(desk, client, "rendered")
        assert status == 302, text[-2000:]
    assert state(session) != before


@pytest.mark.parametrize("endpoint", ["customers", "contacts"])
def test_the_list_offers_no_inline_edit(desk, endpoint):
    browser = desk.client("form", "operator")
    token = csrf_from(browser.get(f"/admin/{endpoint}/").get_data(as_text=True))
    answer = browser.post(f"/admin/{endpoint}/ajax/update/", data={
        "list_form_pk": str(desk.acme.id), "notes": "Mine", "csrf_token": token})
    assert answer.status_code == 404


# -- two saves at the same time -------------------------------------------------------------

ROUNDS, RACERS = 3, 4


def test_of_two_patches_on_the_same_version_one_wins_and_the_rest_get_412(app, session, make_operator,
                                                                           new_customer):
    """Real concurrent requests (threads of a served app): each round RACERS PATCHes based on one
    version; exactly one is saved, every other one is 412 — never 422, never two saved."""
    olga = make_operator("racer@example.com", first_name="Rena")
    acme = new_customer(kind=CustomerKind.COMPANY, company_name="Race s.r.o.", operators=[olga])
    tokens = [token_of(session, olga) for _ in range(RACERS)]
    acme_id = acme.id
    session.commit()
    session.close()  # an open read on SQLite would hold back the server's writers
    with served(app) as server:
        clients = [WebClient(server.url, api_token=token) for token in tokens]
        try:
            for round_ in range(ROUNDS):
                version = clients[0].api("GET", f"/customers/{acme_id}").json()["version"]
                barrier = threading.Barrier(RACERS)

                def patch(index: int, version=version, round_=round_, barrier=barrier):
                    barrier.wait()
                    return clients[index].api("PATCH", f"/customers/{acme_id}",
                                              json={"notes": f"round {round_} by {index}"},
                                              headers={"If-Match": f'"{version}"'})

                with ThreadPoolExecutor(max_workers=RACERS) as pool:
                    answers = list(pool.map(patch, range(RACERS)))
                codes = sorted(a.status_code for a in answers)
                assert codes == [200] + [412] * (RACERS - 1), [(a.status_code, a.text[:300]) for a in answers]
                with app.app_context():
                    try:
                        row = db.session.get(Customer, acme_id)
                        assert row.version == version + 1
                        winner = next(a for a in answers if a.status_code == 200)
                        assert row.notes == winner.json()["notes"]
                    finally:
                        db.session.remove()
        finally:
            for client in clients:
                client.close()


def test_two_sequential_patches_on_the_same_version_answer_200_then_412(desk, session):
    api = Api(desk.app.test_client(), token_of(session, desk.who["operator"]))
    session.expire_all()
    version = session.get(Customer, desk.acme.id).version
    first = api.patch(f"/customers/{desk.acme.id}", json={"notes": "first", "version": version})
    second = api.patch(f"/customers/{desk.acme.id}", json={"notes": "second", "version": version})
    assert (first.status_code, second.status_code) == (200, 412)
    session.expire_all()
    assert session.get(Customer, desk.acme.id).notes == "first"

