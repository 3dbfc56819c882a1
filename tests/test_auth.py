"""Signing in and out, CSRF on every form, the limit on failed sign-ins per address."""

from sqlalchemy import select

from extensions import db
from models import AuditEvent, Operator
from models.enums import OperatorRole
from services.transactions import unit_of_work
from tests.conftest import ENCRYPTION_KEY, PASSWORD, Browserless, csrf_from, make_app


def test_sign_in_lands_on_the_dashboard_with_counts(client, maintainer, new_customer):
    from models.enums import CustomerKind

    new_customer(kind=CustomerKind.COMPANY, company_name="ACME",
                 contacts=[{"last_name": "Nová", "email": "nova@acme.example"}])
    response = client.login(maintainer.email)
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")
    page = client.get("/admin/").get_data(as_text=True)
    assert 'data-testid="count-customers"' in page
    assert ">1</div>" in page.split('data-testid="count-contacts"')[1][:400]


def test_wrong_password_is_refused_with_a_clear_message(client, maintainer):
    response = client.login(maintainer.email, "not the password")
    assert response.status_code == 422
    assert "Wrong e-mail or password." in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302  # still signed out


def test_unknown_email_and_inactive_operator_cannot_sign_in(client, make_operator, session):
    assert "Wrong e-mail" in client.login("nobody@example.com").get_data(as_text=True)
    retired = make_operator("retired@example.com")
    with unit_of_work(session):
        retired.is_active = False
    assert client.login("retired@example.com").status_code == 422


def test_every_sign_in_attempt_is_recorded_even_a_refused_one(client, maintainer, session):
    """The sign-in's unit of work commits the audit event of a refused attempt too (nothing else
    is written then), and a successful one with the sign-in time."""
    assert client.login(maintainer.email, "not the password").status_code == 422
    assert client.login("nobody@example.com", "whatever").status_code == 422
    session.expire_all()
    failures = session.scalars(select(AuditEvent).where(AuditEvent.action == "login_failure")
                               .order_by(AuditEvent.id)).all()
    assert [(e.actor_label, e.entity_id) for e in failures] == [(maintainer.email, maintainer.id),
                                                               ("nobody@example.com", None)]
    assert session.get(Operator, maintainer.id).last_login_at is None
    assert client.login(maintainer.email).status_code == 302
    session.expire_all()
    success = session.scalars(select(AuditEvent).where(AuditEvent.action == "login_success")).one()
    assert success.actor_id == maintainer.id and success.ip_address
    assert session.get(Operator, maintainer.id).last_login_at is not None


def test_login_without_csrf_token_is_refused(client, maintainer):
    response = client.post("/login", data={"email": maintainer.email, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302


def test_admin_forms_without_csrf_token_are_refused(maintainer_client, session):
    from models import Customer

    response = maintainer_client.post(
        "/admin/customers/new/", data={"kind": "company", "company_name": "Sneaky Ltd"})
    assert response.status_code == 400
    assert session.query(Customer).count() == 0


def test_anonymous_requests_go_to_sign_in(client):
    response = client.get("/admin/customers/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_sign_out_needs_post_with_token(maintainer_client):
    page = maintainer_client.get("/admin/").get_data(as_text=True)
    assert maintainer_client.post("/logout").status_code == 400
    assert maintainer_client.post("/logout", data={"csrf_token": csrf_from(page)}).status_code == 302
    assert maintainer_client.get("/admin/").status_code == 302


def test_next_parameter_cannot_send_users_to_another_site(client, maintainer):
    page = client.get("/login?next=https://evil.example/").get_data(as_text=True)
    response = client.post("/login?next=https://evil.example/", data={
        "email": maintainer.email, "password": PASSWORD, "csrf_token": csrf_from(page)})
    assert response.headers["Location"].endswith("/admin/")


def test_failed_sign_ins_per_address_are_limited_and_correct_ones_are_not(database_url, make_operator):
    """LOGIN_RATE_LIMIT counts failed sign-ins per address over all accounts (in the database:
    tests/test_sign_in_across_workers.py has several workers and an office); successes never."""
    make_operator("limited@example.com", OperatorRole.OPERATOR)
    make_operator("other@example.com", OperatorRole.OPERATOR)
    limited = make_app(database_url, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute")
    browser = Browserless(limited.test_client())
    for _ in range(5):
        assert browser.login("other@example.com").status_code == 302
        browser.client.delete_cookie("session")
    codes = [browser.login(email, "wrong").status_code
             for email in ("limited@example.com", "a@example.com", "b@example.com")]
    assert codes == [422, 422, 422]
    _push_to_the_cap(limited, "127.0.0.1")  # the delay doubles from 1 s: no race with a slow machine
    assert browser.login("limited@example.com", "wrong").status_code == 429
    page = browser.login("limited@example.com").get_data(as_text=True)
    assert "Too many failed sign-ins from your address" in page


def _push_to_the_cap(app, address: str, email: str = "someone@example.com") -> None:
    """More failures from `address` written straight by the service, so its wait is the capped
    delay (30 s) and the next attempt is refused however slowly the test gets there."""
    from services.sign_in_throttle import ThrottlePolicy, note_failure

    with app.app_context(), unit_of_work(db.session):
        for _ in range(6):
            note_failure(db.session, email, address, ThrottlePolicy.from_config(app.config))


def test_successful_sign_ins_do_not_count_as_failures(client, make_operator):
    """Failed sign-ins per account are counted by services.sign_in_throttle (its own tests have
    the attacks on two addresses); successes are not failures, however many."""
    make_operator("busy@example.com")
    client.client.application.config["LOGIN_ADDRESS_FAILURE_LIMIT"] = 2
    for _ in range(4):
        assert client.login("busy@example.com").status_code == 302
        client.client.delete_cookie("session")
    assert client.login("busy@example.com", "wrong").status_code == 422
    assert client.login("busy@example.com").status_code == 302


def test_security_headers_and_cookie_flags(client, maintainer):
    response = client.get("/login")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in policy and "'unsafe-inline'" not in policy.split("style-src")[0]
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    signed_in = client.login(maintainer.email)
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_every_page_gets_a_fresh_nonce_used_by_its_scripts(maintainer_client):
    first = maintainer_client.get("/admin/customers/")
    second = maintainer_client.get("/admin/customers/")
    nonce = first.headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert f'nonce="{nonce}"' in first.get_data(as_text=True)
    assert nonce not in second.headers["Content-Security-Policy"]


def test_production_cookies_are_secure(database_url):
    app = make_app(database_url, APP_ENV="production", SECRET_KEY="a-long-random-production-key-123",
                   ENCRYPTION_KEY=ENCRYPTION_KEY, PUBLIC_URL="https://desk.example.com")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    response = app.test_client().get("/login")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def failed_sign_in_from(app, email: str, environ: dict) -> str | None:
    """The address a failed sign-in was recorded with, as the request reached the desk."""
    browser = Browserless(app.test_client())
    page = browser.get("/login", environ_base=environ).get_data(as_text=True)
    browser.post("/login", environ_base=environ,
                 data={"email": email, "password": "wrong", "csrf_token": csrf_from(page)})
    with app.app_context():
        return db.session.scalars(select(AuditEvent.ip_address).where(AuditEvent.action == "login_failure")
                                  .order_by(AuditEvent.id.desc())).first()


BEHIND_PROXY = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "192.0.2.99, 203.0.113.9"}


def test_behind_a_trusted_proxy_the_client_address_comes_from_x_forwarded_for(database_url, make_operator):
    """With TRUSTED_PROXIES=1 the address the proxy appended is the client's (what a client
    wrote itself, further left, is not); every sign-in attempt is no longer the proxy's."""
    make_operator("proxied@example.com")
    app = make_app(database_url, TRUSTED_PROXIES=1)
    assert failed_sign_in_from(app, "proxied@example.com", BEHIND_PROXY) == "203.0.113.9"
    # Two clients behind the one proxy: the one that guessed is refused, the other is not.
    guesser = {**BEHIND_PROXY, "HTTP_X_FORWARDED_FOR": "203.0.113.66"}
    for _ in range(5):
        failed_sign_in_from(app, "proxied@example.com", guesser)
    _push_to_the_cap(app, "203.0.113.66", "proxied@example.com")
    browser = Browserless(app.test_client())
    page = browser.get("/login", environ_base=guesser).get_data(as_text=True)
    refused = browser.post("/login", environ_base=guesser, data={
        "email": "proxied@example.com", "password": PASSWORD, "csrf_token": csrf_from(page)})
    assert refused.status_code == 429
    owner = {**BEHIND_PROXY, "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    browser = Browserless(app.test_client())
    page = browser.get("/login", environ_base=owner).get_data(as_text=True)
    signed_in = browser.post("/login", environ_base=owner, data={
        "email": "proxied@example.com", "password": PASSWORD, "csrf_token": csrf_from(page)})
    assert signed_in.status_code == 302


def test_without_trusted_proxies_x_forwarded_for_is_ignored(database_url, make_operator):
    """Anybody can send the header: by default (TRUSTED_PROXIES=0) it must not choose the address
    the throttle counts on."""
    make_operator("direct@example.com")
    app = make_app(database_url)
    assert app.config["TRUSTED_PROXIES"] == 0
    assert failed_sign_in_from(app, "direct@example.com", BEHIND_PROXY) == "10.0.0.2"
