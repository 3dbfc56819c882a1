"""Slowing down password guessing without letting anybody lock another person out.

Failed sign-ins are counted in the database — the one place sign-in limits are counted, so
every worker process and every host of the desk sees the same counts with no server of their
own (Flask-Limiter's memory storage counted per process: 4 workers let 29 of 30 guesses through
a limit of 10). Correct sign-ins are never counted: thirty operators behind one office NAT sign
in within a minute. One row per account and address keeps its failures and the time of the last
one; its count is forgotten `window` after the last failure. One row per address counts its
failures over all accounts in fixed windows, with the time of its last failure.

No count ever refuses anybody for a window. Beyond its limit, a count makes each further attempt
wait a delay after its own last failure that doubles with each further failure (1 s, 2 s, 4 s …)
up to `max_delay` (30 s). An attempt during the delay is answered "try again in …" (429,
Retry-After) with any password — so the wait does not let anybody go on testing passwords — and
is not counted; after it, the right password signs in. So nobody is kept out longer than
`max_delay` after the last failure that counts against them, and guessing stays slow: about two
guesses a minute per count once it is at the cap. Three counts, three rules:

- per account and address pair: after `address_failures` failures the address waits the delay
  after the pair's last failure before trying the account again. This only ever slows the
  address that failed, on the account it failed on.
- per account: once the addresses not familiar to the account have failed `account_failures`
  times together, every further attempt from an unfamiliar address waits the delay after the
  account's last failure. Guessing stays slow however many addresses guess, and the owner, even
  from a place they never signed in from, gets in within the cap.
- per address over all accounts (LOGIN_RATE_LIMIT, "10 per minute"): once an address has failed
  `address_total_failures` times in the current window, whatever the accounts (password
  spraying: one guess on each of many accounts), each further attempt from it on an account
  that is not familiar with it waits the delay after the address's last failure. A colleague
  new to the office's address gets in at most `max_delay` after its last failure, however many
  failures the office (or somebody sharing its address) keeps sending.

An address becomes familiar to an account with a successful sign-in from there (for `trust`),
the device cookie idea of OWASP's authentication cheat sheet with the address standing for the
device. A familiar address is exempt from the account's count and from its own count over all
accounts: it is slowed by the failures of its own pair only. So somebody sharing the owner's
address (the same office NAT) can only make each attempt from there wait up to `max_delay`, and
guesses no faster than that themselves; the office's operators who signed in there before are
not slowed by the office's count at all.

A delay is an answer with "try again in …" (429), never a sleeping worker. The account is the
e-mail as typed, known or not, so the answers do not tell which accounts exist. An IPv6 /64
counts as one address (one subscriber gets a whole /64). Behind a reverse proxy the address is
the client's only with TRUSTED_PROXIES set (app.py). Rows whose count is forgotten and that are
not familiar any more, and address counts of past windows whose delay has passed, are deleted
whenever a failure is written."""

from __future__ import annotations

import enum
import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from limits import parse as parse_limit
from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from models import SignInThrottle
from models.base import utcnow
from models.sign_in import SignInAddressFailures
from services.errors import DomainError
from services.transactions import DbSession

ACCOUNT_LENGTH = 254
ADDRESS_LENGTH = 64
UNKNOWN_ADDRESS = "unknown"


@dataclass(frozen=True)
class ThrottlePolicy:
    address_failures: int = 5
    account_failures: int = 20
    window: timedelta = timedelta(minutes=15)
    trust: timedelta = timedelta(days=90)
    max_delay: timedelta = timedelta(seconds=30)
    # Failures from one address over all accounts per fixed window; None: no such limit.
    address_total_failures: int | None = 10
    address_total_window: timedelta = timedelta(minutes=1)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ThrottlePolicy:
        """The policy of the configuration. LOGIN_RATE_LIMIT ("10 per minute", the `limits`
        notation) is the count per address over all accounts; with RATELIMIT_ENABLED off (tests)
        there is none, as there was none when Flask-Limiter counted it."""
        total, total_window = None, cls.address_total_window
        text = config.get("LOGIN_RATE_LIMIT")
        if config.get("RATELIMIT_ENABLED", True) and text:
            item = parse_limit(text)
            total, total_window = item.amount, timedelta(seconds=item.get_expiry())
        return cls(
            address_failures=int(config["LOGIN_ADDRESS_FAILURE_LIMIT"]),
            account_failures=int(config["LOGIN_ACCOUNT_FAILURE_LIMIT"]),
            window=timedelta(seconds=int(config["LOGIN_FAILURE_WINDOW_SECONDS"])),
            trust=timedelta(days=int(config["LOGIN_FAMILIAR_ADDRESS_DAYS"])),
            address_total_failures=total,
            address_total_window=total_window,
        )

    def delay(self, failures_beyond: int) -> timedelta:
        """The wait after the last failure once a count is `failures_beyond` past its limit:
        1 s, 2 s, 4 s … never more than `max_delay`."""
        return min(self.max_delay, timedelta(seconds=2 ** min(max(failures_beyond, 0), 32)))


class Wait(enum.Enum):
    SLOWED = "slowed"  # this address failed too often on this account: it waits its delay
    UNFAMILIAR = "unfamiliar"  # the account is slowed for the addresses it does not know
    ALL_ACCOUNTS = "all_accounts"  # this address failed too often over all accounts


class SignInThrottled(DomainError):
    """Too many failed sign-ins: `seconds` until the next attempt; `reason` says whose count."""

    def __init__(self, seconds: int, reason: Wait):
        self.seconds = seconds
        self.reason = reason
        wait = f"Try again in {_duration(seconds)}"
        if reason == Wait.UNFAMILIAR:
            message = (f"Too many failed sign-ins to this account from unfamiliar places. {wait}, "
                       "or sign in from a computer where you signed in before.")
        elif reason == Wait.ALL_ACCOUNTS:
            message = f"Too many failed sign-ins from your address. {wait}."
        else:
            message = f"Too many failed sign-ins to this account from your address. {wait}."
        super().__init__(message)


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def account_key(email: str | None) -> str:
    return (email or "").strip().lower()[:ACCOUNT_LENGTH]


def address_key(address: str | None) -> str:
    """The address a failure is counted on: IPv4 as it is, IPv6 as its /64 network; anything
    that is not an address (no peer address at all) as "unknown"."""
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return UNKNOWN_ADDRESS
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _seconds_until(moment: datetime, now: datetime) -> int | None:
    """Whole seconds until `moment` (at least 1), or None when it has come."""
    if moment <= now:
        return None
    return max(1, math.ceil((moment - now).total_seconds()))


def _wait(session: DbSession, email: str | None, address: str | None, policy: ThrottlePolicy,
          now: datetime) -> tuple[int, Wait] | None:
    account, where = account_key(email), address_key(address)
    since = now - policy.window
    pair = session.scalar(select(SignInThrottle).where(
        SignInThrottle.account == account, SignInThrottle.address == where))
    if (pair is not None and pair.last_failure_at is not None and pair.last_failure_at > since
            and pair.failures >= policy.address_failures):
        seconds = _seconds_until(
            pair.last_failure_at + policy.delay(pair.failures - policy.address_failures), now)
        if seconds:
            return seconds, Wait.SLOWED
    if pair is not None and pair.familiar_until is not None and pair.familiar_until > now:
        return None
    if policy.address_total_failures is not None:
        counted = session.execute(
            select(SignInAddressFailures.failures, SignInAddressFailures.window_started_at,
                   SignInAddressFailures.last_failure_at)
            .where(SignInAddressFailures.address == where)).first()
        if counted is not None and counted.failures >= policy.address_total_failures:
            last_failure = counted.last_failure_at or counted.window_started_at
            seconds = _seconds_until(
                last_failure + policy.delay(counted.failures - policy.address_total_failures), now)
            if seconds:
                return seconds, Wait.ALL_ACCOUNTS
    total, last = session.execute(
        select(func.coalesce(func.sum(SignInThrottle.failures), 0), func.max(SignInThrottle.last_failure_at))
        .where(SignInThrottle.account == account, SignInThrottle.last_failure_at > since,
               or_(SignInThrottle.familiar_until.is_(None), SignInThrottle.familiar_until <= now))
    ).one()
    if total >= policy.account_failures and last is not None:
        seconds = _seconds_until(last + policy.delay(total - policy.account_failures), now)
        if seconds:
            return seconds, Wait.UNFAMILIAR
    return None


def seconds_to_wait(session: DbSession, email: str | None, address: str | None,
                    policy: ThrottlePolicy, *, now: datetime | None = None) -> int | None:
    """How long this address must wait before trying this account, or None when it may now."""
    wait = _wait(session, email, address, policy, now or utcnow())
    return wait[0] if wait else None


def check_sign_in_allowed(session: DbSession, email: str | None, address: str | None,
                          policy: ThrottlePolicy, *, now: datetime | None = None) -> None:
    """Raise SignInThrottled when this address must wait before trying this account."""
    wait = _wait(session, email, address, policy, now or utcnow())
    if wait is not None:
        raise SignInThrottled(*wait)


def _upsert(session: DbSession, model: type[SignInThrottle] | type[SignInAddressFailures], keys: dict,
            values: dict, on_conflict: dict) -> None:
    """Insert the row of `keys` or change the existing one in one statement: two processes
    writing the first failure of a pair (an address) at once must not collide on its unique key.
    A Core statement: the keys are the table's column names (the pair's last failure is
    "window_started_at")."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model).values(**keys, **values)
    session.execute(statement.on_conflict_do_update(
        index_elements=[getattr(model, key) for key in keys], set_=on_conflict))


def note_failure(session: DbSession, email: str | None, address: str | None, policy: ThrottlePolicy,
                 *, now: datetime | None = None) -> None:
    """Count a failed sign-in of this account from this address (from one again when the last
    failure is a window ago) and of this address over all accounts (from one again in a new
    window), keep the time of the last failure of both, and prune rows nobody needs any more."""
    now = now or utcnow()
    since = now - policy.window
    where = address_key(address)
    column = SignInThrottle.__table__.c
    forgotten = or_(column.window_started_at.is_(None), column.window_started_at <= since)
    _upsert(session, SignInThrottle, {"account": account_key(email), "address": where},
            {"failures": 1, "window_started_at": now},
            {"failures": case((forgotten, 1), else_=column.failures + 1), "window_started_at": now})
    session.execute(delete(SignInThrottle).where(
        or_(SignInThrottle.last_failure_at.is_(None), SignInThrottle.last_failure_at <= since),
        or_(SignInThrottle.familiar_until.is_(None), SignInThrottle.familiar_until <= now)))
    total = SignInAddressFailures.__table__.c
    window_over = total.window_started_at <= now - policy.address_total_window
    _upsert(session, SignInAddressFailures, {"address": where},
            {"failures": 1, "window_started_at": now, "last_failure_at": now},
            {"failures": case((window_over, 1), else_=total.failures + 1),
             "window_started_at": case((window_over, now), else_=total.window_started_at),
             "last_failure_at": now})
    session.execute(delete(SignInAddressFailures).where(
        SignInAddressFailures.window_started_at <= now - policy.address_total_window,
        or_(SignInAddressFailures.last_failure_at.is_(None),
            SignInAddressFailures.last_failure_at <= now - policy.max_delay)))


def note_success(session: DbSession, email: str | None, address: str | None, policy: ThrottlePolicy,
                 *, now: datetime | None = None) -> None:
    """A successful sign-in: the pair's failures are forgotten and the address becomes familiar
    to the account (exempt from the account's count and from the address's count over all
    accounts) for `policy.trust`."""
    now = now or utcnow()
    _upsert(session, SignInThrottle, {"account": account_key(email), "address": address_key(address)},
            {"failures": 0, "window_started_at": None, "familiar_until": now + policy.trust},
            {"failures": 0, "window_started_at": None, "familiar_until": now + policy.trust})


def forget_failures(session: DbSession, email: str | None) -> None:
    """Clear every count of an account (after its password was reset by an administrator)."""
    session.execute(update(SignInThrottle).where(SignInThrottle.account == account_key(email))
                    .values({SignInThrottle.failures: 0, SignInThrottle.last_failure_at: None}))
