"""The portal's own session and sign-in (services.portal_sessions, services.portal.sign_in): a
signed cookie of its own that ends with a password change, expires, and opens nothing in the
panel; sign-in limits of its own; every sign-in recorded on the customer without the password;
the same new user name created twice at once makes one account (real threads, served app)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import select

from extensions import db
from models import AuditEvent, CustomerStatus, PortalAccount, Request, RequestStatusChange
from models.enums import CustomerKind, RequestStatus
from services.discussion import Author, change_status
from services.operators import authenticate
from services.portal import CANNOT_SIGN_IN, WRONG_CREDENTIALS, reset_portal_password, sign_in
from services.portal_sessions import SALT, PortalSessionKeys, account_of, issue, read
from services.requests import save_request
from services.sign_in_throttle import ThrottlePolicy
from services.transactions import USERNAME_TAKEN, unit_of_work
from tests.conftest import PASSWORD, csrf_from, written
from tests.portal_helpers import FIRST, PortalClient, give_access
from tests.served_app import WebClient, page_text, served

KEYS = PortalSessionKeys("test-secret-key-not-for-production", 8)
POLICY = ThrottlePolicy(address_failures=3, account_failures=20, address_total_failures=None)


@pytest.fixture
def eva(new_customer):
    return new_customer(kind=CustomerKind.PERSON, first_name="Eva", last_name="Malá", email="eva@example.sk")


@pytest.fixture
def eva_account(session, eva):
    return give_access(session, eva, "eva")


def test_a_cookie_names_its_account_until_it_expires(session, eva_account):
    value = issue(KEYS, eva_account, now=1_000_000)
    assert account_of(session, KEYS, value, now=1_000_000 + 8 * 3600 - 1) == eva_account
    assert account_of(session, KEYS, value, now=1_000_000 + 8 * 3600 + 1) is None  # PORTAL_SESSION_HOURS
    assert read(KEYS, issue(KEYS, eva_account, now=2_000_000), now=1_000_000) is None  # from the future


def test_a_forged_or_foreign_value_opens_nothing(session, eva_account):
    value = issue(KEYS, eva_account)
    assert account_of(session, KEYS, value[:-2] + ("AA" if not value.endswith("AA") else "BB")) is None
    assert account_of(session, PortalSessionKeys("another key", 8), value) is None
    # The same secret key under another salt (the Flask session's, a mail link's) is not a portal session.
    payload = {"a": eva_account.id, "f": KEYS.fingerprint(eva_account.password_hash), "t": 2_000_000_000}
    flask_session_like = URLSafeSerializer(KEYS.secret_key, salt="cookie-session").dumps(payload)
    assert account_of(session, KEYS, flask_session_like) is None
    assert account_of(session, KEYS, URLSafeSerializer(KEYS.secret_key, salt=SALT).dumps(
        {**payload, "a": "1"})) is None
    for junk in ("", "x", "a" * 5000, "\x00", "e30.abc"):
        assert account_of(session, KEYS, junk) is None


def test_a_new_password_ends_the_sessions_issued_before_it(session, eva, eva_account):
    value = issue(KEYS, eva_account)
    written(session, lambda: reset_portal_password(session, eva, None, "a temporary pass"))
    assert account_of(session, KEYS, value) is None
    assert account_of(session, KEYS, issue(KEYS, eva_account)) == eva_account


def test_a_disabled_account_or_an_inactive_customer_loses_its_session(session, eva, eva_account):
    value = issue(KEYS, eva_account)
    with unit_of_work(session):
        eva_account.is_active = False
    assert account_of(session, KEYS, value) is None
    with unit_of_work(session):
        eva_account.is_active = True
        eva.status = session.scalar(select(CustomerStatus).where(CustomerStatus.is_active.is_(False)))
    assert eva.status is not None and account_of(session, KEYS, value) is None


def events(session, action):
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                .order_by(AuditEvent.id)))


def try_sign_in(session, username, password, address="203.0.113.7", policy=POLICY):
    return written(session, lambda: sign_in(session, username, password, address, policy))


def test_every_sign_in_is_recorded_on_the_customer_without_the_password(session, eva, eva_account):
    assert try_sign_in(session, "EVA", FIRST).account == eva_account  # user names ignore case
    assert try_sign_in(session, "eva", "not it at all").message == WRONG_CREDENTIALS
    assert try_sign_in(session, "nobody", "guess 12345").message == WRONG_CREDENTIALS  # no hint it exists
    (success,) = events(session, "portal_sign_in")
    failures = events(session, "portal_sign_in_failure")
    assert (success.entity_type, success.entity_id, success.actor_id) == ("customer", eva.id, None)
    assert success.actor_label == "eva (portal)" and success.ip_address == "203.0.113.7"
    assert [f.changes["reason"][1] for f in failures] == ["wrong password", "unknown user name"]
    assert (failures[0].entity_type, failures[0].entity_id) == ("customer", eva.id)
    assert (failures[1].entity_type, failures[1].entity_id, failures[1].actor_label) == \
        ("portalaccount", None, "nobody (portal)")
    trail = repr([e.changes for e in session.scalars(select(AuditEvent))])
    assert FIRST not in trail and "not it at all" not in trail and "guess 12345" not in trail
    session.expire_all()
    assert session.get(PortalAccount, eva_account.id).last_login_at is not None


def test_only_the_right_password_learns_that_the_account_is_disabled(session, eva, eva_account):
    with unit_of_work(session):
        eva_account.is_active = False
    assert try_sign_in(session, "eva", "wrong password!").message == WRONG_CREDENTIALS
    refused = try_sign_in(session, "eva", FIRST)
    assert refused.account is None and refused.message == CANNOT_SIGN_IN
    assert events(session, "portal_sign_in_failure")[-1].changes["reason"][1] == "account disabled"


def test_a_merged_away_customer_cannot_sign_in(session, eva, eva_account):
    with unit_of_work(session):
        eva.merged_into_id = eva.id  # what services.merge leaves on the tombstone
    assert try_sign_in(session, "eva", FIRST).message == CANNOT_SIGN_IN
    assert events(session, "portal_sign_in_failure")[-1].changes["reason"][1] == "customer merged"


def test_too_many_failures_slow_the_address_down_and_are_recorded(session, eva, eva_account):
    for _ in range(POLICY.address_failures):
        assert try_sign_in(session, "eva", "wrong password!").wait_seconds is None
    slowed = try_sign_in(session, "eva", FIRST)  # even the right password waits
    assert slowed.account is None and slowed.wait_seconds and "Try again in" in slowed.message
    throttled = events(session, "portal_sign_in_throttled")
    assert [(e.entity_id, e.actor_label) for e in throttled] == [(eva.id, "eva (portal)")]
    # Another address is not slowed by this one's failures.
    assert try_sign_in(session, "eva", FIRST, address="198.51.100.9").account == eva_account


def test_portal_and_operator_sign_in_counts_are_separate(session, new_customer, operator):
    customer = new_customer(kind=CustomerKind.PERSON, first_name="Olga", last_name="Twin")
    give_access(session, customer, operator.email)  # a portal user name that is an operator's e-mail
    for _ in range(POLICY.address_failures + 2):
        try_sign_in(session, operator.email, "wrong password!")
    assert try_sign_in(session, operator.email, FIRST).wait_seconds  # the portal account waits
    signed = written(session, lambda: authenticate(session, operator.email, PASSWORD, "203.0.113.7", POLICY))
    assert signed == operator  # the operator of the same name and address does not


def test_the_sign_in_refuses_control_characters_before_any_query(session):
    from services.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        sign_in(session, "ev\x00a", FIRST, "203.0.113.7", POLICY)


# --- through the served app: cookies of real browsers, real threads ---------------------------

def portal_login(client: WebClient, username: str, password: str = FIRST):
    token = csrf_from(client.get("/portal/sign-in").text)
    return client.post("/portal/sign-in",
                       data={"username": username, "password": password, "csrf_token": token})


def test_the_session_cookie_is_the_portals_own(app, session, eva_account):
    with served(app) as server:
        browser = WebClient(server.url)
        answer = portal_login(browser, "eva")
        assert answer.status_code == 302
        header = answer.headers["Set-Cookie"]
        assert header.startswith("cd_portal=") and "HttpOnly" in header and "SameSite=Lax" in header
        assert "Path=/portal" in header and "Secure" not in header
        assert browser.get("/portal/password").status_code == 200
        assert browser.get("/admin/").headers["Location"].startswith("/login")  # no panel for a portal user
        browser.close()


def test_a_secure_app_sends_a_secure_cookie(app, eva_account):
    app.config["SESSION_COOKIE_SECURE"] = True
    client = PortalClient(app)
    answer = client.sign_in("eva")
    assert answer.status_code == 302 and "Secure" in answer.headers["Set-Cookie"]


def test_two_operators_creating_one_user_name_at_once_make_one_account(app, session, new_customer,
                                                                      make_operator):
    """Twelve operators, each on another customer's Portal access tab, press Create with the same
    new user name (in different cases) at the same moment: one account, eleven clear refusals."""
    threads = 12
    people = []
    for n in range(threads):
        op = make_operator(f"op{n}@example.com")
        people.append((op, new_customer(None, kind=CustomerKind.PERSON, first_name="Same",
                                        last_name=f"Name{n}", operators=[op])))
    ids = [customer.id for _op, customer in people]
    with served(app) as server:
        clients = []
        for op, _customer in people:
            client = WebClient(server.url)
            client.login(op.email)
            client.csrf()
            clients.append(client)
        barrier = threading.Barrier(threads)

        def create(n):
            barrier.wait()
            name = "shared.name" if n % 2 else "SHARED.name"
            return clients[n].submit(f"/admin/customers/portal/?id={ids[n]}",
                                     {"action": "create", "username": name, "password": FIRST})

        with ThreadPoolExecutor(threads) as pool:
            answers = list(pool.map(create, range(threads)))
        for client in clients:
            client.close()
    assert [a.status_code for a in answers].count(302) == 1, [page_text(a.text)[:300] for a in answers]
    refused = [a for a in answers if a.status_code != 302]
    assert all(a.status_code < 500 and USERNAME_TAKEN in page_text(a.text) for a in refused)
    db.session.expire_all()
    assert db.session.query(PortalAccount).count() == 1


def test_accepting_twice_at_once_accepts_once(app, session, eva, eva_account, maintainer):
    """A double click, or two tabs: the same completion accepted six times at the same moment is
    accepted once, rated once; every other answer says why, none is a 500."""
    twice = Request(customer=eva, subject="Twice")
    request = written(session, lambda: save_request(session, twice, maintainer))
    desk = Author.of_operator(maintainer)
    written(session, lambda: change_status(session, request, desk, RequestStatus.RESOLVED))
    request_id, threads = request.id, 6
    with served(app) as server:
        browsers = [WebClient(server.url) for _ in range(threads)]
        first = browsers[0]
        assert portal_login(first, "eva").status_code == 302
        token = csrf_from(first.get("/portal/password").text)
        assert first.post("/portal/password", data={"csrf_token": token, "current_password": FIRST,
                                                    "new_password": "own password 123",
                                                    "repeat_password": "own password 123"}).status_code == 302
        token = csrf_from(first.get(f"/portal/requests/{request_id}").text)
        barrier = threading.Barrier(threads)

        def accept(n):
            barrier.wait()
            return first.post(f"/portal/requests/{request_id}/accept",
                              data={"csrf_token": token, "rating": str(n % 5 + 1)})

        with ThreadPoolExecutor(threads) as pool:
            answers = list(pool.map(accept, range(threads)))
        logged = server.log.since(0)
        for browser in browsers:
            browser.close()
    assert all(a.status_code in (302, 422) for a in answers), ([a.status_code for a in answers], logged)
    assert [a.status_code for a in answers].count(302) == 1
    db.session.expire_all()
    changes = db.session.query(RequestStatusChange).filter_by(request_id=request_id,
                                                               new_status=RequestStatus.CLOSED).count()
    assert changes == 1 and db.session.get(Request, request_id).rating is not None
