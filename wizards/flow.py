"""Checking each wizard step and finishing: the same domain command as every other path.

A step is checked against the rules the command applies at Save (field rules, the
company-contact rule), plus — a read — the duplicate candidates that ask for "create anyway"
on step 1. `finish` only gathers the draft into one `create_customer` call: rights, duplicates,
the contact rule and audit are the command's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from models import Contact, Customer, Operator, WizardDraft
from models.enums import CustomerKind, PhoneType
from services.contacts import contact_field_errors
from services.customer_settings import build_settings
from services.customers import (
    SaveOptions,
    check_company_contacts,
    create_customer,
    require_operator_assignment,
    validate_customer,
)
from services.duplicates import Candidate, DuplicateSuspected, customer_probe, find_duplicates
from services.errors import FORM, ValidationFailed
from services.secrets import SecretBox
from services.transactions import DbSession
from wizards.drafts import claim, mark_saved, plain_values
from wizards.steps import SECRET_FIELDS, Step

CUSTOMER_FIELDS = ("company_name", "registration_number", "vat_id", "first_name", "middle_name",
                   "last_name", "email", "primary_phone")
SETTINGS_STEPS = (Step.CMONITOR, Step.MAIL, Step.NOTIFICATIONS, Step.REQUESTS)


def _customer(values: dict[str, Any]) -> Customer:
    kind, phone_type = values.get("kind"), values.get("primary_phone_type")
    return Customer(
        kind=CustomerKind(kind) if kind in ("company", "person") else None,
        primary_phone_type=PhoneType(phone_type) if phone_type in {t.value for t in PhoneType} else None,
        **{field: values.get(field) for field in CUSTOMER_FIELDS},
    )


# The main contact's fields on step 1, by the contact's field names.
CONTACT_FIELDS = {"first_name": "contact_first_name", "last_name": "contact_last_name",
                  "email": "contact_email"}


def _main_contact(values: dict[str, Any]) -> dict[str, Any]:
    """The company's first main contact from step 1; without a name, the e-mail's local part.
    Checked and normalised by the domain (contact_field_errors, the command)."""
    email = (values.get("contact_email") or "").strip() or None
    last = (values.get("contact_last_name") or "").strip() or (email or "").split("@")[0]
    return {"first_name": values.get("contact_first_name"), "last_name": last, "email": email,
            "is_main": True}


def duplicate_probe(values: dict[str, Any], options: SaveOptions):
    """Step 1's values as a duplicate probe (the contact's e-mail when the customer has none)."""
    email = values.get("email") or values.get("contact_email")
    return customer_probe(_customer({**values, "email": email}), options.phone_region)


def _confirmed(values: dict[str, Any]) -> bool:
    return values.get("confirm_duplicate") in (True, "y", "1", "True", "on")


def settings_values(steps: Mapping[Step, dict[str, Any]]) -> dict[str, Any]:
    """Settings steps' form values as services.customer_settings takes them."""
    values: dict[str, Any] = {}
    for step in SETTINGS_STEPS:
        values.update(steps.get(step, {}))
    values.pop("cmonitor_password_confirm", None)
    if "use_builtin_mail_servers" in values:
        values["use_builtin_mail_servers"] = values["use_builtin_mail_servers"] in ("1", True, "True")
    return values


def duplicate_candidates(session: DbSession, actor: Operator, values: dict[str, Any],
                         options: SaveOptions) -> list[Candidate]:
    """Existing records like step 1's values, for the page to list (a read)."""
    return find_duplicates(session, actor, duplicate_probe(values, options))


def _check_customer(session: DbSession, actor: Operator, values: dict[str, Any],
                    options: SaveOptions) -> dict[str, list[str]]:
    """Step 1: the customer's field rules, its main contact's (on the contact_ fields) and the
    company-contact rule, as the command checks them at Save; then, when all pass, strong
    duplicate candidates hold the step until the user confirms "create anyway" (the command
    refuses them again at Save, with what exists by then)."""
    errors: dict[str, list[str]] = {}
    customer = _customer(values)
    try:
        validate_customer(session, customer, options)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if customer.kind == CustomerKind.COMPANY:
        main = _main_contact(values)
        if main["email"]:
            contact = Contact(**main)
            for field, messages in contact_field_errors(contact, options.phone_region).items():
                errors.setdefault(CONTACT_FIELDS.get(field, FORM), []).extend(messages)
            customer.contacts.append(contact)
        if "contact_email" not in errors:
            try:
                check_company_contacts(session, customer, is_new=True)
            except ValidationFailed as exc:
                errors["contact_email"] = [m for ms in exc.errors.values() for m in ms]
    if not errors and not _confirmed(values):
        strong = [c for c in duplicate_candidates(session, actor, values, options) if c.strong]
        if strong:
            errors.update(DuplicateSuspected(strong).errors)
    return errors


def check_step(session: DbSession, actor: Operator, step: Step, values: dict[str, Any], box: SecretBox,
               options: SaveOptions) -> dict[str, list[str]]:
    """Messages per field for one step (empty when it may be passed). Raises PermissionDenied
    when an operator who is not a maintainer assigns operators."""
    if step == Step.CUSTOMER:
        return _check_customer(session, actor, values, options)
    if step in SETTINGS_STEPS:
        plain = {k: v for k, v in values.items() if k not in SECRET_FIELDS}
        try:
            build_settings(settings_values({step: plain}), box)
        except ValidationFailed as exc:
            return exc.errors
        return {}
    if step == Step.OPERATORS and values.get("operators"):
        require_operator_assignment(actor)
    return {}


def finish(session: DbSession, actor: Operator, draft: WizardDraft, box: SecretBox,
           options: SaveOptions) -> Customer | None:
    """Create the customer with its main contact, settings and operators through the one
    command, in the door's unit of work, once per draft: the draft is claimed first
    (wizards.drafts.claim, a conditional UPDATE), and None is returned — nothing created —
    when another Save of the same draft has it. Raises ValidationFailed (DuplicateSuspected
    when a match appeared since step 1) or PermissionDenied: the unit of work then rolls back,
    the claim with it, and the draft stays."""
    if not claim(session, draft):
        return None
    steps: dict[Step, dict[str, Any]] = {
        step: plain_values(draft, step, box) for step in Step if step != Step.SUMMARY}
    first = steps[Step.CUSTOMER]
    customer = _customer(first)
    operator_ids = [int(i) for i in steps[Step.OPERATORS].get("operators") or [] if str(i).isdigit()]
    operators = list(session.scalars(select(Operator).where(Operator.id.in_(operator_ids))))
    contacts = [_main_contact(first)] if customer.kind == CustomerKind.COMPANY else []
    try:
        settings = build_settings(settings_values(steps), box)
    except ValidationFailed as exc:  # the summary has no settings fields: say which ones
        raise ValidationFailed({FORM: [f"{k}: {' '.join(v)}" for k, v in exc.errors.items()]}) from None
    created = create_customer(
        session, actor, options, contacts=contacts, settings=settings, operators=operators,
        confirm_duplicate=_confirmed(first), kind=customer.kind,
        primary_phone_type=customer.primary_phone_type,
        **{field: getattr(customer, field) for field in CUSTOMER_FIELDS},
    )
    mark_saved(session, draft, created.id)
    return created
