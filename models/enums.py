"""Every choice of the domain, in one module; values are what the database and API store."""

from enum import StrEnum


class LabeledEnum(StrEnum):
    @property
    def label(self) -> str:
        return self.value.replace("_", " ").title()

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        return [(m.value, m.label) for m in cls]

    def __str__(self) -> str:
        return self.label


class CustomerKind(LabeledEnum):
    COMPANY = "company"
    PERSON = "person"


class EmployeeType(LabeledEnum):
    CONTRACTOR = "contractor"
    FULL_TIME = "full_time"
    PART_TIME = "part_time"
    TEMPORARY = "temporary"

    @property
    def label(self) -> str:
        return self.value.replace("_", "-").title()


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
    def label(self) -> str:
        return {"new": "New", "in_progress": "In progress", "resolved": "Completed",
                "closed": "Accepted", "reopened": "Reopened"}[self.value]


class RequestSource(LabeledEnum):
    """Where a request was raised: at the desk by an operator, on the portal, or by e-mail."""

    DESK = "desk"
    PORTAL = "portal"
    EMAIL = "email"

    @property
    def label(self) -> str:
        return {"desk": "Service desk", "portal": "Portal", "email": "E-mail"}[self.value]


class Via(LabeledEnum):
    """How a comment or status change reached the desk."""

    DESK = "desk"
    PORTAL = "portal"
    EMAIL = "email"
    LINK = "link"  # a signed link in one of our e-mails, without signing in

    @property
    def label(self) -> str:
        return {"desk": "Service desk", "portal": "Portal", "email": "E-mail",
                "link": "Link in an e-mail"}[self.value]


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
    def label(self) -> str:
        return {"request_created": "Request created", "comment_added": "Comment added",
                "held": "Held for an operator", "refused": "Refused",
                "discarded": "Discarded"}[self.value]


class UnknownSenders(LabeledEnum):
    """What requests by e-mail do with a mail from an address that is no customer's or contact's."""

    HOLD = "hold"
    REFUSE = "refuse"

    @property
    def label(self) -> str:
        return {"hold": "Hold for an operator", "refuse": "Refuse"}[self.value]


class MailSecurity(LabeledEnum):
    NONE = "none"
    SSL = "ssl"
    STARTTLS = "starttls"

    @property
    def label(self) -> str:
        return {"none": "None", "ssl": "SSL/TLS", "starttls": "STARTTLS"}[self.value]


class NotificationRoute(LabeledEnum):
    CM_SERVER = "cm_server"
    SMTP = "smtp"

    @property
    def label(self) -> str:
        return {"cm_server": "Through the CM server", "smtp": "Through another SMTP server"}[
            self.value
        ]


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
