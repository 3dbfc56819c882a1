"""Operators: passwords, sign-in and sign-out, sessions and the first maintainer.

Sessions end on the server: an operator's session cookies carry its `session_generation`
(models.operator), and signing out, a password change (own, by a maintainer or by the CLI's
reset) and deactivation or reactivation raise it, so every cookie issued before is refused."""

from __future__ import annotations

import secrets

from sqlalchemy import func, inspect, select, update
from sqlalchemy.orm.attributes import set_committed_value

from i18n import LANGUAGES, _, is_time_zone
from models import ApiToken, Operator
from models.base import utcnow
from models.enums import OperatorRole
from services.audit import changes_of, record, save_audited
from services.contact_info import clean_text, normalise_email
from services.errors import ErrorBag, NotFound
from services.limits import check_lengths
from services.passwords import current as current_hashing
from services.sign_in_throttle import (
    ThrottlePolicy,
    check_sign_in_allowed,
    forget_failures,
    note_failure,
    note_success,
)
from services.transactions import DbSession, flush
from services.versions import ON_CURRENT, SeenVersion, check_seen_version

MIN_PASSWORD_LENGTH = 10
EMAIL_TAKEN = "Another operator already signs in with this e-mail."


def hash_password(password: str) -> str:
    """An argon2id hash with the running application's profile (services.passwords: its cost
    from the configuration, a bounded number at once per process)."""
    return current_hashing().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches a stored hash of any profile (the hash names its own)."""
    return current_hashing().verify(password_hash, password)


def upgraded_hash(password_hash: str, password: str) -> str | None:
    """After a successful verification: a new hash of `password` when the stored one was made
    with another profile (an older, costlier default), else None. Operators and portal accounts
    alike are moved to the current profile this way, one sign-in at a time."""
    hashing = current_hashing()
    return hashing.hash(password) if hashing.needs_rehash(password_hash) else None


def check_password_strength(password: str | None) -> str:
    if not password or len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(_("Use at least %(count)s characters.", count=MIN_PASSWORD_LENGTH))
    return password


def find_operator(session: DbSession, email: str) -> Operator | None:
    return session.scalar(select(Operator).where(func.lower(Operator.email) == email.strip().lower()))


def authenticate(
    session: DbSession, email: str, password: str, ip_address: str | None = None,
    throttle: ThrottlePolicy | None = None,
) -> Operator | None:
    """The active operator with these credentials, or None. Either way an audit event records
    the attempt (with the typed e-mail when it failed), and a success the sign-in time.
    With a `throttle` (every sign-in door passes one), an address with too many failures on
    this account is refused before the password is even looked at: SignInThrottled."""
    if throttle is not None:
        check_sign_in_allowed(session, email, ip_address, throttle)
    operator = find_operator(session, email or "")
    if operator is None:
        current_hashing().spend_like_a_verify(password or "")
    valid = (operator is not None and verify_password(operator.password_hash, password or "")
             and operator.is_active)
    if not valid:
        record(session, None, "login_failure", operator, entity_type="operator",
               actor_label=(email or "")[:254], ip_address=ip_address)
        if throttle is not None:
            note_failure(session, email, ip_address, throttle)
        flush(session)
        return None
    assert operator is not None
    new_hash = upgraded_hash(operator.password_hash, password)
    if new_hash is not None:
        operator.password_hash = new_hash
    operator.last_login_at = utcnow()
    record(session, operator, "login_success", operator, ip_address=ip_address)
    if throttle is not None:
        note_success(session, email, ip_address, throttle)
    flush(session)
    return operator


def end_sessions(session: DbSession, operator: Operator) -> None:
    """Make every session cookie issued to `operator` so far worthless (the door commits).

    The generation is raised by an UPDATE of its own rather than as a change of the operator:
    it is bookkeeping, not a change the audit trail should list (the event of the password
    change or deactivation that caused it says what happened), and two requests raising it at
    once both count."""
    if operator.id is None:
        return  # a new operator has no sessions yet
    with session.no_autoflush:
        generation = session.execute(
            update(Operator).where(Operator.id == operator.id)
            .values(session_generation=Operator.session_generation + 1)
            .returning(Operator.session_generation)
            .execution_options(synchronize_session=False)).scalar_one()
    set_committed_value(operator, "session_generation", generation)


def revoke_all_tokens(session: DbSession, operator: Operator) -> None:
    """Revoke the API tokens of a deactivated operator, so a reactivation does not bring back
    a script's credential nobody remembers handing out (the owner makes new ones)."""
    session.execute(update(ApiToken).where(ApiToken.operator_id == operator.id, ApiToken.revoked_at.is_(None))
                    .values(revoked_at=utcnow()).execution_options(synchronize_session=False))


def sign_out(session: DbSession, operator: Operator, ip_address: str | None = None) -> None:
    """End every session of `operator` (all browsers, not only the one signing out: the cookie
    of one cannot be told from a copy of it)."""
    end_sessions(session, operator)
    record(session, operator, "logout", operator, ip_address=ip_address)
    flush(session)


def change_own_password(
    session: DbSession, operator: Operator, current: str | None, new: str | None, repeat: str | None,
    ip_address: str | None = None,
) -> None:
    """An operator's own password change: the current password is required, the new one follows
    the rules of every password (`check_password_strength`) and is typed twice. Every session of
    the operator ends; the door signs its own one in again. Audited without any password.
    Raises ValidationFailed with messages on current_password / new_password / repeat_password."""
    bag = ErrorBag()
    if not verify_password(operator.password_hash, current or ""):
        bag.add("current_password", _("This is not your current password."))
    bag.check("new_password", check_password_strength, new)
    if new and new != repeat:
        bag.add("repeat_password", _("The two new passwords differ."))
    bag.raise_if_any()
    assert new is not None
    operator.password_hash = hash_password(new)
    end_sessions(session, operator)
    record(session, operator, "password_change", operator, ip_address=ip_address)
    flush(session)


def set_own_preferences(session: DbSession, operator: Operator, language: str | None,
                        time_zone: str | None) -> None:
    """An operator's own language and time zone (the profile page). `language` is one of
    i18n.LANGUAGES, or empty for the browser's choice; `time_zone` an IANA name (i18n.is_time_zone),
    or empty for the desk's DISPLAY_TIME_ZONE. Audited as a change of the operator when something
    changed; the operator's version stays (nobody else's form of the operator is made stale by it).
    Raises ValidationFailed with messages on language / time_zone."""
    language = (language or "").strip() or None
    time_zone = (time_zone or "").strip() or None
    bag = ErrorBag()
    if language is not None and language not in LANGUAGES:
        bag.add("language", _("Choose one of the languages offered."))
    if time_zone is not None and not is_time_zone(time_zone):
        bag.add("time_zone", _("Choose a time zone from the list, e.g. Europe/Bratislava."))
    bag.raise_if_any()
    changes = {name: [getattr(operator, name), value]
               for name, value in (("language", language), ("time_zone", time_zone))
               if getattr(operator, name) != value}
    if not changes:
        return
    operator.language = language
    operator.time_zone = time_zone
    flush(session)
    record(session, operator, "update", operator, changes)
    flush(session)


def reset_maintainer_password(session: DbSession, email: str, password: str | None) -> Operator:
    """Set a new password for the maintainer who signs in with `email` (the administrator's way
    back in when it is lost): ends their sessions and forgets the failed sign-ins counted on
    the account. Raises NotFound (no such maintainer) or ValidationFailed (a weak password)."""
    operator = find_operator(session, email or "")
    if operator is None or not operator.is_maintainer:
        raise NotFound(f"No maintainer signs in with {(email or '').strip()}.")
    bag = ErrorBag()
    bag.check("password", check_password_strength, password)
    bag.raise_if_any()
    assert password is not None
    operator.password_hash = hash_password(password)
    end_sessions(session, operator)
    forget_failures(session, operator.email)
    record(session, None, "password_reset", operator, actor_label="command line")
    flush(session)
    return operator


def validate_operator(session: DbSession, operator: Operator, password: str | None,
                      actor: Operator | None = None) -> None:
    """Normalise and check an operator before it is saved; raises ValidationFailed.
    `password` is a new password to set (required for a new operator). `actor` editing their own
    account may not set its password here: a hijacked session must not take the account over
    without the current password (the profile page asks for it)."""
    bag = ErrorBag()
    if password and actor is not None and operator.id is not None and actor.id == operator.id:
        bag.add("password", _("Change your own password on your profile page: it asks for the current one."))
    operator.email = bag.check("email", normalise_email, operator.email)
    if not operator.email:
        bag.add("email", _("An e-mail address is required: it is the login name."))
    elif isinstance(operator.email, str):
        operator.email = operator.email.lower()
        with session.no_autoflush:
            clash = session.scalar(
                select(Operator.id).where(Operator.email == operator.email, Operator.id != operator.id)
                if operator.id
                else select(Operator.id).where(Operator.email == operator.email)
            )
        if clash:
            bag.add("email", _("Another operator already signs in with this e-mail."))
    for field in ("first_name", "last_name"):
        value = bag.check(field, clean_text, getattr(operator, field))
        setattr(operator, field, value)
        if not value:
            bag.add(field, _("This field is required."))
    if operator.role is None:
        operator.role = OperatorRole.OPERATOR
    if operator.manager is not None and operator.manager is operator:
        bag.add("manager", _("An operator cannot be their own manager."))
    if operator.id is not None and not (operator.is_maintainer and operator.is_active):
        with session.no_autoflush:
            others = session.scalar(select(func.count()).select_from(Operator).where(
                Operator.role == OperatorRole.MAINTAINER, Operator.is_active.is_(True),
                Operator.id != operator.id))
        if not others:
            bag.add("role", _("This is the last active maintainer: make another operator a "
                              "maintainer first, or nobody can manage the desk."))
    check_lengths(operator, bag)
    if password:
        bag.check("password", check_password_strength, password)
    elif not operator.password_hash:
        bag.add("password", _("A password is required for a new operator."))
    bag.raise_if_any()
    if operator.id is not None and (password or inspect(operator).attrs.is_active.history.has_changes()):
        # A new password or a change of the account's state ends its sessions; a reactivated
        # account starts without any, so no cookie from before the deactivation comes back.
        end_sessions(session, operator)
        if not operator.is_active:
            revoke_all_tokens(session, operator)
    if password:
        operator.password_hash = hash_password(password)


def save_operator(session: DbSession, operator: Operator, actor: Operator | None, password: str | None, *,
                  seen_version: SeenVersion = ON_CURRENT) -> None:
    """Validate and flush a new or edited operator with its audit event (the door commits). An
    edit is based on `seen_version` (services.versions: VersionRequired, StaleRecord) and raises
    the operator's version, so a form opened before it is refused as stale. Raises
    ValidationFailed too."""
    with session.no_autoflush:  # the form's changes stay pending: they are what the event records
        check_seen_version(session, "operator", operator, seen_version)
    validate_operator(session, operator, password, actor)
    if inspect(operator).has_identity and changes_of(operator):
        operator.version += 1
    save_audited(session, actor, operator)


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
