"""Every choice of the domain, in one module; values are what the database and API store.

A member's `label` is what a person reads, translated lazily (i18n._l: it turns into the reader's
language when it is shown); `english` is the same words untranslated, for what is stored or
logged (audit data, log lines). Nothing stores, compares or serialises a label: the database and
the API keep the value; `str(member)` is the label in the current language."""

from enum import StrEnum

from i18n import _l

_ENGLISH = {  # the label's English words (the msgid); values not here read as their value, titled
    "company": _l("Company"), "person": _l("Person"),
    "contractor": _l("Contractor"), "full_time": _l("Full-Time"), "part_time": _l("Part-Time"),
    "temporary": _l("Temporary"),
    "home": _l("Home"), "mobile": _l("Mobile"), "work": _l("Work"),
    "maintainer": _l("Maintainer"), "operator": _l("Operator"),
    "queued": _l("Queued"), "sent": _l("Sent"), "failed": _l("Failed"),
    "persons": _l("Persons"), "contacts": _l("Contacts"),
    "running": _l("Running"), "succeeded": _l("Succeeded"), "cancelled": _l("Cancelled"),
    "interrupted": _l("Interrupted"),
}


class LabeledEnum(StrEnum):
    @property
    def label(self):
        """The label in the reader's language (a lazy string: str() it where a plain str is needed)."""
        found = _ENGLISH.get(self.value)
        return found if found is not None else self.value.replace("_", " ").title()

    @property
    def english(self) -> str:
        """The label untranslated: for audit data and logs, which are not translated."""
        label = self.label
        args = getattr(label, "_args", None)  # flask_babel.LazyString(gettext, msgid)
        return str(args[0]) if args else str(label)

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        return [(m.value, m.label) for m in cls]

    def __str__(self) -> str:
        return str(self.label)


class CustomerKind(LabeledEnum):
    COMPANY = "company"
    PERSON = "person"


class EmployeeType(LabeledEnum):
    CONTRACTOR = "contractor"
    FULL_TIME = "full_time"
    PART_TIME = "part_time"
    TEMPORARY = "temporary"



class PhoneType(LabeledEnum):
    HOME = "home"
    MOBILE = "mobile"
    WORK = "work"


class OperatorRole(LabeledEnum):
    MAINTAINER = "maintainer"
    OPERATOR = "operator"


class RequestStatus(LabeledEnum):
    """New → In progress → Completed (by the operator) → Accepted (by the customer), or Reopened
    (by the customer, with a comment) and back to work. The stored values of the first four predate
    the discussion: "resolved" is Completed and "closed" Accepted."""

    NEW = "new"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"

    @property
    def label(self):
        return {"new": _l("New"), "in_progress": _l("In progress"), "resolved": _l("Completed"),
                "closed": _l("Accepted"), "reopened": _l("Reopened")}[self.value]


class RequestSource(LabeledEnum):
    """Where a request was raised: at the desk by an operator, on the portal, or by e-mail."""

    DESK = "desk"
    PORTAL = "portal"
    EMAIL = "email"

    @property
    def label(self):
        return {"desk": _l("Service desk"), "portal": _l("Portal"), "email": _l("E-mail")}[self.value]


class Via(LabeledEnum):
    """How a comment or status change reached the desk."""

    DESK = "desk"
    PORTAL = "portal"
    EMAIL = "email"
    LINK = "link"  # a signed link in one of our e-mails, without signing in

    @property
    def label(self):
        return {"desk": _l("Service desk"), "portal": _l("Portal"), "email": _l("E-mail"),
                "link": _l("Link in an e-mail")}[self.value]


class MailState(LabeledEnum):
    """An outgoing message: queued (waiting for the worker or its next attempt), sent, or failed
    after its last attempt."""

    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class IntakeOutcome(LabeledEnum):
    """What became of a mail read from an intake mailbox."""

    REQUEST_CREATED = "request_created"
    COMMENT_ADDED = "comment_added"
    HELD = "held"  # an unknown sender, or a known one without requests by e-mail: an operator decides
    REFUSED = "refused"
    DISCARDED = "discarded"  # a held mail an operator threw away

    @property
    def label(self):
        return {"request_created": _l("Request created"), "comment_added": _l("Comment added"),
                "held": _l("Held for an operator"), "refused": _l("Refused"),
                "discarded": _l("Discarded")}[self.value]


class UnknownSenders(LabeledEnum):
    """What requests by e-mail do with a mail from an address that is no customer's or contact's."""

    HOLD = "hold"
    REFUSE = "refuse"

    @property
    def label(self):
        return {"hold": _l("Hold for an operator"), "refuse": _l("Refuse")}[self.value]


class MailSecurity(LabeledEnum):
    NONE = "none"
    SSL = "ssl"
    STARTTLS = "starttls"

    @property
    def label(self):
        return {"none": _l("None"), "ssl": _l("SSL/TLS"), "starttls": _l("STARTTLS")}[self.value]


class NotificationRoute(LabeledEnum):
    CM_SERVER = "cm_server"
    SMTP = "smtp"

    @property
    def label(self):
        return {"cm_server": _l("Through the CM server"),
                "smtp": _l("Through another SMTP server")}[self.value]


class DirectoryTarget(LabeledEnum):
    PERSONS = "persons"
    CONTACTS = "contacts"


class SyncRunStatus(LabeledEnum):
    """A directory run: queued (waiting for a worker) → running → succeeded / failed / cancelled,
    or interrupted (its worker stopped answering: the lease lapsed; resumable)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def is_active(self) -> bool:
        return self in (SyncRunStatus.QUEUED, SyncRunStatus.RUNNING)
