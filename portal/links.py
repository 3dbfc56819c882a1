"""The pages behind the signed links in our e-mails: /portal/link/<purpose>/<token>, no sign-in.

GET shows the request (subject, status, the thread the customer may see) and the link's form —
and writes nothing: mail scanners and link previews fetch every link of a mail, so only the
POST of the form (with the page's CSRF token) uses the link (services.mail_links.follow_link,
in one unit of work with the comment, acceptance or rating). A link that cannot be used gets a
page that says why, in the portal's look, with a 4xx status and the way to the portal's
sign-in; nothing typed is lost when the action itself is refused.

Rate limited per client address (MAIL_LINK_RATE_LIMIT, "30 per minute; 300 per hour" by
default, the `limits` notation) over GETs and POSTs alike, on the application's limiter storage
(RATELIMIT_STORAGE_URI, as admin_views/connection_tests.py): a signature cannot be guessed, but a
script hammering the pages must not cost the desk its database.
"""

from __future__ import annotations

import flask
from flask import current_app, render_template
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from extensions import csrf, db, take_one
from i18n import _, _l
from portal import bp
from portal.timeline import STATUS_STYLE, timeline
from services import mail_links
from services.errors import FORM, DomainError, PermissionDenied, ValidationFailed
from services.mail_links import LinkData, LinkRefused, LinkTarget
from services.transactions import unit_of_work

SCOPE = "mail-link"
DEFAULT_RATE_LIMIT = "30 per minute; 300 per hour"
STATUS = {mail_links.FORGED: 400, mail_links.WRONG_PURPOSE: 400, mail_links.EXPIRED: 410,
          mail_links.USED: 409, mail_links.GONE: 404, mail_links.NOT_ALLOWED: 403}
HEADINGS = {"comment": _l("Add a comment"), "accept": _l("Accept the completion"),
            "rate": _l("Rate our work")}
DONE_HEADINGS = {"comment": _l("Comment added"), "accept": _l("Completion accepted"),
                 "rate": _l("Rating sent")}
DONE = {"comment": _l("Thank you: your comment has been added to the request, and the others who follow "
                      "it have been sent a copy."),
        "accept": _l("Thank you: you have accepted the completion of the request."),
        "rate": _l("Thank you for rating our work.")}
STALE_FORM = _l("This page was open too long to be sent safely. Your text is still here: "
                "send it again.")
FIELDS = {"comment": ("body",), "accept": ("rating", "remark"), "rate": ("rating", "remark")}


@bp.route("/link/<purpose>/<token>", methods=["GET", "POST"])
def mail_link(purpose: str, token: str):
    over = _over_limit()
    if over is not None:
        return over
    link = None
    try:
        link = mail_links.read_token(token, purpose)
        if flask.request.method == "POST":
            return _post(link)
        mail_links.check_unused(db.session, link)
        target = mail_links.open_link(db.session, link)
    except LinkRefused as exc:
        return _refused(exc, link)
    return _page(target, status=200 if target.may_act else 409)


# The page's CSRF token is checked in the view itself (_post, on every POST), so that a stale
# token answers with the form and the text the user typed, not with the bare CSRF error page.
csrf.exempt(mail_link)


def _post(link: LinkData):
    form = flask.request.form
    values = {name: form.get(name) for name in FIELDS[link.purpose]}
    try:
        validate_csrf(form.get("csrf_token"))
    except ValidationError:
        mail_links.check_unused(db.session, link)
        return _page(mail_links.open_link(db.session, link), values, {FORM: [str(STALE_FORM)]}, status=400)
    try:
        with unit_of_work(db.session):
            target = mail_links.follow_link(db.session, link, **values)
    except LinkRefused as exc:
        return _refused(exc, link)
    except PermissionDenied as exc:
        return _refused(LinkRefused(str(exc), mail_links.NOT_ALLOWED), link)
    except ValidationFailed as exc:
        # Rolled back: the link is unused, the form comes back with the message and the text.
        return _page(mail_links.open_link(db.session, link), values, exc.errors, status=422)
    except DomainError as exc:
        return _page(mail_links.open_link(db.session, link), values, {FORM: [str(exc)]}, status=409)
    shown = {**_shown(target), "heading": DONE_HEADINGS[link.purpose]}
    return render_template("portal/link_done.html", **shown, done=DONE[link.purpose])


def _shown(target: LinkTarget) -> dict:
    request = target.request
    return {"target": target, "request": request, "author": target.author, "entries": timeline(request),
            "status_style": STATUS_STYLE, "heading": HEADINGS[target.link.purpose],
            "sign_in": mail_links.sign_in_path(request.id)}


def _page(target: LinkTarget, values: dict | None = None, errors: dict | None = None, *, status: int):
    errors = errors or {}
    fields = FIELDS[target.link.purpose]
    # Messages that belong to no field of this form (the request's state, a reopen's comment …).
    general = [m for name, messages in errors.items() if name not in fields for m in messages]
    return render_template("portal/link.html", **_shown(target), purpose=target.link.purpose,
                           values=values or {}, errors=errors, general=general,
                           not_now=mail_links.why_not_now(target)), status


def _refused(exc: LinkRefused, link: LinkData | None):
    known = link is not None and exc.reason in (mail_links.USED, mail_links.NOT_ALLOWED)
    sign_in = mail_links.sign_in_path(link.request_id if known and link else None)
    return render_template("portal/link_refused.html", message=str(exc), sign_in=sign_in,
                           heading=_refusal_heading(exc.reason)), STATUS.get(exc.reason, 400)


def _refusal_heading(reason: str) -> str:
    headings = {mail_links.EXPIRED: _("This link has expired"),
                mail_links.USED: _("This link has been used already"),
                mail_links.GONE: _("Request not found"),
                mail_links.NOT_ALLOWED: _("Please sign in to the portal")}
    return headings.get(reason, _("This link does not work"))


def _over_limit():
    """None while the client's address may open one more link page (and counts it); else 429."""
    text = current_app.config.get("MAIL_LINK_RATE_LIMIT") or DEFAULT_RATE_LIMIT
    if not take_one(SCOPE, text, flask.request.remote_addr or "unknown"):
        message = _("Too many link pages were opened from your address in a short time. "
                    "Wait a minute and open the link again.")
        page = render_template("portal/link_refused.html", message=message, heading=_("Please wait a minute"),
                               sign_in=mail_links.sign_in_path())
        return page, 429, {"Retry-After": "60"}
    return None
