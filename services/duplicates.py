"""Finding existing customers and contacts that a new one may duplicate.

One function (`find_duplicates`) serves the quick form's live list, the wizard's first step, the
API and the importer; one (`refuse_duplicates`) makes the server refuse a strong match unless
the user confirmed "create anyway", so a script or a browser without JavaScript cannot slip a
duplicate past the list. Inactive records are found too, so users reactivate instead of
re-creating. Candidates come from indexes only — lower(email) expression indexes, the token index (phone
digits, name words exactly or by their first letters) and the unique company ID / VAT ID
columns — never a scan of every row; rapidfuzz then scores the few candidates in Python.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from models import Contact, ContactSearchToken, Customer, CustomerSearchToken, GlobalSettings, Operator
from models.enums import CustomerKind
from models.search_index import TOKEN_LENGTH, phone_tokens, prefix_upper_bound
from services.access import Right, customer_condition
from services.contact_info import format_phone, normalise_email, normalise_phone
from services.errors import FORM, ValidationFailed
from services.matching import Probe, Score, Subject, compact_id, name_key, score
from services.transactions import DbSession

NAME_PREFIX = 4  # name words are looked up by their first letters, so a typo later still matches
PER_LOOKUP = 200  # candidate ids taken from one index range; scoring sees at most a few hundred
DEFAULT_THRESHOLD = 88


@dataclass
class Candidate:
    """An existing record that may be the one being created. For a record the operator may not
    view, only `visible` False, the reasons and whom to ask are filled in."""

    record: str  # "customer" or "contact"
    id: int | None
    customer_id: int | None
    reasons: list[str]
    strong: bool
    score: int
    visible: bool = True
    label: str = ""
    customer_label: str = ""  # the customer a contact belongs to (the customer itself otherwise)
    kind: str = ""
    email: str = ""
    phone: str = ""
    status: str = ""
    inactive: bool = False
    ask: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


class DuplicateSuspected(ValidationFailed):
    """A strong match exists and the user has not confirmed "create anyway". The message on
    `confirm_duplicate` names the matches (or, for hidden ones, whom to ask)."""

    def __init__(self, candidates: list[Candidate]):
        self.candidates = candidates
        matches = "; ".join(f"{c.label} ({', '.join(c.reasons)})" if c.visible else
                            f"a record you cannot open ({', '.join(c.reasons)}): {c.ask}" for c in candidates)
        super().__init__({
            FORM: ["This looks like a customer or contact that already exists (see the matches). Open "
                   "or select the existing record, or confirm “create anyway” if it is really a "
                   "different one."],
            "confirm_duplicate": [f"Matches: {matches}."],
        })


def make_probe(*, kind: CustomerKind | str | None, name: str | None = None, email: str | None = None,
               phone: str | None = None, registration_number: str | None = None,
               vat_id: str | None = None, phone_region: str = "SK") -> Probe:
    """The typed values in comparable form; a value that does not parse is simply not compared."""
    company = str(getattr(kind, "value", kind)) == CustomerKind.COMPANY.value
    try:
        clean_email = normalise_email(email)
    except ValueError:
        clean_email = None
    try:
        clean_phone = normalise_phone(phone, phone_region)
    except ValueError:
        clean_phone = None
    return Probe(company=company, name_key=name_key(name, company=company),
                 email=clean_email.lower() if clean_email else None, phone=clean_phone,
                 registration_number=compact_id(registration_number) or None,
                 vat_id=compact_id(vat_id) or None)


def customer_probe(customer: Customer, phone_region: str) -> Probe:
    """A customer about to be created (not yet saved) as a probe."""
    company = customer.kind == CustomerKind.COMPANY or customer.kind == CustomerKind.COMPANY.value
    name = customer.company_name if company else f"{customer.first_name or ''} {customer.last_name or ''}"
    return make_probe(kind=CustomerKind.COMPANY if company else CustomerKind.PERSON, name=name,
                      email=customer.email, phone=customer.primary_phone,
                      registration_number=customer.registration_number, vat_id=customer.vat_id,
                      phone_region=phone_region)


def threshold_of(session: DbSession) -> int:
    row = session.get(GlobalSettings, 1)
    return row.duplicate_name_threshold if row is not None else DEFAULT_THRESHOLD


def _owners_with_all(model, owner, tokens: set[str]):
    """SELECT of the owners having every one of `tokens` exactly (B-tree lookups on the index)."""
    return (select(owner).where(model.token.in_(sorted(tokens))).group_by(owner)
            .having(func.count() == len(tokens)))


def _ids_by_name(session: DbSession, model, owner, key: str) -> set[int]:
    """Records having every word of the name, or all words but one exactly and the remaining
    one by its first letters (a typo later in that word); only when neither finds anything, any
    word by its first letters. Selective even for common names."""
    names = [w[:TOKEN_LENGTH] for w in key.split() if len(w) >= 2]
    if not names:
        return set()
    found = set(session.scalars(_owners_with_all(model, owner, set(names)).limit(PER_LOOKUP)))
    share = PER_LOOKUP // len(names)

    def near(word: str):
        prefix = word[:NAME_PREFIX]
        return select(owner).where(model.token >= prefix, model.token < prefix_upper_bound(prefix))

    for index, word in enumerate(names):
        others = set(names[:index] + names[index + 1:])
        query = near(word).where(owner.in_(_owners_with_all(model, owner, others))) if others else near(word)
        found.update(session.scalars(query.limit(share)))
    if not found and len(names) > 1:  # a typo in every word: each word by its first letters
        for word in names:
            found.update(session.scalars(near(word).limit(share)))
    return found


def _ids_by_email(session: DbSession, email: str) -> tuple[set[int], set[int]]:
    customers = session.scalars(select(Customer.id).where(or_(
        func.lower(Customer.email) == email, func.lower(Customer.secondary_email) == email)))
    contacts = session.scalars(select(Contact.id).where(func.lower(Contact.email) == email))
    return set(customers), set(contacts)


def _candidate_ids(session: DbSession, probe: Probe) -> tuple[set[int], set[int]]:
    customers: set[int] = set()
    contacts: set[int] = set()
    if probe.email:
        customers, contacts = _ids_by_email(session, probe.email)
    if probe.phone:
        digits = {max(phone_tokens(probe.phone), key=len)}  # the full international number
        customers.update(session.scalars(_owners_with_all(
            CustomerSearchToken, CustomerSearchToken.customer_id, digits).limit(PER_LOOKUP)))
        contacts.update(session.scalars(_owners_with_all(
            ContactSearchToken, ContactSearchToken.contact_id, digits).limit(PER_LOOKUP)))
    keys = [k for k in (probe.registration_number, probe.vat_id) if k]
    if keys:
        customers.update(session.scalars(select(Customer.id).where(or_(
            Customer.registration_number.in_(keys), Customer.vat_id.in_(keys)))))
    customers |= _ids_by_name(session, CustomerSearchToken, CustomerSearchToken.customer_id, probe.name_key)
    if not probe.company:  # a person may already be somebody's contact
        contacts |= _ids_by_name(session, ContactSearchToken, ContactSearchToken.contact_id, probe.name_key)
    return customers, contacts


def _emails(*values: str | None) -> frozenset[str]:
    return frozenset(v.lower() for v in values if v)


def customer_subject(customer: Customer) -> Subject:
    company = customer.kind == CustomerKind.COMPANY
    name = customer.company_name if company else f"{customer.first_name or ''} {customer.last_name or ''}"
    return Subject(company=company, name_key=name_key(name, company=company),
                   emails=_emails(customer.email, customer.secondary_email),
                   phones=frozenset(p for p in (customer.primary_phone, customer.secondary_phone) if p),
                   registration_number=compact_id(customer.registration_number),
                   vat_id=compact_id(customer.vat_id))


def contact_subject(contact: Contact) -> Subject:
    return Subject(company=False, name_key=name_key(f"{contact.first_name or ''} {contact.last_name}",
                                                    company=False),
                   emails=_emails(contact.email), phones=frozenset([contact.phone] if contact.phone else []))


def _ask(customer: Customer) -> str:
    names = ", ".join(op.full_name for op in customer.operators if op.is_active)
    return f"Ask {names}, or a maintainer." if names else "Ask a maintainer."


def _describe(result: Score, record: str, obj, customer: Customer, visible: bool) -> Candidate:
    candidate = Candidate(record=record, id=obj.id if visible else None,
                          customer_id=customer.id if visible else None, reasons=result.reasons,
                          strong=result.strong, score=result.value, visible=visible)
    if not visible:
        candidate.ask = _ask(customer)
        return candidate
    inactive = customer.status is not None and not customer.status.is_active
    if record == "contact":
        candidate.kind = f"{obj.role_label} of {customer.display_name}"
        candidate.email, candidate.phone = obj.email or "", format_phone(obj.phone)
    else:
        candidate.kind = "Company" if customer.kind == CustomerKind.COMPANY else "Private person"
        candidate.email, candidate.phone = customer.email or "", format_phone(customer.primary_phone)
    candidate.label = obj.display_name
    candidate.customer_label = customer.display_name
    candidate.status = customer.status.name if customer.status is not None else ""
    candidate.inactive = inactive
    return candidate


def find_duplicates(session: DbSession, actor: Operator | None, probe: Probe, *, threshold: int | None = None,
                    limit: int = 10, exclude_customer_id: int | None = None) -> list[Candidate]:
    """Existing customers and contacts that may be the record `probe` describes, best first,
    inactive ones included. Records `actor` may not view are described without their details
    (`actor` None is the system itself, which sees everything)."""
    # Read-only, and often called while the record being created is pending: never flush it.
    with session.no_autoflush:
        return _find(session, actor, probe, threshold, limit, exclude_customer_id)


def _find(session: DbSession, actor: Operator | None, probe: Probe, threshold: int | None, limit: int,
          exclude_customer_id: int | None) -> list[Candidate]:
    threshold = threshold if threshold is not None else threshold_of(session)
    customer_ids, contact_ids = _candidate_ids(session, probe)
    customer_ids.discard(exclude_customer_id)  # type: ignore[arg-type]
    scored: list[tuple[Score, str, object, Customer]] = []
    if customer_ids:
        for customer in session.scalars(select(Customer).where(
                Customer.id.in_(customer_ids), Customer.merged_into_id.is_(None)).options(
                selectinload(Customer.status), selectinload(Customer.operators))):
            result = score(probe, customer_subject(customer), threshold)
            if result:
                scored.append((result, "customer", customer, customer))
    if contact_ids:
        for contact in session.scalars(select(Contact).where(Contact.id.in_(contact_ids)).options(
                selectinload(Contact.customer).selectinload(Customer.status),
                selectinload(Contact.customer).selectinload(Customer.operators))):
            if contact.customer_id == exclude_customer_id:
                continue
            result = score(probe, contact_subject(contact), threshold)
            if result:
                scored.append((result, "contact", contact, contact.customer))
    scored.sort(key=lambda s: (-s[0].value, s[2].display_name))  # type: ignore[attr-defined]
    scored = scored[:limit]
    owners = {s[3].id for s in scored}
    if actor is None:  # the system itself (importer, CLI) sees every record
        visible = owners
    else:
        visible = set(session.scalars(select(Customer.id).where(
            Customer.id.in_(owners), customer_condition(session, actor, Right.VIEW)))) if owners else set()
    return [_describe(result, record, obj, owner, owner.id in visible)
            for result, record, obj, owner in scored]


def refuse_duplicates(session: DbSession, actor: Operator | None, probe: Probe, *, confirmed: bool) -> None:
    """Raise DuplicateSuspected when a strong match exists and the user has not confirmed."""
    if confirmed:
        return
    strong = [c for c in find_duplicates(session, actor, probe) if c.strong]
    if strong:
        raise DuplicateSuspected(strong)
