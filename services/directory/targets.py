"""Where imported people go: person customers (internal employees) or contacts of companies.

A target turns a DirectoryPerson into the values of its record (only directory-owned fields:
local notes, SLA level, operators or settings are never touched) and saves the record through
the command every other door uses (services.customers.save_customer,
services.contacts.save_contact): the same rules, the same audit events. It never commits: the
pipeline's units of work own the transactions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from models import Contact, Customer, CustomerStatus, Department, Operator, Site
from models.enums import CustomerKind, PhoneType
from services.contact_info import normalise_email, normalise_phone
from services.contacts import save_contact
from services.customers import SaveOptions, default_status, save_customer
from services.directory.mapping import CompanyRule, DirectoryPerson, company_for
from services.errors import ValidationFailed
from services.limits import max_length, too_long
from services.transactions import DbSession


class Refused(ValueError):
    """This entry cannot be written; the message says why (reported, the entry skipped)."""


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
                raise ValidationFailed({field: [too_long(limit, len(name))]})
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
            "first_name": person.first_name, "middle_name": (person.middle_name or "")[:40] or None,
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
