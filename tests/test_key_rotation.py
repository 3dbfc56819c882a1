"""Key rotation re-encrypts every stored secret wherever it lives — secret columns, computers'
settings snapshots, wizard drafts, the merged record that keeps a merge's undo — and every page
and API call that shows or uses a secret works afterwards, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from models import AuditEvent, Customer, CustomerSettings, GlobalSettings
from models.enums import CustomerKind
from services.customer_settings import save_customer_settings, settings_of
from services.merge import merge_customers
from services.secrets import FERNET_TOKEN, SecretBox, encrypted_columns, json_columns
from services.transactions import unit_of_work
from tests.conftest import ENCRYPTION_KEY, csrf_from, written
from tests.test_agent_credentials import Api, api_of
from tests.test_wizard import post_step, start

OLD = SecretBox(ENCRYPTION_KEY)
OWN_MAIL = {"use_builtin_mail_servers": False, "pop3_host": "pop.acme.sk", "pop3_username": "cm",
            "pop3_password": "pop-secret", "smtp_primary_host": "smtp.acme.sk",
            "smtp_primary_password": "smtp-secret"}


def stored_tokens(session) -> list[str]:
    """Every ciphertext the database holds: secret columns and anything inside JSON."""
    tokens = []
    for model, column in encrypted_columns():
        tokens += [v for v in session.scalars(select(getattr(model, column))) if v]
    for model, column in json_columns():
        for value in session.scalars(select(getattr(model, column))):
            tokens += FERNET_TOKEN.findall(json.dumps(value))
    return tokens


def opens(box: SecretBox, token: str) -> bool:
    try:
        box.decrypt(token)
    except ValueError:
        return False
    return True


def test_after_a_rotation_every_secret_is_under_the_new_key_and_everything_works(
        app, session, new_customer, maintainer, maintainer_client):
    acme = new_customer(kind=CustomerKind.COMPANY, company_name="ACME s.r.o.")
    written(session, lambda: save_customer_settings(session, acme, maintainer, OLD,
                                                    {"cmonitor_password": "agent-secret", **OWN_MAIL}))
    session.get(GlobalSettings, 1).pop3_password_encrypted = OLD.encrypt("builtin-pop-secret")
    session.commit()
    as_maintainer = api_of(app, session, maintainer)
    key = as_maintainer.post(f"/customers/{acme.id}/registration-key").get_json()["registration_key"]
    agent = Api(app.test_client())
    computer = agent.post("/computers/register", json={"registration_key": key,
                                                       "hostname": "ws-01"}).get_json()

    # A wizard draft holding passwords, left at the mail step.
    base = start(maintainer_client)
    assert post_step(maintainer_client, base, "customer", {
        "kind": "company", "company_name": "Drafted s.r.o.", "contact_last_name": "Vodová",
        "contact_email": "vera@drafted.sk"}).status_code == 302
    assert post_step(maintainer_client, base, "cmonitor", {
        "cmonitor_password": "draft-agent", "cmonitor_password_confirm": "draft-agent"}).status_code == 302
    assert post_step(maintainer_client, base, "mail", {
        "use_builtin_mail_servers": "0", "pop3_host": "pop.drafted.sk", "pop3_password": "draft-pop",
        "smtp_primary_host": "smtp.drafted.sk", "smtp_primary_password": "draft-smtp"}).status_code == 302

    # A merge that kept the other's C-Monitor password: the survivor's own waits for an undo.
    survivor = new_customer(kind=CustomerKind.COMPANY, company_name="Merge Left")
    other = new_customer(kind=CustomerKind.COMPANY, company_name="Merge Right")
    for customer, password in ((survivor, "left-secret"), (other, "right-secret")):
        written(session, lambda c=customer, p=password: save_customer_settings(
            session, c, maintainer, OLD, {"cmonitor_password": p}))
    merge = written(session, lambda: merge_customers(
        session, maintainer, session.get(Customer, survivor.id), session.get(Customer, other.id), OLD,
        choices={}, decisions={"cmonitor_password": "other"}))
    merge_id = merge.id
    before = stored_tokens(session)
    assert len(before) >= 12 and all(opens(OLD, t) for t in before)

    new_key = Fernet.generate_key().decode()
    app.config["ENCRYPTION_KEY"] = new_key
    result = app.test_cli_runner().invoke(args=["rotate-encryption-key", "--old-key", ENCRYPTION_KEY])
    assert result.exit_code == 0, result.output
    assert not any(s in result.output for s in ("agent-secret", "left-secret", "draft-pop", "gAAAAA"))
    new = SecretBox(new_key)
    app.extensions["secret_box"] = new  # the app runs with the new key from now on
    session.expire_all()
    after = stored_tokens(session)
    assert len(after) == len(before)
    assert all(opens(new, t) for t in after) and not any(opens(OLD, t) for t in after)

    # The customer's settings tabs.
    for tab in ("cmonitor", "mail", "notifications", "requests"):
        page = maintainer_client.get(f"/admin/customers/settings/?id={acme.id}&tab={tab}")
        assert page.status_code == 200, tab
    # The computers: list page, API list, push, re-registration and the agent's fetch.
    page = maintainer_client.get(f"/admin/customers/computers-tab/?id={acme.id}")
    assert page.status_code == 200 and ">current<" in page.get_data(as_text=True)
    listed = as_maintainer.get(f"/customers/{acme.id}/computers")
    assert listed.status_code == 200 and listed.get_json()[0]["settings_differ"] is False
    again = agent.post("/computers/register", json={"registration_key": key, "hostname": "ws-01"})
    assert again.status_code == 200
    fetched = Api(app.test_client(), again.get_json()["agent_credential"]).post("/computers/settings")
    assert fetched.status_code == 200
    settings = fetched.get_json()["settings"]
    assert settings["cmonitor"]["access_password"] == "agent-secret"
    assert settings["mail"]["pop3"]["password"] == "pop-secret"
    pushed = as_maintainer.post(f"/customers/{acme.id}/computers/{computer['id']}/push-settings")
    assert pushed.status_code == 200
    # The wizard resumes the draft and saves its passwords.
    for step in ("cmonitor", "mail", "notifications"):
        assert maintainer_client.get(f"{base}/{step}").status_code == 200, step
    assert post_step(maintainer_client, base, "notifications", {}).status_code == 302
    assert post_step(maintainer_client, base, "requests", {}).status_code == 302
    assert post_step(maintainer_client, base, "operators", {}).status_code == 302
    summary = maintainer_client.get(f"{base}/summary").get_data(as_text=True)
    saved = maintainer_client.post(f"{base}/summary", data={"csrf_token": csrf_from(summary)})
    assert saved.status_code == 302
    drafted = session.scalar(select(Customer).where(Customer.company_name == "Drafted s.r.o."))
    own = session.scalar(select(CustomerSettings).where(CustomerSettings.customer_id == drafted.id))
    assert new.decrypt(own.cmonitor_password_encrypted) == "draft-agent"
    assert new.decrypt(own.pop3_password_encrypted) == "draft-pop"
    # The merge: its page, and its undo gives each its own password back.
    done = f"/admin/customers/merge/done/{merge_id}"
    assert maintainer_client.get(done).status_code == 200
    undone = maintainer_client.submit(done, {}, post_url=done.replace("/done/", "/undo/"))
    assert undone.status_code == 302
    session.expire_all()
    for customer, password in ((survivor, "left-secret"), (other, "right-secret")):
        row = settings_of(session, session.get(Customer, customer.id))
        assert new.decrypt(row.cmonitor_password_encrypted) == password
    # The histories and the audit trail show no secret.
    for url in (f"/admin/customers/history/?id={acme.id}", f"/admin/customers/history/?id={survivor.id}",
                "/admin/audit/"):
        page = maintainer_client.get(url)
        assert page.status_code == 200 and "gAAAAA" not in page.get_data(as_text=True), url
    assert not FERNET_TOKEN.search(json.dumps([e.changes for e in session.query(AuditEvent)]))


def test_a_key_that_opens_nothing_changes_nothing_anywhere(app, session, new_customer, maintainer):
    acme = new_customer(kind=CustomerKind.COMPANY, company_name="ACME s.r.o.")
    written(session, lambda: save_customer_settings(session, acme, maintainer, OLD,
                                                    {"cmonitor_password": "agent-secret"}))
    key = api_of(app, session, maintainer).post(f"/customers/{acme.id}/registration-key").get_json()[
        "registration_key"]
    Api(app.test_client()).post("/computers/register", json={"registration_key": key, "hostname": "ws-01"})
    before = sorted(stored_tokens(session))
    app.config["ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    result = app.test_cli_runner().invoke(
        args=["rotate-encryption-key", "--old-key", Fernet.generate_key().decode()])
    assert result.exit_code != 0 and "nothing was changed" in result.output
    session.expire_all()
    assert sorted(stored_tokens(session)) == before


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_upgrading_seals_snapshots_and_takes_ciphertext_out_of_merge_events(backend, tmp_path, request):
    """Rows the old code wrote: a snapshot with its secrets as bare ciphertext (which rotation could
    not find) and a merge event holding the survivor's C-Monitor password ciphertext. After the
    migration rotation finds every secret, no event holds one, and the merge still undoes."""
    from datetime import datetime

    from flask_migrate import upgrade
    from sqlalchemy import insert

    from extensions import db
    from models import Computer, CustomerStatus
    from services.computers import settings_of_computer
    from services.merge import undo_merge
    from tests.conftest import make_app, scratch_database_url

    url = scratch_database_url(backend, tmp_path, request, "seal")
    app = make_app(url)
    with app.app_context():
        upgrade(revision="d0e1f2a3b4c5")
        now = datetime(2026, 1, 1)
        stamps = {"created_at": now, "updated_at": now, "version": 1}
        status = db.session.execute(insert(CustomerStatus.__table__).values(
            name="Active", is_default=True, is_active=True)).inserted_primary_key[0]
        for cid, name in ((1, "Left"), (2, "Right")):
            db.session.execute(insert(Customer.__table__).values(
                id=cid, kind="company", company_name=name, display_name=name, sort_name=name.lower(),
                status_id=status, merged_into_id=1 if cid == 2 else None, **stamps))
        right = OLD.encrypt("right-secret")
        for cid, token in ((1, right), (2, right)):  # the old merge copied the other's password over
            db.session.execute(insert(CustomerSettings.__table__).values(
                customer_id=cid, cmonitor_password_encrypted=token, use_builtin_mail_servers=True,
                notification_route="cm_server", requests_by_email_enabled=False,
                unauthenticated_discussion_enabled=False, **stamps))
        db.session.execute(insert(Computer.__table__).values(
            id=1, customer_id=1, hostname="ws-01", registered_at=now, settings_snapshot={
                "cmonitor": {"access_password_set": True, "access_password": right},
                "mail": {"source": "builtin", "pop3": None, "smtp": [
                    {"host": "smtp.sk", "port": 587, "security": "starttls", "username": None,
                     "password": OLD.encrypt("smtp-secret")}]}}))
        undo = {"survivor": 1, "other": 2, "fields": {}, "other_fields": {"status_id": status},
                "moved": {"contacts": [], "requests": [], "computers": [], "renamed_computers": {}},
                "workgroups": [], "operators": [], "cmonitor_password": OLD.encrypt("left-secret"),
                "survivor_version": 1}
        event_id = db.session.execute(insert(AuditEvent.__table__).values(
            at=now, actor_label="system", action="merge", entity_type="customer", entity_id=1,
            entity_version=1, changes={"merged": ["Right", "Left"], "undo": undo})).inserted_primary_key[0]
        db.session.commit()
        upgrade()

        assert "gAAAAA" not in json.dumps(db.session.get(AuditEvent, event_id).changes)
        computer = db.session.get(Computer, 1)
        opened = settings_of_computer(computer, OLD)
        assert opened["cmonitor"]["access_password"] == "right-secret"
        assert opened["mail"]["smtp"][0]["password"] == "smtp-secret"
        with unit_of_work(db.session):
            undo_merge(db.session, None, db.session.get(AuditEvent, event_id))
        db.session.expire_all()
        passwords = {row.customer_id: OLD.decrypt(row.cmonitor_password_encrypted)
                     for row in db.session.scalars(select(CustomerSettings))}
        assert passwords == {1: "left-secret", 2: "right-secret"}
        db.session.remove()
        db.engine.dispose()
