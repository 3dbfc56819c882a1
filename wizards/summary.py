"""The wizard's summary in the users' words: per step, the fields that apply to what was chosen,
labelled and shown as every other page shows them (services.wording), secrets only as "set".

A field that does not apply to the choice made (a person's names on a company, the own servers'
fields with the built-in servers, the notification server with the CM server route) is not
listed: it is not saved either (services.customer_settings ignores it). Empty fields are left out,
yes/no choices are always shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from i18n import _
from services.wording import field_label, shown_value
from wizards.steps import (
    COMPANY_FIELDS,
    FORMS,
    NOTIFICATION_SMTP_FIELDS,
    OWN_MAIL_FIELDS,
    PERSON_FIELDS,
    Step,
)

# The step's fields as which record's fields they are labelled (services.wording's entity types).
ENTITY = {Step.CUSTOMER: "customer"}
SETTINGS = "customersettings"
NEVER_SHOWN = {"cmonitor_password_confirm"}  # its value is the password's; "set" once is enough
FLAGS = {"use_builtin_mail_servers", "requests_by_email_enabled", "unauthenticated_discussion_enabled"}


class Row(NamedTuple):
    label: str
    value: str
    field: str


class Section(NamedTuple):
    step: Step
    rows: list[Row]


def _not_applicable(step: Step, values: Mapping[str, Any]) -> set[str]:
    if step == Step.CUSTOMER:
        return set(PERSON_FIELDS if values.get("kind") != "person" else COMPANY_FIELDS)
    if step == Step.MAIL and _flag(values.get("use_builtin_mail_servers", "1")):
        return set(OWN_MAIL_FIELDS)
    if step == Step.NOTIFICATIONS and values.get("notification_route") != "smtp":
        return set(NOTIFICATION_SMTP_FIELDS)
    if step == Step.REQUESTS and not _flag(values.get("requests_by_email_enabled")):
        return {"request_intake_address", "unauthenticated_discussion_enabled"}
    return set()


def _flag(value: Any) -> bool:
    return value in (True, "1", "y", "on", "True", "true")


def _row(step: Step, field: str, value: Any, secret_set: bool, operator_names: list[str]) -> Row | None:
    entity = ENTITY.get(step, SETTINGS)
    label = field_label(entity, field)
    if field == "mail_ca_certificate":
        return Row(_("CA certificate of the customer's servers"), _("given"), field) if value else None
    if field.endswith("_password"):
        return Row(label, _("set"), field) if secret_set else None
    if field == "operators":
        return Row(label, shown_value(entity, field, operator_names), field)
    if field in FLAGS:
        return Row(label, shown_value(entity, field, _flag(value)), field)
    if field == "confirm_duplicate":
        return Row(label, shown_value(entity, field, True), field) if _flag(value) else None
    if value in (None, "", [], False):
        return None
    return Row(label, shown_value(entity, field, value), field)


def summary_sections(steps: Mapping[Step, Mapping[str, Any]], secrets_set: Mapping[Step, Iterable[str]],
                     operator_names: list[str]) -> list[Section]:
    """The summary's sections, one per step before it, in order."""
    sections = []
    for step, values in steps.items():
        hidden = _not_applicable(step, values) | NEVER_SHOWN
        kept = set(secrets_set.get(step, ()))
        rows = [row for name in FORMS[step]()._fields if name not in hidden
                if (row := _row(step, name, values.get(name), name in kept, operator_names)) is not None]
        sections.append(Section(step, rows))
    return sections
