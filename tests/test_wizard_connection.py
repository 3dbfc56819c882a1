"""The wizard's "Test connection" buttons, against real servers the tests start on 127.0.0.1.

Those servers live on loopback and on ports of their own: only a maintainer's test reaches them
(services.outbound_policy). An operator's test reaches the mail ports of ordinary hosts only, and
everyone's tests are rate-limited per person (admin_views.connection_tests)."""

import re
import subprocess

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
    assert "535" not in wrong["message"].replace(port, "")  # the server's own words are never repeated
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


# --- a server signed by the customer's own CA ------------------------------------------------------

def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory):
    """A CA of its own and a server certificate for localhost / 127.0.0.1 signed by it."""
    folder = tmp_path_factory.mktemp("own-ca")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=Customer Desk Test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
             cwd=folder)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost", cwd=folder)
    (folder / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=folder)
    return folder


@pytest.fixture(scope="module")
def ca_signed_smtp(test_ca):
    from testing.mail_servers import Certificate, SmtpServer

    server = SmtpServer(MailSecurity.SSL, Certificate(test_ca / "server.pem", test_ca / "server.key"),
                        USER, PASSWORD).start()
    yield server
    server.stop()


def test_a_server_signed_by_the_customers_ca_is_trusted_only_with_that_ca(maintainer_client, session,
                                                                          test_ca, ca_signed_smtp):
    base = wizard_at_mail_step(maintainer_client)
    fields = smtp("127.0.0.1", ca_signed_smtp.port, "ssl", username=USER, password=PASSWORD)
    refused = ask(maintainer_client, base, "smtp_primary", fields)
    assert refused["outcome"] == "untrusted_certificate" and "is not trusted" in refused["message"]
    ca = (test_ca / "ca.pem").read_text()
    typed = ask(maintainer_client, base, "smtp_primary", {**fields, "mail_ca_certificate": ca})
    assert typed["ok"] is True and "signed in as alice" in typed["message"]
    # Kept in the draft (the step's autosave), the CA is used without being sent again.
    page = maintainer_client.get(f"{base}/mail").get_data(as_text=True)
    kept = maintainer_client.post(f"{base}/mail/autosave", data={
        "csrf_token": csrf_from(page), "use_builtin_mail_servers": "0", "mail_ca_certificate": ca, **fields})
    assert kept.status_code == 200
    assert ask(maintainer_client, base, "smtp_primary", fields)["ok"] is True
    # The CA becomes the customer's setting: the Mail servers tab tests with it, and shows its button.
    mail = {"use_builtin_mail_servers": "0", "pop3_host": "127.0.0.1", "mail_ca_certificate": ca, **fields}
    for step, data in (("mail", mail), ("notifications", {}), ("requests", {}), ("operators", {})):
        assert post_step(maintainer_client, base, step, data).status_code == 302, step
    from tests.test_wizard import save

    assert save(maintainer_client, base).status_code == 302
    from models import Customer, CustomerSettings

    settings = session.query(CustomerSettings).one()
    assert "BEGIN CERTIFICATE" in settings.mail_ca_certificate
    customer_id = session.query(Customer).one().id
    tab = maintainer_client.get(f"/admin/customers/settings/?id={customer_id}&tab=mail").get_data(
        as_text=True)
    assert "Test the primary outgoing server (SMTP)" in tab and "Test the incoming server (POP3)" in tab
    answer = maintainer_client.post(
        f"/admin/customers/settings/test-connection/smtp_primary?id={customer_id}",
        data={"csrf_token": csrf_from(tab),
              **{k: v for k, v in fields.items() if k != "smtp_primary_password"}})
    assert answer.get_json()["ok"] is True  # the stored password and the stored CA


def test_a_ca_field_that_is_no_certificate_is_refused_on_that_field(maintainer_client, test_ca):
    base = wizard_at_mail_step(maintainer_client)
    key = (test_ca / "ca.key").read_text()
    result = ask(maintainer_client, base, "smtp_primary", {**smtp("127.0.0.1", 465, "ssl"),
                                                           "mail_ca_certificate": key})
    assert result["outcome"] == "invalid" and result["field"] == "mail_ca_certificate"
    assert "private key" in result["message"]
    own = {"use_builtin_mail_servers": "0", "pop3_host": "p.example.sk", "smtp_primary_host": "s.example.sk"}
    step = post_step(maintainer_client, base, "mail", {**own, "mail_ca_certificate": "hello"})
    assert step.status_code == 200 and "Paste the CA certificate in PEM form" in step.get_data(as_text=True)
    broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    step = post_step(maintainer_client, base, "mail", {**own, "mail_ca_certificate": broken})
    assert "This is not a certificate that can be read" in step.get_data(as_text=True)


def test_sending_trusts_the_customers_ca(test_ca, ca_signed_smtp):
    """services.mail_send makes its TLS context with the same helper: the customer's CA counts."""
    import ssl

    from services.mail_check import MailServer, tls_context

    server = MailServer("localhost", ca_signed_smtp.port, MailSecurity.SSL)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tls_context(server), ca_signed_smtp.port)
    with_ca = MailServer("localhost", ca_signed_smtp.port, MailSecurity.SSL,
                         cadata=(test_ca / "ca.pem").read_text())
    _handshake(tls_context(with_ca, None), ca_signed_smtp.port)


def _handshake(context, port):
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost"):
        pass


def test_test_buttons_are_labelled_and_start_hidden(maintainer_client):
    base = wizard_at_mail_step(maintainer_client)
    page = maintainer_client.get(f"{base}/mail").get_data(as_text=True)
    for prefix, label in (("pop3", "Test the incoming server (POP3)"),
                          ("smtp_primary", "Test the primary outgoing server (SMTP)"),
                          ("smtp_fallback", "Test the fallback outgoing server (SMTP)")):
        assert re.search(rf'id="test-{prefix}" data-server-test="{prefix}" hidden>', page)
        assert label in page
    assert ">\n          Test connection</button>" not in page
