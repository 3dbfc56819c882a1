"""Nobody can lock another person out of signing in, while guessing stays slow.

Wrong passwords are counted per account and address pair (refused after a few, for a while),
and per account over all unfamiliar addresses (refused for those only): an attacker on another
address cannot keep the real user out, and the counts live in the database, so every worker
process sees the same ones. Run on SQLite and PostgreSQL, with the production rate limiting on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from extensions import limiter
from models.base import utcnow
from services.sign_in_throttle import (
    ThrottlePolicy,
    address_key,
    note_failure,
    note_success,
    seconds_to_wait,
)
from services.transactions import unit_of_work
from tests.conftest import Browserless, make_app

REAL_USER = "198.51.100.7"
ATTACKER = "203.0.113.66"
_limited_apps: dict[str, object] = {}


@pytest.fixture
def limited(app, database_url):
    """The app as production runs it (rate limiting on), on the test's freshly emptied database;
    the per-address request limit is high here: it is not what these tests are about."""
    if database_url not in _limited_apps:
        _limited_apps[database_url] = make_app(
            database_url, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="1000 per minute",
            LOGIN_ACCOUNT_FAILURE_LIMIT=8)
    limiter.enabled = True
    with _limited_apps[database_url].app_context():
        limiter.reset()
    yield _limited_apps[database_url]
    limiter.enabled = False  # as the shared test app has it


def from_address(app, address: str) -> Browserless:
    browser = Browserless(app.test_client())
    browser.client.environ_base["REMOTE_ADDR"] = address
    return browser


def test_an_attacker_on_another_address_cannot_lock_the_real_user_out(limited, maintainer):
    attacker = from_address(limited, ATTACKER)
    codes = [attacker.login(maintainer.email, f"guess {n}").status_code for n in range(12)]
    assert codes == [422] * 5 + [429] * 7
    real_user = from_address(limited, REAL_USER)
    assert real_user.login(maintainer.email).status_code == 302
    assert real_user.get("/admin/customers/").status_code == 200
    # …and the attacker is still refused, now that the real user is in.
    assert attacker.login(maintainer.email, "guess 13").status_code == 429


def test_the_refused_address_is_refused_even_with_the_right_password(limited, operator):
    """Otherwise the refusal would still let one address test passwords, one per answer."""
    attacker = from_address(limited, ATTACKER)
    for n in range(5):
        assert attacker.login(operator.email, f"guess {n}").status_code == 422
    refused = attacker.login(operator.email)
    assert refused.status_code == 429
    page = refused.get_data(as_text=True)
    assert "Too many failed sign-ins" in page and "Try again in 15 minutes" in page
    assert attacker.get("/admin/customers/").status_code == 302  # not signed in


def test_many_addresses_slow_the_account_for_unfamiliar_ones_but_not_where_its_owner_signed_in(
        limited, operator):
    owner = from_address(limited, REAL_USER)
    assert owner.login(operator.email).status_code == 302  # a place where the owner signs in
    owner.client.delete_cookie("session")
    botnet = [from_address(limited, f"192.0.2.{n}") for n in range(1, 9)]
    assert [bot.login(operator.email, "guess").status_code for bot in botnet] == [422] * 8
    # Eight failures from unfamiliar addresses: further unfamiliar ones wait, with any password.
    newcomer = from_address(limited, "192.0.2.200")
    refused = newcomer.login(operator.email)
    assert refused.status_code == 429
    assert "from unfamiliar places" in refused.get_data(as_text=True)
    assert owner.login(operator.email).status_code == 302


def test_other_accounts_are_not_affected(limited, operator, maintainer):
    attacker = from_address(limited, ATTACKER)
    for n in range(6):
        attacker.login(operator.email, f"guess {n}")
    assert attacker.login(maintainer.email).status_code == 302


def test_the_counts_are_shared_by_every_process_of_the_desk(limited, app, operator):
    """Two application instances on one database stand for two worker processes."""
    first, second = from_address(limited, ATTACKER), from_address(app, ATTACKER)
    for n in range(3):
        assert first.login(operator.email, f"guess {n}").status_code == 422
    for n in range(2):
        assert second.login(operator.email, f"guess {n}").status_code == 422
    assert second.login(operator.email, "guess 5").status_code == 429
    assert first.login(operator.email, "guess 6").status_code == 429


def test_unknown_accounts_answer_like_known_ones(limited, operator):
    """The throttle does not tell which e-mail addresses sign in here."""
    attacker = from_address(limited, ATTACKER)
    known = [attacker.login(operator.email, "guess").status_code for _ in range(6)]
    unknown = [attacker.login("nobody@example.com", "guess").status_code for _ in range(6)]
    assert known == unknown == [422] * 5 + [429]


# --- the rules over time, without waiting: the service takes `now` ------------------------------

POLICY = ThrottlePolicy(address_failures=3, account_failures=5, window=timedelta(minutes=15),
                        trust=timedelta(days=90))


def fail(session, account, address, now, times=1):
    for _ in range(times):
        with unit_of_work(session):
            note_failure(session, account, address, POLICY, now=now)


def test_the_refusal_passes_with_the_window_and_a_success_clears_the_pair(session):
    start = utcnow()
    fail(session, "a@example.com", ATTACKER, start, times=3)
    assert seconds_to_wait(session, "a@example.com", ATTACKER, POLICY, now=start) == 15 * 60
    later = start + timedelta(minutes=10)
    assert seconds_to_wait(session, "a@example.com", ATTACKER, POLICY, now=later) == 5 * 60
    after = start + timedelta(minutes=15, seconds=1)
    assert seconds_to_wait(session, "a@example.com", ATTACKER, POLICY, now=after) is None
    fail(session, "a@example.com", ATTACKER, after)  # a new window starts: one failure, not four
    assert seconds_to_wait(session, "a@example.com", ATTACKER, POLICY, now=after) is None
    fail(session, "a@example.com", REAL_USER, start, times=2)
    with unit_of_work(session):
        note_success(session, "a@example.com", REAL_USER, POLICY, now=start)
    fail(session, "a@example.com", REAL_USER, start, times=2)
    assert seconds_to_wait(session, "a@example.com", REAL_USER, POLICY, now=start) is None


def test_a_known_address_stays_open_while_the_account_is_attacked_and_its_trust_ends(session):
    start = utcnow()
    with unit_of_work(session):
        note_success(session, "b@example.com", REAL_USER, POLICY, now=start)
    for n in range(5):
        fail(session, "b@example.com", f"192.0.2.{n}", start)
    assert seconds_to_wait(session, "b@example.com", "192.0.2.99", POLICY, now=start) == 15 * 60
    assert seconds_to_wait(session, "b@example.com", REAL_USER, POLICY, now=start) is None
    much_later = start + timedelta(days=91)
    for n in range(5):
        fail(session, "b@example.com", f"192.0.2.{n}", much_later)
    assert seconds_to_wait(session, "b@example.com", REAL_USER, POLICY, now=much_later) == 15 * 60


def test_addresses_of_one_ipv6_network_count_as_one():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("192.0.2.1") == "192.0.2.1" and address_key(None) == "unknown"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"


def test_expired_counts_are_pruned(session):
    from sqlalchemy import func, select

    from models import SignInThrottle

    start = utcnow()
    for n in range(4):
        fail(session, f"gone{n}@example.com", ATTACKER, start)
    fail(session, "fresh@example.com", ATTACKER, start + timedelta(hours=1))
    assert session.scalar(select(func.count()).select_from(SignInThrottle)) == 1
