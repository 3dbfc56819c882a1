"""Portal pages for signed-in portal accounts: sign-in and sign-out, the requests they may see,
a request's timeline with comment / accept and rate / reopen / rate later, a new request, and
their own password.

Views declare; services.discussion and services.portal decide. Who may see a request is
services.discussion.visible_requests / may_see: a request the account may not see is a 404 like
one that does not exist. Every write runs in the door's unit of work; a refusal is shown on the
form it came from (422) with what was typed kept."""

from __future__ import annotations

import io

from flask import abort, current_app, flash, g, redirect, render_template, request, send_file, url_for
from flask_wtf.csrf import CSRFError
from sqlalchemy import func, select

from extensions import db
from i18n import _, _l
from models import Request
from models.enums import RequestSource, RequestStatus
from portal import bp
from portal.forms import (
    AcceptForm,
    CommentForm,
    NewRequestForm,
    PasswordForm,
    RateForm,
    ReopenForm,
    SignInForm,
)
from portal.session import (
    author,
    clear_session_cookie,
    current_account,
    safe_next,
    set_session_cookie,
    signed_in,
)
from portal.timeline import STATUS_HINT, STATUS_STYLE, shown_attachments, timeline
from services import discussion
from services.discussion import Author
from services.errors import FORM, DomainError, PermissionDenied, ValidationFailed
from services.portal import (
    WRONG_CURRENT,
    change_own_portal_password,
    customer_of,
    note_sign_out,
    note_wrong_current_password,
    person_name,
    sign_in,
)
from services.portal_sessions import COOKIE_NAME
from services.sign_in_throttle import SignInThrottled, ThrottlePolicy
from services.transactions import unit_of_work

PAGE_SIZE = 25
SHOWN = {"open": _l("Open"), "closed": _l("Accepted"), "all": _l("All")}
SAFE_TYPES = {"image/png", "image/jpeg", "image/gif", "application/pdf", "text/plain"}


@bp.context_processor
def portal_context() -> dict:
    account = current_account() if request.blueprint == "portal" else None
    return {"portal_account": account,
            "portal_person": person_name(account) if account is not None else None,
            "portal_customer": customer_of(account).display_name if account is not None else None,
            "portal_may_create": account is not None and Author.of_portal(account).may_create,
            "status_style": STATUS_STYLE}


@bp.after_request
def portal_headers(response):
    # Pages of one customer's requests: never kept by a shared computer's cache or the back button.
    response.headers.setdefault("Cache-Control", "no-store")
    setting = any(h.startswith(COOKIE_NAME + "=") for h in response.headers.getlist("Set-Cookie"))
    if g.get("portal_cookie_dead") and not setting:
        clear_session_cookie(response)
    return response


@bp.errorhandler(404)
def not_found(_exc):
    return render_template("portal/error.html", title=_("Not found"),
                           text=_("There is no such page, or it is not one you may see.")), 404


@bp.errorhandler(CSRFError)
def form_expired(_exc):
    return render_template("portal/error.html", title=_("The form has expired"),
                           text=_("Go back, reload the page and send it again.")), 400


def _errors_onto(form, errors: dict[str, list[str]]) -> list[str]:
    """Put a refusal's messages on the form's fields; the rest (the form's, a status step's) are
    returned for the top of the form."""
    loose = []
    for name, messages in errors.items():
        if name != FORM and name in form._fields and name != "csrf_token":
            form[name].errors = list(messages)
        else:
            loose.extend(messages)
    return loose


# --- signing in and out -----------------------------------------------------------------------

@bp.route("/")
def index():
    return redirect(url_for("portal.requests" if current_account() else "portal.sign_in"))


@bp.route("/sign-in", methods=["GET", "POST"], endpoint="sign_in")
def sign_in_page():
    """The portal's sign-in, with its own limits (services.portal.sign_in). `next` may only name
    a page of the portal; a new session cookie replaces whatever the browser held before."""
    target = safe_next(request.args.get("next"))
    if current_account() is not None and request.method == "GET":
        return redirect(target or url_for("portal.requests"))
    form = SignInForm()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work(db.session):  # committed either way: every attempt is recorded
                outcome = sign_in(db.session, form.username.data, form.password.data, request.remote_addr,
                                  ThrottlePolicy.from_config(current_app.config))
        except ValidationFailed as exc:
            form.username.errors = [m for ms in exc.errors.values() for m in ms]
        else:
            if outcome.account is not None:
                return set_session_cookie(redirect(target or url_for("portal.requests")), outcome.account)
            form.password.errors = [outcome.message or ""]
            if outcome.wait_seconds:
                response = current_app.make_response((render_template("portal/sign_in.html", form=form), 429))
                response.headers["Retry-After"] = str(outcome.wait_seconds)
                return response
    if request.method == "POST":
        status = 422
    return render_template("portal/sign_in.html", form=form), status


@bp.route("/sign-out", methods=["POST"])
def sign_out():
    account = current_account()
    if account is not None:
        with unit_of_work(db.session):
            note_sign_out(db.session, account, request.remote_addr)
    flash(_("You have signed out."), "info")
    return clear_session_cookie(redirect(url_for("portal.sign_in")))


@bp.route("/password", methods=["GET", "POST"])
@signed_in
def password():
    """The account's own password; the first page after a first sign-in or a reset."""
    account = current_account()
    assert account is not None
    form = PasswordForm()
    if form.validate_on_submit():
        policy = ThrottlePolicy.from_config(current_app.config)
        try:
            with unit_of_work(db.session):
                change_own_portal_password(db.session, account, form.current_password.data,
                                           form.new_password.data, form.repeat_password.data,
                                           request.remote_addr, policy)
        except SignInThrottled as exc:
            form.current_password.errors = [str(exc)]
            response = current_app.make_response((render_template("portal/password.html", form=form,
                                                                   loose=[]), 429))
            response.headers["Retry-After"] = str(exc.seconds)
            return response
        except ValidationFailed as exc:
            if str(WRONG_CURRENT) in exc.errors.get("current_password", []):
                with unit_of_work(db.session):
                    note_wrong_current_password(db.session, account, request.remote_addr, policy)
            loose = _errors_onto(form, exc.errors)
            return render_template("portal/password.html", form=form, loose=loose), 422
        flash(_("Your password was changed."), "success")
        # The fingerprint of the old password ended every session; this browser gets a new one.
        return set_session_cookie(redirect(url_for("portal.requests")), account)
    status = 422 if request.method == "POST" else 200
    return render_template("portal/password.html", form=form, loose=[]), status


# --- requests -----------------------------------------------------------------------------------

def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < len(raw) < 6 and int(raw) > 0 else 1


@bp.route("/requests")
@signed_in
def requests():
    me = author()
    show = request.args.get("show", "open")
    show = show if show in SHOWN else "open"
    where = [discussion.visible_requests(me)]
    if show == "open":
        where.append(Request.status != RequestStatus.CLOSED)
    elif show == "closed":
        where.append(Request.status == RequestStatus.CLOSED)
    total = db.session.scalar(select(func.count(Request.id)).where(*where)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(_page_number(), pages)
    rows = db.session.scalars(select(Request).where(*where).order_by(Request.id.desc())
                              .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    return render_template("portal/requests.html", rows=rows, show=show, shown=SHOWN, page=page, pages=pages,
                           total=total, may_create=me.may_create)


@bp.route("/requests/new", methods=["GET", "POST"])
@signed_in
def new_request():
    me = author()
    if not me.may_create:
        return render_template("portal/error.html", title=_("Not allowed"),
                               text=_("Your account may not create requests; ask the service desk.")), 403
    form = NewRequestForm()
    loose: list[str] = []
    if form.validate_on_submit():
        try:
            with unit_of_work(db.session):
                raised = discussion.raise_request(db.session, me, form.subject.data, form.description.data,
                                                  source=RequestSource.PORTAL)
        except ValidationFailed as exc:
            loose = _errors_onto(form, exc.errors)
        except PermissionDenied as exc:
            loose = [str(exc)]
        else:
            flash(_("Your request %(reference)s was sent to the service desk.", reference=raised.reference),
                  "success")
            return redirect(url_for("portal.request_page", request_id=raised.id))
    status = 422 if request.method == "POST" else 200
    return render_template("portal/new_request.html", form=form, loose=loose), status


def _visible(request_id: int) -> Request:
    """The request when this account may see it; 404 otherwise — also for another customer's."""
    found = db.session.get(Request, request_id)
    if found is None or not discussion.may_see(db.session, found, author()):
        abort(404)
    return found


def _request_page(req: Request, status: int = 200, **forms):
    forms.setdefault("comment_form", CommentForm(formdata=None))
    forms.setdefault("accept_form", AcceptForm(formdata=None))
    forms.setdefault("reopen_form", ReopenForm(formdata=None))
    forms.setdefault("rate_form", RateForm(formdata=None))
    forms.setdefault("loose", {})  # a refusal's messages that belong to no field of its form
    forms.setdefault("refused", {})  # all of them: said at the top when the form is not shown any more
    return render_template("portal/request.html", req=req, entries=timeline(req),
                           hint=STATUS_HINT[req.status], files=shown_attachments(req), statuses=RequestStatus,
                           **forms), status


@bp.route("/requests/<int:request_id>")
@signed_in
def request_page(request_id: int):
    return _request_page(_visible(request_id))


def _act(request_id: int, form_name: str, form, act, done: str):
    """Run one of the request page's forms through `act(request, author)` in a unit of work:
    back to the page with `done`, or the page again with the refusal on that form."""
    req = _visible(request_id)
    if form.validate_on_submit():
        try:
            with unit_of_work(db.session):
                act(req, author())
        except (ValidationFailed, PermissionDenied, DomainError) as exc:
            errors = exc.errors if isinstance(exc, ValidationFailed) else {FORM: [str(exc)]}
            db.session.expire_all()
            req = _visible(request_id)
            loose = {form_name: _errors_onto(form, errors)}
            every = {form_name: [m for ms in errors.values() for m in ms]}
            return _request_page(req, 422, **{form_name: form, "loose": loose, "refused": every})
        flash(done, "success")
        return redirect(url_for("portal.request_page", request_id=req.id))
    return _request_page(req, 422, **{form_name: form})


@bp.route("/requests/<int:request_id>/comment", methods=["POST"])
@signed_in
def comment(request_id: int):
    form = CommentForm()
    return _act(request_id, "comment_form", form,
                lambda req, me: discussion.add_comment(db.session, req, me, form.body.data),
                _("Your comment was added."))


@bp.route("/requests/<int:request_id>/accept", methods=["POST"])
@signed_in
def accept(request_id: int):
    form = AcceptForm()
    return _act(request_id, "accept_form", form,
                lambda req, me: discussion.accept(db.session, req, me, rating=form.rating.data or None,
                                                  remark=form.remark.data, comment=form.comment.data),
                _("Thank you: the request is accepted."))


@bp.route("/requests/<int:request_id>/reopen", methods=["POST"])
@signed_in
def reopen(request_id: int):
    form = ReopenForm()
    return _act(request_id, "reopen_form", form,
                lambda req, me: discussion.change_status(db.session, req, me, RequestStatus.REOPENED,
                                                         comment=form.comment.data),
                _("The request is reopened; the service desk will take it up again."))


@bp.route("/requests/<int:request_id>/rate", methods=["POST"])
@signed_in
def rate(request_id: int):
    form = RateForm()
    return _act(request_id, "rate_form", form,
                lambda req, me: discussion.rate(db.session, req, me, form.rating.data or None,
                                                form.remark.data),
                _("Thank you for your rating."))


@bp.route("/requests/<int:request_id>/files/<int:attachment_id>")
@signed_in
def attachment(request_id: int, attachment_id: int):
    """A file of the request, always as a download (never rendered as a page of the portal)."""
    file = shown_attachments(_visible(request_id)).get(attachment_id)
    if file is None:
        abort(404)
    kind = file.content_type if file.content_type in SAFE_TYPES else "application/octet-stream"
    return send_file(io.BytesIO(file.data), mimetype=kind, as_attachment=True, download_name=file.filename)
