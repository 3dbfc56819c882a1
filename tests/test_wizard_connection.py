"""The wizard's "Test connection" buttons, against real servers the tests start on 127.0.0.1."""

from models.enums import MailSecurity
from testing.postgres import free_port
from tests.conftest import csrf_from
from tests.mail_fixtures import PASSWORD, USER
from tests.test_wizard import COMPANY, post_step, start


def ask(client, base, prefix, fields):
    page = client.get(f"{base}/mail").get_data(as_text=True)
    response = client.post(f"{base}/test-connection/{prefix}",
                           data={**fields, "csrf_token": csrf_from(page)})
    assert response.status_code == 200
    return response.get_json()


def wizard_at_mail_step(client):
    base = start(client)
    post_step(client, base, "customer", COMPANY)
    post_step(client, base, "cmonitor", {})
    return base


def test_smtp_success_wrong_password_and_unreachable(maintainer_client, smtp_servers):
    base = wizard_at_mail_step(maintainer_client)
    port = str(smtp_servers[MailSecurity.NONE].port)
    ok = ask(maintainer_client, base, "smtp_primary", {
        "smtp_primary_host": "127.0.0.1", "smtp_primary_port": port, "smtp_primary_security": "none",
        "smtp_primary_username": USER, "smtp_primary_password": PASSWORD})
    assert ok["ok"] is True and "signed in as alice" in ok["message"]
    wrong = ask(maintainer_client, base, "smtp_fallback", {
        "smtp_fallback_host": "127.0.0.1", "smtp_fallback_port": port, "smtp_fallback_security": "none",
        "smtp_fallback_username": USER, "smtp_fallback_password": "not-it"})
    assert wrong["ok"] is False and "535" in wrong["message"] and "not-it" not in wrong["message"]
    closed = ask(maintainer_client, base, "smtp_primary", {
        "smtp_primary_host": "127.0.0.1", "smtp_primary_port": str(free_port()),
        "smtp_primary_security": "none"})
    assert closed["ok"] is False and "refused" in closed["message"].lower()


def test_pop3_uses_the_password_kept_in_the_draft(maintainer_client, dovecot):
    base = wizard_at_mail_step(maintainer_client)
    fields = {"use_builtin_mail_servers": "0", "pop3_host": "127.0.0.1", "pop3_port": str(dovecot.pop3_port),
              "pop3_security": "none", "pop3_username": USER, "pop3_password": PASSWORD,
              "smtp_primary_host": "127.0.0.1"}
    post_step(maintainer_client, base, "mail", fields, nav="back")  # kept, encrypted, in the draft
    result = ask(maintainer_client, base, "pop3", {**fields, "pop3_password": ""})
    assert result["ok"] is True and "2 messages" in result["message"]


def test_a_silent_server_is_reported_as_a_timeout(maintainer_client, silent_port):
    base = wizard_at_mail_step(maintainer_client)
    result = ask(maintainer_client, base, "smtp_primary", {
        "smtp_primary_host": "127.0.0.1", "smtp_primary_port": str(silent_port),
        "smtp_primary_security": "none"})
    assert result["ok"] is False and "did not answer" in result["message"]


def test_the_step_page_offers_a_button_per_server(maintainer_client):
    base = wizard_at_mail_step(maintainer_client)
    page = maintainer_client.get(f"{base}/mail").get_data(as_text=True)
    for prefix in ("pop3", "smtp_primary", "smtp_fallback"):
        assert f'data-server-test="{prefix}"' in page
