"""The wizard's "Test connection" buttons, against real servers the tests start on 127.0.0.1.

Those servers live on loopback and on ports of their own: only a maintainer's test reaches them
(services.outbound_policy). An operator's test reaches the mail ports of ordinary hosts only, and
everyone's tests are rate-limited per person (admin_views.connection_tests)."""

import pytest

from models.enums import MailSecurity
from testing.postgres import free_port
from tests.conftest import csrf_from
from tests.mail_fixtures import PASSWORD, USER
from tests.test_wizard import COMPANY, post_step, start


def ask(client, base, prefix, fields, status=200):
    page = client.get(f"{base}/mail").get_data(as_text=True)
    response = client.post(f"{base}/test-connection/{prefix}",
                           data={**fields, "csrf_token": csrf_from(page)})
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def wizard_at_mail_step(client):
    base = start(client)
    post_step(client, base, "customer", COMPANY)
    post_step(client, base, "cmonitor", {})
    return base


def smtp(host, port, security="none", **more):
    return {"smtp_primary_host": host, "smtp_primary_port": str(port), "smtp_primary_security": security,
            **{f"smtp_primary_{k}": v for k, v in more.items()}}


def test_smtp_success_wrong_password_and_unreachable(maintainer_client, smtp_servers):
    base = wizard_at_mail_step(maintainer_client)
    port = str(smtp_servers[MailSecurity.NONE].port)
    ok = ask(maintainer_client, base, "smtp_primary", {
        "smtp_primary_host": "127.0.0.1", "smtp_primary_port": port, "smtp_primary_security": "none",
        "smtp_primary_username": USER, "smtp_primary_password": PASSWORD})
    assert ok["ok"] is True and "signed in as alice" in ok["message"] and ok["outcome"] == "connected"
    wrong = ask(maintainer_client, base, "smtp_fallback", {
        "smtp_fallback_host": "127.0.0.1", "smtp_fallback_port": port, "smtp_fallback_security": "none",
        "smtp_fallback_username": USER, "smtp_fallback_password": "not-it"})
    assert wrong["ok"] is False and wrong["outcome"] == "wrong_password"
    assert "refused the sign-in as alice" in wrong["message"] and "not-it" not in wrong["message"]
    assert "535" not in wrong["message"]  # the server's own words are never repeated
    closed = ask(maintainer_client, base, "smtp_primary", smtp("127.0.0.1", free_port()))
    assert closed["ok"] is False and closed["outcome"] == "refused" and "refused" in closed["message"]


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
    result = ask(maintainer_client, base, "smtp_primary", smtp("127.0.0.1", silent_port))
    assert result["outcome"] == "no_answer" and "did not answer" in result["message"]


def test_the_step_page_offers_a_button_per_server(maintainer_client):
    base = wizard_at_mail_step(maintainer_client)
    page = maintainer_client.get(f"{base}/mail").get_data(as_text=True)
    for prefix in ("pop3", "smtp_primary", "smtp_fallback"):
        assert f'data-server-test="{prefix}"' in page


# --- what an operator's test may reach (the attack: a port scanner for internal networks) ---------

@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "169.254.169.254", "169.254.1.1",
                                  "fe80::1", "0.0.0.0"])
def test_an_operator_cannot_test_loopback_or_link_local_hosts(operator_client, smtp_servers, host):
    base = wizard_at_mail_step(operator_client)
    result = ask(operator_client, base, "smtp_primary", smtp(host, 25, username=USER, password=PASSWORD))
    assert result == {"ok": False, "outcome": "not_allowed", "field": "smtp_primary_host", "message": (
        f"{host.strip('[]')} is a local address (loopback, link-local or similar), which Test connection "
        "does not reach. Ask a maintainer to test a server there.")}


def test_an_operator_cannot_reach_the_real_server_on_loopback_even_on_its_port(operator_client, smtp_servers):
    """The server the maintainer's test reaches above is out of an operator's reach."""
    base = wizard_at_mail_step(operator_client)
    port = smtp_servers[MailSecurity.NONE].port
    result = ask(operator_client, base, "smtp_primary", smtp("127.0.0.1", port))
    assert result["outcome"] == "not_allowed" and "not an SMTP port" in result["message"]
    assert result["field"] == "smtp_primary_port"


@pytest.mark.parametrize(("prefix", "port", "says"), [
    ("smtp_primary", 22, "Port 22 is not an SMTP port: Test connection tries only 25, 465, 587 and 2525."),
    ("smtp_fallback", 6379, "Port 6379 is not an SMTP port"),
    ("pop3", 143, "Port 143 is not a POP3 port: Test connection tries only 110 and 995."),
])
def test_an_operator_can_test_only_mail_ports(operator_client, prefix, port, says):
    base = wizard_at_mail_step(operator_client)
    result = ask(operator_client, base, prefix, {f"{prefix}_host": "10.20.30.40", f"{prefix}_port": str(port),
                                                 f"{prefix}_security": "none"})
    assert result["ok"] is False and result["outcome"] == "not_allowed"
    assert says in result["message"] and result["field"] == f"{prefix}_port"


def test_an_operator_tests_a_mail_port_on_an_ordinary_address(operator_client):
    """192.0.2.10 (TEST-NET-1) leads nowhere: tried, not answered — but not refused by the rule."""
    base = wizard_at_mail_step(operator_client)
    result = ask(operator_client, base, "smtp_primary", smtp("192.0.2.10", 587))
    assert result["outcome"] == "no_answer" and "192.0.2.10:587 did not answer" in result["message"]


def test_a_port_that_is_no_number_is_said_on_the_port_field(operator_client):
    base = wizard_at_mail_step(operator_client)
    result = ask(operator_client, base, "smtp_primary", smtp("mail.example.com", "25abc"))
    assert result["outcome"] == "invalid" and result["field"] == "smtp_primary_port"


def test_tests_are_rate_limited_per_operator(app, operator_client, maintainer_client):
    app.config.update(RATELIMIT_ENABLED=True, TEST_CONNECTION_RATE_LIMIT="3 per minute")
    base = wizard_at_mail_step(operator_client)
    answers = [ask(operator_client, base, "smtp_primary", smtp("127.0.0.1", 25)) for _ in range(3)]
    assert all(a["outcome"] == "not_allowed" for a in answers)  # refused tests count too
    over = ask(operator_client, base, "smtp_primary", smtp("192.0.2.10", 587), status=429)
    assert over["ok"] is False and over["outcome"] == "too_many"
    assert over["message"].startswith("You have run too many connection tests in a short time: wait a minute")
    assert "3 per minute" in over["message"]
    # Another person's budget is their own.
    other = wizard_at_mail_step(maintainer_client)
    closed = ask(maintainer_client, other, "smtp_primary", smtp("127.0.0.1", free_port()))
    assert closed["outcome"] == "refused"
