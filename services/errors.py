"""Domain exceptions; views turn them into messages on the fields the user typed in."""

from __future__ import annotations

FORM = "__form__"  # key of messages that belong to no single field


def N_(message: str) -> str:
    """Mark a message for the catalogs without translating it (gettext_noop; `pybabel extract`
    knows N_): a module constant that code and tests compare keeps its English text, and the
    code that raises it shows `_(CONSTANT)` in the reader's language."""
    return message


class DomainError(Exception):
    """A rule of the domain refused the operation."""


class ValidationFailed(DomainError):
    """Input broke one or more rules. `errors` maps a field name (or FORM) to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


class StaleRecord(ValidationFailed):
    """The record changed since the user loaded it. `current_version` lets the form take the
    user's next save as a deliberate overwrite after they have seen the message."""

    def __init__(self, message: str, current_version: int):
        self.current_version = current_version
        super().__init__({FORM: [message]})


class PermissionDenied(DomainError):
    """The acting operator may not do this."""


class ErrorBag:
    """Collects messages per field while a validation walks its rules."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def check(self, field: str, func, value):
        """Run a checker that returns the normalised value or raises ValueError."""
        try:
            return func(value)
        except ValueError as exc:
            self.add(field, str(exc))
            return value

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)


class NotFound(DomainError):
    """No such record — or one the acting operator may not view: its existence is not revealed."""


class MergedAway(DomainError):
    """The record was merged into another one the actor may view; doors lead to `survivor_id`
    (the panel redirects, the API answers 308)."""

    def __init__(self, survivor_id: int):
        self.survivor_id = survivor_id
        # Never shown to a person: the doors redirect (or answer 308).
        super().__init__(f"This record was merged into customer {survivor_id}.")


class VersionRequired(DomainError):
    """A change was sent without the version it is based on (the API's 428): a blind overwrite
    is not offered."""
