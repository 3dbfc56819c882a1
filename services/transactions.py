"""The unit of work: the transaction of a write belongs to the door that starts it.

A door (a panel page, an API call, a CLI command, a background job, a test) opens
`unit_of_work(session)` around the commands it calls; services only add, change and `flush` —
they never commit or roll back. The outermost unit commits once on success and rolls back on
any exception, so a refused write leaves nothing behind. Units opened inside another one join
it (re-entrant), or with `savepoint=True` become a SAVEPOINT of their own, so a part (one row
of an import) can fail alone while the rest of the batch stays. A database refusal that slipped
past the services' own checks (a race on a unique column) becomes a message on the field it
concerns, never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask_babel import get_locale
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.orm.exc import StaleDataError

from i18n import _
from services.errors import FORM, N_, DomainError, ValidationFailed

# English (compared by code and tests); refusals show them translated, _(message).
CONFLICT = N_("The record conflicts with data saved at the same time. Check the values and save again.")
STALE = N_("Somebody else changed this record while you were editing it. "
           "Reload it to see their changes, then apply yours again.")
USERNAME_TAKEN = N_("Another portal account already has this user name.")

# Named constraint → (field, message): every unique rule of the schema, in one place.
CONSTRAINT_MESSAGES: dict[str, tuple[str, str]] = {
    "uq_customer_registration_number": ("registration_number", N_("Another customer has this company ID.")),
    "uq_customer_vat_id": ("vat_id", N_("Another customer has this VAT ID.")),
    "uq_customer_directory_guid": ("directory_guid", N_("Another customer has this directory identity.")),
    "uq_portal_account_username": ("username", USERNAME_TAKEN),
    "uq_directory_source_name": ("name", N_("Another directory source has this name.")),
    "uq_operator_email": ("email", N_("Another operator already signs in with this e-mail.")),
}
_DEPTH = "unit_of_work_depth"
COMMITTED = "unit_of_work_committed"  # in session.info: this session committed a unit of work
# What the domain layer takes as its session: a Session, or the request's scoped session proxy
# (Flask-SQLAlchemy's db.session), which forwards every call to the current Session.
DbSession = Session | scoped_session[Any]
log = logging.getLogger(__name__)


def _settle_language() -> None:
    """Decide the reader's language now, while the session works: a refusal is worded in it
    after a failed flush, when loading the signed-in operator's choice would fail (the
    language is kept for the rest of the request)."""
    get_locale()


def constraint_name(exc: IntegrityError) -> str | None:
    """The violated constraint's name where the driver reports it (psycopg does)."""
    return getattr(getattr(exc.orig, "diag", None), "constraint_name", None)


def refusal_of(exc: IntegrityError) -> ValidationFailed:
    field, message = CONSTRAINT_MESSAGES.get(constraint_name(exc) or "", (FORM, CONFLICT))
    return ValidationFailed({field: [_(message)]})


def in_unit_of_work(session: DbSession) -> bool:
    return bool(session.info.get(_DEPTH))


@contextmanager
def unit_of_work(session: DbSession, *, savepoint: bool = False) -> Iterator[DbSession]:
    """The transaction of one door's write (see the module's docstring). Raises what the body
    raised — a database refusal as ValidationFailed — after rolling back what it wrote.
    Runs the `after_commit` callbacks registered inside it once the outermost commit succeeded,
    and the `after_rollback` ones when its part of the work was rolled back."""
    depth = session.info.get(_DEPTH, 0)
    session.info[_DEPTH] = depth + 1
    _settle_language()
    try:
        if depth == 0:
            _hooks(session, _ON_COMMIT).clear()
            _hooks(session, _ON_ROLLBACK).clear()
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                _settle(session, 0, committed=False)
                raise
            # What a door that fails later (the database lost after the commit) must not deny.
            session.info[COMMITTED] = True
            _settle(session, 0, committed=True)
        elif savepoint:
            mark = len(_hooks(session, _ON_COMMIT)), len(_hooks(session, _ON_ROLLBACK))
            hold_transaction(session)
            nested = session.begin_nested()
            try:
                yield session
                session.flush()
                nested.commit()
            except BaseException:
                # A flush that failed inside leaves the savepoint inactive but still open: it
                # must be rolled back too, or the session refuses all further work.
                if nested is nested.session.get_nested_transaction():
                    nested.rollback()
                _settle(session, mark, committed=False)
                raise
        else:
            yield session
    except IntegrityError as exc:
        raise refusal_of(exc) from None
    except StaleDataError:
        raise ValidationFailed({FORM: [_(STALE)]}) from None
    finally:
        session.info[_DEPTH] = depth


def hold_transaction(session: DbSession) -> None:
    """Open the database transaction now. pysqlite begins one only before a data change, never
    before a SAVEPOINT: a first savepoint would become the transaction itself and its release a
    COMMIT — a dry run would write, a failed batch would keep its first rows. PostgreSQL (and a
    transaction already open) needs nothing."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    driver = connection.connection.driver_connection
    if driver is not None and not getattr(driver, "in_transaction", True):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


_ON_COMMIT, _ON_ROLLBACK = "unit_of_work_after_commit", "unit_of_work_after_rollback"


def _hooks(session: DbSession, kind: str) -> list[Callable[[], None]]:
    return session.info.setdefault(kind, [])


def _settle(session: DbSession, mark: int | tuple[int, int], *, committed: bool) -> None:
    """Run the callbacks registered since `mark` that the outcome calls for; drop the others."""
    since_commit, since_rollback = (mark, mark) if isinstance(mark, int) else mark
    on_commit, on_rollback = _hooks(session, _ON_COMMIT), _hooks(session, _ON_ROLLBACK)
    due = on_commit[since_commit:] if committed else on_rollback[since_rollback:]
    del on_commit[since_commit:], on_rollback[since_rollback:]
    for callback in due:
        try:
            callback()
        except Exception:  # the database outcome stands; a failed clean-up is only logged
            log.exception("A callback after the unit of work failed")


def after_commit(session: DbSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the door's unit of work has committed; dropped if it rolls back
    (also when only the savepoint it was registered in rolls back). For effects outside the
    database that must not happen before the change is durable (deleting a replaced file)."""
    _hooks(session, _ON_COMMIT).append(_in_unit(session, callback))


def after_rollback(session: DbSession, callback: Callable[[], None]) -> None:
    """Run `callback` if the unit of work (or the savepoint) it was registered in rolls back;
    dropped on commit. For undoing effects outside the database (deleting a file just written)."""
    _hooks(session, _ON_ROLLBACK).append(_in_unit(session, callback))


def _in_unit(session: DbSession, callback: Callable[[], None]) -> Callable[[], None]:
    if not in_unit_of_work(session):
        raise RuntimeError("after_commit / after_rollback need the door's unit_of_work around the call.")
    return callback


def flush(session: DbSession) -> None:
    """Send the pending changes now (ids, constraints); a database refusal becomes
    ValidationFailed. The door's unit of work commits or rolls back."""
    _settle_language()
    try:
        session.flush()
    except IntegrityError as exc:
        raise refusal_of(exc) from None
    except StaleDataError:
        raise ValidationFailed({FORM: [_(STALE)]}) from None


def delete(session: DbSession, obj) -> None:
    """Delete a row; DomainError when other records still refer to it (nothing is deleted: the
    door's unit of work rolls back)."""
    label = str(obj)  # read now: after a failed flush the row's attributes cannot be loaded
    _settle_language()
    session.delete(obj)
    try:
        session.flush()
    except IntegrityError:
        raise DomainError(_("“%(name)s” is still in use by other records, so it cannot be deleted.",
                            name=label)) from None
