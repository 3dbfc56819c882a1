"""Where imported people go: person customers (internal employees) or contacts of companies.

A target turns a DirectoryPerson into the values of its record (only directory-owned fields:
local notes, SLA level, operators or settings are never touched) and saves the record through
the command every other door uses (services.customers.save_customer,
services.contacts.save_contact): the same rules, the same audit events. It never commits: the
pipeline's units of work own the transactions.
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import func, inspect, select

from i18n import _l
from models import Contact, Customer, CustomerStatus, Department, Operator, Site
from models.directory import CLEAR_LOCAL
from models.enums import CustomerKind, DirectoryTarget, PhoneType
from services import wording
from services.audit import is_secret
from services.contact_info import format_phone, normalise_email, normalise_phone
from services.contacts import save_contact
from services.customers import SaveOptions, default_status, save_customer
from services.directory.mapping import CompanyRule, DirectoryPerson, company_for
from services.limits import max_length
from services.secrets import MASK
from services.transactions import DbSession


class Refused(ValueError):
    """This entry cannot be written; the message says why (reported, the entry skipped)."""


class TooLong(Refused):
    """Values of an entry longer than their fields take: [(field, characters given, at most)].
    The account is skipped (never cut: a cut value is a wrong one, and a cut name would not be
    found again); the pipeline says which attribute each field comes from."""

    def __init__(self, fields: list[tuple[str, int, int]]):
        self.fields = fields
        super().__init__("; ".join(f"{field} has {given} characters, at most {limit}"
                                   for field, given, limit in fields))


def refuse_too_long(model, values: dict[str, Any]) -> None:
    """Every text of `values` (a record's fields as the directory gives them) against the
    length of its column: TooLong naming each that does not fit. Checked before anything is
    written, on both databases alike (SQLite would store an over-long value, PostgreSQL stop)."""
    over = []
    for field, value in values.items():
        attribute = getattr(model, field, None)
        limit = max_length(attribute) if isinstance(value, str) and attribute is not None else None
        if limit and len(value) > limit:
            over.append((field, len(value), limit))
    if over:
        raise TooLong(over)


def keeps_empty(source) -> bool:
    """Whether the source keeps a field's value in Customer Desk when the directory has none for
    it (empty_values "keep", the default) rather than clearing it ("clear")."""
    return source.empty_values != CLEAR_LOCAL


def kept_when_empty(values: dict[str, Any], current, source) -> dict[str, Any]:
    """The values an import writes to `current` (None: a new record). Under "keep" a field the
    directory has no value for keeps what Customer Desk holds — what an operator typed is never
    blanked, on the first link nor on any later run (an MSP's desk knows more than many
    directories: a mobile, a title); under "clear" the record mirrors the directory and such a
    field is emptied. The manager follows the same setting (pipeline)."""
    if current is None or not keeps_empty(source):
        return values
    return {field: value for field, value in values.items() if value is not None}


# Field → what people call it where the directory's words differ from the forms'; the rest are
# the users' words of services.wording (one table for history, audit trail and reports).
FIELD_LABELS = {"sam_account_name": _l("sAMAccountName"), "is_active": _l("Active"),
                "customer": _l("Company"), "directory_dn": _l("Directory DN"),
                "directory_guid": _l("Directory GUID (objectGUID)")}

# What a run did without a value to show (recorded by the pipeline as these words).
NOTES = {"status (left out by the source's rule)": _l("Status: deactivated (left out by the source's rule)"),
         "status (no longer found)": _l("Status: deactivated (no longer in the directory)")}


def field_label(field: str) -> str:
    label = FIELD_LABELS.get(field)
    return str(label) if label is not None else wording.field_label("customer", field)


def report_entity(target: DirectoryTarget | str | None) -> str:
    """The record type a source's report is about (the words of its fields)."""
    return "contact" if target == DirectoryTarget.CONTACTS else "customer"


def shown(field: str, value: Any) -> Any:
    """A field's value as a run's report stores it: a related record by its name (a department,
    a site, a manager), a choice by its label, a phone formatted, a yes/no as true/false; None
    when empty. A secret never (no directory field is one; the rule holds anyway). The page
    shows it in the users' words (`report_lines`)."""
    if value is None or value == "":
        return None
    if is_secret(field):
        return MASK
    if isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return str(value)
    if field.endswith("phone") and isinstance(value, str):
        return format_phone(value)
    return str(value)


def report_lines(entity_type: str, fields: list) -> list[wording.ChangeLine]:
    """A changed record's fields of a run's report as the history shows changes: the field's
    label, old → new in the users' words. What a run did without a value ("status (no longer
    found)") is a line of its label alone (old and new ""). Older reports (field names only,
    values as text) read too."""
    lines = []
    for item in fields:
        if not isinstance(item, dict):
            item = {"label": str(item)}
        field = item.get("field")
        if field is None or "old" not in item:
            label = str(item.get("label") or field or "")
            note = NOTES.get(label)
            lines.append(wording.ChangeLine(str(note) if note is not None else label, "", ""))
            continue
        lines.append(wording.ChangeLine(
            wording.field_label(entity_type, field) if field not in FIELD_LABELS else field_label(field),
            wording.shown_value(entity_type, field, item.get("old")),
            wording.shown_value(entity_type, field, item.get("new"))))
    return lines


def _plain(value: Any) -> str:
    if value is None or value == "":
        return "empty"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def change_text(fields: list) -> str:
    """A changed record's fields of a run's report in one line ("Title: Clerk → Senior Clerk;
    Department: empty → Finance"), for the command line; older reports held field names only."""
    def one(item) -> str:
        if not isinstance(item, dict):
            return str(item)
        if "old" not in item:
            return str(item.get("label"))
        return f"{item['label']}: {_plain(item['old'])} → {_plain(item['new'])}"

    return "; ".join(one(item) for item in fields)


def report_values(record, fields: list[str]) -> dict[str, Any]:
    """`fields` of `record` as the report shows them (read as they are now: before a change
    for the old values, after it for the new). Reads nothing not loaded yet but the relations
    named, without flushing the record."""
    session = inspect(record).session
    if session is None:
        return {field: shown(field, getattr(record, field)) for field in fields}
    with session.no_autoflush:
        return {field: shown(field, getattr(record, field)) for field in fields}


def _email(value: str | None, warnings: list[str]) -> str | None:
    try:
        return normalise_email(value)
    except ValueError as exc:
        warnings.append(f"e-mail {value!r} ignored: {exc}")
        return None


def _phone(value: str | None, region: str, warnings: list[str]) -> str | None:
    try:
        return normalise_phone(value, region)
    except ValueError as exc:
        warnings.append(f"phone {value!r} ignored: {exc}")
        return None


class Lookups:
    """Departments and sites by name, created when new (once per run), and the statuses."""

    def __init__(self, session: DbSession):
        self.session = session
        self.departments = {d.name.casefold(): d for d in session.scalars(select(Department))}
        self.sites = {s.name.casefold(): s for s in session.scalars(select(Site))}
        self.active = default_status(session)
        self.inactive = session.scalar(select(CustomerStatus).where(CustomerStatus.is_active.is_(False))
                                       .order_by(CustomerStatus.id))

    def _named(self, cache: dict, model, name: str | None, field: str):
        if not name:
            return None
        found = cache.get(name.casefold())
        if found is None:
            limit = max_length(model.name)
            if limit and len(name) > limit:  # refused, not cut: a cut name would not be found again
                raise TooLong([(field, len(name), limit)])
            found = cache[name.casefold()] = model(name=name)
            self.session.add(found)
        return found

    def department(self, name: str | None) -> Department | None:
        return self._named(self.departments, Department, name, "department")

    def site(self, name: str | None) -> Site | None:
        return self._named(self.sites, Site, name, "site")


class PersonTarget:
    """Directory accounts as person customers (the Cherwell Customer - Internal form)."""

    model = Customer
    status_field = "status"  # what (de)activating an account changes

    def __init__(self, session: DbSession, source, options: SaveOptions, lookups: Lookups):
        self.session, self.source, self.options, self.lookups = session, source, options, lookups
        if lookups.inactive is None or lookups.active is None:
            raise Refused("No default and inactive customer statuses exist: a maintainer must add one "
                          "(Lookups → Statuses) before disabled accounts can be deactivated.")

    def scope(self):
        return Customer.kind == CustomerKind.PERSON

    def new(self, person: DirectoryPerson) -> Customer:
        return Customer(kind=CustomerKind.PERSON, status=self.lookups.active)

    def desired(self, person: DirectoryPerson, warnings: list[str]) -> dict[str, Any]:
        region = self.options.phone_region
        values: dict[str, Any] = {
            "first_name": person.first_name, "middle_name": person.middle_name,
            "last_name": person.last_name, "email": _email(person.email, warnings),
            "primary_phone": _phone(person.primary_phone, region, warnings),
            "secondary_phone": _phone(person.secondary_phone, region, warnings),
            "title": person.title, "department": self.lookups.department(person.department),
        }
        values["primary_phone_type"] = PhoneType.WORK if values["primary_phone"] else None
        values["secondary_phone_type"] = PhoneType.MOBILE if values["secondary_phone"] else None
        if self.source.office_maps_to == "location":
            values["location_code"] = person.office
        else:
            values["site"] = self.lookups.site(person.office)
        return values

    def is_active(self, record: Customer) -> bool:
        return record.status is None or record.status.is_active

    def set_active(self, record: Customer, active: bool) -> None:
        status = self.lookups.active if active else self.lookups.inactive
        if status is not None:  # both exist: checked when the target was made
            record.status = status

    def save(self, record: Customer, actor: Operator | None) -> None:
        # The directory is the authority on its people and identifies them by objectGUID (then
        # sAMAccountName, then e-mail, before anyone is created): a namesake or a shared e-mail
        # in the directory is another account, and refusing it as a suspected duplicate would
        # leave that account out of every run. So the import confirms, as a user would.
        save_customer(self.session, record, actor, self.options, confirm_duplicate=True)

    def active_condition(self):
        return Customer.status_id.in_(select(CustomerStatus.id).where(CustomerStatus.is_active.is_(True)))


class ContactTarget:
    """Directory accounts as contacts of a company: one chosen company, or the first rule that
    matches the entry's company, department or OU."""

    model = Contact
    status_field = "is_active"

    def __init__(self, session: DbSession, source, options: SaveOptions, rules: list[CompanyRule]):
        self.session, self.source, self.options, self.rules = session, source, options, rules
        wanted = {r.company_id for r in rules} | ({source.target_company_id} - {None})
        companies = session.scalars(select(Customer).where(Customer.id.in_(wanted),
                                                           Customer.kind == CustomerKind.COMPANY))
        self.companies = {c.id: c for c in companies}
        if not self.companies:
            raise Refused("Choose the company the contacts belong to, or rules that name companies.")

    def scope(self):
        return Contact.id.isnot(None)

    def company(self, person: DirectoryPerson) -> Customer:
        company_id = company_for(person, self.rules) if self.rules else self.source.target_company_id
        company = self.companies.get(company_id) if company_id is not None else None
        if company is None:
            raise Refused("no company rule matches its company, department or OU")
        return company

    def new(self, person: DirectoryPerson) -> Contact:
        return Contact(customer=self.company(person))

    def desired(self, person: DirectoryPerson, warnings: list[str]) -> dict[str, Any]:
        phone = _phone(person.primary_phone or person.secondary_phone, self.options.phone_region, warnings)
        return {"first_name": person.first_name, "last_name": person.last_name,
                "email": _email(person.email, warnings), "phone": phone,
                "phone_type": PhoneType.WORK if phone else None, "title": person.title,
                "customer": self.company(person)}

    def is_active(self, record: Contact) -> bool:
        return record.is_active

    def set_active(self, record: Contact, active: bool) -> None:
        record.is_active = active

    def save(self, record: Contact, actor: Operator | None) -> None:
        save_contact(self.session, record, actor, self.options.phone_region)

    def active_condition(self):
        return Contact.is_active.is_(True)


def find_existing(session: DbSession, target, people: list[DirectoryPerson]) -> dict[str, Any]:
    """Existing records by GUID, then (records without a directory identity yet) by
    sAMAccountName, then by e-mail: three indexed queries per batch."""
    model = target.model
    found: dict[str, Any] = {}
    by_guid = {p.guid for p in people}
    for record in session.scalars(select(model).where(model.directory_guid.in_(by_guid))):
        found[record.directory_guid] = record
    rest = [p for p in people if p.guid not in found]
    unlinked = [model.directory_guid.is_(None), target.scope()]
    sams = {p.sam: p.guid for p in rest if p.sam}
    if sams:
        for record in session.scalars(select(model).where(model.sam_account_name.in_(sams), *unlinked)):
            found.setdefault(sams[record.sam_account_name], record)
    rest = [p for p in rest if p.guid not in found]
    emails = {p.email.lower(): p.guid for p in rest if p.email}
    if emails:
        for record in session.scalars(select(model).where(func.lower(model.email).in_(emails), *unlinked)):
            found.setdefault(emails[record.email.lower()], record)
    return found
