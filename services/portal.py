"""Portal access: the credentials a customer — or one of a company's contacts — uses on the
customer portal, and the portal's sign-in and own password change.

The customer and contact records keep no credentials; a PortalAccount row holds the username and
an argon2 hash only. A customer has at most one account of its own, each contact at most one.
Operators with the edit right on the customer create, reset, disable and enable them; every
change and every sign-in (successful, refused with its reason, or slowed down) is recorded on the
customer's history — never a password."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm.attributes import set_committed_value

from i18n import _, _l
from models import Contact, Customer, Operator, PortalAccount, SecurityGroup
from models.base import utcnow
from services.access import Right, require
from services.audit import record
from services.contact_info import CONTROL_CHARACTERS, clean_text, control_message
from services.errors import DomainError, ErrorBag, ValidationFailed
from services.key_locks import lock_keys
from services.limits import max_length, too_long
from services.operators import check_password_strength, hash_password, upgraded_hash, verify_password
from services.passwords import current as current_hashing
from services.sign_in_throttle import (
    SignInThrottled,
    ThrottlePolicy,
    check_sign_in_allowed,
    forget_failures,
    note_failure,
    note_success,
)
from services.transactions import USERNAME_TAKEN, DbSession, flush
from services.versions import ON_CURRENT, SeenVersion, check_seen_version

USERNAME_LIMIT = max_length(PortalAccount.username) or 120
PASSWORD_LIMIT = 1024  # longer input is no password anybody types; hashing it would only cost time
WRONG_CREDENTIALS = _l("Wrong user name or password.")
CANNOT_SIGN_IN = _l("This portal account cannot sign in at the moment. Please ask your service desk.")


# --- whose account ----------------------------------------------------------------------------

def portal_account_of(session: DbSession, customer: Customer,
                      contact: Contact | None = None) -> PortalAccount | None:
    """The customer's own account, or with `contact` that contact's."""
    if contact is not None:
        return session.scalar(select(PortalAccount).where(PortalAccount.contact_id == contact.id))
    return session.scalar(select(PortalAccount).where(PortalAccount.customer_id == customer.id))


def customer_of(account: PortalAccount) -> Customer:
    """The customer an account belongs to (its contact's company for a contact's account)."""
    return account.contact.customer if account.contact is not None else account.customer


def person_name(account: PortalAccount) -> str:
    person = account.contact if account.contact is not None else account.customer
    return person.display_name


def throttle_key(username: str | None) -> str:
    """The account a failed portal sign-in is counted on (services.sign_in_throttle): its own
    name space, so portal and operator counts never mix even where a user name is an e-mail."""
    return "portal:" + (username or "").strip().lower()


def sign_in_refusal(account: PortalAccount) -> str | None:
    """Why the account may not sign in now (words for the audit trail), or None. Asked at the
    sign-in and again on every portal request (services.portal_sessions)."""
    if not account.is_active:
        return "account disabled"
    if account.contact is not None and not account.contact.is_active:
        return "contact inactive"
    customer = customer_of(account)
    if customer.merged_into_id is not None:
        return "customer merged"
    if customer.status is not None and not customer.status.is_active:
        return "customer inactive"
    return None


def _audit(session: DbSession, actor: Operator | None, customer: Customer, what: str,
           contact: Contact | None = None, **changes) -> None:
    # Recorded on the customer, so its History shows who changed its portal access and when.
    about = {"contact": [None, contact.display_name]} if contact is not None else {}
    record(session, actor, "portal_credentials", customer,
           {"portal": [None, what], **about, **{k: list(v) for k, v in changes.items()}})


# --- operators give, reset and take away access ------------------------------------------------

def create_portal_account(
    session: DbSession, customer: Customer, actor: Operator | None, *, username: str,
    password: str, security_group: SecurityGroup | None, contact: Contact | None = None,
) -> PortalAccount:
    """Give the customer (or, with `contact`, one of its contacts) portal credentials with a
    first password the operator types (and hands over; nothing shows it again), to be changed at
    the first sign-in. User names are unique without regard to case; two creates of one name at
    once make one account (the name's lock is taken before the check). Raises ValidationFailed or
    PermissionDenied."""
    bag = ErrorBag()
    if actor is not None:
        require(session, actor, customer.id, Right.EDIT)
    if contact is not None and contact.customer_id != customer.id:
        raise DomainError(_("This contact belongs to another customer."))
    name = bag.check("username", clean_text, username)
    readable = "username" not in bag.errors  # no control characters: the database may compare it
    owner = f"contact:{contact.id}" if contact is not None else f"customer:{customer.id}"
    lock_keys(session, [("portal-owner", owner)]
              + ([("portal-username", name.lower())] if readable and name else []))
    if portal_account_of(session, customer, contact) is not None:
        bag.add("username", _("This contact has portal access already: reset or disable it instead.")
                if contact is not None
                else _("This customer has portal access already: reset or disable it instead."))
    if readable and not name:
        bag.add("username", _("Choose a user name."))
    elif readable and len(name) > USERNAME_LIMIT:
        bag.add("username", too_long(USERNAME_LIMIT, len(name)))
    elif readable and session.scalar(select(PortalAccount.id)
                                     .where(folded(session, PortalAccount.username) == name.lower())):
        bag.add("username", _(USERNAME_TAKEN))
    bag.check("password", check_password_strength, password)
    bag.raise_if_any()
    account = PortalAccount(customer_id=None if contact is not None else customer.id,
                            contact_id=contact.id if contact is not None else None,
                            username=name, password_hash=hash_password(password),
                            security_group=security_group, must_change_password=True, is_active=True)
    session.add(account)
    flush(session)
    _audit(session, actor, customer, "created", contact, username=(None, name),
           security_group=(None, str(security_group) if security_group else None))
    flush(session)
    return account


def _account_to_change(session: DbSession, customer: Customer, actor: Operator | None,
                       seen_version: SeenVersion, contact: Contact | None) -> PortalAccount:
    """The customer's (or contact's) portal account, for an actor with the edit right on the
    customer, as of the version the page showed (services.versions: VersionRequired, StaleRecord)."""
    if actor is not None:
        require(session, actor, customer.id, Right.EDIT)
    if contact is not None and contact.customer_id != customer.id:
        raise DomainError(_("This contact belongs to another customer."))
    account = portal_account_of(session, customer, contact)
    if account is None:
        raise DomainError(_("This contact has no portal access yet.") if contact is not None
                          else _("This customer has no portal access yet."))
    check_seen_version(session, "portalaccount", account, seen_version)
    return account


def reset_portal_password(
    session: DbSession, customer: Customer, actor: Operator | None, password: str, *,
    seen_version: SeenVersion = ON_CURRENT, contact: Contact | None = None,
) -> None:
    """Set a temporary password (typed by the operator) the account must change at the next
    sign-in, based on the account's `seen_version`. Every portal session of the account ends
    (services.portal_sessions) and its failed sign-ins are forgotten. Raises ValidationFailed,
    StaleRecord, VersionRequired, PermissionDenied, or DomainError without portal access."""
    account = _account_to_change(session, customer, actor, seen_version, contact)
    bag = ErrorBag()
    bag.check("password", check_password_strength, password)
    bag.raise_if_any()
    account.password_hash = hash_password(password)
    account.must_change_password = True
    account.reset_token_hash = None
    forget_failures(session, throttle_key(account.username))
    _audit(session, actor, customer, "password reset", contact, password=("changed", "changed"))
    flush(session)


def set_portal_access_enabled(
    session: DbSession, customer: Customer, actor: Operator | None, enabled: bool, *,
    seen_version: SeenVersion = ON_CURRENT, contact: Contact | None = None,
) -> None:
    """Disable (or enable again) the portal sign-in of the customer or contact without deleting
    the account, based on the account's `seen_version` (StaleRecord, VersionRequired as for a
    reset). A disabled account's open sessions end with their next request."""
    account = _account_to_change(session, customer, actor, seen_version, contact)
    before = account.is_active
    account.is_active = enabled
    _audit(session, actor, customer, "enabled" if enabled else "disabled", contact,
           is_active=(before, enabled))
    flush(session)


# --- the portal's sign-in -----------------------------------------------------------------------

def check_portal_password(session: DbSession, account: PortalAccount, password: str) -> bool:
    """Whether `password` is the account's (the portal's sign-in asks this). A hash of an older
    profile is replaced by one of the current profile on success (services.passwords) — by an
    UPDATE of its own, as bookkeeping: it does not raise the account's version, so a page open on
    the account does not turn stale because its customer signed in."""
    if not verify_password(account.password_hash, password or ""):
        return False
    new_hash = upgraded_hash(account.password_hash, password)
    if new_hash is not None:
        session.execute(update(PortalAccount).where(PortalAccount.id == account.id)
                        .values(password_hash=new_hash).execution_options(synchronize_session=False))
        set_committed_value(account, "password_hash", new_hash)
    return True


@dataclass(frozen=True)
class PortalSignIn:
    """What a sign-in came to: the account, or the message for the sign-in page — with
    `wait_seconds` when the attempt was not even tried (too many failures: the door answers 429)."""

    account: PortalAccount | None = None
    message: str | None = None
    wait_seconds: int | None = None


def folded(session: DbSession, column):
    """`column` in lower case as Python folds it ("Štefan" → "štefan"): PostgreSQL's lower(), and
    on SQLite the py_lower() database_setup gives every connection (SQLite's folds ASCII only)."""
    if session.get_bind().dialect.name == "sqlite":
        return func.py_lower(column)
    return func.lower(column)


def find_portal_account(session: DbSession, username: str) -> PortalAccount | None:
    name = (username or "").strip()
    if not name or len(name) > USERNAME_LIMIT or CONTROL_CHARACTERS.intersection(name):
        return None
    same_name = folded(session, PortalAccount.username) == name.lower()
    return session.scalar(select(PortalAccount).where(same_name))


def _address(address: str | None) -> str | None:
    return address[:45] if address else None


def _audit_sign_in(session: DbSession, account: PortalAccount | None, typed: str, action: str,
                   address: str | None, reason: str | None = None) -> None:
    """An event on the account's customer (an unknown name has none: it is recorded about a
    portal account with the name as typed), its actor the portal user — never the password."""
    name = account.username if account is not None else typed.strip()[:120]
    changes: dict[str, list] = {"user name": [None, name]}
    if account is not None and account.contact is not None:
        changes["contact"] = [None, account.contact.display_name]
    if reason:
        changes["reason"] = [None, reason]
    entity = customer_of(account) if account is not None else None
    event = record(session, None, action, entity, changes,
                   entity_type="customer" if entity is not None else "portalaccount",
                   actor_label=f"{name} (portal)"[:254], ip_address=_address(address))
    # A sign-in changes nothing about the customer: it is not listed among the changes that
    # made a form on the customer stale (services.audit.changes_since).
    event.entity_version = None


def sign_in(session: DbSession, username: str | None, password: str | None, address: str | None,
            policy: ThrottlePolicy) -> PortalSignIn:
    """Check a portal sign-in and record it, whatever its outcome (the door commits either way).

    Failures are counted by services.sign_in_throttle on the portal's own account key
    (`throttle_key`), per address too; an address with too many of them waits, with any
    password. The answer does not tell whether a user name exists: an unknown one costs the
    time of a password check and gets the same words as a wrong password. Only the right
    password learns that the account is disabled (or its customer inactive or merged away)."""
    typed = username or ""
    if CONTROL_CHARACTERS.intersection(typed):
        raise ValidationFailed({"username": [control_message()]})
    key = throttle_key(typed)
    account = find_portal_account(session, typed)
    try:
        check_sign_in_allowed(session, key, address, policy)
    except SignInThrottled as exc:
        _audit_sign_in(session, account, typed, "portal_sign_in_throttled", address, exc.reason.value)
        flush(session)
        return PortalSignIn(message=str(exc), wait_seconds=exc.seconds)
    reason = None
    if account is None:
        current_hashing().spend_like_a_verify((password or "")[:PASSWORD_LIMIT])
        reason = "unknown user name"
    elif len(password or "") > PASSWORD_LIMIT or not check_portal_password(session, account, password or ""):
        reason = "wrong password"
    else:
        reason = sign_in_refusal(account)
    if reason is not None:
        _audit_sign_in(session, account, typed, "portal_sign_in_failure", address, reason)
        note_failure(session, key, address, policy)
        flush(session)
        known = reason not in ("unknown user name", "wrong password")
        return PortalSignIn(message=str(CANNOT_SIGN_IN if known else WRONG_CREDENTIALS))
    assert account is not None
    # Bookkeeping by an UPDATE of its own, like the rehash: no new version of the account.
    session.execute(update(PortalAccount).where(PortalAccount.id == account.id)
                    .values(last_login_at=utcnow()).execution_options(synchronize_session=False))
    note_success(session, key, address, policy)
    _audit_sign_in(session, account, typed, "portal_sign_in", address)
    flush(session)
    return PortalSignIn(account=account)


def note_sign_out(session: DbSession, account: PortalAccount, address: str | None) -> None:
    """Sign out: every session of the account ends (a copy of the cookie taken before opens
    nothing after it), by a new session epoch — bookkeeping, by an UPDATE of its own that does not
    raise the account's version."""
    session.execute(update(PortalAccount).where(PortalAccount.id == account.id)
                    .values(session_epoch=PortalAccount.session_epoch + 1)
                    .execution_options(synchronize_session=False))
    _audit_sign_in(session, account, account.username, "portal_sign_out", address)
    flush(session)


WRONG_CURRENT = _l("This is not your current password.")


def note_wrong_current_password(session: DbSession, account: PortalAccount, address: str | None,
                                policy: ThrottlePolicy) -> None:
    """Count a wrong current password on the password form like a failed sign-in (the door calls
    it in a unit of work of its own: the form's refusal rolls its own one back)."""
    note_failure(session, throttle_key(account.username), address, policy)
    flush(session)


def change_own_portal_password(session: DbSession, account: PortalAccount, current: str | None,
                               new: str | None, repeat: str | None, address: str | None = None,
                               policy: ThrottlePolicy | None = None) -> None:
    """The portal user's own password change (forced after the first sign-in and after a reset):
    the current password is required, the new one follows the rules of every password, differs
    from the current one and is typed twice. Every other session of the account ends (its
    fingerprint changes); the door signs its own one in again. Raises ValidationFailed with
    messages on current_password / new_password / repeat_password."""
    bag = ErrorBag()
    if policy is not None:  # guessing the current password is slowed like the sign-in (SignInThrottled)
        check_sign_in_allowed(session, throttle_key(account.username), address, policy)
    if len(current or "") > PASSWORD_LIMIT or not verify_password(account.password_hash, current or ""):
        bag.add("current_password", str(WRONG_CURRENT))
    bag.check("new_password", check_password_strength, new)
    if new and len(new) > PASSWORD_LIMIT:
        bag.add("new_password", too_long(PASSWORD_LIMIT, len(new)))
    elif new and new == current and "current_password" not in bag.errors:
        bag.add("new_password", _("Choose a new password, not the one you have now."))
    if new and new != repeat:
        bag.add("repeat_password", _("The two new passwords differ."))
    bag.raise_if_any()
    assert new is not None
    account.password_hash = hash_password(new)
    account.must_change_password = False
    account.reset_token_hash = None
    flush(session)
    record(session, None, "portal_password_change", customer_of(account),
           {"user name": [None, account.username], "password": ["changed", "changed"]},
           actor_label=f"{account.username} (portal)"[:254], ip_address=_address(address))
    flush(session)
