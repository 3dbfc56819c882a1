"""The portal's own session: a signed cookie, separate from the operators' Flask-Login session.

The cookie ("cd_portal", path /portal, HttpOnly, SameSite=Lax, Secure where the app's session
cookie is) carries the portal account's id, the time it was issued and a fingerprint of the
account's password hash. It is signed with the app's secret key under a salt of its own, so no
other signed value of the app (the Flask session, a link in an e-mail) can pass for it, and it
names no operator: an operator's session opens nothing on the portal, and this cookie — which the
browser sends to /portal only — opens nothing in the panel.

A cookie is honoured while
- its signature is good and it is younger than PORTAL_SESSION_HOURS (counted from the sign-in;
  an absolute limit, not a sliding one: a stolen cookie dies on time however busy it is kept);
- the account's password and session epoch are the ones it was issued under: changing or
  resetting the password (or a merge that swaps accounts) or signing out changes the
  fingerprint and so ends every other session;
- the account may still sign in (services.portal.sign_in_refusal: enabled, its customer active
  and not merged away, its contact active) — checked on every request, not only at sign-in.

Signing out deletes the cookie in that browser and raises the account's session epoch: a copy
of the cookie taken before opens nothing afterwards — and the account's sessions in other
browsers end too (there is no server-side list of sessions to end only one).

Flask-free: the door passes the secret key, the lifetime and the cookie's value.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from models import PortalAccount
from services.transactions import DbSession

COOKIE_NAME = "cd_portal"
COOKIE_PATH = "/portal"
SALT = "customer-desk.portal-session"
# A cookie stamped this far in the future is refused (clocks of the desk's hosts may differ a little).
CLOCK_SKEW = 60


@dataclass(frozen=True)
class PortalSessionKeys:
    """What signs and limits portal sessions: the app's secret key and PORTAL_SESSION_HOURS."""

    secret_key: str | bytes
    hours: int

    @property
    def max_age(self) -> int:
        return max(1, int(self.hours)) * 3600

    def _serializer(self) -> URLSafeSerializer:
        return URLSafeSerializer(self.secret_key, salt=SALT)

    def fingerprint(self, password_hash: str, epoch: int = 0) -> str:
        """A keyed digest of the password hash and the account's session epoch: it changes
        whenever the password does or the account signs out, and tells nobody reading the cookie
        anything about the hash."""
        key = self.secret_key.encode() if isinstance(self.secret_key, str) else self.secret_key
        digest = hmac.new(key, f"portal-session:{epoch}:".encode() + password_hash.encode(), hashlib.sha256)
        return digest.hexdigest()[:32]


def issue(keys: PortalSessionKeys, account: PortalAccount, *, now: float | None = None) -> str:
    """A new cookie value for `account` (every sign-in gets a new one: a value planted in the
    browser before the sign-in is replaced, never promoted)."""
    issued = int(now if now is not None else time.time())
    return keys._serializer().dumps({"a": account.id, "f": keys.fingerprint(account.password_hash,
                                                                             account.session_epoch or 0),
                                     "t": issued})


def read(keys: PortalSessionKeys, value: str | None, *, now: float | None = None) -> tuple[int, str] | None:
    """(account id, fingerprint) of a well-signed, unexpired cookie value, else None."""
    if not value or len(value) > 4096:
        return None
    try:
        data = keys._serializer().loads(value)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    account_id, fingerprint, issued = data.get("a"), data.get("f"), data.get("t")
    if not (isinstance(account_id, int) and isinstance(fingerprint, str) and isinstance(issued, int)):
        return None
    moment = now if now is not None else time.time()
    if issued > moment + CLOCK_SKEW or moment - issued > keys.max_age:
        return None
    return account_id, fingerprint


def account_of(session: DbSession, keys: PortalSessionKeys, value: str | None, *,
               now: float | None = None) -> PortalAccount | None:
    """The portal account a cookie value signs in, or None: a forged, expired or malformed
    value, a password changed since it was issued, or an account that may not sign in now."""
    from services.portal import sign_in_refusal

    found = read(keys, value, now=now)
    if found is None:
        return None
    account_id, fingerprint = found
    if not 0 < account_id < 2**31:
        return None
    account = session.get(PortalAccount, account_id)
    if account is None or not hmac.compare_digest(
            keys.fingerprint(account.password_hash, account.session_epoch or 0), fingerprint):
        return None
    if sign_in_refusal(account) is not None:
        return None
    return account


__all__ = ["COOKIE_NAME", "COOKIE_PATH", "PortalSessionKeys", "account_of", "issue", "read"]
