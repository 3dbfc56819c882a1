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
