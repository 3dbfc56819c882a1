"""The quick form's JSON doors on the Customers view: live duplicate candidates and create. The
modal (templates/admin/_quick_create.html, static/quick_create.js) calls them from the Customers
list and from a request's Customer field. Thin: every rule is in services.quick_create and
services.customers; every answer comes from `created` or `refused` below. POSTs carry the
app-wide CSRF token.

A company is created together with its contacts (it needs one with an e-mail): the modal posts
the company first; when the missing contact is the only refusal (nothing was written), the
answer says `step: "contacts"` and the modal asks for them, then posts the company again with
its contact rows (`contacts-N-field`).

Every refusal of what was typed comes in one answer, each message keyed by its field. An inactive
match the operator may edit carries `may_reactivate` and its `version`: the modal's Reactivate
posts them to `quick_reactivate_view` (services.quick_create.reactivate_customer, the Change
Status command with its rights) and then selects or opens the customer."""

from __future__ import annotations

import re

from flask import Response, jsonify, request
from flask_admin import expose
from sqlalchemy import select

from admin_views.base import actor, save_options
from admin_views.ids import parse_id
from extensions import db
from i18n import _, _l
from models import Contact, Customer
from models.enums import CustomerKind
from services.access import Right, customer_condition
from services.duplicates import DuplicateSuspected, find_duplicates, make_probe
from services.errors import FORM, DomainError, NotFound, PermissionDenied, ValidationFailed
from services.limits import max_length
from services.quick_create import (
    QuickCustomer,
    email_required,
    no_email_warning,
    quick_create_customer,
    reactivate_customer,
)
from services.transactions import DbSession, unit_of_work

MAX_CONTACT_ROWS = 50
CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "is_main")
TYPED_PHONE = 40  # a phone as typed, with spaces and separators; stored as E.164 (20 at most)
TRUE = ("1", "y", "on", "true")
ROW_KEY = re.compile(r"^contacts-(\d+)-")  # the row number as posted: compared as text, never parsed
TOO_MANY_ROWS = _l("At most %(count)s contacts at once, please: add the others on the company's "
                   "Contacts tab once it is saved.", count=MAX_CONTACT_ROWS)
ROWS_NOT_NUMBERED = _l("The contact rows arrived incomplete (a row is missing): nothing was saved. "
                       "Send them again.")

# The modal's maxlength attributes, from the columns the values end in.
LIMITS = {
    "name": max_length(Customer.company_name),
    "email": max_length(Customer.email),
    "phone": TYPED_PHONE,
    "contact_first_name": max_length(Contact.first_name),
    "contact_last_name": max_length(Contact.last_name),
    "contact_email": max_length(Contact.email),
}


def quick_form_context(session: DbSession) -> dict:
    """What the modal's macro reads from the page it is on (the Customers list, a request form)."""
    return {"quick_email_required": email_required(session), "quick_limits": LIMITS}


def created(customer: Customer) -> tuple[Response, int]:
    """201: the new customer for the select that opened the modal (Django admin's popup
    answer), with the reminder that a private person without an e-mail cannot be written to."""
    no_email = customer.kind == CustomerKind.PERSON and not customer.email
    return jsonify(ok=True, id=customer.id, label=customer.display_name, kind=customer.kind.value,
                   contacts=len(customer.contacts),
                   warning=no_email_warning() if no_email else None), 201


def refused(exc: DomainError, typed: QuickCustomer | None = None) -> tuple[Response, int]:
    """The quick form's one translation of a refusal: 409 with the candidates of a suspected
    duplicate, 422 with the messages per field (`messages` for the form as a whole), 403 / 404
    for what the operator may not do or see. `step: "contacts"` when a company typed without
    contacts is refused only for them: the modal then asks for its contacts."""
    errors = exc.errors if isinstance(exc, ValidationFailed) else {FORM: [str(exc)]}
    body: dict = {"ok": False, "errors": {k: v for k, v in errors.items() if k != FORM},
                  "messages": errors.get(FORM, [])}
    if isinstance(exc, DuplicateSuspected):
        body["candidates"] = [c.as_dict() for c in exc.candidates]
        return jsonify(body), 409
    if isinstance(exc, PermissionDenied):
        return jsonify(body), 403
    if isinstance(exc, NotFound):
        return jsonify(body), 404
    if typed is not None and typed.kind == CustomerKind.COMPANY.value and not typed.contacts \
            and set(errors) == {"contacts"}:
        body["step"] = "contacts"
    return jsonify(body), 422


def with_reactivation(session: DbSession, candidates: list[dict]) -> list[dict]:
    """The candidates, an inactive customer among them marked `may_reactivate` (with the version
    the Reactivate is based on) when the operator may edit it — the server checks again."""
    ids = {c["customer_id"] for c in candidates
           if c.get("inactive") and c.get("visible") and c["customer_id"]}
    editable: dict[int, int] = {}
    if ids:
        rows = session.execute(select(Customer.id, Customer.version).where(
            Customer.id.in_(ids), customer_condition(session, actor(), Right.EDIT)))
        editable = {row.id: row.version for row in rows}
    for candidate in candidates:
        version = editable.get(candidate["customer_id"]) if candidate.get("inactive") else None
        candidate["may_reactivate"] = version is not None
        candidate["version"] = version
    return candidates


def contact_rows(form) -> tuple[dict, ...]:
    """The contact rows the modal posted (contacts-N-field, N = 0, 1, 2… as the modal numbers
    them), in their order; rows left empty at the end are no contacts (an empty row in between
    is refused with its messages). Nothing posted is dropped silently: more rows than
    MAX_CONTACT_ROWS, or a gap in the numbering, is refused (ValidationFailed on "contacts")."""
    numbers = {m.group(1) for m in map(ROW_KEY.match, form) if m}
    if len(numbers) > MAX_CONTACT_ROWS:
        raise ValidationFailed({"contacts": [str(TOO_MANY_ROWS)]})
    if numbers != {str(n) for n in range(len(numbers))}:
        raise ValidationFailed({"contacts": [str(ROWS_NOT_NUMBERED)]})
    rows = []
    for index in range(len(numbers)):
        row: dict = {f: (form.get(f"contacts-{index}-{f}") or "").strip() or None for f in CONTACT_FIELDS}
        row["is_main"] = row["is_main"] in TRUE
        rows.append(row)
    while rows and not any(v for k, v in rows[-1].items() if k != "is_main"):
        rows.pop()
    return tuple(rows)


def typed_customer(form) -> QuickCustomer:
    return QuickCustomer(kind=form.get("kind"), name=form.get("name"), email=form.get("email"),
                         phone=form.get("phone"), confirm_duplicate=form.get("confirm_duplicate") in TRUE,
                         contacts=contact_rows(form))


class QuickCreateMixin:
    @expose("/quick/candidates")
    def quick_candidates_view(self):
        """Existing customers and contacts like what is typed, best first, with their kind and why
        they match: a search from the first word typed (partial: the last word may be unfinished).
        The kind only decides how the typed name is read (a company's legal form is dropped); a
        person is listed in Company mode and a company in Person mode, since users often pick
        the wrong one. A record the operator may not view comes only for a typed key, unnamed."""
        args, company_id = request.args, max_length(Customer.registration_number)
        probe = make_probe(kind=args.get("kind"), name=args.get("name", "")[:LIMITS["name"]],
                           email=args.get("email", "")[:LIMITS["email"]],
                           phone=args.get("phone", "")[:TYPED_PHONE],
                           registration_number=args.get("registration_number", "")[:company_id],
                           vat_id=args.get("vat_id", "")[:company_id],
                           phone_region=save_options().phone_region, partial=True)
        limit = 10  # as many as the modal shows: a full list tells the user to keep typing
        candidates = find_duplicates(db.session, actor(), probe, limit=limit)
        return jsonify(candidates=with_reactivation(db.session, [c.as_dict() for c in candidates]),
                       limit=limit)

    @expose("/quick/reactivate", methods=("POST",))
    def quick_reactivate_view(self):
        """Reactivate an inactive match (`customer`, based on `version_seen`): 200 with the
        customer for the select that opened the modal, or the refusal (403 without the edit
        right, 404 for a customer the operator may not view)."""
        with_version = parse_id(request.form.get("version_seen"))
        try:
            with unit_of_work(db.session):
                customer = reactivate_customer(db.session, actor(), save_options(),
                                               request.form.get("customer"), with_version)
        except DomainError as exc:
            return refused(exc)
        return jsonify(ok=True, id=customer.id, label=customer.display_name,
                       status=customer.status.name if customer.status else "",
                       message=_("%(name)s is active again.", name=customer.display_name)), 200

    @expose("/quick/create", methods=("POST",))
    def quick_create_view(self):
        """A customer — a company with its contacts — in one write: 201, 409 or 422."""
        try:
            typed = typed_customer(request.form)
        except ValidationFailed as exc:  # contact rows that cannot be read as the modal sends them
            return refused(exc)
        try:
            with unit_of_work(db.session):
                customer = quick_create_customer(db.session, actor(), save_options(), typed)
        except DomainError as exc:
            return refused(exc, typed)
        return created(customer)
