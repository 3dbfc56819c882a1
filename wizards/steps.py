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
    TextAreaField,
)
from wtforms.validators import EqualTo, Optional

from i18n import _l
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
    Step.CUSTOMER: _l("Customer information"),
    Step.CMONITOR: _l("Basic technical settings"),
    Step.MAIL: _l("POP3 and SMTP"),
    Step.NOTIFICATIONS: _l("Notification messages"),
    Step.REQUESTS: _l("Requests by e-mail"),
    Step.OPERATORS: _l("Operators"),
    Step.SUMMARY: _l("Summary"),
}
SECURITY = [("", "—")] + MailSecurity.choices()


class CustomerForm(Form):
    kind = RadioField(_l("Kind *"), choices=[("company", _l("Company")), ("person", _l("Private person"))],
                      default="company")
    company_name = StringField(_l("Company name *"))
    registration_number = StringField(_l("Company ID (IČO)"))
    vat_id = StringField(_l("VAT ID"))
    first_name = StringField(_l("First name *"))
    middle_name = StringField(_l("Middle"))
    last_name = StringField(_l("Last name *"))
    email = StringField(_l("E-mail"))
    primary_phone = StringField(_l("Phone"))
    primary_phone_type = SelectField(_l("Phone type"), choices=[("", "—")] + PhoneType.choices(), default="")
    contact_first_name = StringField(_l("Contact person's first name"))
    contact_last_name = StringField(_l("Contact person's last name"))
    contact_email = StringField(_l("Contact person's e-mail *"),
                                description=_l("Becomes the company's first main contact: it receives "
                                               "copies of the communication on all its requests."))
    confirm_duplicate = BooleanField(
        _l("Create anyway: this is not one of the existing records listed above"))


class CMonitorForm(Form):
    cmonitor_password = PasswordField(
        _l("C-Monitor access password"), validators=[Optional()],
        description=_l("Protects the C-Monitor client's settings on the customer's computers, so "
                       "their users cannot change them. May be left empty."))
    cmonitor_password_confirm = PasswordField(
        _l("Repeat the password"), validators=[EqualTo("cmonitor_password", _l("The two passwords differ."))])


def _server_fields(prefix: str, label) -> dict:
    return {
        f"{prefix}_host": StringField(_l("%(server)s: host", server=label)),
        f"{prefix}_port": StringField(_l("%(server)s: port", server=label)),
        f"{prefix}_security": SelectField(_l("%(server)s: security", server=label), choices=SECURITY,
                                          default=""),
        f"{prefix}_username": StringField(_l("%(server)s: user name", server=label)),
        f"{prefix}_password": PasswordField(_l("%(server)s: password", server=label)),
    }


MailForm = type("MailForm", (Form,), {
    "use_builtin_mail_servers": RadioField(
        _l("Mail servers"), choices=[("1", _l("Use the built-in servers (recommended)")),
                                     ("0", _l("Use the customer's own POP3 mailbox and SMTP servers"))],
        default="1"),
    "pop3_address": StringField(_l("POP3 mailbox address")),
    **_server_fields("pop3", _l("POP3")),
    **_server_fields("smtp_primary", _l("Primary SMTP")),
    **_server_fields("smtp_fallback", _l("Fallback SMTP")),
    "mail_ca_certificate": TextAreaField(
        _l("CA certificate of the customer's servers (optional)"),
        description=_l("For servers with a self-signed or in-house certificate: paste the certificate of "
                       "the CA that signed them (PEM, from -----BEGIN CERTIFICATE-----), or choose its "
                       "file. Test connection and sending then trust servers it signed.")),
})

NotificationsForm = type("NotificationsForm", (Form,), {
    "notification_route": RadioField(_l("Send C-Monitor notifications"), choices=NotificationRoute.choices(),
                                     default=NotificationRoute.CM_SERVER.value),
    **_server_fields("notification_smtp", _l("Notification SMTP")),
    "notification_from_address": StringField(_l("From address")),
    "notification_to_address": StringField(_l("Send to address")),
})


class RequestsForm(Form):
    requests_by_email_enabled = BooleanField(_l("Enable entering requests and discussion by e-mail"))
    request_intake_address = StringField(_l("Intake address"))
    unauthenticated_discussion_enabled = BooleanField(
        _l("Entering of discussion and accepting completion of requests without authorization"),
        description=_l("The creator of a request may then add discussion, accept its completion and "
                       "rate the operator without signing in: anyone who can send mail as that address can."))


class OperatorsForm(Form):
    operators = SelectMultipleField(_l("Responsible operators"), coerce=str)


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
# What each Test connection button tests, in its label.
TEST_LABELS = {
    "pop3": _l("Test the incoming server (POP3)"),
    "smtp_primary": _l("Test the primary outgoing server (SMTP)"),
    "smtp_fallback": _l("Test the fallback outgoing server (SMTP)"),
    "notification_smtp": _l("Test the notification server (SMTP)"),
}
# The fields that apply only with a choice (hidden in the summary otherwise, and on the page).
PERSON_FIELDS = ("first_name", "middle_name", "last_name")
COMPANY_FIELDS = ("company_name", "registration_number", "vat_id", "contact_first_name",
                  "contact_last_name", "contact_email")
OWN_MAIL_FIELDS = ("pop3_address", "mail_ca_certificate",
                   *(f"{p}_{part}" for p in SERVER_PREFIXES[Step.MAIL]
                     for part in ("host", "port", "security", "username", "password")))
NOTIFICATION_SMTP_FIELDS = ("notification_from_address", "notification_to_address",
                            *(f"notification_smtp_{part}" for part in ("host", "port", "security", "username",
                                                                      "password")))


def next_step(step: Step) -> Step:
    return ORDER[min(ORDER.index(step) + 1, len(ORDER) - 1)]


def previous_step(step: Step) -> Step:
    return ORDER[max(ORDER.index(step) - 1, 0)]
