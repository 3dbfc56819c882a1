"""Bulk import of customers and their contacts from a mapped table (services.bulk_import_files reads it).

A pipeline per row: map → match an existing customer by the user's rules, in their order →
update it (empty fields only, or every mapped field) or skip it → else create it. Every write is
a command of services.customers (`create_customer`, `save_customer`), so a file cannot do what
the forms would refuse: the same validation and field lengths, the same uniqueness, the same
duplicate refusal (a strong match the rules did not pick is "skipped as duplicate" with its
candidates), the company-contact rule (a new company needs a contact with an e-mail), the same
access policy (an operator updates only customers they may edit).

Transactions (services.batches): each batch is a unit of work, each row a savepoint in it, so
a refused row drops alone. The preview is the real import inside one unit rolled back at the
end, so the two cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from itertools import islice

from sqlalchemy import func, inspect, or_, select

from i18n import _
from models import Contact, Customer, Operator
from models.enums import CustomerKind
from models.search_index import fold
from services.access import Right, can
from services.batches import batch_unit, batches, rolled_back
from services.bulk_import_files import CONTACT_FIELDS, CUSTOMER_FIELDS, SourceRow
from services.contact_info import normalise_phone
from services.contacts import contact_field_errors
from services.customers import SaveOptions, create_customer, save_customer, validate_customer
from services.duplicates import DuplicateSuspected, make_probe, reason_list, same_name_customer_ids
from services.errors import FORM, DomainError, PermissionDenied, ValidationFailed
from services.matching import compact_id, name_key
from services.merge import survivor_of
from services.transactions import DbSession, in_unit_of_work, unit_of_work
from services.upload_limits import MAX_CELL_CHARS


class MatchRule(StrEnum):
    REGISTRATION_NUMBER = "registration_number"
    EMAIL = "email"
    PHONE = "phone"
    NAME = "name"

    @property
    def label(self) -> str:
        return {"registration_number": _("Company ID (IČO)"), "email": _("E-mail"), "phone": _("Phone"),
                "name": _("Name")}[self.value]

    @property
    def phrase(self) -> str:
        """The rule within a sentence ("Matched by %(rule)s.")."""
        return {"registration_number": _("company ID (IČO)"), "email": _("e-mail"), "phone": _("phone"),
                "name": _("name")}[self.value]


class OnMatch(StrEnum):
    UPDATE_EMPTY = "update_empty"
    UPDATE_ALL = "update_all"
    SKIP = "skip"

    @property
    def label(self) -> str:
        return {"update_empty": _("Update empty fields only"), "update_all": _("Update all mapped fields"),
                "skip": _("Skip (leave the existing customer as it is)")}[self.value]


KINDS = {"company": CustomerKind.COMPANY, "firma": CustomerKind.COMPANY, "spolocnost": CustomerKind.COMPANY,
         "pravnicka osoba": CustomerKind.COMPANY, "organizacia": CustomerKind.COMPANY,
         "person": CustomerKind.PERSON, "osoba": CustomerKind.PERSON, "fyzicka osoba": CustomerKind.PERSON,
         "private person": CustomerKind.PERSON, "sukromna osoba": CustomerKind.PERSON}
YES = {"1", "yes", "y", "true", "x", "ano", "a", "main", "hlavny", "hlavni"}
NO = {"", "0", "no", "n", "false", "nie", "ne"}
CONTACT_OF = {"contact_first_name": "first_name", "contact_last_name": "last_name",
              "contact_email": "email", "contact_phone": "phone", "contact_is_main": "is_main"}
# What a rejected row keeps of a value, to be corrected and uploaded again: 255 characters (every
# field but the notes takes at most 254, so a value the row could import is kept whole; a longer
# one is cut there and marked "…", and the row's reason says the limit), of notes as much as a
# file may hold in a value (services.upload_limits). So what an upload stores grows with its rows and
# columns, never with one long text that every row of a workbook refers to.
KEPT_TEXT = 255
KEPT_NOTES = MAX_CELL_CHARS
SHORTENED = "…"


def kept_length(target: str) -> int:
    """How much of a value mapped to `target` ("" = not imported) a rejected row keeps."""
    return KEPT_NOTES if target == "notes" else KEPT_TEXT


def kept_value(value: str, length: int) -> str:
    return value if len(value) <= length else value[:length] + SHORTENED


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
    values: dict[str, str] = field(default_factory=dict)  # the original row, see kept_length (rejected)


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
    """The row cannot be imported: (file column, message) per problem ("" = the whole row)."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("; ".join(m for _, m in errors))


class _Unchanged(Exception):
    """Raised inside a matched row's savepoint when the row changes nothing: rolled back."""


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
        """The domain's messages per field as (file column, message): a customer's field (or,
        `contact`, a contact's) goes to the column it came from; the company-contact rule to the
        contact e-mail column; the rest to the row."""
        found: list[tuple[str, str]] = []
        for name, messages in errors.items():
            if name == FORM:
                column = ""
            elif name == "contacts":
                column = self.column.get("contact_email", "")
            else:
                column = self.column.get(f"contact_{name}" if contact else name, "")
            found.extend((column, message) for message in messages)
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
            raise self.refuse({"kind": [_("“%(value)s” is not a kind: write company or person.", value=raw)]})
        return kind

    def customer_fields(self) -> dict[str, str]:
        return {f: v for f, v in self.values.items() if f in CUSTOMER_FIELDS and f != "kind" and v}

    def contact_fields(self, phone_region: str) -> dict:
        """The row's contact (empty: none), refused with its columns named where the contact
        rules (services.contacts: names, e-mail, phone, lengths) refuse it."""
        if not (self.get("contact_last_name") or self.get("contact_email") or self.get("contact_first_name")):
            return {}
        values: dict = {CONTACT_OF[f]: v for f, v in self.values.items() if f in CONTACT_FIELDS and v}
        main = fold(self.get("contact_is_main")).strip()
        if main in YES or main in NO:
            values["is_main"] = main in YES
        else:
            raise self.refuse({"is_main": [_("“%(value)s” is not yes or no.", value=main)]}, contact=True)
        # Checked on a copy: the command checks the contact it saves again, with the customer.
        errors = contact_field_errors(Contact(**values), phone_region)
        if errors:
            raise self.refuse(errors, contact=True)
        return values


class _Importer:
    def __init__(self, session: DbSession, actor: Operator | None, mapping: dict[str, str],
                 rules: Sequence[MatchRule], on_match: OnMatch, options: SaveOptions, report: ImportReport):
        self.session, self.actor, self.mapping = session, actor, mapping
        self.rules, self.on_match, self.options, self.report = rules, on_match, options, report
        self.kept = {header: kept_length(target) for header, target in mapping.items()}

    # -- matching ----------------------------------------------------------------------------
    def _ids(self, rule: MatchRule, row: _Row, kind: CustomerKind) -> list[int]:
        query = None
        if rule == MatchRule.REGISTRATION_NUMBER and compact_id(row.get("registration_number")):
            query = select(Customer.id).where(Customer.registration_number == compact_id(
                row.get("registration_number")))
        elif rule == MatchRule.EMAIL and row.get("email"):
            probe = make_probe(email=row.get("email"))
            if not probe.emails:
                return []
            forms = sorted(probe.emails | probe.email_forms)  # as services.duplicates looks them up
            query = select(Customer.id).where(or_(func.lower(Customer.email).in_(forms),
                                                  func.lower(Customer.secondary_email).in_(forms)))
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
            # The system's view: a hidden match is still a match, refused below; never a tombstone.
            return same_name_customer_ids(self.session, kind, name or "")
        if query is None:
            return []
        with self.session.no_autoflush:
            found = [self.session.get(Customer, i) for i in self.session.scalars(query.limit(5))]
            # A merged-away record lives on as its survivor (services.merge): a row matching the
            # old record, or both, matches the one customer left — never the tombstone.
            alive = {survivor.id for survivor in (survivor_of(self.session, c) for c in found) if survivor}
        return sorted(alive)

    def match(self, row: _Row, kind: CustomerKind) -> tuple[Customer | None, MatchRule | None]:
        for rule in self.rules:
            ids = self._ids(rule, row, kind)
            if len(ids) > 1:
                raise RowRefused([("", _("Matches %(count)s customers by %(rule)s; correct the row or "
                                         "choose other match rules.", count=len(ids), rule=rule.phrase))])
            if ids:
                return self.session.get(Customer, ids[0]), rule
        return None, None

    # -- writing -----------------------------------------------------------------------------
    def process(self, source: SourceRow) -> None:
        """One row in a savepoint of its own: whatever refuses it drops only this row."""
        row = _Row(source, self.mapping)
        result = RowResult(row=source.number)
        try:
            with unit_of_work(self.session, savepoint=True):
                outcome = self._write(row, result)
        except _Unchanged:
            outcome = self.report.unchanged
        except DuplicateSuspected as exc:  # the command's refusal of a strong match
            result.candidates = [{"label": c.label if c.visible else _("a record you cannot open"),
                                  "reasons": c.reasons, "customer_id": c.customer_id, "ask": c.ask}
                                 for c in exc.candidates]
            result.reason = "; ".join(f"{c['label']} ({reason_list(c['reasons'])})"
                                      for c in result.candidates)
            outcome = self.report.duplicates
        except RowRefused as exc:
            self._reject(result, source, exc.errors)
            return
        except ValidationFailed as exc:
            self._reject(result, source, row.refuse(exc.errors).errors)
            return
        except DomainError as exc:  # PermissionDenied and other refusals of the whole row
            self._reject(result, source, [("", str(exc))])
            return
        result.label = kept_value(result.label, KEPT_TEXT)
        outcome.append(result)

    def _reject(self, result: RowResult, source: SourceRow, errors: list[tuple[str, str]]) -> None:
        result.errors, result.reason = errors, _reason(errors)
        result.label = kept_value(result.label, KEPT_TEXT)  # a name from the file, maybe too long
        result.values = {h: kept_value(v, self.kept.get(h, KEPT_TEXT)) for h, v in source.values.items()}
        self.report.rejected.append(result)

    def _write(self, row: _Row, result: RowResult) -> list[RowResult]:
        """Create or update the row's customer; the report's list the row belongs to."""
        kind = row.kind()
        customer, rule = self.match(row, kind)
        if customer is None:
            return self.create(row, kind, result)
        return self.update(row, customer, rule, result)

    def create(self, row: _Row, kind: CustomerKind, result: RowResult) -> list[RowResult]:
        fields = row.customer_fields()
        contact = row.contact_fields(self.options.phone_region)
        company = kind == CustomerKind.COMPANY
        name = fields.get("company_name") if company else \
            f"{fields.get('first_name', '')} {fields.get('last_name', '')}"
        result.label = (name or "").strip()
        # The command refuses a strong duplicate (DuplicateSuspected: the row is skipped as a
        # duplicate with its candidates) and a company without a contact that has an e-mail.
        saved = create_customer(self.session, self.actor, self.options, kind=kind,
                                contacts=[contact] if contact else None, confirm_duplicate=False,
                                **fields)  # type: ignore[arg-type]
        result.customer_id, result.label = saved.id, saved.display_name
        result.fields = [row.column[f] for f in row.values if row.values[f] and f in row.column]
        return self.report.created

    def update(self, row: _Row, customer: Customer, rule: MatchRule | None,
               result: RowResult) -> list[RowResult]:
        visible = can(self.session, self.actor, customer.id, Right.VIEW) if self.actor else True
        result.customer_id = customer.id if visible else None
        result.label = customer.display_name if visible else _("a customer you cannot open")
        how = rule.phrase if rule else ""
        result.reason = _("Matched by %(rule)s.", rule=how)
        if self.on_match == OnMatch.SKIP:
            return self.report.skipped
        only_empty = self.on_match == OnMatch.UPDATE_EMPTY
        with self.session.no_autoflush:
            for name, value in row.customer_fields().items():
                if name in ("company_name", "registration_number", "vat_id") and not customer.is_company:
                    continue  # a person has no company fields; the kind is never changed by a file
                if name in ("first_name", "middle_name", "last_name", "title") and customer.is_company:
                    continue
                if only_empty and getattr(customer, name):
                    continue
                setattr(customer, name, value)
            contact_values = row.contact_fields(self.options.phone_region)
            if contact_values:
                if not customer.is_company:
                    raise RowRefused([("", _("Only a company has contacts; this row matches a person."))])
                self._merge_contact(customer, contact_values, only_empty)
        # Normalised first ("0905 123 456" is the stored "+421905123456"), so that only real
        # changes count; the save below checks everything again.
        validate_customer(self.session, customer, self.options)
        state = inspect(customer)
        changed = [row.column.get(n, n) for n in CUSTOMER_FIELDS
                   if n in state.attrs and state.attrs[n].history.has_changes()]
        if any(c.id is None or inspect(c).modified and _contact_changed(c) for c in customer.contacts):
            changed += [row.column[f] for f in CONTACT_FIELDS if f in row.column and row.get(f)]
        if not changed:
            raise _Unchanged  # the savepoint drops whatever the comparison touched
        try:
            save_customer(self.session, customer, self.actor, self.options)
        except PermissionDenied:
            raise PermissionDenied(_("The row matches %(customer)s (by %(rule)s), which you may not edit.",
                                     customer=result.label, rule=how)) from None
        result.fields = changed
        return self.report.updated

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


def run_import(session: DbSession, actor: Operator | None, rows: Sequence[SourceRow], mapping: dict[str, str],
               rules: Sequence[MatchRule | str], on_match: OnMatch | str, options: SaveOptions, *,
               dry_run: bool, batch_size: int = 200,
               progress: Callable[[int, int], None] | None = None, start: int = 0,
               after_batch: Callable[[int, ImportReport], None] | None = None) -> ImportReport:
    """Import `rows` (header → value) through `mapping` (header → target field of
    bulk_import_files.TARGET_FIELDS). A row is created, updated (with its changed columns),
    unchanged, skipped (matched, and `on_match` is skip), skipped as a duplicate (the command
    refused a strong candidate the rules did not match — a form would refuse it too) or
    rejected (with a reason per column). A rejected row writes nothing and costs no other row
    anything.

    A real run commits per batch of `batch_size`; `dry_run` writes nothing (one unit of work,
    rolled back), with the same report a real run would give. `progress(done, total)` is called
    as rows are processed. The import is its own door: it opens its units of work on `session`,
    which must not be inside one (RuntimeError).

    `start` skips the rows before it (a resumed run: an earlier one committed them); the report
    lists the rows this call processed, its `total` is all of `rows`. `after_batch(done, report)`
    is called inside each batch's unit of work once its rows are processed (`done` counts from
    the first row of `rows`): what it writes commits with the batch, and what it raises rolls
    the batch back and ends the import (services.run_leases.beat's LeaseLost, CancelRequested)."""
    if in_unit_of_work(session):
        raise RuntimeError("run_import commits batch by batch: call it outside a unit of work.")
    report = ImportReport(dry_run=dry_run, total=len(rows))
    importer = _Importer(session, actor, mapping, [MatchRule(r) for r in rules], OnMatch(on_match),
                         options, report)
    done = start
    with rolled_back(session) if dry_run else nullcontext():
        for batch in batches(islice(rows, start, None), batch_size):
            with batch_unit(session):
                for source in batch:
                    importer.process(source)
                    done += 1
                    if progress is not None:
                        progress(done, len(rows))
                if after_batch is not None:
                    after_batch(done, report)
    return report
