"""Bulk import of customers and their contacts from a mapped table (services.bulk_import_files reads it).

A pipeline per row: map → match an existing customer by the user's rules, in their order →
update it (empty fields only, or every mapped field) or skip it → else refuse a strong duplicate,
as a form would → create. Every write goes through `services.customers.save_customer` (and
`create_customer`), so a file cannot do what the forms would refuse: the same validation, the
same uniqueness, the same access policy (an operator updates only customers they may edit).

The preview is the real import rolled back, so the two cannot disagree. The run works on a
connection of its own; each row is a savepoint (the services' commit releases it, their rollback
drops only that row), each batch a transaction: committed in a real run, and in a dry run one
transaction over every batch, rolled back at the end.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from sqlalchemy import Engine, func, inspect, or_, select
from sqlalchemy.orm import Session

from models import Contact, Customer, Operator
from models.enums import CustomerKind
from models.search_index import fold
from services.access import Right, can
from services.bulk_import_files import CONTACT_FIELDS, CUSTOMER_FIELDS, SourceRow
from services.contact_info import normalise_email, normalise_phone
from services.customers import SaveOptions, create_customer, save_customer, validate_customer
from services.duplicates import find_duplicates, make_probe
from services.errors import FORM, DomainError, PermissionDenied, ValidationFailed
from services.matching import compact_id, name_key


class MatchRule(StrEnum):
    REGISTRATION_NUMBER = "registration_number"
    EMAIL = "email"
    PHONE = "phone"
    NAME = "name"

    @property
    def label(self) -> str:
        return {"registration_number": "Company ID (IČO)", "email": "E-mail", "phone": "Phone",
                "name": "Name"}[self.value]


class OnMatch(StrEnum):
    UPDATE_EMPTY = "update_empty"
    UPDATE_ALL = "update_all"
    SKIP = "skip"

    @property
    def label(self) -> str:
        return {"update_empty": "Update empty fields only", "update_all": "Update all mapped fields",
                "skip": "Skip (leave the existing customer as it is)"}[self.value]


KINDS = {"company": CustomerKind.COMPANY, "firma": CustomerKind.COMPANY, "spolocnost": CustomerKind.COMPANY,
         "pravnicka osoba": CustomerKind.COMPANY, "organizacia": CustomerKind.COMPANY,
         "person": CustomerKind.PERSON, "osoba": CustomerKind.PERSON, "fyzicka osoba": CustomerKind.PERSON,
         "private person": CustomerKind.PERSON, "sukromna osoba": CustomerKind.PERSON}
YES = {"1", "yes", "y", "true", "x", "ano", "a", "main", "hlavny", "hlavni"}
NO = {"", "0", "no", "n", "false", "nie", "ne"}
CONTACT_OF = {"contact_first_name": "first_name", "contact_last_name": "last_name",
              "contact_email": "email", "contact_phone": "phone", "contact_is_main": "is_main"}


@dataclass
class RowResult:
    """What happened to one row: its number in the file, the customer concerned, why."""

    row: int
    label: str = ""
    customer_id: int | None = None
    fields: list[str] = field(default_factory=list)  # changed fields (their file columns)
    reason: str = ""
    errors: list[tuple[str, str]] = field(default_factory=list)  # (column, message)
    candidates: list[dict] = field(default_factory=list)  # label, reasons (duplicates)
    values: dict[str, str] = field(default_factory=dict)  # the original row (rejected rows)


@dataclass
class ImportReport:
    """Counts and rows of a run; `dry_run` True means nothing was written."""

    dry_run: bool
    total: int = 0
    created: list[RowResult] = field(default_factory=list)
    updated: list[RowResult] = field(default_factory=list)
    unchanged: list[RowResult] = field(default_factory=list)
    skipped: list[RowResult] = field(default_factory=list)  # matched, and on a match: skip
    duplicates: list[RowResult] = field(default_factory=list)
    rejected: list[RowResult] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in
                ("created", "updated", "unchanged", "skipped", "duplicates", "rejected")}

    def as_dict(self) -> dict:
        return {**asdict(self), "counts": self.counts()}


class RowRefused(Exception):
    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("; ".join(m for _, m in errors))


def _reason(errors: list[tuple[str, str]]) -> str:
    return "; ".join(f"{column}: {message}" if column else message for column, message in errors)


class _Row:
    """One row's values by target field, with the way back to the file's columns."""

    def __init__(self, source: SourceRow, mapping: dict[str, str]):
        self.source = source
        self.column = {target: header for header, target in mapping.items() if target}
        self.values = {target: (source.values.get(header) or "").strip() for header, target in mapping.items()
                       if target}

    def get(self, target: str) -> str:
        return self.values.get(target, "")

    def refuse(self, errors: dict[str, list[str]], *, contact: bool = False) -> RowRefused:
        found = []
        for name, messages in errors.items():
            target = f"contact_{name}" if contact and name != FORM else name
            for message in messages:
                found.append((self.column.get(target, "") if name != FORM else "", message))
        return RowRefused(found)

    def kind(self) -> CustomerKind:
        raw = self.get("kind")
        if not raw:  # told by the values; a row of a company file missing its name is a company
            if self.get("company_name"):
                return CustomerKind.COMPANY
            if self.get("first_name") or self.get("last_name") or "company_name" not in self.column:
                return CustomerKind.PERSON
            return CustomerKind.COMPANY
        kind = KINDS.get(" ".join(re.findall(r"[a-z]+", fold(raw))))
        if kind is None:
            raise self.refuse({"kind": [f"“{raw}” is not a kind: write company or person."]})
        return kind

    def customer_fields(self) -> dict[str, str]:
        return {f: v for f, v in self.values.items() if f in CUSTOMER_FIELDS and f != "kind" and v}

    def contact_fields(self) -> dict:
        if not (self.get("contact_last_name") or self.get("contact_email") or self.get("contact_first_name")):
            return {}
        values: dict = {CONTACT_OF[f]: v for f, v in self.values.items() if f in CONTACT_FIELDS and v}
        main = fold(self.get("contact_is_main")).strip()
        if main in YES or main in NO:
            values["is_main"] = main in YES
        else:
            raise self.refuse({"is_main": [f"“{main}” is not yes or no."]}, contact=True)
        return values


class _Importer:
    def __init__(self, session: Session, actor: Operator | None, mapping: dict[str, str],
                 rules: Sequence[MatchRule], on_match: OnMatch, options: SaveOptions, report: ImportReport):
        self.session, self.actor, self.mapping = session, actor, mapping
        self.rules, self.on_match, self.options, self.report = rules, on_match, options, report

    # -- matching ----------------------------------------------------------------------------
    def _ids(self, rule: MatchRule, row: _Row, kind: CustomerKind) -> list[int]:
        query = None
        if rule == MatchRule.REGISTRATION_NUMBER and compact_id(row.get("registration_number")):
            query = select(Customer.id).where(Customer.registration_number == compact_id(
                row.get("registration_number")))
        elif rule == MatchRule.EMAIL and row.get("email"):
            try:
                email = (normalise_email(row.get("email")) or "").lower()
            except ValueError:
                return []
            query = select(Customer.id).where(or_(func.lower(Customer.email) == email,
                                                  func.lower(Customer.secondary_email) == email))
        elif rule == MatchRule.PHONE and row.get("primary_phone"):
            try:
                phone = normalise_phone(row.get("primary_phone"), self.options.phone_region)
            except ValueError:
                return []
            query = select(Customer.id).where(or_(Customer.primary_phone == phone,
                                                  Customer.secondary_phone == phone))
        elif rule == MatchRule.NAME:
            company = kind == CustomerKind.COMPANY
            name = row.get("company_name") if company else f"{row.get('first_name')} {row.get('last_name')}"
            if not name_key(name, company=company):
                return []
            probe = make_probe(kind=kind, name=name, phone_region=self.options.phone_region)
            # The system's view (actor None): a hidden match is still a match, refused below.
            return sorted({c.customer_id for c in find_duplicates(self.session, None, probe)
                           if c.record == "customer" and "same name" in c.reasons and c.customer_id})
        if query is None:
            return []
        with self.session.no_autoflush:
            return sorted(self.session.scalars(query.limit(5)))

    def match(self, row: _Row, kind: CustomerKind) -> tuple[Customer | None, MatchRule | None]:
        for rule in self.rules:
            ids = self._ids(rule, row, kind)
            if len(ids) > 1:
                raise RowRefused([("", f"Matches {len(ids)} customers by {rule.label.lower()}; "
                                       "correct the row or choose other match rules.")])
            if ids:
                return self.session.get(Customer, ids[0]), rule
        return None, None

    # -- writing -----------------------------------------------------------------------------
    def process(self, source: SourceRow) -> None:
        row = _Row(source, self.mapping)
        result = RowResult(row=source.number)
        try:
            kind = row.kind()
            customer, rule = self.match(row, kind)
            if customer is None:
                self.create(row, kind, result)
            else:
                self.update(row, customer, rule, result)
        except RowRefused as exc:
            self.session.rollback()
            result.errors, result.reason, result.values = exc.errors, _reason(exc.errors), dict(source.values)
            self.report.rejected.append(result)
        except PermissionDenied as exc:
            self.session.rollback()
            result.errors, result.reason, result.values = [("", str(exc))], str(exc), dict(source.values)
            self.report.rejected.append(result)

    def create(self, row: _Row, kind: CustomerKind, result: RowResult) -> None:
        fields = row.customer_fields()
        contact = row.contact_fields()
        company = kind == CustomerKind.COMPANY
        name = fields.get("company_name") if company else \
            f"{fields.get('first_name', '')} {fields.get('last_name', '')}"
        # The duplicate search comes first: a company ID that exists is a duplicate to report
        # with its candidate, not only a uniqueness error.
        probe = make_probe(kind=kind, name=name, email=fields.get("email"), phone=fields.get("primary_phone"),
                           registration_number=fields.get("registration_number"), vat_id=fields.get("vat_id"),
                           phone_region=self.options.phone_region)
        strong = [c for c in find_duplicates(self.session, self.actor, probe) if c.strong]
        if strong:
            result.candidates = [{"label": c.label if c.visible else "a record you cannot open",
                                  "reasons": c.reasons, "customer_id": c.customer_id, "ask": c.ask}
                                 for c in strong]
            result.label = (name or "").strip()
            result.reason = "; ".join(f"{c['label']} ({', '.join(c['reasons'])})" for c in result.candidates)
            self.report.duplicates.append(result)
            return
        try:
            saved = create_customer(self.session, self.actor, self.options, kind=kind,
                                    contacts=[contact] if contact else None, **fields)  # type: ignore[arg-type]
        except ValidationFailed as exc:
            raise row.refuse(exc.errors) from None
        result.customer_id, result.label = saved.id, saved.display_name
        result.fields = [row.column[f] for f in row.values if row.values[f] and f in row.column]
        self.report.created.append(result)

    def update(self, row: _Row, customer: Customer, rule: MatchRule | None, result: RowResult) -> None:
        visible = can(self.session, self.actor, customer.id, Right.VIEW) if self.actor else True
        result.customer_id = customer.id if visible else None
        result.label = customer.display_name if visible else "a customer you cannot open"
        how = rule.label.lower() if rule else ""
        if self.on_match == OnMatch.SKIP:
            result.reason = f"Matched by {how}."
            self.report.skipped.append(result)
            return
        if self.actor is not None and not can(self.session, self.actor, customer.id, Right.EDIT):
            raise PermissionDenied(f"The row matches {result.label} (by {how}), which you may not edit.")
        only_empty = self.on_match == OnMatch.UPDATE_EMPTY
        changed: list[str] = []
        for name, value in row.customer_fields().items():
            if name in ("company_name", "registration_number", "vat_id") and not customer.is_company:
                continue  # a person has no company fields; the kind is never changed by a file
            if name in ("first_name", "middle_name", "last_name", "title") and customer.is_company:
                continue
            if only_empty and getattr(customer, name):
                continue
            setattr(customer, name, value)
        contact_values = row.contact_fields()
        if contact_values:
            if not customer.is_company:
                raise RowRefused([("", "Only a company has contacts; this row matches a person.")])
            self._merge_contact(customer, contact_values, only_empty)
        try:
            with self.session.no_autoflush:
                validate_customer(self.session, customer, self.options)
        except ValidationFailed as exc:
            raise row.refuse(exc.errors) from None
        state = inspect(customer)
        changed = [row.column.get(n, n) for n in CUSTOMER_FIELDS
                   if n in state.attrs and state.attrs[n].history.has_changes()]
        if any(c.id is None or inspect(c).modified and _contact_changed(c) for c in customer.contacts):
            changed += [row.column[f] for f in CONTACT_FIELDS if f in row.column and row.get(f)]
        if not changed:
            self.session.rollback()  # nothing to write; drop the row's savepoint
            self.report.unchanged.append(result)
            return
        try:
            save_customer(self.session, customer, self.actor, self.options)
        except ValidationFailed as exc:
            raise row.refuse(exc.errors) from None
        result.fields = changed
        result.reason = f"Matched by {how}."
        self.report.updated.append(result)

    def _merge_contact(self, customer: Customer, values: dict, only_empty: bool) -> None:
        email = (values.get("email") or "").lower()
        key = name_key(f"{values.get('first_name', '')} {values.get('last_name', '')}", company=False)
        existing = next((c for c in customer.contacts if email and (c.email or "").lower() == email), None)
        if existing is None and key:
            existing = next((c for c in customer.contacts if name_key(
                f"{c.first_name or ''} {c.last_name}", company=False) == key), None)
        if existing is None:
            customer.contacts.append(Contact(**values))
            return
        for name, value in values.items():
            if only_empty and name != "is_main" and getattr(existing, name):
                continue
            if name == "is_main" and only_empty:
                continue
            setattr(existing, name, value)


def _contact_changed(contact: Contact) -> bool:
    state = inspect(contact)
    return any(state.attrs[n].history.has_changes() for n in ("first_name", "last_name", "email", "phone",
                                                              "is_main"))


def _batches(rows: Sequence[SourceRow], size: int) -> Iterable[Sequence[SourceRow]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def run_import(session: Session, actor: Operator | None, rows: Sequence[SourceRow], mapping: dict[str, str],
               rules: Sequence[MatchRule | str], on_match: OnMatch | str, options: SaveOptions, *,
               dry_run: bool, batch_size: int = 200,
               progress: Callable[[int, int], None] | None = None) -> ImportReport:
    """Import `rows` (header → value) through `mapping` (header → target field of
    bulk_import_files.TARGET_FIELDS). A row is created, updated (with its changed columns),
    unchanged, skipped (matched, and `on_match` is skip), skipped as a duplicate (a strong
    candidate the rules did not match — a form would refuse it too) or rejected (with a reason
    per column). A rejected row writes nothing and costs no other row anything.

    A real run commits per batch of `batch_size`; `dry_run` writes nothing (one transaction,
    rolled back), with the same report a real run would give. `progress(done, total)` is called
    as rows are processed. `session` only provides the database: the run uses a connection of
    its own, and `session` is expired afterwards so it sees the result."""
    report = ImportReport(dry_run=dry_run, total=len(rows))
    chosen = [MatchRule(r) for r in rules]
    behaviour = OnMatch(on_match)
    done = 0
    engine = session.get_bind()
    if not isinstance(engine, Engine):
        raise TypeError("run_import needs a session bound to an engine: it opens its own connection.")
    with engine.connect() as connection:
        transaction = connection.begin()
        if connection.dialect.name == "sqlite":
            # pysqlite opens no transaction before a SAVEPOINT, which would make the first
            # savepoint's release a COMMIT: begin one explicitly, so rollback undoes everything.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            for batch in _batches(rows, max(batch_size, 1)):
                work = Session(bind=connection, join_transaction_mode="create_savepoint")
                try:
                    runner = work.get(Operator, actor.id) if actor is not None else None
                    importer = _Importer(work, runner, mapping, chosen, behaviour, options, report)
                    for source in batch:
                        try:
                            importer.process(source)
                        except DomainError as exc:
                            work.rollback()
                            report.rejected.append(RowResult(
                                row=source.number, reason=str(exc), errors=[("", str(exc))],
                                values=dict(source.values)))
                        done += 1
                        if progress is not None:
                            progress(done, len(rows))
                finally:
                    work.close()
                if not dry_run:
                    transaction.commit()
                    transaction = connection.begin()
                    if connection.dialect.name == "sqlite":
                        connection.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            transaction.rollback()
    session.expire_all()
    return report
