"""Slowing down password guessing without letting anybody lock another person out.

Two counts of failed sign-ins, both in the database (every worker process of the desk sees the
same ones; Flask-Limiter's memory storage counts per process):

- per account and address pair: after `address_failures` failures in one window, that address
  may not try that account again until the window has passed — with any password, so the
  refusal does not let it go on testing passwords;
- per account, over every address that is not familiar to it: after `account_failures` such
  failures in one window, unfamiliar addresses wait for the window too. An address becomes
  familiar to an account with a successful sign-in from there (for `trust`), so the owner goes on
  signing in from where they usually do however many addresses an attacker uses — the device
  cookie idea of OWASP's authentication cheat sheet, with the address standing for the device.

A refusal is an answer with "try again in …" (429), never a sleeping worker. The account is the
e-mail as typed, known or not, so the answers do not tell which accounts exist. An IPv6 /64 counts
as one address (one subscriber gets a whole /64). Rows whose window has passed and that are not
familiar any more are deleted whenever a failure is written.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from models import SignInThrottle
from models.base import utcnow
from services.errors import DomainError
from services.transactions import DbSession

ACCOUNT_LENGTH = 254
ADDRESS_LENGTH = 64


@dataclass(frozen=True)
class ThrottlePolicy:
    address_failures: int = 5
    account_failures: int = 20
    window: timedelta = timedelta(minutes=15)
    trust: timedelta = timedelta(days=90)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ThrottlePolicy:
        return cls(
            address_failures=int(config["LOGIN_ADDRESS_FAILURE_LIMIT"]),
            account_failures=int(config["LOGIN_ACCOUNT_FAILURE_LIMIT"]),
            window=timedelta(seconds=int(config["LOGIN_FAILURE_WINDOW_SECONDS"])),
            trust=timedelta(days=int(config["LOGIN_FAMILIAR_ADDRESS_DAYS"])),
        )


class SignInThrottled(DomainError):
    """Too many failed sign-ins: `seconds` until the next attempt; `unfamiliar` when the account
    is refused to addresses it does not know (rather than this address alone)."""

    def __init__(self, seconds: int, *, unfamiliar: bool):
        self.seconds = seconds
        self.unfamiliar = unfamiliar
        minutes = max(1, math.ceil(seconds / 60))
        wait = f"Try again in {minutes} minute{'s' if minutes != 1 else ''}"
        if unfamiliar:
            message = (f"Too many failed sign-ins to this account from unfamiliar places. {wait}, "
                       "or sign in from a computer where you signed in before.")
        else:
            message = f"Too many failed sign-ins to this account from your address. {wait}."
        super().__init__(message)


def account_key(email: str | None) -> str:
    return (email or "").strip().lower()[:ACCOUNT_LENGTH]


def address_key(address: str | None) -> str:
    """The address a failure is counted on: IPv4 as it is, IPv6 as its /64 network."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:ADDRESS_LENGTH]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def _wait(session: DbSession, email: str | None, address: str | None, policy: ThrottlePolicy,
          now: datetime) -> tuple[int, bool] | None:
    account, where = account_key(email), address_key(address)
    since = now - policy.window
    pair = session.scalar(select(SignInThrottle).where(
        SignInThrottle.account == account, SignInThrottle.address == where))
    if pair is not None and pair.window_started_at is not None and pair.window_started_at > since:
        if pair.failures >= policy.address_failures:
            return _seconds_until(pair.window_started_at + policy.window, now), False
    if pair is not None and pair.familiar_until is not None and pair.familiar_until > now:
        return None
    total, oldest = session.execute(
        select(func.coalesce(func.sum(SignInThrottle.failures), 0),
               func.min(SignInThrottle.window_started_at))
        .where(SignInThrottle.account == account, SignInThrottle.window_started_at > since,
               or_(SignInThrottle.familiar_until.is_(None), SignInThrottle.familiar_until <= now))
    ).one()
    if total >= policy.account_failures and oldest is not None:
        return _seconds_until(oldest + policy.window, now), True
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
        raise SignInThrottled(wait[0], unfamiliar=wait[1])


def _upsert(session: DbSession, account: str, address: str, values: dict, on_conflict: dict) -> None:
    """Insert the pair's row or change the existing one in one statement: two processes
    writing the first failure of a pair at once must not collide on its unique key."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(SignInThrottle).values(account=account, address=address, **values)
    session.execute(statement.on_conflict_do_update(
        index_elements=[SignInThrottle.account, SignInThrottle.address], set_=on_conflict))


def note_failure(session: DbSession, email: str | None, address: str | None, policy: ThrottlePolicy,
                 *, now: datetime | None = None) -> None:
    """Count a failed sign-in of this account from this address (a new window when the last
    one has passed), and prune rows nobody needs any more."""
    now = now or utcnow()
    since = now - policy.window
    table = SignInThrottle.__table__.c
    window_passed = or_(table.window_started_at.is_(None), table.window_started_at <= since)
    _upsert(session, account_key(email), address_key(address),
            {"failures": 1, "window_started_at": now},
            {"failures": case((window_passed, 1), else_=table.failures + 1),
             "window_started_at": case((window_passed, now), else_=table.window_started_at)})
    session.execute(delete(SignInThrottle).where(
        or_(SignInThrottle.window_started_at.is_(None), SignInThrottle.window_started_at <= since),
        or_(SignInThrottle.familiar_until.is_(None), SignInThrottle.familiar_until <= now)))


def note_success(session: DbSession, email: str | None, address: str | None, policy: ThrottlePolicy,
                 *, now: datetime | None = None) -> None:
    """A successful sign-in: the pair's failures are forgotten and the address becomes familiar
    to the account (exempt from the account-wide count) for `policy.trust`."""
    now = now or utcnow()
    values = {"failures": 0, "window_started_at": None, "familiar_until": now + policy.trust}
    _upsert(session, account_key(email), address_key(address), values, values)


def forget_failures(session: DbSession, email: str | None) -> None:
    """Clear every count of an account (after its password was reset by an administrator)."""
    session.execute(update(SignInThrottle).where(SignInThrottle.account == account_key(email))
                    .values(failures=0, window_started_at=None))
