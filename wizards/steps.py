"""The six steps of the classic creation wizard: their order and their forms.

Each form only checks what a field alone can tell (a choice, a number); every rule of the
domain is checked by services (wizards.flow), so the wizard cannot accept what the edit form,
the quick form or the API would refuse.
"""

from __future__ import annotations

from enum import StrEnum

from wtforms import (
    BooleanField,
    Form,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import EqualTo, Optional

from models.enums import MailSecurity, NotificationRoute, PhoneType


class Step(StrEnum):
    CUSTOMER = "customer"
    CMONITOR = "cmonitor"
    MAIL = "mail"
    NOTIFICATIONS = "notifications"
    REQUESTS = "requests"
    OPERATORS = "operators"
    SUMMARY = "summary"


ORDER = list(Step)
TITLES = {
    Step.CUSTOMER: "Customer information",
    Step.CMONITOR: "Basic technical settings",
    Step.MAIL: "POP3 and SMTP",
    Step.NOTIFICATIONS: "Notification messages",
    Step.REQUESTS: "Requests by e-mail",
    Step.OPERATORS: "Operators",
    Step.SUMMARY: "Summary",
}
SECURITY = [("", "—")] + MailSecurity.choices()


class CustomerForm(Form):
    kind = RadioField("Kind *", choices=[("company", "Company"), ("person", "Private person")],
                      default="company")
    company_name = StringField("Company name *")
    registration_number = StringField("Company ID (IČO)")
    vat_id = StringField("VAT ID")
    first_name = StringField("First name *")
    middle_name = StringField("Middle")
    last_name = StringField("Last name *")
    email = StringField("E-mail")
    primary_phone = StringField("Phone")
    primary_phone_type = SelectField("Phone type", choices=[("", "—")] + PhoneType.choices(), default="")
    contact_first_name = StringField("Contact person's first name")
    contact_last_name = StringField("Contact person's last name")
    contact_email = StringField("Contact person's e-mail *",
                                description="Becomes the company's first main contact: it receives "
                                            "copies of the communication on all its requests.")
    confirm_duplicate = BooleanField("Create anyway: this is not one of the existing records listed above")


class CMonitorForm(Form):
    cmonitor_password = PasswordField(
        "C-Monitor access password", validators=[Optional()],
        description="Protects the C-Monitor client's settings on the customer's computers, so "
                    "their users cannot change them. May be left empty.")
    cmonitor_password_confirm = PasswordField(
        "Repeat the password", validators=[EqualTo("cmonitor_password", "The two passwords differ.")])


def _server_fields(prefix: str, label: str) -> dict:
    return {
        f"{prefix}_host": StringField(f"{label}: host"),
        f"{prefix}_port": StringField(f"{label}: port"),
        f"{prefix}_security": SelectField(f"{label}: security", choices=SECURITY, default=""),
        f"{prefix}_username": StringField(f"{label}: user name"),
        f"{prefix}_password": PasswordField(f"{label}: password"),
    }


MailForm = type("MailForm", (Form,), {
    "use_builtin_mail_servers": RadioField(
        "Mail servers", choices=[("1", "Use the built-in servers (recommended)"),
                                 ("0", "Use the customer's own POP3 mailbox and SMTP servers")],
        default="1"),
    "pop3_address": StringField("POP3 mailbox address"),
    **_server_fields("pop3", "POP3"),
    **_server_fields("smtp_primary", "Primary SMTP"),
    **_server_fields("smtp_fallback", "Fallback SMTP"),
})

NotificationsForm = type("NotificationsForm", (Form,), {
    "notification_route": RadioField("Send C-Monitor notifications", choices=NotificationRoute.choices(),
                                     default=NotificationRoute.CM_SERVER.value),
    **_server_fields("notification_smtp", "Notification SMTP"),
    "notification_from_address": StringField("From address"),
    "notification_to_address": StringField("Send to address"),
})


class RequestsForm(Form):
    requests_by_email_enabled = BooleanField("Enable entering requests and discussion by e-mail")
    request_intake_address = StringField("Intake address")
    unauthenticated_discussion_enabled = BooleanField(
        "Entering of discussion and accepting completion of requests without authorization",
        description="The creator of a request may then add discussion, accept its completion and "
                    "rate the operator without signing in: anyone who can send mail as that address can.")


class OperatorsForm(Form):
    operators = SelectMultipleField("Responsible operators", coerce=str)


FORMS: dict[Step, type[Form]] = {
    Step.CUSTOMER: CustomerForm,
    Step.CMONITOR: CMonitorForm,
    Step.MAIL: MailForm,
    Step.NOTIFICATIONS: NotificationsForm,
    Step.REQUESTS: RequestsForm,
    Step.OPERATORS: OperatorsForm,
}
SECRET_FIELDS = {"cmonitor_password", "cmonitor_password_confirm", "pop3_password",
                 "smtp_primary_password", "smtp_fallback_password", "notification_smtp_password"}
SERVER_PREFIXES = {Step.MAIL: ("pop3", "smtp_primary", "smtp_fallback"),
                   Step.NOTIFICATIONS: ("notification_smtp",)}


def next_step(step: Step) -> Step:
    return ORDER[min(ORDER.index(step) + 1, len(ORDER) - 1)]


def previous_step(step: Step) -> Step:
    return ORDER[max(ORDER.index(step) - 1, 0)]
