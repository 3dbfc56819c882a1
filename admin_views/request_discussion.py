"""The operator's side of a request's discussion (RequestView's details page): what the page
shows, its two forms (a comment or internal note; a status change) and their POST, and the
attachment download.

Every write calls services.discussion inside panel_write (one unit of work; the operator's right
on the customer is checked there); a refusal re-renders the page with the messages on the
fields and the typed text kept.

A comment needs no version: it only adds to the thread. A status change is based on the request's
version the page showed (`version_seen`): when the request changed meanwhile (a customer reopened
or accepted it, another operator moved it, an edit), the change is refused with what happened,
the typed comment stays, and the form now carries the current version — submitting again is a
deliberate choice made after seeing the current status.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from flask import Response, flash, redirect, request, url_for
from markupsafe import Markup
from sqlalchemy import select
from wtforms import Form, HiddenField, SelectField, TextAreaField

from admin_views.base import actor
from admin_views.ids import parse_id
from admin_views.refusals import panel_write
from extensions import db
from i18n import _, _l
from models import Request
from models.discussion import RequestAttachment
from models.enums import MailState, RequestStatus
from models.mail import OutgoingMail
from services.access import Right, can
from services.discussion import COMMENT_LIMIT, Author, add_comment, change_status, thread
from services.errors import FORM, NotFound, StaleRecord
from services.requests import request_recipients
from services.versions import check_seen_version

STATUS_BADGES = {RequestStatus.NEW: "info", RequestStatus.IN_PROGRESS: "primary",
                 RequestStatus.RESOLVED: "success", RequestStatus.CLOSED: "secondary",
                 RequestStatus.REOPENED: "warning"}
MAIL_BADGES = {MailState.QUEUED: "info", MailState.SENT: "success", MailState.FAILED: "danger"}
# The operator's usual next step from each status, preselected in the status form.
NEXT_STEP = {RequestStatus.NEW: RequestStatus.IN_PROGRESS,
             RequestStatus.IN_PROGRESS: RequestStatus.RESOLVED,
             RequestStatus.REOPENED: RequestStatus.IN_PROGRESS,
             RequestStatus.RESOLVED: RequestStatus.IN_PROGRESS,
             RequestStatus.CLOSED: RequestStatus.REOPENED}
MAIL_ON_PAGE = 200  # the newest copies of one request; the customer's Mail tab pages through all


def status_badge(status: RequestStatus | None) -> Markup:
    if status is None:
        return Markup('<span class="text-muted">—</span>')
    return Markup('<span class="badge badge-{} cd-status" data-status="{}">{}</span>').format(
        STATUS_BADGES[status], status.value, status.label)


def mail_badge(state: MailState) -> Markup:
    return Markup('<span class="badge badge-{} cd-mail-state" data-state="{}">{}</span>').format(
        MAIL_BADGES[state], state.value, state.label)


class CommentForm(Form):
    """A comment the customer's side receives, or an internal note (which button: `action`)."""

    body = TextAreaField(_l("Comment or internal note"), render_kw={"rows": 4, "maxlength": COMMENT_LIMIT})


class StatusForm(Form):
    """The operator's status step, with an optional comment that goes out with it."""

    status = SelectField(_l("New status"), choices=RequestStatus.choices(),
                         validate_choice=False)  # checked below, in the page's words
    comment = TextAreaField(_l("Comment (optional; mailed with the change)"),
                            render_kw={"rows": 3, "maxlength": COMMENT_LIMIT})
    version_seen = HiddenField()

    def validate_status(self, field) -> None:
        if field.data not in {s.value for s in RequestStatus}:
            from wtforms.validators import ValidationError

            raise ValidationError(_("Choose one of the statuses."))


def status_form_for(model: Request, form: StatusForm | None = None) -> StatusForm:
    """The status form with every status but the current one; on a GET the usual next step chosen
    and the version the page shows."""
    if form is None:
        form = StatusForm(status=NEXT_STEP[model.status].value, version_seen=str(model.version))
    form.status.choices = [(s.value, s.label) for s in RequestStatus if s != model.status]
    return form


def page_context(model: Request, comment_form: CommentForm | None = None,
                 status_form: StatusForm | None = None) -> dict:
    """What the request page shows beyond the record itself (read only: a GET never writes)."""
    mails = db.session.scalars(select(OutgoingMail).where(OutgoingMail.request_id == model.id)
                               .order_by(OutgoingMail.id.desc()).limit(MAIL_ON_PAGE)).all()
    with_status = {change.comment_id: change.new_status for change in model.status_changes
                   if change.comment_id is not None}
    return {"recipients": request_recipients(model), "entries": thread(model, for_operator=True),
            "with_status": with_status, "may_edit": can(db.session, actor(), model.customer_id, Right.EDIT),
            "history": list(model.status_changes), "attachments": list(model.attachments),
            "mails": mails, "comment_form": comment_form or CommentForm(),
            "status_form": status_form_for(model, status_form), "status_badge": status_badge,
            "mail_badge": mail_badge}


def _details(model: Request, anchor: str):
    return redirect(url_for("requests.details_view", id=model.id, _anchor=anchor))


def post_comment(view, model: Request):
    """The comment form: `action` comment (mailed) or note (internal). Success: back to the page
    (PRG); refusal: the page again with the message on the field and the typed text."""
    action = request.form.get("action")
    if action not in ("comment", "note"):
        flash(_("Choose “Add comment” or “Add internal note”."), "error")
        return _details(model, "forms")
    form = CommentForm(request.form)
    with panel_write(form) as outcome:
        add_comment(db.session, model, Author.of_operator(actor()), form.body.data, internal=action == "note")
    if outcome.ok:
        flash(_("Internal note added: only operators see it.") if action == "note"
              else _("Comment added; its copies are queued for the recipients."), "success")
        return _details(model, "thread")
    return view.details_page(model, comment_form=form)


def post_status(view, model: Request):
    """The status form, based on the version the page showed (see the module)."""
    form = StatusForm(request.form)
    if not form.validate():
        flash(_("Nothing was saved: please correct the fields marked below."), "error")
        return view.details_page(model, status_form=form)
    with panel_write(form) as outcome:
        _check_seen(model, parse_id(form.version_seen.data))
        change_status(db.session, model, Author.of_operator(actor()), RequestStatus(form.status.data),
                      comment=form.comment.data)
    if outcome.ok:
        flash(_("Status changed to %(status)s.", status=RequestStatus(form.status.data).label), "success")
        return _details(model, "history")
    return view.details_page(model, status_form=form)


def _check_seen(model: Request, seen: int | None) -> None:
    """The request as the page showed it, or StaleRecord naming its status now (the row stays
    locked until the unit of work ends, so two changes based on one version cannot both pass)."""
    try:
        check_seen_version(db.session, "request", model, seen)
    except StaleRecord as exc:
        db.session.refresh(model, attribute_names=["status"])
        said = " ".join(exc.errors.get(FORM, []))
        raise StaleRecord(_("The request is now %(status)s.", status=model.status.label) + " " + said,
                          exc.current_version) from None


# --- attachments ---------------------------------------------------------------------------------

# Types a browser shows as a picture, a PDF or plain text; anything else (HTML, SVG, XML, scripts)
# is sent as bytes to save. Every attachment is sent as a download in any case (Content-Disposition:
# attachment, nosniff, a sandboxing Content-Security-Policy), never rendered as part of the desk.
SAFE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"}
UNSAFE_IN_NAME = re.compile(r'[\x00-\x1f\x7f"\\/;]')


def safe_content_type(declared: str | None) -> str:
    kind = (declared or "").split(";", 1)[0].strip().lower()
    return kind if kind in SAFE_TYPES else "application/octet-stream"


def content_disposition(filename: str | None) -> str:
    """`attachment` with the file's name: an ASCII fallback and the UTF-8 name (RFC 6266), without
    anything that could end the header or name a path."""
    name = UNSAFE_IN_NAME.sub("_", (filename or "").strip()).strip(". ") or "attachment"
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode() or "attachment"
    ascii_name = re.sub(r"[^A-Za-z0-9._ ()+-]", "_", ascii_name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def attachment_response(model: Request) -> Response:
    """One attachment of `model` (the `attachment` argument), as a download."""
    number = parse_id(request.args.get("attachment"))
    found = None if number is None else db.session.scalar(
        select(RequestAttachment).where(RequestAttachment.id == number,
                                        RequestAttachment.request_id == model.id))
    if found is None:
        raise NotFound(_("No such attachment."))
    response = Response(found.data, mimetype=safe_content_type(found.content_type))
    response.headers["Content-Disposition"] = content_disposition(found.filename)
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["Cache-Control"] = "private, no-store"
    return response
