"""Finding existing customers and contacts that a new one may duplicate.

One function (`find_duplicates`) serves the quick form's live list, the wizard's first step, the
API and the importer; one (`refuse_duplicates`) makes the server refuse a strong match unless
the user confirmed "create anyway", so a script or a browser without JavaScript cannot slip a
duplicate past the list — and, holding the probe's keys (services.key_locks) until the create
commits, neither can twenty of them at once. Candidates come from bounded index lookups
(services.candidates); the evidence is weighed in Python (services.matching) and the best comes
first. Inactive records are found too, so users reactivate instead of re-creating. A record the
operator may not view is listed only when an identifying key matches, and then only as "a
record with this e-mail exists — ask X": no name, no score.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import ColumnElement, Select, String, bindparam, case, cast, literal, null, select, union_all

from i18n import _, _l
from models import Contact, Customer, CustomerStatus, Operator, customer_operator
from models.enums import CustomerKind
from models.names import name_key, name_words, person_name
from services.access import Right, customer_condition
from services.candidates import (
    Batch,
    Found,
    add_key_lookups,
    add_name_lookups,
    count_tokens,
    find_by_name,
    find_by_name_again,
    name_token,
)
from services.contact_info import format_phone, normalise_email, normalise_phone
from services.errors import FORM, ValidationFailed
from services.key_locks import lock_keys
from services.matching import Evidence, Probe, Subject, compact_id, weigh
from services.transactions import DbSession

DEFAULT_THRESHOLD = 88
COMPANY = CustomerKind.COMPANY.value
# What is compared of a typed name: more than any name column holds (255), so a longer paste is
# refused by the field check anyway, and its matching cost stays bounded whatever is pasted.
PROBE_TEXT_LENGTH = 512
SEARCH_HIT_WEIGHT = 0.25  # found by the typed words, e.g. in its e-mail, but the name says nothing


@dataclass
class Candidate:
    """An existing record that may be the one being created. For a record the operator may not
    view, only `visible` False, the identifying keys it shares and whom to ask are filled in."""

    record: str  # "customer" or "contact"
    id: int | None
    customer_id: int | None
    reasons: list[str]
    strong: bool
    score: float | None  # the evidence in bits; None for a record the operator may not view
    visible: bool = True
    label: str = ""
    customer_label: str = ""  # the customer a contact belongs to (the customer itself otherwise)
    kind: str = ""
    email: str = ""
    phone: str = ""
    status: str = ""
    inactive: bool = False
    ask: str = ""
    # `reasons` are keys (English, compared by code and clients); these are what a person reads.
    reason_labels: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class DuplicateSuspected(ValidationFailed):
    """A strong match exists and the user has not confirmed "create anyway". The message on
    `confirm_duplicate` names the matches (or, for hidden ones, whom to ask)."""

    def __init__(self, candidates: list[Candidate]):
        self.candidates = candidates
        matches = "; ".join(
            _("%(label)s (%(reasons)s)", label=c.label, reasons=reason_list(c.reasons)) if c.visible else
            _("a record you cannot open (%(reasons)s): %(ask)s", reasons=reason_list(c.reasons),
              ask=c.ask.rstrip("."))
            for c in candidates)
        super().__init__({
            FORM: [_("This looks like a customer or contact that already exists (see the matches). Open "
                     "or select the existing record, or confirm “create anyway” if it is really a "
                     "different one.")],
            "confirm_duplicate": [_("Matches: %(matches)s.", matches=matches)],
        })


# The reasons a candidate matches are English keys (services.matching; the API and the pages'
# scripts compare them); a person reads them through reason_label().
REASON_LABELS = {
    "same e-mail": _l("same e-mail"),
    "same phone": _l("same phone"),
    "same company ID": _l("same company ID"),
    "same VAT ID": _l("same VAT ID"),
    "same name": _l("same name"),
    "same company name": _l("same company name"),
    "similar name (a typo?)": _l("similar name (a typo?)"),
    "name starts with what you typed": _l("name starts with what you typed"),
    "but a different company ID": _l("but a different company ID"),
    "matches what you typed": _l("matches what you typed"),
}
_NAMESAKES = re.compile(r"^same name \((\d+) records bear it\)$")


def reason_label(key: str) -> str:
    """A match reason (an English key) as the reader's language says it; an unknown key as it is."""
    label = REASON_LABELS.get(key)
    if label is not None:
        return str(label)
    namesakes = _NAMESAKES.match(key)
    if namesakes:
        return _("same name (%(count)s records bear it)", count=int(namesakes.group(1)))
    return key


def reason_list(keys: list[str]) -> str:
    """The reasons for a person, comma-joined."""
    return ", ".join(reason_label(k) for k in keys)


def _clean_email(value: str | None) -> str | None:
    try:
        return normalise_email(value)
    except ValueError:
        return None


def _email(value: str | None) -> str | None:
    clean = _clean_email(value)
    return clean.lower() if clean else None


def _ascii_lower(value: str | None) -> str | None:
    clean = _clean_email(value)
    return "".join(c.lower() if c.isascii() else c for c in clean) if clean else None


def _phone(value: str | None, region: str) -> str | None:
    try:
        return normalise_phone(value, region)
    except ValueError:
        return None


def make_probe(*, kind: CustomerKind | str | None = None, name: str | None = None, email: str | None = None,
               phone: str | None = None, registration_number: str | None = None,
               vat_id: str | None = None, phone_region: str = "SK", partial: bool = False,
               emails: tuple[str | None, ...] = (), phones: tuple[str | None, ...] = ()) -> Probe:
    """The typed values in comparable form; a value that does not parse is simply not compared.
    `kind` None (or unknown) looks for both kinds; `partial` marks a live search whose last word
    is still being typed."""
    value = str(getattr(kind, "value", kind) or "")
    name = (name or "")[:PROBE_TEXT_LENGTH]
    company = {CustomerKind.COMPANY.value: True, CustomerKind.PERSON.value: False}.get(value)
    return Probe(
        text=name, company=company, partial=partial,
        emails=frozenset(e for e in map(_email, (email, *emails)) if e),
        email_forms=frozenset(e for e in map(_ascii_lower, (email, *emails)) if e),
        phones=frozenset(p for p in (_phone(v, phone_region) for v in (phone, *phones)) if p),
        registration_number=_typed_id(registration_number), vat_id=_typed_id(vat_id))


def _typed_id(value: str | None) -> str:
    """A typed company ID or VAT ID as stored ones compare; what no ID holds (a control
    character, a NUL that PostgreSQL refuses to even compare) is simply not part of it."""
    return re.sub(r"[^0-9A-Z]", "", compact_id(value))


def customer_probe(customer: Customer, phone_region: str) -> Probe:
    """A customer about to be created (not yet saved), with its new contacts, as a probe."""
    company = customer.kind in (CustomerKind.COMPANY, CustomerKind.COMPANY.value)
    name = customer.company_name if company else person_name(customer.first_name, customer.middle_name,
                                                              customer.last_name)
    return make_probe(kind=CustomerKind.COMPANY if company else CustomerKind.PERSON, name=name,
                      email=customer.email, phone=customer.primary_phone,
                      registration_number=customer.registration_number, vat_id=customer.vat_id,
                      phone_region=phone_region, emails=(customer.secondary_email,
                                                         *(c.email for c in customer.contacts)),
                      phones=(customer.secondary_phone, *(c.phone for c in customer.contacts)))


def _lower(*values: str | None) -> frozenset[str]:
    return frozenset(v.lower() for v in values if v)


@dataclass
class _Read:
    """A candidate record as read once: what is weighed and what is shown."""

    subject: Subject
    customer_id: int
    label: str
    customer_label: str
    company: bool
    email: str
    phone: str  # as stored (E.164): formatted only for the few that are shown
    status: str
    active: bool
    main: bool
    visible: bool


def _read(session: DbSession, found: Found, visible: ColumnElement | None) -> dict[tuple[str, int], _Read]:
    """Every candidate of `found` — customers and contacts, live ones only — in one statement,
    as columns (no ORM objects for the hundreds that are only weighed), with what the list shows
    and whether `visible` lets the actor view it: one round trip for what used to be five."""
    if not (found.customers or found.contacts):
        return {}
    shape = (bool(found.customers), bool(found.contacts))
    statement = _read_statement(*shape) if visible is None else _build_read(*shape, visible)
    params = {"customer_ids": sorted(found.customers), "contact_ids": sorted(found.contacts)}
    read = {}
    for (record, record_id, customer_id, kind, company_name, first, middle, last, email, second_email, phone,
         second_phone, registration_number, vat_id, label, customer_label, status, active, main,
         seen) in session.execute(statement, {k: v for k, v in params.items() if v}).tuples():
        company = record == "customer" and kind == COMPANY
        name = company_name if company else person_name(first, middle, last)
        subject = Subject(company=company, words=tuple(name_words(name, company=company)),
                          emails=_lower(email, second_email),
                          phones=frozenset(p for p in (phone, second_phone) if p),
                          registration_number=compact_id(registration_number) if registration_number else "",
                          vat_id=compact_id(vat_id) if vat_id else "")
        read[(record, record_id)] = _Read(
            subject=subject, customer_id=customer_id, label=label, customer_label=customer_label,
            company=company, email=email or "", phone=phone or "", status=status, active=bool(active),
            main=bool(main), visible=bool(seen))
    return read


@lru_cache(maxsize=4)
def _read_statement(customers: bool, contacts: bool) -> Any:
    """The statement a maintainer's lookup reads its candidates with, built once per shape."""
    return _build_read(customers, contacts, None)


def _build_read(customers: bool, contacts: bool, visible: ColumnElement | None) -> Any:
    seen: Any = literal(True) if visible is None else case((visible, True), else_=False)
    branches: list[Any] = []
    if customers:
        branches.append(_customer_columns(seen).where(
            Customer.id.in_(bindparam("customer_ids", expanding=True))))
    if contacts:
        branches.append(_contact_columns(seen).where(
            Contact.id.in_(bindparam("contact_ids", expanding=True))))
    return branches[0] if len(branches) == 1 else union_all(*branches)


def _customer_columns(seen: Any) -> Select:
    return select(
        literal("customer").label("record"), Customer.id, Customer.id.label("customer_id"),
        cast(Customer.kind, String).label("kind"), Customer.company_name, Customer.first_name,
        Customer.middle_name, Customer.last_name, Customer.email, Customer.secondary_email,
        Customer.primary_phone.label("phone"), Customer.secondary_phone, Customer.registration_number,
        Customer.vat_id, Customer.display_name, Customer.display_name.label("customer_label"),
        CustomerStatus.name.label("status"), CustomerStatus.is_active, literal(False).label("is_main"),
        seen.label("seen"),
    ).join(CustomerStatus, CustomerStatus.id == Customer.status_id).where(Customer.merged_into_id.is_(None))


def _contact_columns(seen: Any) -> Select:
    none: Any = null()
    return select(
        literal("contact").label("record"), Contact.id, Contact.customer_id, none.label("kind"),
        none.label("company_name"), Contact.first_name, none.label("middle_name"), Contact.last_name,
        Contact.email, none.label("secondary_email"), Contact.phone, none.label("secondary_phone"),
        none.label("registration_number"), none.label("vat_id"), Contact.display_name,
        Customer.display_name.label("customer_label"), CustomerStatus.name.label("status"),
        CustomerStatus.is_active, Contact.is_main, seen.label("seen"),
    ).join(Customer, Customer.id == Contact.customer_id).join(
        CustomerStatus, CustomerStatus.id == Customer.status_id).where(Customer.merged_into_id.is_(None))


class _Frequencies:
    """How many records bear a name. Weighing runs twice: the first pass only notes which names
    it asks about, so they are counted together in one statement."""

    def __init__(self, session: DbSession, found: Found):
        self.session, self.found = session, found
        self.asked: set[str] = set()
        self.asked_prefix = False
        self.counts: dict[str, int] | None = None
        self.prefix_count = 1
        self.threshold: int | None = None

    def __call__(self, relation: str, subject: Subject) -> int:
        if relation in ("prefix", "part") and self.found.typed_key:
            self.asked_prefix = True
            return self.prefix_count
        token = name_token(subject.words)
        if token is None:
            return 1
        if self.counts is None:
            self.asked.add(token)
            return 1
        return self.counts.get(token) or 1

    def count_what_was_asked(self) -> int:
        """Count the names asked about; return about how many records there are."""
        key = self.found.typed_key
        if key is not None and not self.found.typed_prefix:
            self.asked.add(key)  # a part of a name: how many bear that part exactly
        prefix = key if self.asked_prefix and self.found.typed_prefix else None
        counted = count_tokens(self.session, self.asked, prefix)
        self.counts, self.threshold = counted.namesakes, counted.threshold
        self.prefix_count = (counted.started if prefix is not None else self.counts.get(key or "", 0)) or 1
        return counted.registry


def _similar_enough(probe: Probe, subject: Subject, threshold: int) -> bool:
    """The maintainer's threshold for names of several words: one letter off in a one-word name
    is always close enough, in a long name the rest must agree too."""
    typed = name_key(probe.text, company=subject.company)
    if len(subject.words) < 2 or len(typed.split()) < 2:
        return True
    return fuzz.token_sort_ratio(typed, " ".join(sorted(subject.words))) >= threshold


def _weighed(session: DbSession, probe: Probe, found: Found, read: dict[tuple[str, int], _Read],
             threshold: int | None) -> list[tuple[Evidence, str, int, int]]:
    """(evidence, record, id, customer id) for every candidate with some evidence, best first."""
    frequency = _Frequencies(session, found)
    for candidate in read.values():
        weigh(probe, candidate.subject, frequency=frequency, registry=1)
    registry = frequency.count_what_was_asked()
    if threshold is None:
        threshold = DEFAULT_THRESHOLD if frequency.threshold is None else frequency.threshold
    searched = {"customer": found.searched_customers, "contact": found.searched_contacts}
    weighed = []
    for (record, record_id), candidate in read.items():
        subject = candidate.subject
        evidence = weigh(probe, subject, frequency=frequency, registry=registry)
        if evidence is not None and evidence.name == "typo" and not evidence.key_reasons:
            if not _similar_enough(probe, subject, threshold):
                evidence = None
        if evidence is None and record_id in searched[record]:
            evidence = Evidence(reasons=["matches what you typed"], weight=SEARCH_HIT_WEIGHT, name="search")
        if evidence is not None:
            weighed.append((evidence, record, record_id, candidate.customer_id))
    # Best evidence first; among equals the newest record, the likeliest to be created again.
    weighed.sort(key=lambda w: (-w[0].weight, -w[3], w[1], -w[2]))
    return weighed


def find_duplicates(session: DbSession, actor: Operator | None, probe: Probe, *, threshold: int | None = None,
                    limit: int = 10, exclude_customer_id: int | None = None) -> list[Candidate]:
    """Existing customers and contacts that may be the record `probe` describes, best first,
    inactive ones included. Records `actor` may not view are listed only for an identifying key,
    without their details (`actor` None is the system itself, which sees everything)."""
    # Read-only, and often called while the record being created is pending: never flush it.
    with session.no_autoflush:
        # A maintainer sees every live record: no condition to join (tombstones drop out when
        # the candidates are read).
        everything = actor is None or (actor.is_active and actor.is_maintainer)
        visible = None if everything else customer_condition(session, actor, Right.VIEW)
        found, batch = Found(), Batch()
        add_key_lookups(probe, batch)
        both_wrong = add_name_lookups(session, probe, visible, batch, found)
        batch.run(session, found)
        find_by_name_again(session, probe, visible, found, both_wrong)
        found.customers.discard(exclude_customer_id)  # type: ignore[arg-type]
        read = _read(session, found, visible)
        weighed = [w for w in _weighed(session, probe, found, read, threshold) if w[3] != exclude_customer_id]
        seen = {w[3] for w in weighed if read[(w[1], w[2])].visible}
        weighed = _as_the_actor_may_know(weighed, seen, everything)[:limit]
        return _describe(session, weighed, read, seen, everything)


TYPED_KEYS = ("same e-mail", "same phone", "same company ID", "same VAT ID")


def _as_the_actor_may_know(weighed: list[tuple[Evidence, str, int, int]], seen: set[int], everything: bool
                           ) -> list[tuple[Evidence, str, int, int]]:
    """What an operator may learn. A hidden record is worth a line only for a key they typed —
    not its name, not its place in the ranking (hidden ones come first, in a fixed order), not how
    many records bear a name: a namesake count would count records they may not view."""
    if everything:
        return weighed
    hidden, shown = [], []
    for evidence, record, record_id, customer_id in weighed:
        if customer_id in seen:
            evidence.reasons = [re.sub(r"^same name \(\d+ records bear it\)$", "same name", r)
                                for r in evidence.reasons]
            shown.append((evidence, record, record_id, customer_id))
            continue
        keys = [r for r in evidence.key_reasons if r in TYPED_KEYS]
        if keys:
            hidden.append((Evidence(reasons=keys, key_reasons=keys), record, record_id, customer_id))
    hidden.sort(key=lambda w: (TYPED_KEYS.index(w[0].key_reasons[0]), w[1]))
    return hidden + shown


def _asks(session: DbSession, customer_ids: set[int]) -> dict[int, str]:
    """Whom to ask about each hidden customer: its active operators, or a maintainer."""
    names: dict[int, list[str]] = {i: [] for i in customer_ids}
    if customer_ids:
        assigned = customer_operator.c
        rows = session.execute(select(assigned.customer_id, Operator.first_name, Operator.last_name)
                               .join(Operator, Operator.id == assigned.operator_id)
                               .where(assigned.customer_id.in_(customer_ids), Operator.is_active)
                               .order_by(Operator.last_name, Operator.first_name))
        for customer_id, first, last in rows:
            names[customer_id].append(f"{first} {last}")
    return {i: _("Ask %(names)s, or a maintainer.", names=", ".join(n)) if n else _("Ask a maintainer.")
            for i, n in names.items()}


def _describe(session: DbSession, weighed: list[tuple[Evidence, str, int, int]],
              read: dict[tuple[str, int], _Read], seen: set[int], everything: bool) -> list[Candidate]:
    """The candidates as the user sees them."""
    asks = _asks(session, {w[3] for w in weighed} - seen)
    described = []
    for evidence, record, record_id, customer_id in weighed:
        if customer_id not in seen:
            described.append(Candidate(record=record, id=None, customer_id=None, reasons=evidence.key_reasons,
                                       strong=True, score=None, visible=False, ask=asks[customer_id],
                                       reason_labels=[reason_label(k) for k in evidence.key_reasons]))
            continue
        shown = read[(record, record_id)]
        candidate = Candidate(record=record, id=record_id, customer_id=customer_id, reasons=evidence.reasons,
                              strong=evidence.strong, score=round(evidence.weight, 1) if everything else None,
                              label=shown.label, customer_label=shown.customer_label, status=shown.status,
                              inactive=not shown.active, email=shown.email, phone=format_phone(shown.phone),
                              reason_labels=[reason_label(k) for k in evidence.reasons])
        if record == "contact":
            candidate.kind = (_("Main contact of %(customer)s", customer=shown.customer_label) if shown.main
                              else _("Contact of %(customer)s", customer=shown.customer_label))
        else:
            candidate.kind = _("Company") if shown.company else _("Private person")
        described.append(candidate)
    return described


def refuse_duplicates(session: DbSession, actor: Operator | None, probe: Probe, *, confirmed: bool) -> None:
    """Raise DuplicateSuspected when a strong match exists and the user has not confirmed. Holds
    the probe's keys first (services.key_locks), so a create running at the same time with the
    same e-mail, phone, company ID, VAT ID or company name waits and then sees this one."""
    if confirmed:
        return
    lock_keys(session, probe.keys())
    strong = [c for c in find_duplicates(session, actor, probe) if c.strong]
    if strong:
        raise DuplicateSuspected(strong)


def same_name_customer_ids(session: DbSession, kind: CustomerKind, name: str) -> list[int]:
    """Live customers of `kind` whose name is `name` (the importer's name match rule): never a
    merged-away tombstone."""
    company = kind == CustomerKind.COMPANY
    words = name_words(name, company=company)
    if not words:
        return []
    probe = Probe(text=name, company=company)
    found = Found()
    find_by_name(session, probe, None, found)
    read = _read(session, Found(customers=found.customers), None)
    wanted = sorted(words)
    return sorted(i for (_record, i), candidate in read.items()
                  if candidate.subject.company == company and sorted(candidate.subject.words) == wanted)
