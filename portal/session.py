"""The portal's door to its own session (services.portal_sessions): which portal account this
request comes from, the cookie that says so, and the guard of every signed-in page.

Nothing here looks at Flask-Login: an operator signed in to the panel is nobody on the portal."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, request, url_for

from extensions import db
from i18n import _
from models import PortalAccount
from services.discussion import Author
from services.portal_sessions import COOKIE_NAME, COOKIE_PATH, PortalSessionKeys, account_of, issue

# A page to go to after signing in: a path of the portal only (no scheme, host, "//", "\",
# dot segments or encoded tricks a browser would resolve elsewhere).
# Each segment ends at its own "/", so a failing match is linear (a "(\w+/?)*" backtracks exponentially).
SAFE_NEXT = re.compile(r"/portal/(?:[A-Za-z0-9_\-]+/)*[A-Za-z0-9_\-]*(?:\?[A-Za-z0-9_\-=&]*)?")


def session_keys() -> PortalSessionKeys:
    config = current_app.config
    return PortalSessionKeys(config["SECRET_KEY"], int(config["PORTAL_SESSION_HOURS"]))


def current_account() -> PortalAccount | None:
    """The portal account of this request's cookie, or None (read once per request)."""
    if "portal_account" not in g:
        value = request.cookies.get(COOKIE_NAME)
        g.portal_account = account_of(db.session, session_keys(), value) if value else None
        # A cookie that opens nothing any more (expired, password changed, disabled) is removed.
        g.portal_cookie_dead = bool(value) and g.portal_account is None
    return g.portal_account


def author() -> Author:
    account = current_account()
    assert account is not None
    return Author.of_portal(account)


def set_session_cookie(response: Any, account: PortalAccount) -> Any:
    """A new cookie for `account` on `response` (signing in, or after the password changed)."""
    keys = session_keys()
    response.set_cookie(COOKIE_NAME, issue(keys, account), max_age=keys.max_age, path=COOKIE_PATH,
                        httponly=True, samesite="Lax",
                        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
    return response


def clear_session_cookie(response: Any) -> Any:
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, httponly=True, samesite="Lax",
                           secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
    return response


def safe_next(target: str | None) -> str | None:
    """`target` when it is a page of the portal, else None: the sign-in never sends anybody off
    the portal (an open redirect would hand a phishing page the customer's trust)."""
    if not target or len(target) > 500 or not SAFE_NEXT.fullmatch(target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path.startswith("/portal/sign-"):
        return None
    return target


def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    """A page for a signed-in portal account: others go to the sign-in (and come back to a GET
    page after it); an account that must change its password goes to that page first."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        account = current_account()
        if account is None:
            back = safe_next(request.full_path.rstrip("?")) if request.method == "GET" else None
            target = url_for("portal.sign_in", next=back) if back else url_for("portal.sign_in")
            return redirect(target)
        if account.must_change_password and request.endpoint != "portal.password":
            flash(_("Please choose a new password before you go on."), "info")
            return redirect(url_for("portal.password"))
        return view(*args, **kwargs)

    return guarded
