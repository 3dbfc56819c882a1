"""Sign-in limits count in the database, across workers and hosts, and only failures (issue 15, point 4).

Two application objects on one database stand for two gunicorn workers (or two hosts): the
limits are counted in the database (services.sign_in_throttle), so what one of them counted the
other sees — Flask-Limiter's memory:// counted per worker, and 4 workers let 29 of 30 guesses
through a limit of 10. Correct sign-ins are never counted: thirty operators of one office, behind
one NAT address, all sign in within a minute (Flask-Limiter refused the 11th). The limit per
address over all accounts (LOGIN_RATE_LIMIT) counts failures only, never keeps out an
operator who signed in from that address before, and beyond it makes the others wait at most
30 s after the address's last failure — never the window. Behind TRUSTED_PROXIES proxies the address is
the client's from X-Forwarded-For; without, that header is ignored.

Run on SQLite and PostgreSQL with rate limiting on, as production runs it. Nothing sleeps: the
stored failures are moved into the past instead."""

from __future__ import annotations

from datetime import timedelta
from itertools import cycle

import pytest
from sqlalchemy import select

from extensions import db
from models.sign_in import SignInAddressFailures
from services.operators import create_operator
from services.sign_in_throttle import ThrottlePolicy, note_failure
from services.transactions import unit_of_work
from tests.conftest import PASSWORD, Browserless, csrf_from, make_app

OFFICE = "198.51.100.20"
ELSEWHERE = "192.0.2.77"
LIMIT = 6
# A cheap hashing profile: these tests are about counting, and sign in some sixty times.
CHEAP_HASHES = {"ARGON2_MEMORY_KIB": 1024, "ARGON2_TIME_COST": 1}
_workers: dict[tuple[str, int], object] = {}


@pytest.fixture
def workers(app, database_url):
    """Two app objects (two worker processes, or two hosts) on the test's freshly emptied
    database, with rate limiting on: LIMIT failed sign-ins per address and minute."""
    for n in range(2):
        if (database_url, n) not in _workers:
            _workers[database_url, n] = make_app(
                database_url, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT=f"{LIMIT} per minute", **CHEAP_HASHES)
    return [_workers[database_url, 0], _workers[database_url, 1]]


def operators(app, count: int, prefix: str = "office") -> list[str]:
    with app.app_context(), unit_of_work(db.session):
        emails = [f"{prefix}.{n}@example.com" for n in range(count)]
        for n, email in enumerate(emails):
            create_operator(db.session, email=email, password=PASSWORD, first_name="Office",
                            last_name=f"Worker {n}")
    return emails


def browser(app, address: str, **environ) -> Browserless:
    client = Browserless(app.test_client())
    client.client.environ_base.update({"REMOTE_ADDR": address, **environ})
    return client


def at_the_cap(app, address: str) -> None:
    """Five more failures from the address, written as the service writes them, at this moment:
    its delay is at the 30 s cap, so what follows holds however slowly the test runs (under 30 s)."""
    with app.app_context():
        policy = ThrottlePolicy.from_config(app.config)
        for n in range(5):
            with unit_of_work(db.session):
                note_failure(db.session, f"sprayed.more.{n}@example.com", address, policy)


def let_time_pass(app, seconds: int = 30) -> None:
    """The counts per address moved `seconds` into the past: waiting without sleeping. The
    default is the delay's cap, well inside the address's one-minute window."""
    with app.app_context(), unit_of_work(db.session):
        for row in db.session.scalars(select(SignInAddressFailures)):
            row.window_started_at -= timedelta(seconds=seconds)
            if row.last_failure_at is not None:
                row.last_failure_at -= timedelta(seconds=seconds)


def test_failures_over_many_accounts_from_one_address_are_counted_by_every_worker(workers):
    """Password spraying: one guess on each of many accounts — known and unknown — sent through
    both workers in turn. Beyond LIMIT failures the address waits (at most 30 s after its last
    failure) at either worker, with the right password too; the same operator elsewhere gets in
    at once, and from the address after the delay."""
    target = operators(workers[0], 1, prefix="target")[0]
    guessed = operators(workers[0], 3, prefix="known") + [f"nobody.{n}@example.com" for n in range(3)]
    worker = cycle(workers)
    codes = [browser(next(worker), OFFICE).login(email, "Winter2026!").status_code for email in guessed]
    assert codes == [422] * LIMIT
    at_the_cap(workers[1], OFFICE)
    for app in workers:
        refused = browser(app, OFFICE).login(target)
        assert refused.status_code == 429
        page = refused.get_data(as_text=True)
        assert "Too many failed sign-ins from your address" in page and "Try again in" in page
        assert 1 <= int(refused.headers["Retry-After"]) <= 30 and "minute" not in page
    assert browser(workers[1], ELSEWHERE).login(target).status_code == 302
    let_time_pass(workers[0])
    assert browser(workers[0], OFFICE).login(target).status_code == 302


def test_thirty_operators_of_one_office_all_sign_in_within_a_minute(workers):
    """Correct sign-ins are never counted, whatever the limit per address."""
    emails = operators(workers[0], 30)
    worker = cycle(workers)
    codes = [browser(next(worker), OFFICE).login(email).status_code for email in emails]
    assert codes == [302] * 30


def test_failures_at_the_office_never_keep_out_operators_who_signed_in_there(workers):
    """Typos (or an intruder) over the office's address: the operators who signed in there
    before still get in; only an account new to the address waits, at most 30 s after the
    office's last failure — not for the window, which an intruder could fill again and again."""
    regulars = operators(workers[0], 5)
    for email in regulars:
        assert browser(workers[0], OFFICE).login(email).status_code == 302
    newcomer = operators(workers[0], 1, prefix="newcomer")[0]
    intruder = browser(workers[1], OFFICE)
    guesses = [intruder.login(f"guess.{n}@example.com", "guess").status_code for n in range(LIMIT)]
    assert guesses == [422] * LIMIT
    at_the_cap(workers[0], OFFICE)
    assert browser(workers[1], OFFICE).login(newcomer).status_code == 429
    for worker, email in zip(cycle(workers), regulars, strict=False):
        assert browser(worker, OFFICE).login(email).status_code == 302
    let_time_pass(workers[0])  # the cap, not the window
    assert browser(workers[1], OFFICE).login(newcomer).status_code == 302


def failed_from(app, remote: str, forwarded: str, email: str):
    client = browser(app, remote, HTTP_X_FORWARDED_FOR=forwarded)
    page = client.get("/login").get_data(as_text=True)
    return client.post("/login", data={"email": email, "password": "wrong", "csrf_token": csrf_from(page)})


PROXY = "10.0.0.2"


@pytest.mark.parametrize("trusted", [1, 0])
def test_the_count_per_address_is_the_clients_behind_a_trusted_proxy_only(app, database_url, trusted):
    """With TRUSTED_PROXIES=1 each client behind the proxy has its own count (the address the
    proxy appended to X-Forwarded-For); with 0 the header is ignored — anybody can send it — and
    every request is the proxy's address."""
    proxied = make_app(database_url, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT=f"{LIMIT} per minute",
                       TRUSTED_PROXIES=trusted, **CHEAP_HASHES)
    owner = operators(proxied, 1, prefix="owner")[0]
    for n in range(LIMIT):
        assert failed_from(proxied, PROXY, "203.0.113.66", f"sprayed.{n}@example.com").status_code == 422
    at_the_cap(proxied, "203.0.113.66" if trusted else PROXY)  # where the failures were counted
    client = browser(proxied, PROXY, HTTP_X_FORWARDED_FOR="198.51.100.7")
    page = client.get("/login").get_data(as_text=True)
    answer = client.post("/login", data={"email": owner, "password": PASSWORD, "csrf_token": csrf_from(page)})
    assert answer.status_code == (302 if trusted else 429)
    # A client cannot choose its own address by writing the header itself: only the proxy's
    # last entry counts.
    if trusted:
        spoofed = failed_from(proxied, PROXY, "198.51.100.7, 203.0.113.66", "spoof@example.com")
        assert spoofed.status_code == 429
