"""Checking each wizard step and finishing: the same domain services as every other path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Customer, Operator, WizardDraft
from models.enums import CustomerKind, PhoneType
from services.access import require_maintainer
from services.contact_info import normalise_email
from services.customer_settings import build_settings
from services.customers import SaveOptions, create_customer, validate_customer
from services.duplicates import DuplicateSuspected, customer_probe, refuse_duplicates
from services.errors import FORM, ValidationFailed
from services.secrets import SecretBox
from wizards.drafts import plain_values
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


def _main_contact(values: dict[str, Any]) -> dict[str, Any]:
    """The company's first main contact from step 1; without a name, the e-mail's local part."""
    email = normalise_email(values.get("contact_email"))
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


def check_step(session: Session, actor: Operator, step: Step, values: dict[str, Any], box: SecretBox,
               options: SaveOptions) -> dict[str, list[str]]:
    """Messages per field for one step (empty when it may be passed). Raises PermissionDenied
    when an operator who is not a maintainer assigns operators."""
    if step == Step.CUSTOMER:
        errors: dict[str, list[str]] = {}
        try:
            validate_customer(session, _customer(values), options)
        except ValidationFailed as exc:
            errors.update(exc.errors)
        if values.get("kind") == "company":
            try:
                if not _main_contact(values)["email"]:
                    errors["contact_email"] = ["A company needs a contact person's e-mail: C-Desk "
                                               "writes to its contacts, not to the company."]
            except ValueError as exc:
                errors["contact_email"] = [str(exc)]
        if not errors:
            try:
                refuse_duplicates(session, actor, duplicate_probe(values, options),
                                  confirmed=_confirmed(values))
            except DuplicateSuspected as exc:
                errors["confirm_duplicate"] = exc.errors[FORM]
        return errors
    if step in SETTINGS_STEPS:
        plain = {k: v for k, v in values.items() if k not in SECRET_FIELDS}
        try:
            build_settings(settings_values({step: plain}), box)
        except ValidationFailed as exc:
            return exc.errors
        return {}
    if step == Step.OPERATORS and values.get("operators"):
        require_maintainer(actor, "assign operators")
    return {}


def finish(session: Session, actor: Operator, draft: WizardDraft, box: SecretBox,
           options: SaveOptions) -> Customer:
    """Create the customer with its main contact, settings and operators in one transaction, in
    which the draft is deleted too. Raises ValidationFailed (nothing written, draft kept) or
    PermissionDenied."""
    steps: dict[Step, dict[str, Any]] = {
        step: plain_values(draft, step, box) for step in Step if step != Step.SUMMARY}
    first = steps[Step.CUSTOMER]
    customer = _customer(first)
    operator_ids = [int(i) for i in steps[Step.OPERATORS].get("operators") or [] if str(i).isdigit()]
    if operator_ids:
        require_maintainer(actor, "assign operators")
    operators = list(session.scalars(select(Operator).where(Operator.id.in_(operator_ids))))
    contacts = [_main_contact(first)] if customer.kind == CustomerKind.COMPANY else []
    try:
        settings = build_settings(settings_values(steps), box)
    except ValidationFailed as exc:
        raise ValidationFailed({FORM: [f"{k}: {' '.join(v)}" for k, v in exc.errors.items()]}) from None
    # Checked again at Save: a matching record may have been created since step 1.
    refuse_duplicates(session, actor, duplicate_probe(first, options), confirmed=_confirmed(first))
    session.delete(draft)
    return create_customer(
        session, actor, options, contacts=contacts, settings=settings, operators=operators,
        kind=customer.kind, primary_phone_type=customer.primary_phone_type,
        **{field: getattr(customer, field) for field in CUSTOMER_FIELDS},
    )
