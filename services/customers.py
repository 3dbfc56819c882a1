"""Creating, changing and deleting customers: one transaction per write, one set of rules.

The admin forms, the wizard, the quick form, the API, the importer and the CLI all end in
`save_customer` (or `create_customer`, which builds and then saves), so a rule checked here
holds on every path. Rules checked: names required per kind, e-mail syntax, phones parsed to
E.164, unique company ID / VAT ID / directory GUID, building belongs to site, manager is a
person, not the customer itself and not a loop of managers.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, inspect, select

from i18n import _
from models import (
    Computer,
    Contact,
    Customer,
    CustomerSettings,
    CustomerStatus,
    Operator,
    PortalAccount,
    Request,
)
from models.enums import CustomerKind
from services.access import Right, require, require_maintainer
from services.audit import changes_of, record
from services.batches import flush_command
from services.contact_info import clean_text, normalise_email, phone_to_store, stored_value
from services.contacts import CONTACT_EMAIL_NEEDED, check_contact
from services.errors import FORM, DomainError, ErrorBag, ValidationFailed
from services.limits import check_lengths
from services.matching import compact_id
from services.transactions import DbSession, flush
from services.versions import ON_CURRENT, SeenVersion, check_seen_version

COMPANY_ONLY = ("company_name", "registration_number", "vat_id")
PERSON_ONLY = ("first_name", "middle_name", "last_name", "employee_type", "title", "department", "manager")
TEXT_FIELDS = (
    "company_name", "registration_number", "vat_id", "first_name", "middle_name", "last_name",
    "title", "location_code", "notes",
)
MAX_MANAGER_DEPTH = 50



@dataclass(frozen=True)
class SaveOptions:
    """What a save needs from configuration: the region for numbers without a country code."""

    phone_region: str = "SK"


def default_status(session: DbSession) -> CustomerStatus | None:
    return session.scalar(select(CustomerStatus).where(CustomerStatus.is_default.is_(True)))


def _clear_other_kind(customer: Customer) -> None:
    for field in PERSON_ONLY if customer.kind == CustomerKind.COMPANY else COMPANY_ONLY:
        setattr(customer, field, None)


def _check_manager(session: DbSession, customer: Customer, bag: ErrorBag) -> None:
    manager = customer.manager
    if manager is None:
        return
    if manager is customer or (customer.id is not None and manager.id == customer.id):
        bag.add("manager", _("A customer cannot be their own manager."))
        return
    if manager.kind != CustomerKind.PERSON:
        bag.add("manager", _("The manager must be a person, not a company."))
        return
    if customer.id is None:
        return  # a new customer cannot yet be anybody's manager: no loop possible
    seen, current = set(), manager.manager_id
    for _step in range(MAX_MANAGER_DEPTH):
        if current is None:
            return
        if current == customer.id:
            bag.add("manager", _("%(name)s already reports to this customer: that would make a loop "
                                 "of managers.", name=manager.display_name))
            return
        if current in seen:
            return
        seen.add(current)
        current = session.scalar(select(Customer.manager_id).where(Customer.id == current))


def _check_unique(session: DbSession, customer: Customer, field: str, message: str, bag: ErrorBag):
    value = getattr(customer, field)
    if not value or field in bag.errors:  # already refused (a control character): not looked up
        return
    column = getattr(Customer, field)
    query = select(Customer.id).where(column == value)
    if customer.id is not None:
        query = query.where(Customer.id != customer.id)
    if session.scalar(query) is not None:
        bag.add(field, message)


def validate_customer(session: DbSession, customer: Customer, options: SaveOptions) -> None:
    """Normalise `customer` in place and check every rule; raises ValidationFailed with a
    message per field. Runs without autoflush, so half-typed values never reach the database."""
    bag = ErrorBag()
    with session.no_autoflush:
        if customer.kind is None:
            bag.add("kind", _("Choose company or person."))
            bag.raise_if_any()
        customer.kind = CustomerKind(customer.kind)
        if customer.notes:  # a browser's textarea sends CRLF: stored with LF, so saving it again is no change
            customer.notes = customer.notes.replace("\r\n", "\n").replace("\r", "\n")
        for field in TEXT_FIELDS:
            setattr(customer, field, bag.check(field, clean_text, getattr(customer, field)))
        _person_becomes_main_contact(session, customer)
        _clear_other_kind(customer)
        # Stored compact ("50 111 222" = "50111222"), so uniqueness and duplicate search agree.
        for field in ("registration_number", "vat_id"):
            typed = bag.check(field, clean_text, getattr(customer, field))
            setattr(customer, field, compact_id(typed) or None)

        if customer.kind == CustomerKind.COMPANY:
            if not customer.company_name:
                bag.add("company_name", _("A company needs its company name."))
        else:
            if not customer.first_name:
                bag.add("first_name", _("A person needs a first name."))
            if not customer.last_name:
                bag.add("last_name", _("A person needs a last name."))

        for field in ("email", "secondary_email"):
            setattr(customer, field, bag.check(field, normalise_email, getattr(customer, field)))
        for field in ("primary_phone", "secondary_phone"):
            value, stored = getattr(customer, field), stored_value(customer, field)
            setattr(customer, field, bag.check(
                field, lambda v, s=stored: phone_to_store(v, s, options.phone_region), value
            ))
            if not getattr(customer, field):
                setattr(customer, f"{field}_type", None)

        if customer.building is not None:
            if customer.site is None:
                customer.site = customer.building.site
            elif customer.building.site_id != customer.site.id:
                bag.add("building", _("%(building)s is not a building of %(site)s. Choose a building "
                                      "of that site.", building=customer.building.name,
                                      site=customer.site.name))

        _check_manager(session, customer, bag)
        _check_unique(session, customer, "registration_number",
                      _("Another customer already has this company ID."), bag)
        _check_unique(session, customer, "vat_id", _("Another customer already has this VAT ID."), bag)
        _check_unique(session, customer, "directory_guid",
                      _("Another customer already has this directory identity."), bag)

        if customer.status is None:
            customer.status = default_status(session)
            if customer.status is None:
                bag.add("status", _("No default status exists: a maintainer must mark one."))

        if customer.kind == CustomerKind.COMPANY:
            for contact in customer.contacts:
                for message in check_contact(contact, options.phone_region):
                    name = " ".join(n for n in (contact.first_name, contact.last_name) if n)
                    bag.add(FORM, _("Contact %(name)s: %(message)s", name=name, message=message))
        elif customer.contacts:
            bag.add(FORM, _("Only a company has contacts; remove them or make this a company."))
        check_lengths(customer, bag)
    bag.raise_if_any()


def _check_rights(session: DbSession, customer: Customer, actor: Operator | None) -> None:
    """Edit right on an existing customer; only a maintainer changes its operators.
    `actor` None is the system itself (CLI, demo data, importer), bound by no ownership."""
    if actor is None:
        return
    if customer.id is not None:
        require(session, actor, customer.id, Right.EDIT)
    history = inspect(customer).attrs.operators.history
    before = {op.id for op in [*history.unchanged, *history.deleted]}
    after = {op.id for op in [*history.unchanged, *history.added]}
    if before != after:
        require_operator_assignment(actor)


def _audit_customer(session: DbSession, actor: Operator | None, customer: Customer,
                    changes: dict[str, list], contact_changes: list, is_new: bool,
                    settings_changes: dict[str, list] | None) -> None:
    if is_new:
        record(session, actor, "create", customer, changes)
    else:
        special = {"status": "status_change", "operators": "operator_assignment"}
        rest = {k: v for k, v in changes.items() if k not in special}
        if rest:
            record(session, actor, "update", customer, rest)
        for field, action in special.items():
            if field in changes:
                record(session, actor, action, customer, {field: changes[field]})
    if is_new and changes.get("operators"):
        record(session, actor, "operator_assignment", customer, {"operators": changes["operators"]})
    for contact, contact_change, action in contact_changes:
        if contact_change or action == "delete":
            record(session, actor, action, contact, contact_change)
    if settings_changes is not None:
        record(session, actor, "create", customer.settings, settings_changes,
               entity_type="customersettings")


def _contacts_changed(customer: Customer) -> bool:
    history = inspect(customer).attrs.contacts.history
    if history.added or history.deleted:
        return True
    return any(inspect(c).attrs.email.history.has_changes() for c in customer.contacts)


def _became_company(session: DbSession, customer: Customer) -> bool:
    """A stored person being saved as a company (the stored kind is read: the object's own
    history does not know the old value when the attribute was set before it was loaded)."""
    with session.no_autoflush:  # the pending change must not reach the row before it is read
        if customer.id is None or customer.kind != CustomerKind.COMPANY:
            return False
        stored = session.scalar(select(Customer.kind).where(Customer.id == customer.id))
    return stored is not None and CustomerKind(stored) == CustomerKind.PERSON


def _person_becomes_main_contact(session: DbSession, customer: Customer) -> None:
    """A person turned into a company (the person turned out to stand for their firm) keeps the
    way C-Desk reaches them: their name and e-mail become the company's main contact. Without an
    e-mail there is nothing to keep, and the company-contact rule refuses the change."""
    if customer.last_name and customer.email and not customer.contacts and _became_company(session, customer):
        customer.contacts.append(Contact(first_name=customer.first_name, last_name=customer.last_name,
                                         email=customer.email, phone=customer.primary_phone,
                                         phone_type=customer.primary_phone_type, title=customer.title,
                                         is_main=True))


def check_company_contacts(session: DbSession, customer: Customer, is_new: bool) -> None:
    """The seed's rule: a company gets a contact to receive e-mail. A new company must come
    with at least one contact that has an e-mail; an existing one may not lose its last one (a
    company registered before the rule, without any, can still be edited otherwise)."""
    if customer.kind != CustomerKind.COMPANY:
        return
    has_email = any(c.email for c in customer.contacts)
    if is_new and not has_email:
        raise ValidationFailed({"contacts": [_(CONTACT_EMAIL_NEEDED)]})
    if not has_email and _became_company(session, customer):
        raise ValidationFailed({"kind": [
            _("%(rule)s A person becomes a company only with an e-mail: it becomes the company's main "
              "contact.", rule=_(CONTACT_EMAIL_NEEDED))]})
    if not is_new and not has_email and _contacts_changed(customer):
        before = inspect(customer).attrs.contacts.history
        had = any((inspect(c).attrs.email.history.deleted or [c.email])[0]
                  for c in [*before.unchanged, *before.deleted])
        if had:
            raise ValidationFailed({"contacts": [_(CONTACT_EMAIL_NEEDED)]})


def save_customer(
    session: DbSession,
    customer: Customer,
    actor: Operator | None,
    options: SaveOptions,
    *,
    seen_version: SeenVersion = ON_CURRENT,
    confirm_duplicate: bool = False,
) -> Customer:
    """`save_customer_changes`, answering the saved customer."""
    save_customer_changes(session, customer, actor, options, seen_version=seen_version,
                          confirm_duplicate=confirm_duplicate)
    return customer


def save_customer_changes(
    session: DbSession,
    customer: Customer,
    actor: Operator | None,
    options: SaveOptions,
    *,
    seen_version: SeenVersion = ON_CURRENT,
    confirm_duplicate: bool = False,
) -> dict[str, list]:
    """The one write of a customer, new or changed, with its contacts: access (edit right; only a
    maintainer changes operators), the version check of a change (services.versions: VersionRequired
    when a door sends none, StaleRecord when changed since `seen_version`; `ON_CURRENT`, the
    default, is for the system's jobs — imports, directory sync — based on no version a person
    read: every door of a person passes what it read), every field rule, for a new customer the
    duplicate refusal (DuplicateSuspected unless `confirm_duplicate`), the company-contact rule,
    and the audit events. Flushes; the door's unit of work commits or rolls back. Answers what
    changed on the customer itself, as its audit event records it (field → [old, new], values
    normalised: a phone typed differently but the same number is no change). Raises
    ValidationFailed, VersionRequired, PermissionDenied."""
    from services.duplicates import customer_probe, refuse_duplicates

    is_new = not inspect(customer).has_identity  # reads nothing: no autoflush of the pending change
    with session.no_autoflush:
        _check_rights(session, customer, actor)
        check_seen_version(session, "customer", customer, seen_version)
    if is_new:  # first: a shared company ID is answered with the record that has it, like an e-mail
        with session.no_autoflush:
            refuse_duplicates(session, actor, customer_probe(customer, options.phone_region),
                              confirmed=confirm_duplicate)
    validate_customer(session, customer, options)
    with session.no_autoflush:
        check_company_contacts(session, customer, is_new)
    if is_new:
        customer.created_by = actor
    customer.updated_by = actor
    session.add(customer)  # before reading changes: related names load under no_autoflush
    changes = changes_of(customer)
    removed = inspect(customer).attrs.contacts.history.deleted
    contact_changes = [(c, changes_of(c), "create" if c.id is None else "update")
                       for c in customer.contacts]
    contact_changes += [(c, {}, "delete") for c in removed]
    # Settings created with the customer (the wizard) are recorded with it.
    settings_changes = changes_of(customer.settings) if is_new and customer.settings is not None else None
    _audit_customer(session, actor, customer, changes, contact_changes, is_new, settings_changes)
    flush_command(session)  # the events take the ids and versions this flush gives (services.audit)
    return changes


def create_customer(
    session: DbSession,
    actor: Operator | None,
    options: SaveOptions,
    *,
    contacts: list[dict] | None = None,
    settings: CustomerSettings | None = None,
    confirm_duplicate: bool = False,
    **fields,
) -> Customer:
    """Create a customer from field values (relationships as objects), optional contacts and
    optional settings (services.customer_settings.build_settings): `save_customer`'s rules."""
    customer = Customer(**fields)
    for contact_fields in contacts or []:
        customer.contacts.append(Contact(**contact_fields))
    if settings is not None:
        customer.settings = settings
    return save_customer(session, customer, actor, options, confirm_duplicate=confirm_duplicate)


def update_customer(
    session: DbSession,
    customer: Customer,
    actor: Operator | None,
    options: SaveOptions,
    values: dict,
    *,
    seen_version: SeenVersion,
) -> Customer:
    """Change fields of an existing customer (relationships as objects), based on `seen_version`:
    None is refused (VersionRequired), a stale one too (StaleRecord) — no blind overwrite."""
    with session.no_autoflush:
        for key, value in values.items():
            setattr(customer, key, value)
    return save_customer(session, customer, actor, options, seen_version=seen_version)


def set_operators(session: DbSession, customer: Customer, actor: Operator | None, options: SaveOptions,
                  operators: list[Operator], *, seen_version: SeenVersion) -> Customer:
    """Replace the responsible operators (only a maintainer may: PermissionDenied otherwise)."""
    require_operator_assignment(actor)
    return update_customer(session, customer, actor, options, {"operators": list(operators)},
                           seen_version=seen_version)


def set_workgroups(session: DbSession, customer: Customer, actor: Operator | None, options: SaveOptions,
                   workgroups: list, *, seen_version: SeenVersion) -> Customer:
    """Replace the customer's workgroups (the edit right)."""
    return update_customer(session, customer, actor, options, {"workgroups": list(workgroups)},
                           seen_version=seen_version)


def require_operator_assignment(actor: Operator | None) -> None:
    """The one rule of who assigns operators: a maintainer (or the system). Raises
    PermissionDenied for everyone else — on every door that can carry operators."""
    if actor is not None:
        require_maintainer(actor, _("assign or remove a customer's operators"))


def deactivate_customer(session: DbSession, customer: Customer, actor: Operator | None,
                        options: SaveOptions, *, seen_version: SeenVersion) -> Customer:
    """Set the first inactive status (customers leave through their status, not deletion)."""
    inactive = session.scalar(select(CustomerStatus).where(CustomerStatus.is_active.is_(False))
                              .order_by(CustomerStatus.id))
    if inactive is None:
        raise DomainError(_("No inactive status exists: a maintainer must add one."))
    return change_status(session, customer, actor, inactive, options, seen_version=seen_version)


def deletion_summary(session: DbSession, customer: Customer) -> dict[str, int]:
    """What goes with a customer when it is deleted (contacts, settings, portal account) and
    what keeps it (requests, computers)."""
    def count(model, column) -> int:
        return session.scalar(select(func.count()).select_from(model).where(column == customer.id)) or 0

    return {
        "contacts": count(Contact, Contact.customer_id),
        "settings": count(CustomerSettings, CustomerSettings.customer_id),
        "portal accounts": count(PortalAccount, PortalAccount.customer_id),
        "requests": count(Request, Request.customer_id),
        "computers": count(Computer, Computer.customer_id),
    }


def delete_customer(session: DbSession, customer: Customer, actor: Operator | None) -> None:
    """Delete a customer with its contacts, settings and portal account. A customer that
    requests or computers refer to is kept (DomainError): deactivate it through its status.
    Raises PermissionDenied without the delete right."""
    if actor is not None:
        require(session, actor, customer.id, Right.DELETE)
    summary = deletion_summary(session, customer)
    if summary["requests"] or summary["computers"]:
        raise DomainError(
            _("%(name)s has requests or computers, so it cannot be deleted. Set its status to "
              "Inactive instead.", name=customer.display_name)
        )
    record(session, actor, "delete", customer, {"deleted_with": [None, {
        k: v for k, v in summary.items() if v}]})
    session.delete(customer)
    flush(session)


def change_status(session: DbSession, customer: Customer, actor: Operator | None, status: CustomerStatus,
                  options: SaveOptions, *, seen_version: SeenVersion) -> Customer:
    """The Change Status dialog: set the status alone, recorded as a status change (who, when,
    from what to what) through the same save as every other edit."""
    _old = customer.status  # load the old one, so the audit event says what it changed from
    customer.status = status
    return save_customer(session, customer, actor, options, seen_version=seen_version)
