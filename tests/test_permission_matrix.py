"""The permission matrix, built from the app's own URL map.

For anonymous, an operator without access, an operator with access and a maintainer, every
endpoint (GET and state-changing) is requested for one customer, its contact and a lookup row.
Each answer must match the rule, and no answer to the outsider or the anonymous visitor may
contain the customer's or its contact's name or e-mail. An endpoint this file does not know
fails the test: a new door must be added here, with its rule, before it can land.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from flask import current_app
from PIL import Image
from sqlalchemy import func, select

from extensions import db
from models import Contact, Customer, Request, SlaLevel
from models.enums import CustomerKind, OperatorRole
from services.access import Right
from services.photos import store_photo
from services.secrets import SecretBox
from services.transactions import unit_of_work
from tests.conftest import ENCRYPTION_KEY, Browserless, csrf_from, written
from wizards.drafts import start_draft, store_step
from wizards.steps import Step

WIZARD = "wizard"  # drafts belong to the operator who started them, and to nobody else
MAINTAINER_ONLY_VIEWS = {"operators", "teams", "customer-statuses", "sla-levels", "sites", "buildings",
                         "departments", "workgroups", "security-groups", "audit", "ownership-rights",
                         "quick-create-rules", "directory"}
CUSTOMER_SCOPED_VIEWS = {"customers", "contacts", "requests"}
PUBLIC = {"root", "favicon", "auth.login", "static", "admin.static", "api-docs.openapi_json",
          "api_docs.docs_page", "api_docs.docs_asset", "health.live", "health.ready"}
# The JSON API authenticates by API token only (tests/test_api.py): a signed-in browser session
# does not count, so every role here gets 401; computers register with a customer's key.
API_TOKEN_VIEWS = {"api_customers", "api_computers"}
OWN_TOKENS = "api-tokens"  # each operator's own tokens (a token of someone else: 404 / 403)
OWN_IMPORTS = "bulk-import"  # each operator's own uploads (an unknown one: 404; a POST without a file: 400)
OWN_PROFILE = "profile"  # each operator's own profile and password
SIGNED_IN = {"admin.index"}
# Endpoints of a scoped view that address one record (the others list, search or create).
RECORD_ENDPOINTS = {"details_view", "edit_view", "delete_view", "action_view", "ajax_update",
                    # the request page's forms and its attachments (admin_views.request_discussion)
                    "comment_view", "status_view", "attachment_view"}
# quick_candidates_view / quick_create_view: the quick form (any operator may create; candidates
# they may not view come without details, which test_quick_create checks). quick_reactivate_view:
# its Reactivate of an inactive match (the posted `customer`: the edit right, the customer's
# existence not revealed to an outsider). contacts_of_view: the request form's contact picker
# (?customer=: only a customer the operator may view).
KNOWN_VIEW_ENDPOINTS = RECORD_ENDPOINTS | {"index_view", "create_view", "export", "ajax_lookup", "index",
                                           "quick_candidates_view", "quick_create_view",
                                           "quick_reactivate_view", "contacts_of_view",
                                           # directory sources
                                           "test_view", "start_view", "run_view",
                                           "cancel_view", "resume_view",
                                           "merge_view", "merge_done_view", "merge_undo_view"}
# The pages of one customer (admin_views.customer_page), each its own view: the right a GET and a
# POST need (None: the page has no such method). MAINTAINER: only a maintainer, on top of EDIT.
MAINTAINER = "maintainer"
CUSTOMER_PAGES: dict[str, tuple[Right | None, Right | str | None]] = {
    "customer_overview": (Right.VIEW, None),  # the first tab: the record as a person reads it
    "customer_contacts": (Right.VIEW, Right.EDIT),
    "customer_settings": (Right.VIEW, Right.EDIT),
    "customer_operators": (Right.VIEW, MAINTAINER),
    "customer_portal": (Right.EDIT, Right.EDIT),
    "contact_portal": (Right.EDIT, Right.EDIT),  # one contact's portal access (admin_views/contact_portal.py)
    "customer_workgroups": (Right.VIEW, Right.EDIT),
    "customer_computers": (Right.VIEW, Right.EDIT),
    "customer_mail": (Right.VIEW, Right.VIEW),  # whoever may view the customer may resend its mail
    "customer_history": (Right.VIEW, None),
    "customer_status": (None, Right.EDIT),
    "customer_photo": (None, Right.EDIT),
    "customer_photo_file": (Right.VIEW, None),
    "customer_delete_confirm": (Right.DELETE, None),
}
# Endpoints of a customer page besides its own `index`, each with the right it needs: the
# Test connection buttons of the Mail servers / Notifications tabs (admin_views/customer_settings_tabs.py).
CUSTOMER_PAGE_EXTRAS: dict[str, Right] = {"customer_settings.test_connection": Right.EDIT}
# The customer portal (/portal) has its own session: an operator, signed in or not, is nobody
# there. Its sign-in page answers (a POST without credentials: 422); every other page sends to
# the portal's sign-in, or is not found; a signed link that is not one is refused (400).
PORTAL = "portal"
# Held mail: every operator sees the held mail of the customers they may see (the matrix names no
# mail: tests/test_mail_intake.py decides real ones).
HELD_MAIL = "held-mail"
# The buildings of a site for the customer form: lookups, nothing per customer.
SIGNED_IN_VIEWS = {"customer_buildings"}

# The wizard: its list, "Add a customer", step 1 before any draft exists (`new`, and its first
# autosave, which makes the draft) for any operator; a draft's pages for its own operator only.
WIZARD_ENDPOINTS = {"index", "start", "new", "new_autosave", "step", "autosave", "discard", "test_connection"}
WIZARD_DRAFT_ENDPOINTS = {"step", "autosave", "discard", "test_connection"}
WIZARD_KEY = "matrix-page-key-0123456789"  # the key a wizard page posts with step 1 of a new draft

ROLES = ["anonymous", "outsider", "insider", "maintainer"]
DESTRUCTIVE = ["customers.delete_view", "customers.action_view", "contacts.delete_view",
               "contacts.action_view", "requests.delete_view", "requests.action_view"]
SECRET_NAME = "Tajná Firma s.r.o."
SECRET_EMAIL = "tajne@tajna-firma.example.sk"
CONTACT_NAME = "Skrytá Kontaktová"
CONTACT_EMAIL = "skryta@tajna-firma.example.sk"


def small_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "navy").save(buffer, "PNG")
    return buffer.getvalue()


def build_world(new_customer, make_operator) -> dict[str, int]:
    """The customer under test, and one more per destructive endpoint, so that each delete
    has a record of its own to act on (all alike: the insider's, the outsider's not)."""
    insider = make_operator("insider@example.com", first_name="Ina", last_name="Insider")
    make_operator("outsider@example.com", first_name="Otto", last_name="Outsider")
    ids = {}
    for target in ["customer", *DESTRUCTIVE]:
        company = new_customer(
            kind=CustomerKind.COMPANY, company_name=f"{SECRET_NAME} {len(ids) or ''}".strip(),
            email=SECRET_EMAIL, operators=[insider],
            contacts=[{"first_name": "Skrytá", "last_name": "Kontaktová", "email": CONTACT_EMAIL,
                       "is_main": True},
                      # a company keeps a contact with an e-mail: the one deleted is not the last
                      *([{"last_name": "Druhá", "email": "druha@example.sk"}]
                        if target.startswith("contacts.") else [])])
        ids[target] = company.contacts[0].id if target.startswith("contacts.") else company.id
        if target == "customer" or target.startswith("requests."):
            incident = Request(customer=company, subject=f"Incident of {SECRET_NAME}")
            db.session.add(incident)
            db.session.commit()
            ids["request" if target == "customer" else target] = incident.id
        if target == "customer":
            ids["contact"] = company.contacts[0].id
            written(db.session, lambda company=company: store_photo(
                db.session, company, None, small_png(), Path(current_app.config["PHOTO_DIR"])))
    sla = SlaLevel(name="Gold")
    db.session.add(sla)
    db.session.commit()
    ids["lookup"] = sla.id
    for endpoint in ("wizard.step", "wizard.discard", "wizard.test_connection", "wizard.autosave"):
        typed = {"kind": "company", "company_name": SECRET_NAME, "contact_email": CONTACT_EMAIL}
        with unit_of_work(db.session):
            draft = start_draft(db.session, insider)
            store_step(db.session, draft, Step.CUSTOMER, typed, SecretBox(ENCRYPTION_KEY))
        ids[endpoint] = draft.id
    return ids


def classify(endpoint: str) -> tuple[str, str | None]:
    """(view, endpoint suffix) with the view's kind checked against the known sets."""
    if endpoint in PUBLIC or endpoint in SIGNED_IN or endpoint == "auth.logout":
        return endpoint, None
    view, _, suffix = endpoint.partition(".")
    if view in API_TOKEN_VIEWS or view in (OWN_TOKENS, OWN_IMPORTS, OWN_PROFILE, PORTAL, HELD_MAIL):
        return view, suffix
    if view in CUSTOMER_PAGES or view in SIGNED_IN_VIEWS:
        assert suffix == "index" or endpoint in CUSTOMER_PAGE_EXTRAS, f"endpoint {endpoint} is not covered"
        return view, suffix
    if view == WIZARD:
        assert suffix in WIZARD_ENDPOINTS, \
            f"endpoint {endpoint} is not covered"
        return view, suffix
    assert view in MAINTAINER_ONLY_VIEWS | CUSTOMER_SCOPED_VIEWS, f"endpoint {endpoint} is not covered"
    assert suffix in KNOWN_VIEW_ENDPOINTS, f"endpoint {endpoint} is not covered"
    return view, suffix


def requests_for(app, ids) -> list[tuple[str, str, str, dict]]:
    """(endpoint, method, url, form data) for every rule; destructive ones last."""
    planned = []
    for rule in app.url_map.iter_rules():
        view, suffix = classify(rule.endpoint)
        if rule.endpoint == "static":
            url = "/static/customer_form.js"
        elif rule.endpoint == "admin.static":
            url = "/admin/static/admin/js/form.js"
        elif rule.endpoint == "api_docs.docs_asset":
            url = "/api/v1/docs/assets/swagger-ui.css"
        else:
            url = (rule.rule.replace("<export_type>", "csv").replace("<step>", "customer")
                   .replace("<prefix>", "pop3").replace("<int:draft_id>", str(ids.get(rule.endpoint, 0)))
                   .replace("<int:customer_id>", str(ids["customer"])).replace("<size>", "thumb")
                   .replace("<int:contact_id>", str(ids["contact"])).replace("<int:mail_id>", "0")
                   .replace("<int:request_id>", str(ids["request"])).replace("<int:attachment_id>", "0")
                   .replace("<int:source_id>", "0").replace("<int:run_id>", "0")
                   .replace("<int:token_id>", "0").replace("<int:computer_id>", "0")
                   .replace("<int:event_id>", "0").replace("<token>", "0" * 24))
        record = ids.get(rule.endpoint) or {"contacts": ids["contact"], "customers": ids["customer"],
                                            "requests": ids["request"]}.get(view, ids["lookup"])
        if view in CUSTOMER_PAGES:
            record = ids["customer"]
        query = f"?id={record}" if suffix in RECORD_ENDPOINTS or view in CUSTOMER_PAGES else ""
        if suffix == "ajax_lookup":
            query = "?name=manager&query=tajna" if view == "customers" else "?name=customer&query=tajna"
        if suffix == "contacts_of_view":
            query = f"?customer={ids['customer']}"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            data = {"id": str(record), "rowid": str(record), "action": "delete", "name": "Matrix",
                    "kind": "company", "company_name": "Matrix Co", "last_name": "Matrixová",
                    "customer": str(ids["customer"]), "url": "/admin/"} if method == "POST" else {}
            if method == "POST" and view == WIZARD:
                data["draft_key"] = WIZARD_KEY
            planned.append((rule.endpoint, method, url + query, data))
    planned.sort(key=lambda p: p[0] == "auth.logout")  # signing out ends the walk
    return planned


def expected(role: str, endpoint: str, method: str) -> set[int] | str:
    """Allowed status codes, or "login" for a redirect to the sign-in page."""
    view, suffix = classify(endpoint)
    ok = {200, 302}
    if endpoint == "auth.login":
        return ok | {422}  # a refused sign-in (this POST carries no password)
    if endpoint in PUBLIC:
        return ok
    if view in API_TOKEN_VIEWS:
        return {401, 422} if endpoint == "api_computers.register" else {401}
    if view == PORTAL:
        return {200, 302, 400, 404, 410, 422}
    if role == "anonymous":
        return "login"
    if view == OWN_TOKENS:
        return ok | {404}  # token 0 does not exist
    if view == OWN_IMPORTS:
        return ok | {400, 404}  # upload "000…" does not exist; the matrix posts no file
    if view == HELD_MAIL:
        return ok if suffix == "index" else {404}
    if view == OWN_PROFILE:
        return ok | {422}  # the matrix posts no current password: the change is refused
    if endpoint in SIGNED_IN or endpoint == "auth.logout" or view in SIGNED_IN_VIEWS:
        return ok
    if view in CUSTOMER_PAGES:
        return customer_page_answer(role, endpoint, method)
    if view in MAINTAINER_ONLY_VIEWS:
        return ok | {404} if role == "maintainer" else {403}
    if view == WIZARD:
        if suffix in WIZARD_DRAFT_ENDPOINTS:
            return ok if role == "insider" else {404}  # another operator's draft does not exist for them
        return ok
    if suffix == "ajax_update":
        return {404}  # no editable list columns: Flask-Admin answers 404 for everyone
    if suffix in RECORD_ENDPOINTS and role == "outsider":
        return {403} if suffix == "action_view" else {404}
    if suffix == "quick_create_view" and method == "POST":
        return ok | {201, 422}  # JSON answers: created, or the field messages of this dummy form
    if suffix == "quick_reactivate_view":
        # the customer is active: "active already" (422) for whoever may edit it; not found for
        # an operator who may not view it
        return {404} if role == "outsider" else {422}
    if suffix == "contacts_of_view" and role == "outsider":
        return {404}  # the picker does not reveal a customer the operator may not view
    if suffix == "attachment_view":
        return {404}  # the matrix names no attachment (tests/test_request_page.py downloads real ones)
    if suffix in ("merge_view", "merge_done_view", "merge_undo_view"):
        return {404}  # no survivor named, no merge event 0 (tests/test_merge.py walks the real ones)
    return ok


def customer_page_answer(role: str, endpoint: str, method: str) -> set[int]:
    """A customer page: 404 for a customer the operator may not view (its existence is not
    revealed), 403 without the page's right, else the page (or its redirect)."""
    view = endpoint.partition(".")[0]
    right = CUSTOMER_PAGE_EXTRAS.get(endpoint) or CUSTOMER_PAGES[view][method == "POST"]
    assert right is not None, f"{view} answers {method}: the table says it does not"
    if role == "outsider":
        return {404}
    if view == "customer_mail" and method == "POST":
        return {404}  # the matrix names no message to resend (tests/test_customer_mail.py resends real ones)
    if role == "viewer":  # may view the customer, nothing more
        return {403} if right != Right.VIEW else {200, 302}
    if right == MAINTAINER and role != "maintainer":
        return {403}  # only a maintainer assigns operators, even on a customer of their own
    if view == "customer_computers" and method == "POST":
        return {200, 302, 404}  # the matrix posts no computer to push settings to
    return {200, 302}


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(app, role, new_customer, make_operator):
    make_operator("boss@example.com", role=OperatorRole.MAINTAINER, first_name="Mia")
    ids = build_world(new_customer, make_operator)
    browser = Browserless(app.test_client())
    if role != "anonymous":
        email = {"outsider": "outsider@example.com", "insider": "insider@example.com",
                 "maintainer": "boss@example.com"}[role]
        assert browser.login(email).status_code == 302
    token = csrf_from(browser.get("/login" if role == "anonymous" else "/admin/").get_data(as_text=True))

    failures = []
    for endpoint, method, url, data in requests_for(app, ids):
        response = browser.open(url, method=method,
                                data={**data, "csrf_token": token} if method == "POST" else None)
        want = expected(role, endpoint, method)
        if want == "login":
            good = response.status_code == 302 and "/login" in response.headers.get("Location", "")
        else:
            good = response.status_code in want
        if not good:
            failures.append(f"{role} {method} {url}: {response.status_code}, expected {want}")
        if role in ("anonymous", "outsider"):
            body = response.get_data(as_text=True)
            for secret in (SECRET_NAME, SECRET_EMAIL, CONTACT_NAME, CONTACT_EMAIL):
                if secret in body:
                    failures.append(f"{role} {method} {url} shows {secret!r}")
    assert not failures, "\n".join(failures)

    db.session.expire_all()
    survivor = db.session.get(Customer, ids["customer"])
    assert survivor is not None and survivor.display_name == SECRET_NAME
    allowed_to_delete = role in ("insider", "maintainer")
    for endpoint in DESTRUCTIVE:
        model = {"contacts": Contact, "requests": Request}.get(endpoint.split(".")[0], Customer)
        assert (db.session.get(model, ids[endpoint]) is None) == allowed_to_delete, endpoint


def test_the_customer_pages_are_the_table_with_the_rights_they_declare(app):
    from admin_views.customer_page import CustomerPage

    pages = {p.endpoint: p for p in app.extensions["admin"][0]._views if isinstance(p, CustomerPage)}
    assert set(pages) == set(CUSTOMER_PAGES)
    for endpoint, rights in CUSTOMER_PAGES.items():
        page = pages[endpoint]
        declared = (page.right, MAINTAINER if page.post_maintainer_only else page.post_right)
        assert declared == rights, endpoint


def test_a_viewer_gets_each_customer_page_by_its_right_and_writes_nothing(app, session, new_customer,
                                                                         make_operator):
    from models import AuditEvent, GlobalSettings, Operator, Team

    ids = build_world(new_customer, make_operator)
    team = Team(name="Desk")
    session.add(team)
    make_operator("viewer@example.com", first_name="Vera", last_name="Viewer").teams = [team]
    session.scalars(select(Operator).filter_by(email="insider@example.com")).one().teams = [team]
    session.get(GlobalSettings, 1).view_by_team_members = True
    session.commit()
    browser = Browserless(app.test_client())
    assert browser.login("viewer@example.com").status_code == 302
    version = session.get(Customer, ids["customer"]).version
    events = session.scalar(select(func.count()).select_from(AuditEvent))
    session.commit()  # end the read, as a request would
    token = csrf_from(browser.get("/admin/").get_data(as_text=True))

    failures = []
    for endpoint, method, url, data in requests_for(app, ids):
        view = endpoint.partition(".")[0]
        if view not in CUSTOMER_PAGES:
            continue
        response = browser.open(url, method=method,
                                data={**data, "csrf_token": token} if method == "POST" else None)
        want = customer_page_answer("viewer", endpoint, method)
        if response.status_code not in want:
            failures.append(f"viewer {method} {url}: {response.status_code}, expected {want}")
    assert not failures, "\n".join(failures)
    session.expire_all()
    assert session.get(Customer, ids["customer"]).version == version
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == events
