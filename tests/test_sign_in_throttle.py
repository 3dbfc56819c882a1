"""Nobody can lock another person out of signing in, while guessing stays slow.

Wrong passwords are counted per account and address pair, per account over all unfamiliar
addresses and per address over all accounts; beyond each limit, a delay of at most 30 s after the
count's last failure before each further attempt, never a refusal for a window: an attacker on
another address — or on many, or on the owner's own — cannot keep the real user out, and the
counts live in the database, so every worker process sees the same ones. Run on SQLite and
PostgreSQL, with the production rate limiting on. Nothing sleeps: the service takes `now`, and
the HTTP tests move the stored failures back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from extensions import db
from models import SignInThrottle
from models.base import utcnow
from services.sign_in_throttle import (
    SignInThrottled,
    ThrottlePolicy,
    Wait,
    address_key,
    check_sign_in_allowed,
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
    the limit per address over all accounts is high here: it is not what these tests are about
    (tests/test_sign_in_across_workers.py)."""
    if database_url not in _limited_apps:
        _limited_apps[database_url] = make_app(
            database_url, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="1000 per minute",
            LOGIN_ACCOUNT_FAILURE_LIMIT=8)
    return _limited_apps[database_url]


def from_address(app, address: str) -> Browserless:
    browser = Browserless(app.test_client())
    browser.client.environ_base["REMOTE_ADDR"] = address
    return browser


def test_an_attacker_on_another_address_cannot_lock_the_real_user_out(limited, maintainer, monkeypatch):
    """One address's failures slow that address only (the account's own count, over all
    unfamiliar addresses, is the next tests')."""
    monkeypatch.setitem(limited.config, "LOGIN_ACCOUNT_FAILURE_LIMIT", 20)
    attacker = from_address(limited, ATTACKER)
    assert [attacker.login(maintainer.email, f"guess {n}").status_code for n in range(5)] == [422] * 5
    seed_failures(limited, maintainer.email, [ATTACKER], times=5)  # ten: its delay is at the cap
    codes = [attacker.login(maintainer.email, f"guess {n}").status_code for n in range(5, 12)]
    assert codes == [429] * 7
    real_user = from_address(limited, REAL_USER)
    assert real_user.login(maintainer.email).status_code == 302
    assert real_user.get("/admin/customers/").status_code == 200
    # …and the attacker is still refused, now that the real user is in.
    assert attacker.login(maintainer.email, "guess 13").status_code == 429


def test_the_slowed_address_waits_even_with_the_right_password_and_never_for_a_window(limited, operator):
    """Otherwise the delay would still let one address test passwords, one per answer. After the
    delay (at most 30 s after the last failure), the right password signs in: clumsy fingers on a
    new computer are not kept out for a quarter of an hour."""
    clumsy = from_address(limited, ATTACKER)
    for n in range(5):
        assert clumsy.login(operator.email, f"guess {n}").status_code == 422
    seed_failures(limited, operator.email, [ATTACKER], times=5)  # ten: its delay is at the cap
    refused = clumsy.login(operator.email)
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 30
    page = refused.get_data(as_text=True)
    assert "Too many failed sign-ins to this account from your address" in page
    assert "Try again in" in page and "seconds" in page and "minute" not in page
    assert clumsy.get("/admin/customers/").status_code == 302  # not signed in
    let_time_pass(limited, operator.email, 30)
    assert clumsy.login(operator.email).status_code == 302


def seed_failures(app, account: str, addresses, times: int = 1) -> None:
    """Failures written as the service writes them, at this moment: enough of them to put the
    account at the 30 s cap, so what follows holds however slowly the test runs (under 30 s)."""
    with app.app_context():
        policy = ThrottlePolicy.from_config(app.config)
        for address in addresses:
            for _ in range(times):
                with unit_of_work(db.session):
                    note_failure(db.session, account, address, policy)


def let_time_pass(app, account: str, seconds: int) -> None:
    """The account's failures moved `seconds` into the past: waiting without sleeping."""
    with app.app_context(), unit_of_work(db.session):
        for row in db.session.scalars(select(SignInThrottle).where(SignInThrottle.account == account)):
            if row.last_failure_at is not None:
                row.last_failure_at -= timedelta(seconds=seconds)


def test_many_addresses_slow_the_account_for_unfamiliar_ones_but_not_where_its_owner_signed_in(
        limited, operator):
    owner = from_address(limited, REAL_USER)
    assert owner.login(operator.email).status_code == 302  # a place where the owner signs in
    owner.client.delete_cookie("session")
    botnet = [from_address(limited, f"192.0.2.{n}") for n in range(1, 9)]
    assert [bot.login(operator.email, "guess").status_code for bot in botnet] == [422] * 8
    seed_failures(limited, operator.email, [f"192.0.2.{n}" for n in range(9, 14)])  # at the cap
    # Unfamiliar addresses wait for the delay after the last failure, with any password…
    newcomer = from_address(limited, "192.0.2.200")
    refused = newcomer.login(operator.email)
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 30
    assert "from unfamiliar places" in refused.get_data(as_text=True)
    # …where the owner signed in before, nothing waits.
    assert owner.login(operator.email).status_code == 302


def test_an_owner_who_never_signed_in_gets_in_after_the_delay_however_many_addresses_guess(
        limited, operator):
    """The attack: four addresses × five wrong passwords (and more), IPv4 and IPv6 networks. The
    owner, on an address the account does not know, waits at most 30 seconds — never a window."""
    attackers = [f"203.0.113.{n}" for n in range(1, 5)] + [f"2001:db8:{n}::1" for n in range(4)]
    browser = from_address(limited, attackers[0])
    assert [browser.login(operator.email, "guess").status_code for _ in range(5)] == [422] * 5
    seed_failures(limited, operator.email, attackers[1:], times=5)
    owner = from_address(limited, "192.0.2.55")  # a hotel
    waiting = owner.login(operator.email)
    assert waiting.status_code == 429
    assert 1 <= int(waiting.headers["Retry-After"]) <= 30
    page = waiting.get_data(as_text=True)
    assert "Try again in" in page and "seconds" in page and "minute" not in page
    # Attempts during the delay do not count: the delay does not grow while the owner retries.
    for _ in range(5):
        assert 1 <= int(owner.login(operator.email).headers["Retry-After"]) <= 30
    let_time_pass(limited, operator.email, 30)
    assert owner.login(operator.email).status_code == 302
    assert owner.get("/admin/customers/").status_code == 200


def test_somebody_sharing_the_owners_address_cannot_lock_it_out(limited, operator):
    """The same office NAT (or the same proxy without TRUSTED_PROXIES): the address the owner
    signs in from is familiar, so it is slowed by its own failures, never refused for a window."""
    office = from_address(limited, "10.0.0.1")
    assert office.login(operator.email).status_code == 302
    intruder = from_address(limited, "10.0.0.1")
    assert [intruder.login(operator.email, "guess").status_code for _ in range(5)] == [422] * 5
    seed_failures(limited, operator.email, ["10.0.0.1"], times=5)  # ten: its delay is at the cap
    owner = from_address(limited, "10.0.0.1")
    waiting = owner.login(operator.email)
    assert waiting.status_code == 429 and 1 <= int(waiting.headers["Retry-After"]) <= 30
    assert "from your address" in waiting.get_data(as_text=True)
    let_time_pass(limited, operator.email, 30)
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
    with app.app_context():
        assert db.session.scalar(select(SignInThrottle.failures).where(
            SignInThrottle.account == operator.email, SignInThrottle.address == ATTACKER)) == 5
    seed_failures(limited, operator.email, [ATTACKER], times=5)  # at the cap: holds however slow
    assert second.login(operator.email, "guess 5").status_code == 429
    assert first.login(operator.email, "guess 6").status_code == 429


def test_unknown_accounts_answer_like_known_ones(limited, operator):
    """The throttle does not tell which e-mail addresses sign in here."""
    attacker = from_address(limited, ATTACKER)
    answers = {}
    for account in (operator.email, "nobody@example.com"):
        codes = [attacker.login(account, "guess").status_code for _ in range(5)]
        seed_failures(limited, account, [ATTACKER], times=5)  # at the cap: holds however slow
        slowed = attacker.login(account, "guess")
        answers[account] = codes + [slowed.status_code], "from your address" in slowed.get_data(as_text=True)
    assert answers[operator.email] == answers["nobody@example.com"] == ([422] * 5 + [429], True)


# --- the rules over time, without waiting: the service takes `now` ------------------------------

POLICY = ThrottlePolicy(address_failures=3, account_failures=5, window=timedelta(minutes=15),
                        trust=timedelta(days=90))


def fail(session, account, address, now, times=1):
    for _ in range(times):
        with unit_of_work(session):
            note_failure(session, account, address, POLICY, now=now)


def test_an_unfamiliar_address_waits_the_delay_never_the_window_and_a_success_clears_the_pair(session):
    start = utcnow()
    fail(session, "a@example.com", ATTACKER, start, times=3)
    assert seconds_to_wait(session, "a@example.com", ATTACKER, POLICY, now=start) == 1
    fail(session, "a@example.com", ATTACKER, start, times=5)
    assert seconds_to_wait(session, "a@example.com", ATTACKER, POLICY, now=start) == 30  # at the cap
    later = start + timedelta(seconds=30)
    assert seconds_to_wait(session, "a@example.com", ATTACKER, POLICY, now=later) is None
    after = start + timedelta(minutes=15, seconds=1)
    fail(session, "a@example.com", ATTACKER, after)  # forgotten a window after: one failure, not nine
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
    assert seconds_to_wait(session, "b@example.com", "192.0.2.99", POLICY, now=start) == 1
    fail(session, "b@example.com", "192.0.2.9", start + timedelta(seconds=1))
    assert seconds_to_wait(session, "b@example.com", "192.0.2.99", POLICY, now=start) == 3
    assert seconds_to_wait(session, "b@example.com", REAL_USER, POLICY, now=start) is None
    much_later = start + timedelta(days=91)
    for n in range(5):
        fail(session, "b@example.com", f"192.0.2.{n}", much_later)
    assert seconds_to_wait(session, "b@example.com", REAL_USER, POLICY, now=much_later) == 1


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


def attack_at_the_gate(session, account, addresses, start, policy):
    """Each address guesses the moment the account lets the next guess in; the waits it met."""
    now, waits = start, []
    for address in addresses:
        wait = seconds_to_wait(session, account, address, policy, now=now)
        if wait is not None:
            waits.append(wait)
            now += timedelta(seconds=wait)
        with unit_of_work(session):
            note_failure(session, account, address, policy, now=now)
    return waits, now


@pytest.mark.parametrize("network", ["203.0.113.{}", "2001:db8:{}::1"])
def test_the_delay_doubles_up_to_30_seconds_and_the_owner_gets_in_after_it(session, network):
    """The default policy (5 per address, 20 per account): four addresses × five failures, then
    a botnet — a new address for every guess. Guessing slows to one per 30 s, the owner on a new
    address is never kept out for longer than that."""
    policy, start = ThrottlePolicy(), utcnow()
    waits, now = attack_at_the_gate(session, "c@example.com",
                                    [network.format(n) for n in range(4) for _ in range(5)], start, policy)
    assert waits == []  # twenty failures, none of them slowed: the addresses' own limits hold
    owner = "192.0.2.55"
    assert seconds_to_wait(session, "c@example.com", owner, policy, now=now) == 1
    botnet = [f"198.51.100.{n}" for n in range(1, 11)]
    waits, now = attack_at_the_gate(session, "c@example.com", botnet, now, policy)
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]
    with pytest.raises(SignInThrottled) as slowed:
        check_sign_in_allowed(session, "c@example.com", owner, policy, now=now)
    assert slowed.value.reason == Wait.UNFAMILIAR and slowed.value.seconds == 30
    assert "Try again in 30 seconds" in str(slowed.value)
    assert seconds_to_wait(session, "c@example.com", owner, policy, now=now + timedelta(seconds=30)) is None


def test_a_familiar_address_shared_with_an_attacker_is_slowed_never_refused(session):
    """The owner's office NAT: the intruder's failures there count on the familiar pair alone,
    which waits the doubling delay beyond its own limit, never the window."""
    start = utcnow()
    with unit_of_work(session):
        note_success(session, "d@example.com", "10.0.0.1", POLICY, now=start)
    waits, now = attack_at_the_gate(session, "d@example.com", ["10.0.0.1"] * 10, start, POLICY)
    assert waits == [1, 2, 4, 8, 16, 30, 30]  # after its own three, then at most 30 s each
    with pytest.raises(SignInThrottled) as slowed:
        check_sign_in_allowed(session, "d@example.com", "10.0.0.1", POLICY, now=now)
    assert slowed.value.reason == Wait.SLOWED and "from your address" in str(slowed.value)
    assert seconds_to_wait(session, "d@example.com", "10.0.0.1", POLICY,
                           now=now + timedelta(seconds=30)) is None
    # The same failures from an unfamiliar address slow it (itself only) the same way.
    waits, now = attack_at_the_gate(session, "d@example.com", [ATTACKER] * 10, now, POLICY)
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    with pytest.raises(SignInThrottled) as slowed:
        check_sign_in_allowed(session, "d@example.com", ATTACKER, POLICY, now=now)
    assert slowed.value.reason == Wait.SLOWED and slowed.value.seconds == 30
    after_the_delay = now + timedelta(seconds=30)
    assert seconds_to_wait(session, "d@example.com", ATTACKER, POLICY, now=after_the_delay) is None


def test_the_account_count_is_forgotten_a_window_after_its_last_failure(session):
    start = utcnow()
    waits, now = attack_at_the_gate(session, "e@example.com", [f"192.0.2.{n}" for n in range(8)],
                                    start, POLICY)
    assert waits == [1, 2, 4]
    newcomer = "192.0.2.200"
    assert seconds_to_wait(session, "e@example.com", newcomer, POLICY, now=now) == 8
    assert seconds_to_wait(session, "e@example.com", newcomer, POLICY, now=now + POLICY.window) is None


OFFICE = "203.0.113.7"


def test_an_office_spraying_failures_keeps_a_new_colleague_out_no_longer_than_the_cap(session):
    """The office's address (or somebody behind its NAT) fails on account after account as fast
    as it is let: beyond the limit per address over all accounts (10 per minute) it is slowed,
    never refused for the window, and a colleague who never signed in there gets in with the
    right password at most 30 s after the office's last failure, however long the spraying goes
    on. The default policy."""
    policy, now = ThrottlePolicy(), utcnow()
    newbie, waits = "newbie@example.com", []
    for n in range(45):  # three windows of ten fast failures and five slowed ones
        wait = seconds_to_wait(session, f"guess{n}@example.com", OFFICE, policy, now=now)
        if wait is not None:
            waits.append(wait)
            now += timedelta(seconds=wait)
        with unit_of_work(session):
            note_failure(session, f"guess{n}@example.com", OFFICE, policy, now=now)
        wait = seconds_to_wait(session, newbie, OFFICE, policy, now=now)
        assert wait is None or wait <= 30
        assert seconds_to_wait(session, newbie, OFFICE, policy, now=now + policy.max_delay) is None
    assert max(waits) == 30 and waits[:6] == [1, 2, 4, 8, 16, 30]  # slowed once beyond the ten
    with pytest.raises(SignInThrottled) as slowed:
        check_sign_in_allowed(session, newbie, OFFICE, policy, now=now)
    assert slowed.value.reason == Wait.ALL_ACCOUNTS and slowed.value.seconds == 30
    assert "Too many failed sign-ins from your address. Try again in 30 seconds." == str(slowed.value)


def test_one_address_guessing_one_account_gets_one_guess_per_max_delay_beyond_its_limit(session):
    """clumsy@ on a computer it never signed in from: five failures slow it for a second, not a
    quarter of an hour; an attacker there gets no more than one guess per 30 s at the cap."""
    policy, start = ThrottlePolicy(), utcnow()
    fail_times, now = [], start
    for _ in range(20):
        wait = seconds_to_wait(session, "clumsy@example.com", OFFICE, policy, now=now)
        now += timedelta(seconds=wait or 0)
        with unit_of_work(session):
            note_failure(session, "clumsy@example.com", OFFICE, policy, now=now)
        fail_times.append(now)
    gaps = [(later - earlier).total_seconds()
            for earlier, later in zip(fail_times, fail_times[1:], strict=False)]
    assert gaps == [0] * 4 + [1, 2, 4, 8, 16] + [30] * 10
    assert seconds_to_wait(session, "clumsy@example.com", OFFICE, policy, now=now) == 30
    assert seconds_to_wait(session, "clumsy@example.com", OFFICE, policy, now=now + policy.max_delay) is None
