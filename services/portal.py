"""Portal access: the credentials a customer uses on the customer portal. The customer record
keeps no credentials; the PortalAccount row holds the username and an argon2 hash only."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm.attributes import set_committed_value

from models import Customer, Operator, PortalAccount, SecurityGroup
from services.access import Right, require
from services.audit import record
from services.contact_info import clean_text
from services.errors import DomainError, ErrorBag
from services.limits import max_length, too_long
from services.operators import check_password_strength, hash_password, upgraded_hash, verify_password
from services.transactions import USERNAME_TAKEN, DbSession, flush
from services.versions import ON_CURRENT, SeenVersion, check_seen_version

USERNAME_LIMIT = max_length(PortalAccount.username) or 120


def portal_account_of(session: DbSession, customer: Customer) -> PortalAccount | None:
    return session.scalar(select(PortalAccount).where(PortalAccount.customer_id == customer.id))


def _audit(session: DbSession, actor: Operator | None, customer: Customer, what: str, **changes) -> None:
    # Recorded on the customer, so its History shows who changed its portal access and when.
    record(session, actor, "portal_credentials", customer,
           {"portal": [None, what], **{k: list(v) for k, v in changes.items()}})


def create_portal_account(
    session: DbSession, customer: Customer, actor: Operator | None, *, username: str,
    password: str, security_group: SecurityGroup | None,
) -> PortalAccount:
    """Give the customer portal credentials with a first password the operator types (and hands
    over; nothing shows it again), to be changed at the first sign-in. Raises ValidationFailed or
    PermissionDenied."""
    bag = ErrorBag()
    if actor is not None:
        require(session, actor, customer.id, Right.EDIT)
    if portal_account_of(session, customer) is not None:
        bag.add("username", "This customer has portal access already: reset or disable it instead.")
    name = bag.check("username", clean_text, username)
    if not name:
        bag.add("username", "Choose a user name.")
    elif len(name) > USERNAME_LIMIT:
        bag.add("username", too_long(USERNAME_LIMIT, len(name)))
    elif session.scalar(select(PortalAccount.id)
                        .where(func.lower(PortalAccount.username) == name.lower())):
        bag.add("username", USERNAME_TAKEN)
    bag.check("password", check_password_strength, password)
    bag.raise_if_any()
    account = PortalAccount(customer_id=customer.id, username=name, password_hash=hash_password(password),
                            security_group=security_group, must_change_password=True, is_active=True)
    session.add(account)
    flush(session)
    _audit(session, actor, customer, "created", username=(None, name),
           security_group=(None, str(security_group) if security_group else None))
    flush(session)
    return account


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


def _account_to_change(session: DbSession, customer: Customer, actor: Operator | None,
                       seen_version: SeenVersion) -> PortalAccount:
    """The customer's portal account, for an actor with the edit right on the customer, as of the
    version the page showed (services.versions: VersionRequired, StaleRecord)."""
    if actor is not None:
        require(session, actor, customer.id, Right.EDIT)
    account = portal_account_of(session, customer)
    if account is None:
        raise DomainError("This customer has no portal access yet.")
    check_seen_version(session, "portalaccount", account, seen_version)
    return account


def reset_portal_password(
    session: DbSession, customer: Customer, actor: Operator | None, password: str, *,
    seen_version: SeenVersion = ON_CURRENT,
) -> None:
    """Set a temporary password (typed by the operator) the customer must change at the next
    sign-in, based on the account's `seen_version`. Raises ValidationFailed, StaleRecord,
    VersionRequired, PermissionDenied, or DomainError without portal access."""
    account = _account_to_change(session, customer, actor, seen_version)
    bag = ErrorBag()
    bag.check("password", check_password_strength, password)
    bag.raise_if_any()
    account.password_hash = hash_password(password)
    account.must_change_password = True
    account.reset_token_hash = None
    _audit(session, actor, customer, "password reset", password=("changed", "changed"))
    flush(session)


def set_portal_access_enabled(
    session: DbSession, customer: Customer, actor: Operator | None, enabled: bool, *,
    seen_version: SeenVersion = ON_CURRENT,
) -> None:
    """Disable (or enable again) the customer's portal sign-in without deleting the account,
    based on the account's `seen_version` (StaleRecord, VersionRequired as for a reset)."""
    account = _account_to_change(session, customer, actor, seen_version)
    before = account.is_active
    account.is_active = enabled
    _audit(session, actor, customer, "enabled" if enabled else "disabled", is_active=(before, enabled))
    flush(session)
