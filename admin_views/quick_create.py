"""The quick form's JSON doors on the Customers view: live duplicate candidates, create, and a
company's contacts. The modal (templates/admin/_quick_create.html, static/quick_create.js) calls
them from the Customers list and from a request's Customer field. Thin: every rule is in
services.quick_create and services.duplicates. POSTs carry the app-wide CSRF token."""

from __future__ import annotations

from flask import abort, jsonify, request
from flask_admin import expose

from admin_views.base import actor, save_options
from extensions import db
from models.enums import CustomerKind
from services.duplicates import DuplicateSuspected, find_duplicates, make_probe
from services.errors import FORM, PermissionDenied, ValidationFailed
from services.quick_create import NO_EMAIL_WARNING, QuickCustomer, add_contacts, quick_create_customer

MAX_CONTACT_ROWS = 50
CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "is_main")


def _refusal(exc: ValidationFailed, status: int = 422):
    errors = {k: v for k, v in exc.errors.items() if k != FORM}
    return jsonify(ok=False, errors=errors, messages=exc.errors.get(FORM, [])), status


def _contact_rows(form) -> list[dict]:
    rows = []
    for index in range(MAX_CONTACT_ROWS):
        row = {f: form.get(f"contacts-{index}-{f}") for f in CONTACT_FIELDS}
        if not any(row.values()):
            break
        row["is_main"] = row["is_main"] in ("1", "y", "on", "true")
        rows.append(row)
    return rows


class QuickCreateMixin:
    @expose("/quick/candidates")
    def quick_candidates_view(self):
        """Existing customers and contacts like what is typed, with why they match."""
        args = request.args
        probe = make_probe(kind=args.get("kind"), name=args.get("name", "")[:200],
                           email=args.get("email", "")[:254], phone=args.get("phone", "")[:40],
                           phone_region=save_options().phone_region)
        candidates = find_duplicates(db.session, actor(), probe)
        return jsonify(candidates=[c.as_dict() for c in candidates])

    @expose("/quick/create", methods=("POST",))
    def quick_create_view(self):
        form = request.form
        typed = QuickCustomer(kind=form.get("kind"), name=form.get("name"), email=form.get("email"),
                              phone=form.get("phone"),
                              confirm_duplicate=form.get("confirm_duplicate") in ("1", "y", "on", "true"))
        try:
            customer = quick_create_customer(db.session, actor(), save_options(), typed)
        except PermissionDenied:
            abort(403)
        except DuplicateSuspected as exc:
            body, _ = _refusal(exc)
            payload = body.get_json()
            payload["candidates"] = [c.as_dict() for c in exc.candidates]
            return jsonify(payload), 409
        except ValidationFailed as exc:
            return _refusal(exc)
        no_email = customer.kind == CustomerKind.PERSON and not customer.email
        return jsonify(ok=True, id=customer.id, label=customer.display_name, kind=customer.kind.value,
                       warning=NO_EMAIL_WARNING if no_email else None), 201

    @expose("/quick/<int:customer_id>/contacts", methods=("POST",))
    def quick_contacts_view(self, customer_id: int):
        customer = self.get_one(customer_id)  # 404 / 403 by the access policy
        try:
            added = add_contacts(db.session, actor(), save_options(), customer, _contact_rows(request.form))
        except PermissionDenied:
            abort(403)
        except ValidationFailed as exc:
            db.session.rollback()
            return _refusal(exc)
        return jsonify(ok=True, added=[{"id": c.id, "label": c.display_name, "role": c.role_label}
                                       for c in added])
