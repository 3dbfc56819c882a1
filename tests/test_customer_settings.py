"""Customer settings: secrets encrypted and kept, rules across fields, inheritance by computers."""

import pytest

from models import AuditEvent, CustomerSettings, GlobalSettings
from models.enums import CustomerKind, MailSecurity
from services.customer_settings import effective_settings, save_customer_settings, settings_form_values
from services.errors import PermissionDenied, StaleRecord
from services.secrets import SecretBox
from services.transactions import unit_of_work
from tests.conftest import ENCRYPTION_KEY, refusal, written

BOX = SecretBox(ENCRYPTION_KEY)
OWN_SERVERS = {"use_builtin_mail_servers": False, "pop3_host": "pop.acme.sk", "pop3_username": "cm",
               "pop3_password": "pop-secret", "pop3_address": "cm@acme.sk",
               "smtp_primary_host": "smtp.acme.sk", "smtp_primary_password": "smtp-secret",
               "smtp_fallback_host": "smtp2.acme.sk", "smtp_fallback_security": "ssl"}


def save(session, customer, actor, values, **kw):
    """The settings command as a door runs it: in its own unit of work."""
    return written(session, lambda: save_customer_settings(session, customer, actor, BOX, values, **kw))


@pytest.fixture
def acme(new_customer, operator):
    return new_customer(kind=CustomerKind.COMPANY, company_name="ACME", operators=[operator])


@pytest.fixture
def builtin(session):
    row = session.get(GlobalSettings, 1)
    row.pop3_host, row.pop3_port, row.pop3_security = "pop.cm.example", 995, MailSecurity.SSL
    row.smtp_primary_host, row.smtp_primary_port = "smtp.cm.example", 587
    row.smtp_primary_security = MailSecurity.STARTTLS
    row.smtp_primary_password_encrypted = BOX.encrypt("builtin-secret")
    with unit_of_work(session):  # the maintainer's global settings, committed
        pass
    return row


def test_secrets_are_encrypted_never_returned_and_kept_when_left_empty(session, acme, operator,
                                                                       maintainer_client):
    row = save(session, acme, operator, {"cmonitor_password": "agent-pass"})
    assert "agent-pass" not in row.cmonitor_password_encrypted
    assert BOX.decrypt(row.cmonitor_password_encrypted) == "agent-pass"
    values = settings_form_values(row)
    assert values["cmonitor_password_set"] is True and "agent-pass" not in repr(values)
    save(session, acme, operator, {"cmonitor_password": "", "pop3_address": None})
    assert BOX.decrypt(session.query(CustomerSettings).one().cmonitor_password_encrypted) == "agent-pass"
    save(session, acme, operator, {"clear_cmonitor_password": True})
    assert session.query(CustomerSettings).one().cmonitor_password_encrypted is None
    changes = [e.changes for e in session.query(AuditEvent).filter_by(entity_type="customersettings")]
    history = maintainer_client.get(f"/admin/customers/history/?id={acme.id}").get_data(as_text=True)
    assert "C-Monitor access password" in history and "agent-pass" not in history
    assert {"cmonitor_password_encrypted": ["changed", "changed"]} in changes
    assert "agent-pass" not in repr(changes)


def test_own_mail_servers_need_hosts_and_get_usual_ports(session, acme, operator):
    errors = refusal(session, lambda: save_customer_settings(session, acme, operator, BOX,
                                                             {"use_builtin_mail_servers": False}))
    assert set(errors) == {"pop3_host", "smtp_primary_host"}
    assert session.query(CustomerSettings).count() == 0
    row = save(session, acme, operator, OWN_SERVERS)
    assert (row.pop3_port, row.pop3_security) == (995, MailSecurity.SSL)
    assert (row.smtp_primary_port, row.smtp_fallback_port) == (587, 465)


@pytest.mark.parametrize("values,field", [
    ({"pop3_port": "70000"}, "pop3_port"),
    ({"smtp_primary_security": "tls13"}, "smtp_primary_security"),
    ({"notification_route": "smtp"}, "notification_smtp_host"),
    ({"requests_by_email_enabled": True}, "request_intake_address"),
    ({"request_intake_address": "not-an-address"}, "request_intake_address"),
    ({"pop3_host": "h" * 256}, "pop3_host"),  # longer than its column: a field message, not a 500
    ({"smtp_primary_username": "u" * 256}, "smtp_primary_username"),
])
def test_bad_settings_get_field_messages(session, acme, operator, values, field):
    errors = refusal(session, lambda: save_customer_settings(session, acme, operator, BOX, values))
    assert field in errors
    assert session.query(CustomerSettings).count() == 0


def test_unknown_keys_are_a_programming_error(session, acme, operator):
    with pytest.raises(ValueError, match="Unknown settings: colour"):
        save(session, acme, operator, {"colour": "blue"})


def test_rights_and_version_are_checked(session, acme, make_operator, operator):
    stranger = make_operator("stranger@example.com")
    refusal(session, lambda: save(session, acme, stranger, {"pop3_address": "x@acme.sk"}), PermissionDenied)
    row = save(session, acme, operator, {"pop3_address": "x@acme.sk"})
    seen = row.version
    save(session, acme, operator, {"pop3_address": "y@acme.sk"}, seen_version=seen)
    with pytest.raises(StaleRecord, match="olga@example.com changed POP3 mailbox address"):
        save(session, acme, operator, {"pop3_address": "z@acme.sk"}, seen_version=seen)
    session.expire_all()
    assert session.query(CustomerSettings).one().pop3_address == "y@acme.sk"


def test_computers_inherit_the_builtin_servers_by_default(session, acme, builtin):
    settings = effective_settings(session, acme)
    assert settings["mail"]["source"] == "builtin"
    assert settings["mail"]["pop3"]["host"] == "pop.cm.example"
    assert [s["host"] for s in settings["mail"]["smtp"]] == ["smtp.cm.example"]
    assert "password" not in settings["mail"]["smtp"][0]
    assert settings["notifications"]["route"] == "cm_server"
    assert settings["requests_by_email"]["enabled"] is False
    with_secrets = effective_settings(session, acme, BOX)
    assert with_secrets["mail"]["smtp"][0]["password"] == "builtin-secret"


def test_a_customers_own_settings_override_the_defaults(session, acme, operator, builtin):
    save(session, acme, operator, {
        **OWN_SERVERS, "cmonitor_password": "agent-pass", "notification_route": "smtp",
        "notification_smtp_host": "watch.acme.sk", "notification_to_address": "alerts@acme.sk",
        "requests_by_email_enabled": True, "request_intake_address": "desk@acme.sk",
        "unauthenticated_discussion_enabled": True})
    settings = effective_settings(session, acme, BOX)
    assert settings["mail"]["source"] == "customer"
    assert [s["host"] for s in settings["mail"]["smtp"]] == ["smtp.acme.sk", "smtp2.acme.sk"]
    assert settings["mail"]["pop3"]["password"] == "pop-secret"
    assert settings["cmonitor"] == {"access_password_set": True, "access_password": "agent-pass"}
    assert settings["notifications"]["smtp"]["host"] == "watch.acme.sk"
    assert settings["requests_by_email"] == {"enabled": True, "intake_address": "desk@acme.sk",
                                             "unauthenticated_discussion": True}


@pytest.mark.parametrize(("own", "expected"), [
    ({}, {"mail.source": "builtin", "notifications.smtp": None, "cmonitor.access_password": None}),
    ({"cmonitor_password": "p1"}, {"mail.source": "builtin", "cmonitor.access_password": "p1"}),
    ({"use_builtin_mail_servers": False, "pop3_host": "pop.acme.sk", "smtp_primary_host": "smtp.acme.sk"},
     {"mail.source": "customer", "mail.pop3.host": "pop.acme.sk", "mail.smtp_hosts": ["smtp.acme.sk"]}),
    ({"notification_route": "smtp", "notification_smtp_host": "watch.acme.sk",
      "notification_to_address": "alerts@acme.sk"},
     {"notifications.route": "smtp", "notifications.smtp.host": "watch.acme.sk", "mail.source": "builtin"}),
    ({"requests_by_email_enabled": True, "request_intake_address": "desk@acme.sk"},
     {"requests_by_email.enabled": True, "requests_by_email.unauthenticated_discussion": False}),
])
def test_each_override_of_the_defaults(session, acme, operator, builtin, own, expected):
    if own:
        save(session, acme, operator, own)
    settings = effective_settings(session, acme, BOX)
    settings["mail"]["smtp_hosts"] = [s["host"] for s in settings["mail"]["smtp"]]
    for path, value in expected.items():
        node = settings
        for part in path.split("."):
            node = node[part]
        assert node == value, path
