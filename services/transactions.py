"""Committing a write: a database refusal becomes a message for the user, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from services.errors import FORM, DomainError, ValidationFailed

CONFLICT = "The record conflicts with data saved at the same time. Check the values and save again."
STALE = ("Somebody else changed this record while you were editing it. "
         "Reload it to see their changes, then apply yours again.")


def constraint_name(exc: IntegrityError) -> str | None:
    """The violated constraint's name where the driver reports it (psycopg does)."""
    return getattr(getattr(exc.orig, "diag", None), "constraint_name", None)


@contextmanager
def committing(session: Session, messages: dict[str, tuple[str, str]] | None = None) -> Iterator[None]:
    """Run the body (flushes, audit rows) and commit once; on a database refusal roll back and
    raise ValidationFailed. `messages` maps a constraint name to the (field, message) to show,
    for races that slipped past the service's own checks."""
    try:
        yield
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        field, message = (messages or {}).get(constraint_name(exc) or "", (FORM, CONFLICT))
        raise ValidationFailed({field: [message]}) from None
    except StaleDataError:
        session.rollback()
        raise ValidationFailed({FORM: [STALE]}) from None
    except BaseException:
        session.rollback()
        raise


@contextmanager
def checking(session: Session) -> Iterator[None]:
    """Run the checks of a write; a refusal (DomainError) rolls the session back, so nothing the
    caller already changed on its objects is left pending."""
    try:
        yield
    except DomainError:
        session.rollback()
        raise


def commit(session: Session, messages: dict[str, tuple[str, str]] | None = None) -> None:
    """Commit what the session holds (see `committing`)."""
    with committing(session, messages):
        pass


def delete(session: Session, obj) -> None:
    """Delete a row, or roll back and raise DomainError when other records still refer to it."""
    session.delete(obj)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise DomainError(f"“{obj}” is still in use by other records, so it cannot be deleted.") from None
