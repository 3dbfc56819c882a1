"""Secrets at rest: encrypted with the configured key, rotated by a CLI command, never shown."""

from cryptography.fernet import Fernet

from models import CustomerSettings, GlobalSettings
from models.enums import CustomerKind
from services.secrets import SecretBox, encrypted_columns
from services.transactions import unit_of_work
from tests.conftest import ENCRYPTION_KEY


def test_every_secret_column_is_found_for_rotation():
    found = {(model.__name__, column) for model, column in encrypted_columns()}
    assert ("CustomerSettings", "cmonitor_password_encrypted") in found
    assert ("GlobalSettings", "smtp_primary_password_encrypted") in found
    assert ("DirectorySource", "bind_password_encrypted") in found


def test_rotation_re_encrypts_every_secret_with_the_new_key(app, session, new_customer):
    old = SecretBox(ENCRYPTION_KEY)
    customer = new_customer(kind=CustomerKind.COMPANY, company_name="ACME")
    with unit_of_work(session):
        session.add(CustomerSettings(customer_id=customer.id,
                                     cmonitor_password_encrypted=old.encrypt("agent-secret")))
        session.get(GlobalSettings, 1).pop3_password_encrypted = old.encrypt("mailbox-secret")

    new_key = Fernet.generate_key().decode()
    app.config["ENCRYPTION_KEY"] = new_key
    result = app.test_cli_runner().invoke(args=["rotate-encryption-key", "--old-key", ENCRYPTION_KEY])
    assert result.exit_code == 0 and "Re-encrypted 2 secret value(s)" in result.output
    assert "agent-secret" not in result.output
    session.expire_all()
    new = SecretBox(new_key)
    settings = session.query(CustomerSettings).one()
    assert new.decrypt(settings.cmonitor_password_encrypted) == "agent-secret"
    assert new.decrypt(session.get(GlobalSettings, 1).pop3_password_encrypted) == "mailbox-secret"


def test_rotation_with_a_wrong_old_key_changes_nothing(app, session, new_customer):
    customer = new_customer(kind=CustomerKind.COMPANY, company_name="ACME")
    token = SecretBox(ENCRYPTION_KEY).encrypt("agent-secret")
    with unit_of_work(session):
        session.add(CustomerSettings(customer_id=customer.id, cmonitor_password_encrypted=token))
    app.config["ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    result = app.test_cli_runner().invoke(
        args=["rotate-encryption-key", "--old-key", Fernet.generate_key().decode()])
    assert result.exit_code != 0 and "nothing was changed" in result.output
    session.expire_all()
    assert session.query(CustomerSettings).one().cmonitor_password_encrypted == token


def test_no_audit_event_holds_a_secret_or_its_ciphertext(app, session, new_customer, maintainer):
    """The rule is the audit writer's: whatever a command records or assigns is masked."""
    from models import AuditEvent
    from services.audit import record
    from services.merge import merge_customers, undo_merge

    box = SecretBox(ENCRYPTION_KEY)
    token = box.encrypt("agent-secret")
    survivor = new_customer(kind=CustomerKind.COMPANY, company_name="ACME")
    other = new_customer(kind=CustomerKind.COMPANY, company_name="ACME s.r.o.")
    with unit_of_work(session):
        session.add_all([CustomerSettings(customer_id=survivor.id, cmonitor_password_encrypted=token),
                         CustomerSettings(customer_id=other.id,
                                          cmonitor_password_encrypted=box.encrypt("other-secret"))])
    with unit_of_work(session):
        merge = merge_customers(session, maintainer, survivor, other, box, choices={},
                                decisions={"cmonitor_password": "other"})
        event = record(session, maintainer, "update", survivor, {
            "notes": [None, f"pasted {token} here"], "bind_password": ["a", "b"],
            "nested": {"cmonitor_password": token, "sealed": {"__encrypted__": token}}})
        event.changes = {**event.changes, "later": {"smtp_password": "plain"}, "raw": token}
    session.expire_all()
    events = repr([e.changes for e in session.query(AuditEvent)])
    assert "gAAAAA" not in events and "secret" not in events and "plain" not in events
    assert session.get(AuditEvent, event.id).changes["bind_password"] == ["changed", "changed"]
    assert "pasted changed here" in events
    # …and the merge still undoes: each gets its own password back.
    with unit_of_work(session):
        undo_merge(session, maintainer, session.get(AuditEvent, merge.id))
    session.expire_all()
    rows = {row.customer_id: box.decrypt(row.cmonitor_password_encrypted)
            for row in session.query(CustomerSettings)}
    assert rows == {survivor.id: "agent-secret", other.id: "other-secret"}


def test_a_database_error_logs_no_row_and_no_parameter(database_url, caplog):
    """A 500 from the database: the log says what failed, never the row (PostgreSQL's "Failing row
    contains (…)") nor the bound values (hide_parameters)."""
    import logging

    from sqlalchemy import text

    from extensions import db
    from models import Customer
    from services.customers import SaveOptions, create_customer
    from services.reference_data import ensure_reference_data
    from tests.conftest import empty_all_tables, make_app

    secret = "f" * 24 + "0123456789abcdef" * 2 + "deadbeef"  # a key hash, 64 characters
    app = make_app(database_url, PROPAGATE_EXCEPTIONS=False)

    @app.route("/test-database-error")
    def database_error():
        customer = db.session.scalar(db.select(Customer))
        db.session.execute(text("UPDATE customer SET kind = NULL, registration_key_hash = :hash "
                                "WHERE id = :id"), {"hash": secret, "id": customer.id})
        return "unreachable"

    with app.app_context():
        empty_all_tables()
        with unit_of_work(db.session):
            ensure_reference_data(db.session)
            create_customer(db.session, None, SaveOptions("SK"), kind=CustomerKind.COMPANY,
                            company_name="Row Dump s.r.o.", confirm_duplicate=True,
                            contacts=[{"last_name": "Main", "email": "main@rowdump.sk", "is_main": True}],
                            ).registration_key_hash = secret
        db.session.remove()
    try:
        with caplog.at_level(logging.ERROR):
            response = app.test_client().get("/test-database-error")
        assert response.status_code == 500
        logged = caplog.text
        assert "Exception on /test-database-error" in logged and "kind" in logged  # what failed
        assert secret not in logged and "Row Dump" not in logged and "Failing row" not in logged
        assert secret not in response.get_data(as_text=True)
    finally:
        with app.app_context():
            empty_all_tables()
            db.engine.dispose()
