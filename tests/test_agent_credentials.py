"""The C-Monitor agent's door, on SQLite and PostgreSQL: a registration key only from someone who
may be given the customer's secrets (a maintainer), a per-computer agent credential shown once
and stored as a hash, the settings with their secrets only for that credential, and every
registration and fetch on the customer's History without any secret."""

from __future__ import annotations

import hashlib

import pytest

from models import AuditEvent, Computer, Customer, GlobalSettings
from models.enums import CustomerKind
from services.api_tokens import create_token
from services.customer_settings import save_customer_settings
from services.secrets import SecretBox
from tests.conftest import ENCRYPTION_KEY, written

API = "/api/v1"
BOX = SecretBox(ENCRYPTION_KEY)
SECRETS = ("agent-secret", "pop-secret", "smtp-secret", "builtin-pop-secret")


class Api:
    def __init__(self, client, token: str | None = None):
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"} if token else {}

    def __getattr__(self, method):
        def call(url, **kw):
            headers = {**self.headers, **kw.pop("headers", {})}
            with self.client.application.app_context():
                return getattr(self.client, method)(API + url, headers=headers, **kw)
        return call


def api_of(app, session, operator) -> Api:
    return Api(app.test_client(), written(session, lambda: create_token(session, operator, "tests"))[1])


@pytest.fixture
def acme(session, new_customer, operator, maintainer):
    customer = new_customer(kind=CustomerKind.COMPANY, company_name="ACME s.r.o.", operators=[operator])
    written(session, lambda: save_customer_settings(session, customer, operator, BOX, {
        "cmonitor_password": "agent-secret", "use_builtin_mail_servers": False,
        "pop3_host": "pop.acme.sk", "pop3_username": "cm", "pop3_password": "pop-secret",
        "smtp_primary_host": "smtp.acme.sk", "smtp_primary_password": "smtp-secret"}))
    return customer


def secrets_in(text: str) -> list[str]:
    return [s for s in SECRETS if s in text] + (["ciphertext"] if "gAAAAA" in text else [])


def test_an_operator_who_may_edit_cannot_make_a_registration_key(app, session, acme, operator,
                                                                  operator_client):
    """He could register a made-up computer with it and read the passwords the panel never shows."""
    refused = api_of(app, session, operator).post(f"/customers/{acme.id}/registration-key")
    assert refused.status_code == 403 and "maintainer" in refused.get_json()["message"]
    url = f"/admin/customers/computers-tab/?id={acme.id}"
    page = operator_client.get(url).get_data(as_text=True)
    assert 'value="rotate"' not in page and 'data-testid="key-by-maintainer"' in page
    assert operator_client.submit(url, {"action": "rotate"}).status_code == 403
    session.expire_all()
    assert session.get(Customer, acme.id).registration_key_hash is None
    assert not session.query(AuditEvent).filter_by(action="rotate_registration_key").count()


def test_the_agent_gets_a_credential_once_and_the_secrets_only_with_it(app, session, acme, maintainer):
    key = api_of(app, session, maintainer).post(f"/customers/{acme.id}/registration-key").get_json()[
        "registration_key"]
    agent = Api(app.test_client())
    registered = agent.post("/computers/register", json={"registration_key": key, "hostname": "WS-01"})
    assert registered.status_code == 201
    body = registered.get_json()
    credential = body["agent_credential"]
    assert credential and len(credential) >= 40
    assert secrets_in(registered.get_data(as_text=True)) == []  # the key alone opens no secret
    assert body["settings"]["mail"]["pop3"]["host"] == "pop.acme.sk"
    session.expire_all()
    computer = session.get(Computer, body["id"])
    assert computer.agent_credential_hash == hashlib.sha256(credential.encode()).hexdigest()
    assert credential not in repr({c.key: getattr(computer, c.key) for c in Computer.__table__.columns})

    fetched = Api(app.test_client(), credential).post("/computers/settings")
    assert fetched.status_code == 200
    settings = fetched.get_json()["settings"]
    assert settings["cmonitor"]["access_password"] == "agent-secret"
    assert settings["mail"]["pop3"]["password"] == "pop-secret"
    assert settings["mail"]["smtp"][0]["password"] == "smtp-secret"
    for wrong in (None, "guessed", key):  # the registration key is not a credential for the settings
        answer = Api(app.test_client(), wrong).post("/computers/settings")
        assert answer.status_code == 401 and secrets_in(answer.get_data(as_text=True)) == []
    assert Api(app.test_client(), credential).get("/computers/settings").status_code == 405

    again = agent.post("/computers/register", json={"registration_key": key, "hostname": "ws-01"})
    assert again.status_code == 200 and again.get_json()["id"] == body["id"]
    renewed = again.get_json()["agent_credential"]
    assert renewed != credential  # a reinstalled agent registers again: the old credential ends
    assert Api(app.test_client(), credential).post("/computers/settings").status_code == 401
    assert Api(app.test_client(), renewed).post("/computers/settings").status_code == 200


def test_no_operator_reads_a_credential_back(app, session, acme, maintainer, maintainer_client):
    key = api_of(app, session, maintainer).post(f"/customers/{acme.id}/registration-key").get_json()[
        "registration_key"]
    credential = Api(app.test_client()).post("/computers/register", json={
        "registration_key": key, "hostname": "ws-01"}).get_json()["agent_credential"]
    listed = api_of(app, session, maintainer).get(f"/customers/{acme.id}/computers")
    page = maintainer_client.get(f"/admin/customers/computers-tab/?id={acme.id}")
    history = maintainer_client.get(f"/admin/customers/history/?id={acme.id}")
    audit = maintainer_client.get("/admin/audit/")
    for answer in (listed, page, history, audit):
        assert answer.status_code == 200
        text = answer.get_data(as_text=True)
        assert credential not in text and key not in text and secrets_in(text) == []


def test_registrations_and_fetches_are_on_the_customers_history_without_secrets(app, session, acme,
                                                                                  maintainer,
                                                                                  maintainer_client):
    session.get(GlobalSettings, 1).pop3_password_encrypted = BOX.encrypt("builtin-pop-secret")
    session.commit()
    key = api_of(app, session, maintainer).post(f"/customers/{acme.id}/registration-key").get_json()[
        "registration_key"]
    agent = Api(app.test_client())
    credential = agent.post("/computers/register", json={"registration_key": key,
                                                         "hostname": "ws-07"}).get_json()["agent_credential"]
    Api(app.test_client(), credential).post("/computers/settings")
    agent.post("/computers/register", json={"registration_key": key, "hostname": "ws-07"})
    session.expire_all()
    events = session.query(AuditEvent).filter_by(entity_type="customer", entity_id=acme.id).all()
    actions = [e.action for e in events]
    assert {"register_computer", "fetch_computer_settings", "reregister_computer"} <= set(actions)
    for event in events:
        assert secrets_in(repr(event.changes)) == [] and credential not in repr(event.changes)
    assert {e.actor_label for e in events if "computer" in e.action} == {"C-Monitor agent"}
    history = maintainer_client.get(f"/admin/customers/history/?id={acme.id}").get_data(as_text=True)
    assert "Computer registered" in history and "Computer settings fetched" in history and "ws-07" in history
