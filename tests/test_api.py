"""The JSON API through the test client, on SQLite and PostgreSQL: tokens, the access policy,
409 duplicates, the company-contact rule, field limits from the columns, 412 stale versions from
the domain's version check, requests with recipients, registration keys made only by a POST and
shown once, computer registration, and GETs that write nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import AuditEvent, Computer, Contact, Customer, Request
from models.enums import CustomerKind
from services.api_tokens import create_token, revoke_token
from services.customer_settings import save_customer_settings
from services.secrets import SecretBox
from tests.conftest import ENCRYPTION_KEY, written

API = "/api/v1"
BOX = SecretBox(ENCRYPTION_KEY)


class Api:
    """The test client with a bearer token."""

    def __init__(self, client, token: str | None):
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"} if token else {}

    def __getattr__(self, method):
        def call(url, **kw):
            headers = {**self.headers, **kw.pop("headers", {})}
            with self.client.application.app_context():
                return getattr(self.client, method)(API + url, headers=headers, **kw)
        return call


def token_of(session, operator) -> str:
    return written(session, lambda: create_token(session, operator, "tests"))[1]


@pytest.fixture
def as_operator(app, session, operator):
    return Api(app.test_client(), token_of(session, operator))


@pytest.fixture
def as_maintainer(app, session, maintainer):
    return Api(app.test_client(), token_of(session, maintainer))


@pytest.fixture
def acme(new_customer, operator):
    return new_customer(kind=CustomerKind.COMPANY, company_name="ACME s.r.o.", email="office@acme.sk",
                        operators=[operator],
                        contacts=[{"first_name": "Jana", "last_name": "Nová", "email": "jana@acme.sk",
                                   "is_main": True}])


def test_no_or_a_revoked_token_is_401_in_the_one_error_shape(app, session, operator, acme):
    anonymous = Api(app.test_client(), None).get("/customers")
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert set(anonymous.get_json()) == {"code", "status", "message", "errors"}
    row, token = written(session, lambda: create_token(session, operator, "soon revoked"))
    assert Api(app.test_client(), token).get("/customers").status_code == 200
    session.expire_all()
    assert row.last_used_at is not None  # the door committed the token's bookkeeping
    written(session, lambda: revoke_token(session, operator, row))
    assert Api(app.test_client(), token).get("/customers").status_code == 401
    assert Api(app.test_client(), "cd_guessed").get("/customers").status_code == 401


def test_the_list_pages_searches_and_shows_only_what_the_operator_may_see(as_operator, new_customer, acme):
    new_customer(kind=CustomerKind.PERSON, first_name="Cudzí", last_name="Človek")  # nobody's
    for n in range(3):
        new_customer(kind=CustomerKind.COMPANY, company_name=f"Mine {n}", operators=[acme.operators[0]])
    page = as_operator.get("/customers?per_page=2&page=2").get_json()
    assert (page["total"], page["page"], page["per_page"]) == (4, 2, 2)
    assert [c["display_name"] for c in page["items"]] == ["Mine 1", "Mine 2"]
    found = as_operator.get("/customers?q=acme").get_json()
    assert [c["id"] for c in found["items"]] == [acme.id] and found["items"][0]["version"] == acme.version
    assert as_operator.get("/customers?q=cudzi").get_json()["total"] == 0
    assert as_operator.get("/customers?kind=robot").status_code == 422
    assert as_operator.get("/customers?per_page=1000").status_code == 422


def test_get_includes_contacts_and_never_a_registration_key(as_operator, session, acme, new_customer):
    body = as_operator.get(f"/customers/{acme.id}").get_json()
    assert body["company_name"] == "ACME s.r.o." and body["contacts"][0]["email"] == "jana@acme.sk"
    assert body["kind"] == "company" and "registration_key" not in body
    stranger = new_customer(kind=CustomerKind.COMPANY, company_name="Not yours")
    assert as_operator.get(f"/customers/{stranger.id}").status_code == 404


BOSS = {"last_name": "Šéf", "email": "sef@acme-spol.sk", "is_main": True}


def test_create_validates_refuses_duplicates_with_409_and_honours_confirmation(as_operator, session, acme):
    created = as_operator.post("/customers", json={
        "kind": "person", "first_name": "Eva", "last_name": "Malá", "email": "eva@example.sk",
        "primary_phone": "0903 111 222"})
    assert created.status_code == 201
    assert created.get_json()["primary_phone"] == "+421903111222"
    duplicate = as_operator.post("/customers", json={"kind": "company", "company_name": "Acme, spol. s r.o.",
                                                     "contacts": [BOSS]})
    assert duplicate.status_code == 409
    assert set(duplicate.get_json()) == {"code", "status", "message", "errors", "candidates"}
    assert duplicate.get_json()["candidates"][0]["label"] == "ACME s.r.o."
    assert "same company name" in duplicate.get_json()["candidates"][0]["reasons"]
    confirmed = as_operator.post("/customers", json={"kind": "company", "company_name": "Acme, spol. s r.o.",
                                                     "contacts": [BOSS], "confirm_duplicate": True})
    assert confirmed.status_code == 201
    assert [c["email"] for c in confirmed.get_json()["contacts"]] == ["sef@acme-spol.sk"]
    invalid = as_operator.post("/customers", json={"kind": "person", "first_name": "", "last_name": "X",
                                                   "email": "not-an-email"})
    assert invalid.status_code == 422 and {"first_name", "email"} <= set(invalid.get_json()["errors"])
    assert as_operator.post("/customers", json={"kind": "company", "company_name": "A",
                                                "shoe_size": 42}).status_code == 422
    assert as_operator.post("/customers", json={"kind": "company", "company_name": 42}).status_code == 422
    malformed = as_operator.post("/customers", data="{not json", content_type="application/json")
    assert malformed.status_code in (400, 422) and "errors" in malformed.get_json()
    assert session.query(Customer).count() == 3


def test_a_company_needs_a_contact_with_an_e_mail(as_operator, session):
    """The company-contact rule of save_customer holds on the API's door too (422, contacts)."""
    for contacts in ([], [{"last_name": "Bez Mailu", "phone": "0903 111 222"}]):
        refused = as_operator.post("/customers", json={"kind": "company", "company_name": "Mailless s.r.o.",
                                                       "contacts": contacts})
        assert refused.status_code == 422, refused.get_json()
        assert refused.get_json()["errors"]["contacts"]
    assert session.query(Customer).count() == 0 and session.query(Contact).count() == 0
    accepted = as_operator.post("/customers", json={"kind": "company", "company_name": "Mailless s.r.o.",
                                                    "contacts": [{"last_name": "Mail", "email": "m@ml.sk"}]})
    assert accepted.status_code == 201


def test_too_long_values_are_refused_on_their_field_by_the_column_limits(app, as_operator, as_maintainer,
                                                                         session, acme):
    """Limits come from the columns: 201–255 characters of a company name (the column has 200) used
    to pass the schema and end in a 500 on PostgreSQL."""
    events = session.query(AuditEvent).count()
    for name in ("N" * 201, "N" * 255):
        refused = as_operator.post("/customers", json={"kind": "company", "company_name": name,
                                                       "contacts": [BOSS]})
        assert refused.status_code == 422 and "200" in refused.get_json()["errors"]["company_name"][0]
    patched = as_operator.patch(f"/customers/{acme.id}", json={"company_name": "N" * 201,
                                                                "version": acme.version})
    assert patched.status_code == 422 and "company_name" in patched.get_json()["errors"]
    nested = as_operator.post("/customers", json={"kind": "company", "company_name": "Long Contact",
                                                  "contacts": [{**BOSS, "last_name": "L" * 81}]})
    assert nested.status_code == 422 and "last_name" in nested.get_json()["errors"]["contacts"][0]
    contact = as_operator.post(f"/customers/{acme.id}/contacts", json={"last_name": "L" * 81})
    assert contact.status_code == 422 and "last_name" in contact.get_json()["errors"]
    subject = as_operator.post(f"/customers/{acme.id}/requests", json={"subject": "S" * 256})
    assert subject.status_code == 422 and "subject" in subject.get_json()["errors"]
    assert as_operator.post(f"/customers/{acme.id}/requests", json={"subject": "S" * 255}).status_code == 201
    key = as_maintainer.post(f"/customers/{acme.id}/registration-key").get_json()["registration_key"]
    agent = Api(app.test_client(), None)
    host = agent.post("/computers/register", json={"registration_key": key, "hostname": "h" * 256})
    assert host.status_code == 422 and "hostname" in host.get_json()["errors"]
    session.expire_all()
    assert session.query(Customer).count() == 1 and session.query(Contact).count() == 1
    assert session.query(Request).count() == 1 and session.query(Computer).count() == 0
    assert session.get(Customer, acme.id).company_name == "ACME s.r.o."
    assert session.query(AuditEvent).count() == events + 2  # the one request, the one key


def test_patch_needs_the_version_and_refuses_a_stale_one(as_operator, session, acme):
    url = f"/customers/{acme.id}"
    assert as_operator.patch(url, json={"notes": "x"}).status_code == 428
    assert as_operator.patch(url, json={"notes": "x"}, headers={"If-Match": "nonsense"}).status_code == 412
    updated = as_operator.patch(url, json={"notes": "Call first", "version": acme.version})
    assert updated.status_code == 200 and updated.get_json()["notes"] == "Call first"
    new_version = updated.get_json()["version"]
    stale = as_operator.patch(url, json={"notes": "Overwrite", "version": acme.version})
    assert stale.status_code == 412
    by_header = as_operator.patch(url, json={"title": None, "email": "info@acme.sk"},
                                  headers={"If-Match": f'"{new_version}"'})
    assert by_header.status_code == 200
    session.expire_all()
    assert session.get(Customer, acme.id).notes == "Call first"
    bad = as_operator.patch(url, json={"email": "nope", "version": by_header.get_json()["version"]})
    assert bad.status_code == 422 and "email" in bad.get_json()["errors"]


def test_a_stale_patch_is_refused_by_the_domain_version_check_and_changes_nothing(
        as_operator, session, acme, operator):
    """The 412 comes from check_version inside update_customer — the API compares no versions of
    its own — so this fails if the domain's check were switched off."""
    from services.customers import SaveOptions, update_customer

    read = acme.version
    written(session, lambda: update_customer(session, acme, operator, SaveOptions("SK"),
                                             {"notes": "Changed in the panel"}, seen_version=read))
    session.expire_all()
    current = session.get(Customer, acme.id).version
    events = session.query(AuditEvent).count()
    stale = as_operator.patch(f"/customers/{acme.id}", json={"notes": "Overwrite", "title": None,
                                                             "version": read})
    assert stale.status_code == 412
    assert set(stale.get_json()) == {"code", "status", "message", "errors"}
    session.expire_all()
    row = session.get(Customer, acme.id)
    assert (row.notes, row.version) == ("Changed in the panel", current)
    assert session.query(AuditEvent).count() == events
    assert as_operator.patch(f"/customers/{acme.id}", json={"notes": "Now", "version": current}).status_code \
        == 200


def test_deactivate_contacts_and_operators(as_operator, as_maintainer, session, acme, make_operator):
    deactivated = as_operator.post(f"/customers/{acme.id}/deactivate", json={"version": acme.version})
    assert deactivated.get_json()["active"] is False
    assert session.query(AuditEvent).filter_by(action="status_change").count() == 1
    added = as_operator.post(f"/customers/{acme.id}/contacts",
                             json={"last_name": "Druhý", "email": "d@acme.sk"})
    assert added.status_code == 201
    assert len(as_operator.get(f"/customers/{acme.id}/contacts").get_json()) == 2
    friend = make_operator("friend@example.com", first_name="Fero")
    refused = as_operator.put(f"/customers/{acme.id}/operators", json={"operator_ids": [friend.id]})
    assert refused.status_code == 403
    session.expire_all()
    assigned = as_maintainer.put(f"/customers/{acme.id}/operators", json={"operator_ids": [friend.id]},
                                 headers={"If-Match": f'"{session.get(Customer, acme.id).version}"'})
    assert [o["email"] for o in assigned.get_json()] == ["friend@example.com"]
    unknown = as_maintainer.put(f"/customers/{acme.id}/operators", json={"operator_ids": [friend.id, 99999]})
    assert unknown.status_code == 422 and "operator_ids" in unknown.get_json()["errors"]
    assert session.query(AuditEvent).filter_by(action="operator_assignment").count() >= 1


def test_duplicate_check_endpoint(as_operator, acme):
    body = as_operator.post("/duplicates", json={"kind": "person", "name": "Nova Jana",
                                                 "email": "JANA@acme.sk"}).get_json()
    assert body["candidates"][0]["label"] == "Jana Nová"
    assert set(body["candidates"][0]["reasons"]) == {"same e-mail", "same name"}


def test_requests_with_assigned_contacts_and_recipients(as_operator, session, acme, new_customer):
    other = new_customer(kind=CustomerKind.COMPANY, company_name="Other",
                         contacts=[{"last_name": "Cudzí", "email": "c@other.sk"}])
    refused = as_operator.post(f"/customers/{acme.id}/requests",
                               json={"subject": "Printer", "contact_ids": [other.contacts[0].id]})
    assert refused.status_code == 422 and "contact_ids" in refused.get_json()["errors"]
    created = as_operator.post(f"/customers/{acme.id}/requests", json={"subject": "Printer jam"})
    assert created.status_code == 201
    assert created.get_json()["recipients"] == [{"name": "Jana Nová", "email": "jana@acme.sk",
                                                 "why": "main contact"}]
    listed = as_operator.get(f"/customers/{acme.id}/requests").get_json()
    assert [r["subject"] for r in listed] == ["Printer jam"]


def test_computers_register_with_the_key_and_keep_their_snapshot(as_operator, as_maintainer, session, acme,
                                                                  operator, app):
    url = f"/customers/{acme.id}/registration-key"
    assert as_operator.get(url).get_json() == {"registration_key": None, "exists": False}
    made = as_maintainer.post(url).get_json()
    key = made["registration_key"]
    assert key and made["exists"] is True
    assert as_operator.get(url).get_json() == {"registration_key": None, "exists": True}  # shown once
    session.expire_all()
    stored = session.get(Customer, acme.id)
    assert stored.registration_key_hash and key not in stored.registration_key_hash
    assert not hasattr(stored, "registration_key_encrypted")  # only the hash is kept
    agent = Api(app.test_client(), None)
    first = agent.post("/computers/register", json={"registration_key": key, "hostname": "WS-01",
                                                    "operating_system": "Windows 11"})
    assert first.status_code == 201
    body = first.get_json()
    assert body["customer_id"] == acme.id and body["settings"]["mail"]["source"] == "builtin"
    again = agent.post("/computers/register", json={"registration_key": key, "hostname": "ws-01"})
    assert again.status_code == 200 and again.get_json()["id"] == body["id"]
    wrong = agent.post("/computers/register", json={"registration_key": "wrong", "hostname": "x"})
    assert wrong.status_code == 401 and set(wrong.get_json()) == {"code", "status", "message", "errors"}
    assert agent.post("/computers/register", json={"registration_key": key}).status_code == 422

    def fetch() -> dict:
        """What the agent fetches with the credential of its latest registration."""
        answer = agent.post("/computers/register", json={"registration_key": key, "hostname": "ws-01"})
        credential = answer.get_json()["agent_credential"]
        return Api(app.test_client(), credential).post("/computers/settings").get_json()

    written(session, lambda: save_customer_settings(session, acme, operator, BOX,
                                                    {"cmonitor_password": "new-agent-pass"}))
    assert fetch()["settings"]["cmonitor"]["access_password"] is None  # not silently changed
    listed = as_operator.get(f"/customers/{acme.id}/computers").get_json()
    assert listed[0]["settings_differ"] is True
    pushed = as_operator.post(f"/customers/{acme.id}/computers/{body['id']}/push-settings")
    assert pushed.status_code == 200 and pushed.get_json()["settings_differ"] is False
    assert fetch()["settings"]["cmonitor"]["access_password"] == "new-agent-pass"
    snapshot = session.get(Computer, body["id"]).settings_snapshot
    assert "new-agent-pass" not in str(snapshot)  # secrets are encrypted in the snapshot
    assert session.query(AuditEvent).filter_by(action="push_settings").count() == 1

    rotated = as_maintainer.post(url).get_json()["registration_key"]
    assert rotated != key
    old_key = agent.post("/computers/register", json={"registration_key": key, "hostname": "ws-02"})
    assert old_key.status_code == 401
    assert agent.post("/computers/register", json={"registration_key": rotated,
                                                   "hostname": "ws-02"}).status_code == 201
    assert session.query(AuditEvent).filter_by(action="rotate_registration_key").count() == 2


def test_only_a_maintainer_makes_a_key_and_strangers_learn_nothing(app, as_operator, as_maintainer, session,
                                                                   acme, make_operator):
    stranger = Api(app.test_client(), token_of(session, make_operator("stranger@example.com")))
    url = f"/customers/{acme.id}/registration-key"
    assert stranger.get(url).status_code == 404 and stranger.post(url).status_code == 404
    assert as_operator.post(url).status_code == 403  # may edit, but the key would open its secrets
    session.expire_all()
    assert session.get(Customer, acme.id).registration_key_hash is None
    assert as_maintainer.post(url).status_code == 200


def count_writes(session, customer_id: int) -> tuple:
    """What a GET must leave as it was: audit events, the customer's key hash and version."""
    session.expire_all()
    row = session.get(Customer, customer_id)
    return (session.scalar(select(func.count()).select_from(AuditEvent)), row.registration_key_hash,
            row.version, row.updated_at)


def test_get_requests_write_nothing(as_operator, as_maintainer, session, acme):
    """Reading a customer or asking about its key neither mints a key nor records an event."""
    gets = ["/customers", *(f"/customers/{acme.id}{tail}" for tail in (
        "", "/registration-key", "/contacts", "/computers", "/operators", "/requests"))]
    before = count_writes(session, acme.id)
    assert before[1] is None
    for url in gets:
        assert as_operator.get(url).status_code == 200, url
    assert count_writes(session, acme.id) == before
    assert as_operator.get(f"/customers/{acme.id}/registration-key").get_json()["exists"] is False

    as_maintainer.post(f"/customers/{acme.id}/registration-key")
    before = count_writes(session, acme.id)
    assert before[1] is not None
    for url in gets:
        assert as_operator.get(url).status_code == 200, url
    assert count_writes(session, acme.id) == before


def test_cli_creates_a_token_as_its_last_line(app, session, operator, acme):
    result = app.test_cli_runner().invoke(args=["tokens", "create", operator.email, "--name", "cron"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert Api(app.test_client(), token).get(f"/customers/{acme.id}").status_code == 200
    assert app.test_cli_runner().invoke(args=["tokens", "create", "nobody@example.com"]).exit_code != 0


def test_openapi_document_and_docs_page(app):
    client = app.test_client()
    spec = client.get(f"{API}/openapi.json").get_json()
    assert spec["openapi"].startswith("3.") and "/api/v1/customers/{customer_id}" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    page = client.get(f"{API}/docs").get_data(as_text=True)
    assert "swagger-ui-bundle.js" in page
    assert client.get(f"{API}/docs/assets/swagger-ui-bundle.js").status_code == 200


def test_the_profile_page_creates_a_token_once_and_revokes_it(app, operator_client, session, operator):
    from models import ApiToken

    refused = operator_client.submit("/admin/api-tokens/", {"name": ""})
    assert "Name the token" in refused.get_data(as_text=True)
    page = operator_client.submit("/admin/api-tokens/", {"name": "nightly report"}).get_data(as_text=True)
    token = page.split('data-testid="new-token"')[1].split("<code>")[1].split("</code>")[0]
    assert Api(app.test_client(), token).get("/customers").status_code == 200
    assert token not in operator_client.get("/admin/api-tokens/").get_data(as_text=True)  # shown once
    row = session.query(ApiToken).filter_by(name="nightly report").one()
    assert row.token_hash != token and token not in row.token_hash
    operator_client.submit("/admin/api-tokens/", {}, post_url=f"/admin/api-tokens/{row.id}/revoke")
    assert Api(app.test_client(), token).get("/customers").status_code == 401
