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
    NEW = "new"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


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
