"""The one place where the panel turns a refusal of the domain into what the user sees.

A panel page writes inside `panel_write(form)`: the unit of work commits when the body ends
and rolls everything back when a command refuses. Field messages land on the form's fields
(the user's input stays), the rest as page messages; PermissionDenied is the 403 page and
NotFound the 404 page. Refusals raised outside a write (the loader of a GET page) reach
`init_refusal_pages`: 403 / 404 / 409 pages, and a merged-away id redirects to its survivor.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import Flask, abort, current_app, flash, redirect, request, url_for

from extensions import db
from i18n import _, _l
from services.errors import (
    FORM,
    DomainError,
    MergedAway,
    NotFound,
    PermissionDenied,
    StaleRecord,
    ValidationFailed,
)
from services.transactions import unit_of_work


@dataclass
class Outcome:
    """How a panel write ended: `refused` with the `errors` per field when a command said no."""

    refused: bool = False
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.refused


def flash_errors(errors: dict[str, list[str]]) -> None:
    """Every message of a refusal as a page message (pages without a form to put them on)."""
    for messages in errors.values():
        for message in messages:
            flash(message, "error")


def attach_errors(form, errors: dict[str, list[str]], note: str | None = None) -> None:
    """Show domain messages on the fields they concern; the rest as a message on the page.
    The form keeps everything the user typed; a note on top says where to look on a long form
    (by default: nothing was saved)."""
    flash(note or _("Nothing was saved: please correct the fields marked below."), "error")
    for field_name, messages in errors.items():
        target = getattr(form, field_name, None) if field_name != FORM else None
        if target is None:
            for message in messages:
                flash(message, "error")
            continue
        target.errors = list(target.errors or []) + list(messages)


def show_refusal(exc: DomainError, form=None, *, flash_fields: bool = True) -> dict[str, list[str]]:
    """What the user sees of a refusal; the messages per field. 403 / 404 end the request."""
    if isinstance(exc, PermissionDenied):
        abort(403, description=str(exc))
    if isinstance(exc, NotFound | MergedAway):
        abort(404)
    if isinstance(exc, ValidationFailed):
        if form is not None:
            attach_errors(form, exc.errors)
            if isinstance(exc, StaleRecord) and getattr(form, "version_seen", None) is not None:
                # The user has now been told; saving again is a deliberate overwrite.
                form.version_seen.data = exc.current_version
        elif flash_fields:
            flash_errors(exc.errors)
        return exc.errors
    flash(str(exc), "error")
    return {FORM: [str(exc)]}


@contextmanager
def panel_write(form=None, *, flash_fields: bool = True) -> Iterator[Outcome]:
    """A panel page's write: one unit of work; a refusal becomes messages (see the module)."""
    outcome = Outcome()
    try:
        with unit_of_work(db.session):
            yield outcome
    except DomainError as exc:
        outcome.refused = True
        outcome.errors = show_refusal(exc, form, flash_fields=flash_fields)


def init_refusal_pages(app: Flask) -> None:
    """Refusals raised by panel pages outside `panel_write`: a page that says what happened."""

    @app.errorhandler(MergedAway)
    def merged_away(exc: MergedAway):
        if request.method == "GET" and request.endpoint:
            args = {**(request.view_args or {}), **request.args.to_dict(), "id": exc.survivor_id}
            if "customer_id" in args:
                args["customer_id"] = exc.survivor_id
            return redirect(url_for(request.endpoint, **args))
        return _page("Merged", str(exc), 404)

    @app.errorhandler(NotFound)
    def not_found(_exc: NotFound):
        return _page("Not found", _("There is no such record, or it is not one you may see."), 404)

    @app.errorhandler(PermissionDenied)
    def denied(exc: PermissionDenied):
        return _page("Not allowed", str(exc), 403)

    @app.errorhandler(ValidationFailed)
    def refused(exc: ValidationFailed):
        db.session.rollback()
        return _page("Not saved", " ".join(m for ms in exc.errors.values() for m in ms), 409)

    @app.errorhandler(DomainError)
    def domain(exc: DomainError):
        db.session.rollback()
        return _page("Not possible", str(exc), 409)


# A refusal page's heading; the API answers the English words as its "status" (a stable string).
TITLES = {"Merged": _l("Merged"), "Not found": _l("Not found"), "Not allowed": _l("Not allowed"),
          "Not saved": _l("Not saved"), "Not possible": _l("Not possible")}


def _page(title: str, text: str, code: int):
    admin = current_app.extensions.get("admin", [None])[0]
    if admin is None or request.blueprint and request.blueprint.startswith("api"):
        return {"code": code, "status": title, "message": text, "errors": {}}, code
    return admin.index_view.render("admin/refusal.html", title=str(TITLES.get(title, title)), text=text), code
