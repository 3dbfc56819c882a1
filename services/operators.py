"""Operators: passwords, sign-in and the first maintainer."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select

from models import Operator
from models.base import utcnow
from models.enums import OperatorRole
from services.audit import record
from services.contact_info import clean_text, normalise_email
from services.errors import ErrorBag
from services.limits import check_lengths
from services.transactions import DbSession, flush

MIN_PASSWORD_LENGTH = 10
EMAIL_TAKEN = "Another operator already signs in with this e-mail."
_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so a wrong e-mail costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_password_strength(password: str | None) -> str:
    if not password or len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"Use at least {MIN_PASSWORD_LENGTH} characters.")
    return password


def find_operator(session: DbSession, email: str) -> Operator | None:
    return session.scalar(select(Operator).where(func.lower(Operator.email) == email.strip().lower()))


def authenticate(
    session: DbSession, email: str, password: str, ip_address: str | None = None
) -> Operator | None:
    """The active operator with these credentials, or None. Either way an audit event records
    the attempt (with the typed e-mail when it failed), and a success the sign-in time."""
    operator = find_operator(session, email or "")
    if operator is None:
        verify_password(_DUMMY_HASH, password or "")
    valid = (operator is not None and verify_password(operator.password_hash, password or "")
             and operator.is_active)
    if not valid:
        record(session, None, "login_failure", operator, entity_type="operator",
               actor_label=(email or "")[:254], ip_address=ip_address)
        flush(session)
        return None
    assert operator is not None
    if _hasher.check_needs_rehash(operator.password_hash):
        operator.password_hash = hash_password(password)
    operator.last_login_at = utcnow()
    record(session, operator, "login_success", operator, ip_address=ip_address)
    flush(session)
    return operator


def validate_operator(session: DbSession, operator: Operator, password: str | None) -> None:
    """Normalise and check an operator before it is saved; raises ValidationFailed.
    `password` is a new password to set (required for a new operator)."""
    bag = ErrorBag()
    operator.email = bag.check("email", normalise_email, operator.email)
    if not operator.email:
        bag.add("email", "An e-mail address is required: it is the login name.")
    elif isinstance(operator.email, str):
        operator.email = operator.email.lower()
        with session.no_autoflush:
            clash = session.scalar(
                select(Operator.id).where(Operator.email == operator.email, Operator.id != operator.id)
                if operator.id
                else select(Operator.id).where(Operator.email == operator.email)
            )
        if clash:
            bag.add("email", EMAIL_TAKEN)
    for field in ("first_name", "last_name"):
        value = bag.check(field, clean_text, getattr(operator, field))
        setattr(operator, field, value)
        if not value:
            bag.add(field, "This field is required.")
    if operator.role is None:
        operator.role = OperatorRole.OPERATOR
    if operator.manager is not None and operator.manager is operator:
        bag.add("manager", "An operator cannot be their own manager.")
    if operator.id is not None and not (operator.is_maintainer and operator.is_active):
        with session.no_autoflush:
            others = session.scalar(select(func.count()).select_from(Operator).where(
                Operator.role == OperatorRole.MAINTAINER, Operator.is_active.is_(True),
                Operator.id != operator.id))
        if not others:
            bag.add("role", "This is the last active maintainer: make another operator a "
                            "maintainer first, or nobody can manage the desk.")
    check_lengths(operator, bag)
    if password:
        bag.check("password", check_password_strength, password)
    elif not operator.password_hash:
        bag.add("password", "A password is required for a new operator.")
    bag.raise_if_any()
    if password:
        operator.password_hash = hash_password(password)


def create_operator(
    session: DbSession,
    *,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    role: OperatorRole = OperatorRole.OPERATOR,
) -> Operator:
    """Create an operator (flushed: the door's unit of work commits); raises ValidationFailed."""
    operator = Operator(email=email, first_name=first_name, last_name=last_name, role=role)
    validate_operator(session, operator, password)
    session.add(operator)
    flush(session)
    return operator


def ensure_maintainer(
    session: DbSession, email: str | None = None, password: str | None = None
) -> tuple[Operator, str | None]:
    """Make sure a first maintainer exists.

    With `email`, that operator is created as a maintainer unless it exists (an existing one is
    kept as it is: its password is not reset). Without it, any existing maintainer is enough,
    otherwise admin@example.com is created. Returns the maintainer and the generated password
    when one was generated (to be shown once), else None.
    """
    if email:
        existing = find_operator(session, email)
        if existing is not None:
            return existing, None
    else:
        existing = session.scalar(
            select(Operator).where(Operator.role == OperatorRole.MAINTAINER).order_by(Operator.id)
        )
        if existing is not None:
            return existing, None
        email = "admin@example.com"
    generated = None if password else secrets.token_urlsafe(12)
    operator = create_operator(
        session,
        email=email,
        password=password or generated or "",
        first_name="First",
        last_name="Maintainer",
        role=OperatorRole.MAINTAINER,
    )
    return operator, generated
