"""Merging two customers of the same kind into one, safely, and undoing it.

`propose_survivor` orders a pair as a person would keep it: the more complete record stays
(filled fields plus contacts, requests, computers, a portal account and a directory identity),
the older one when both are as complete — whichever record the merge was started from.
`merge_plan` shows the two records field by field with a proposed value per field, the one a
person would keep: a non-empty value over an empty one; when both are set, the survivor's —
except the fields a directory owns, which come from the record with the directory identity
(its next import writes them anyway), and the status, where an active one wins over an
inactive one (one of the two records is in use). A manager that is one of the two records is
never proposed: nobody may end up managing themselves — nor a manager who is managed by
one of the two (through anybody): the merge would close a loop of managers, which the edit form
forbids too. Such a manager is not proposed, and a merge told to take it is refused with a
message on the Manager field. It also says what moves, and the conflicts that a person must
decide. `merge_customers` does it in ONE transaction:
the chosen values go to the survivor; contacts, requests and computers move; workgroups and
operators are united; the portal account and the directory identity move or are decided; the
other record stays as a tombstone (merged_into_id) so old links and API ids resolve to the
survivor; the people the other record managed are managed by the survivor, and a survivor that
was managed by the other record loses that manager (nobody manages themselves). Contacts keep
their roles: the main contacts of both stay main contacts of the survivor. Nothing is deleted.
One audit event ("merge") records the survivor's changed fields as [old, new] (as History shows
any change) and everything needed to undo it, which `undo_merge` does as long as the survivor
has not changed since — once, however many press Undo at the same moment (the event and both
records are locked first), and only for what is still where the merge put it (a contact moved
on to a third company since stays there).

The undo record ("undo" in the event's changes) is kept out of the audit's masking — the notes
it gives back must come back exactly as they were, even a text that looks like ciphertext —
and is never shown (services.wording hides it). It holds no secret: the merge keeps secrets in
their encrypted columns (the C-Monitor passwords change places between the two records'
settings), and `_kept_for_undo` still masks whatever a secret's name or a sealed value would
bring into it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import inspect, select, update
from sqlalchemy.orm.attributes import flag_modified

from i18n import _
from models import (
    AuditEvent,
    Computer,
    Contact,
    Customer,
    CustomerStatus,
    IncomingMail,
    Operator,
    OutgoingMail,
    PortalAccount,
    Request,
)
from models.base import utcnow
from models.enums import CustomerKind, EmployeeType, PhoneType
from services.access import Right, can
from services.audit import MASK, changes_of, describe, is_secret, record
from services.customer_settings import settings_of
from services.errors import FORM, DomainError, PermissionDenied, StaleRecord, ValidationFailed
from services.secrets import SecretBox, is_sealed
from services.transactions import DbSession, flush, hold_transaction
from services.versions import ON_CURRENT, SeenVersion, check_seen_version

PERSON_FIELDS = ("first_name", "middle_name", "last_name", "employee_type", "title", "department_id",
                 "manager_id")
COMPANY_FIELDS = ("company_name", "registration_number", "vat_id")
COMMON_FIELDS = ("email", "secondary_email", "primary_phone", "primary_phone_type", "secondary_phone",
                 "secondary_phone_type", "sla_level_id", "site_id", "building_id", "location_code", "notes",
                 "photo", "status_id")
DIRECTORY_OWNED = {"first_name", "middle_name", "last_name", "email", "primary_phone", "primary_phone_type",
                   "secondary_phone", "secondary_phone_type", "title", "department_id", "manager_id"}
UNIQUE_FIELDS = ("registration_number", "vat_id")
IDENTITY = ("directory_guid", "sam_account_name", "directory_dn", "directory_source_id",
            "directory_synced_at")
ENUMS = {"employee_type": EmployeeType, "primary_phone_type": PhoneType, "secondary_phone_type": PhoneType}
SIDES = ("survivor", "other")


def _is_key(name: str) -> bool:
    column = Customer.__table__.columns.get(name)
    return column is not None and bool(column.foreign_keys)


def fields_of(kind: CustomerKind) -> tuple[str, ...]:
    return (COMPANY_FIELDS if kind == CustomerKind.COMPANY else PERSON_FIELDS) + COMMON_FIELDS


def _plain(value: Any) -> Any:
    """A column value as JSON (for the audit event that undo reads back)."""
    if isinstance(value, enum.Enum):
        return value.value
    return value.isoformat() if hasattr(value, "isoformat") else value


def _restore(name: str, value: Any) -> Any:
    if value is not None and name in ENUMS:
        return ENUMS[name](value)
    if value is not None and name == "directory_synced_at":
        from datetime import datetime

        return datetime.fromisoformat(value)
    return value


@dataclass
class FieldChoice:
    name: str
    survivor: Any
    other: Any
    proposed: str  # "survivor" or "other"


@dataclass
class MergePlan:
    survivor: Customer
    other: Customer
    fields: list[FieldChoice]
    moves: dict[str, int]
    conflicts: dict[str, str] = field(default_factory=dict)  # name → what must be decided


def _value(customer: Customer, name: str, pair: tuple[Customer, Customer]) -> Any:
    """A field's value as the merge weighs it: a manager that is one of the two records counts
    as none (after the merge it would be the survivor managing itself)."""
    value = getattr(customer, name)
    if name == "manager_id" and value in {c.id for c in pair}:
        return None
    return value


def _closes_loop(session: DbSession, manager_id: int | None, pair: tuple[Customer, Customer]) -> bool:
    """Whether `manager_id`, made the survivor's manager, would close a loop of managers: it is
    managed — directly or through others — by one of the two records (the other's reports are
    the survivor's after the merge)."""
    ids, seen = {c.id for c in pair}, set()
    with session.no_autoflush:
        while manager_id is not None and manager_id not in seen:
            if manager_id in ids:
                return True
            seen.add(manager_id)
            manager = session.get(Customer, manager_id)
            manager_id = manager.manager_id if manager is not None else None
    return False


def _proposal(session: DbSession, name: str, survivor: Customer, other: Customer) -> str:
    pair = (survivor, other)
    mine, theirs = _value(survivor, name, pair), _value(other, name, pair)
    if name == "manager_id" and (_closes_loop(session, mine, pair) or _closes_loop(session, theirs, pair)):
        # A manager who reports to one of the two is never proposed (see the module).
        return "other" if _closes_loop(session, mine, pair) and not _closes_loop(session, theirs, pair) \
            else "survivor"
    if theirs in (None, "") or mine == theirs:
        return "survivor"
    if mine in (None, ""):
        return "other"
    if name == "status_id" and not survivor.status.is_active and other.status.is_active:
        return "other"  # one of the two is in use: the merged customer stays active
    if name in DIRECTORY_OWNED and (survivor.directory_guid or other.directory_guid):
        return "survivor" if survivor.directory_guid else "other"
    return "survivor"


def completeness(session: DbSession, customer: Customer) -> int:
    """How much a record holds: its filled fields, its contacts, requests and computers, a
    portal account and a directory identity (one point each)."""
    filled = sum(1 for name in fields_of(customer.kind) if getattr(customer, name) not in (None, ""))
    linked = sum(len(session.scalars(select(model.id).where(model.customer_id == customer.id)).all())
                 for model in (Contact, Request, Computer))
    portal = session.scalar(select(PortalAccount.id).where(PortalAccount.customer_id == customer.id))
    return filled + linked + int(portal is not None) + int(bool(customer.directory_guid))


def propose_survivor(session: DbSession, first: Customer, second: Customer) -> tuple[Customer, Customer]:
    """(survivor, other) as a person would keep them: the more complete record stays; when both
    are as complete, the older one (created first; the lower id on the same instant). The order
    the two were given in does not matter."""
    def weight(customer: Customer) -> tuple[int, float, int]:
        return (-completeness(session, customer), customer.created_at.timestamp(), customer.id)

    kept, merged = sorted((first, second), key=weight)
    return kept, merged


def check_merge(session: DbSession, actor: Operator | None, survivor: Customer, other: Customer) -> None:
    """The rules of who may merge what; raises DomainError or PermissionDenied."""
    if survivor.id == other.id:
        raise DomainError(_("Choose two different customers."))
    if survivor.merged_into_id or other.merged_into_id:
        raise DomainError(_("One of these customers was already merged into another; merge that one."))
    if survivor.kind != other.kind:
        raise DomainError(_("A company and a person cannot be merged: they are different kinds of customer."))
    if actor is not None and not actor.is_maintainer and not all(
            can(session, actor, c.id, Right.EDIT) for c in (survivor, other)):
        raise PermissionDenied(_("Merging needs the edit right on both customers (or a maintainer)."))


def merge_plan(session: DbSession, actor: Operator | None, survivor: Customer, other: Customer,
               box: SecretBox) -> MergePlan:
    check_merge(session, actor, survivor, other)
    pair = (survivor, other)
    choices = [FieldChoice(name, _value(survivor, name, pair), _value(other, name, pair),
                           _proposal(session, name, survivor, other))
               for name in fields_of(survivor.kind)
               if _value(survivor, name, pair) is not None or _value(other, name, pair) is not None]

    def count(model, column) -> int:
        return len(session.scalars(select(model.id).where(column == other.id)).all())

    moves = {"contacts": count(Contact, Contact.customer_id), "requests": count(Request, Request.customer_id),
             "computers": count(Computer, Computer.customer_id),
             "workgroups": len(set(other.workgroups) - set(survivor.workgroups)),
             "operators": len(set(other.operators) - set(survivor.operators))}
    conflicts: dict[str, str] = {}
    portals = [session.scalar(select(PortalAccount).where(PortalAccount.customer_id == c.id))
               for c in (survivor, other)]
    moves["portal account"] = int(portals[1] is not None and portals[0] is None)
    if all(portals):
        conflicts["portal"] = _("Both have a portal account: keep one (the other is disabled and stays "
                                "with the merged record).")
    moves["directory identity"] = int(bool(other.directory_guid and not survivor.directory_guid))
    if survivor.directory_guid and other.directory_guid:
        conflicts["directory"] = _("Both come from a directory: keep one identity (the other account "
                                   "would be imported again as a new customer by its next import).")
    passwords = [box.decrypt(settings_of(session, c).cmonitor_password_encrypted) for c in (survivor, other)]
    if all(passwords) and passwords[0] != passwords[1]:
        conflicts["cmonitor_password"] = _("Different C-Monitor access passwords: keep one.")
    return MergePlan(survivor, other, choices, moves, conflicts)


def merge_customers(session: DbSession, actor: Operator | None, survivor: Customer, other: Customer,
                    box: SecretBox, *, choices: dict[str, str], decisions: dict[str, str],
                    seen_versions: tuple[SeenVersion, SeenVersion] = (ON_CURRENT, ON_CURRENT)) -> AuditEvent:
    """Merge `other` into `survivor` (see the module docstring). `choices` maps a field to
    "survivor" or "other" (missing: the plan's proposal); `decisions` settles every conflict;
    `seen_versions` are the versions of (survivor, other) the merge page showed.
    Raises VersionRequired / StaleRecord (services.versions), ValidationFailed (undecided
    conflicts), DomainError, PermissionDenied."""
    plan = merge_plan(session, actor, survivor, other, box)
    _check_versions(session, ((survivor, seen_versions[0]), (other, seen_versions[1])))
    undecided = [name for name in plan.conflicts if decisions.get(name) not in SIDES]
    if undecided:
        raise ValidationFailed({FORM: [plan.conflicts[n] for n in undecided]})
    differing_operators = set(other.operators) - set(survivor.operators)
    if differing_operators and actor is not None and not actor.is_maintainer:
        raise PermissionDenied(_("The other customer has operators this one does not: only a maintainer "
                                 "may assign operators, so only a maintainer can merge these two."))
    undo: dict[str, Any] = {"survivor": survivor.id, "other": other.id, "fields": {}, "other_fields": {}}
    taken = [c for c in plan.fields
             if choices.get(c.name, c.proposed) == "other" and c.other != c.survivor]
    _refuse_a_loop_of_managers(session, plan, choices)
    # What the result page names: values taken from the merged record, and values cleared (an
    # empty one taken, or a manager that was one of the two).
    undo["taken"] = [c.name for c in taken if c.other not in (None, "")]
    undo["cleared"] = [c.name for c in taken if c.other in (None, "")]
    with session.no_autoflush:
        given_up = [c for c in taken if c.name in UNIQUE_FIELDS]
        for choice in given_up:  # a unique key: the tombstone gives it up first
            undo["other_fields"][choice.name] = _plain(choice.other)
            setattr(other, choice.name, None)
    if given_up:
        flush(session)  # before the survivor takes it, whatever order the UPDATEs run in
    with session.no_autoflush:
        for choice in taken:
            undo["fields"][choice.name] = _plain(getattr(survivor, choice.name))
            setattr(survivor, choice.name, choice.other)
        if survivor.manager_id in (survivor.id, other.id):  # managed by the other: by nobody now
            undo["fields"].setdefault("manager_id", survivor.manager_id)
            survivor.manager_id = None
            if "manager_id" not in undo["cleared"]:
                undo["cleared"].append("manager_id")
        survivor_changes = changes_of(survivor)
        for choice in taken:  # changes_of records references by name, not their *_id numbers
            if choice.name not in survivor_changes and not _is_key(choice.name):
                old = undo["fields"][choice.name]
                survivor_changes[choice.name] = [describe(old), describe(choice.other)]
        undo["reports"] = _move_reports(session, survivor, other)
        undo["moved"] = _move_children(session, survivor, other)
        undo["workgroups"] = [w.id for w in other.workgroups if w not in survivor.workgroups]
        undo["operators"] = [o.id for o in differing_operators]
        survivor.workgroups.extend(w for w in other.workgroups if w not in survivor.workgroups)
        survivor.operators.extend(differing_operators)
        undo.update(_settle(session, survivor, other, decisions, box))
        inactive = session.scalar(select(CustomerStatus).where(CustomerStatus.is_active.is_(False))
                                  .order_by(CustomerStatus.id))
        undo["other_fields"]["status_id"] = other.status_id
        if inactive is not None:
            other.status = inactive
        other.merged_into_id, other.merged_at = survivor.id, utcnow()
        survivor.updated_by = actor
        survivor_changes.update(changes_of(survivor))
    flush(session)
    undo["survivor_version"] = survivor.version
    # What changed on the survivor, as History and the audit trail show any change ([old, new]);
    # "merged" names the two records; "undo" is what undo_merge reads back.
    event = record(session, actor, "merge", survivor,
                   {"merged": [other.display_name, survivor.display_name], **survivor_changes})
    _keep_undo(event, undo)
    record(session, actor, "merged_into", other, {"merged_into": [None, survivor.display_name]})
    flush(session)
    return event


def _refuse_a_loop_of_managers(session: DbSession, plan: MergePlan, choices: dict[str, str]) -> None:
    """The manager the merge would keep must not be managed by one of the two records (the
    edit form's rule): refused with a message on the Manager field."""
    pair = (plan.survivor, plan.other)
    for choice in plan.fields:
        if choice.name != "manager_id":
            continue
        kept = choice.other if choices.get(choice.name, choice.proposed) == "other" else choice.survivor
        if _closes_loop(session, kept, pair):
            manager = session.get(Customer, kept)
            raise ValidationFailed({"manager_id": [_(
                "%(manager)s is managed by one of the two records, so they cannot be the manager of the "
                "merged customer: nobody may manage themselves, not even through others. Keep the other "
                "manager, or change who manages %(manager)s first.",
                manager=manager.display_name if manager is not None else kept)]})


def _kept_for_undo(value: Any) -> Any:
    """The undo record as undo needs it — notes and other texts exactly as they were, not
    masked — yet with no secret: a secret's field or a sealed value would be masked (the merge
    puts none there; it keeps secrets in their encrypted columns)."""
    if is_sealed(value):
        return MASK
    if isinstance(value, dict):
        return {key: (None if item is None else MASK) if is_secret(str(key)) else _kept_for_undo(item)
                for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_kept_for_undo(item) for item in value]
    return value


def _keep_undo(event: AuditEvent, undo: dict[str, Any]) -> None:
    """Put the undo record into the event's changes past the audit's masking (which applies to
    an assigned `changes`; changing the stored document in place is not an assignment)."""
    if event.changes is None:
        event.changes = {}
    changes = event.changes
    assert changes is not None
    changes["undo"] = _kept_for_undo(undo)
    if inspect(event).persistent:
        flag_modified(event, "changes")


def _check_versions(session: DbSession, parties: tuple[tuple[Customer, SeenVersion], ...]) -> None:
    """Both records as of the versions the merge page showed, through the one check; locked in
    id order, so two merges of the same pair cannot wait for each other."""
    for party, seen in sorted(parties, key=lambda p: p[0].id):
        try:
            check_seen_version(session, "customer", party, seen)
        except StaleRecord as exc:
            message = exc.errors[FORM][0]
            raise StaleRecord(_("%(name)s: %(message)s", name=party.display_name, message=message),
                              exc.current_version) from None


# What belongs to a customer and moves to the survivor (and back on undo): the mail sent and
# read for its requests goes with them, so the survivor's Mail tab keeps their history.
MOVED = (("contacts", Contact), ("requests", Request), ("computers", Computer),
         ("outgoing_mail", OutgoingMail), ("incoming_mail", IncomingMail))


def _move_reports(session: DbSession, survivor: Customer, other: Customer) -> list[int]:
    """The people the other record managed are managed by the survivor (the same person)."""
    reports = session.scalars(select(Customer).where(Customer.manager_id == other.id,
                                                     Customer.id != survivor.id)).all()
    for person in reports:
        person.manager_id = survivor.id
    return [person.id for person in reports]


def _move_children(session: DbSession, survivor: Customer, other: Customer) -> dict[str, Any]:
    moved: dict[str, Any] = {}
    for name, model in MOVED:
        ids = list(session.scalars(select(model.id).where(model.customer_id == other.id)))
        moved[name] = ids
    taken = set(session.scalars(select(Computer.hostname).where(Computer.customer_id == survivor.id)))
    moved["renamed_computers"] = {}
    for computer in session.scalars(select(Computer).where(Computer.id.in_(moved["computers"]))):
        if computer.hostname in taken:  # (customer, hostname) is unique: keep both, renamed
            moved["renamed_computers"][str(computer.id)] = computer.hostname
            computer.hostname = f"{computer.hostname} (from {other.display_name})"[:255]  # stored data
    flush(session)
    for _name, model in MOVED:
        session.execute(update(model).where(model.customer_id == other.id).values(customer_id=survivor.id)
                        .execution_options(synchronize_session="fetch"))
    session.expire(other, ["contacts"])
    session.expire(survivor, ["contacts"])
    return moved


def _settle(session: DbSession, survivor: Customer, other: Customer, decisions: dict[str, str],
            box: SecretBox) -> dict[str, Any]:
    """Portal account, directory identity and C-Monitor password: moved or as decided."""
    undo: dict[str, Any] = {}
    mine = session.scalar(select(PortalAccount).where(PortalAccount.customer_id == survivor.id))
    theirs = session.scalar(select(PortalAccount).where(PortalAccount.customer_id == other.id))
    if theirs is not None and mine is None:
        undo["portal_moved"] = theirs.id
        theirs.customer_id = survivor.id
    elif theirs is not None and mine is not None and decisions.get("portal") == "other":
        # Each customer owns at most one account (and an account must have an owner), so the
        # accounts' contents change places: the survivor's row now signs in as the other's did.
        undo["portal_swapped"] = {"was_active": mine.is_active}
        _swap_accounts(session, mine, theirs)
        theirs.is_active = False
    elif theirs is not None:
        undo["portal_disabled"] = {"id": theirs.id, "was_active": theirs.is_active}
        theirs.is_active = False
    if other.directory_guid and (not survivor.directory_guid or decisions.get("directory") == "other"):
        undo["identity"] = {"survivor": {k: _plain(getattr(survivor, k)) for k in IDENTITY},
                            "other": {k: _plain(getattr(other, k)) for k in IDENTITY}}
        values = {k: getattr(other, k) for k in IDENTITY}
        for key in IDENTITY:
            setattr(other, key, None)
        flush(session)  # the GUID is unique: the tombstone gives it up first
        for key, value in values.items():
            setattr(survivor, key, value)
    if decisions.get("cmonitor_password") == "other":
        # The two passwords change places: the survivor's own waits on the merged record's
        # settings, encrypted like every secret (and rotated with them), so the undo record —
        # an audit event — holds no secret, not even its ciphertext.
        _swap_cmonitor_passwords(session, survivor, other)
        undo["cmonitor_swapped"] = True
    return undo


ACCOUNT_FIELDS = ("username", "password_hash", "security_group_id", "must_change_password",
                  "reset_token_hash", "reset_expires_at", "is_active", "last_login_at")


def _swap_accounts(session: DbSession, first: PortalAccount, second: PortalAccount) -> None:
    values = [{k: getattr(a, k) for k in ACCOUNT_FIELDS} for a in (first, second)]
    first.username = f"~merging-{first.id}"  # user names are unique: free one for the swap
    flush(session)
    for account, data in ((second, values[0]), (first, values[1])):
        for key, value in data.items():
            setattr(account, key, value)
        flush(session)


def survivor_of(session: DbSession, customer: Customer | None) -> Customer | None:
    """Follow merged_into_id to the customer that is still alive (chains of merges too)."""
    seen = set()
    while customer is not None and customer.merged_into_id is not None and customer.id not in seen:
        seen.add(customer.id)
        customer = session.get(Customer, customer.merged_into_id)
    return customer


def _undo_of(event: AuditEvent) -> dict[str, Any] | None:
    undo = (event.changes or {}).get("undo") if event.action == "merge" else None
    return undo if isinstance(undo, dict) else None


def why_not_undone(session: DbSession, event: AuditEvent) -> str | None:
    """Why the merge of `event` can no longer be undone (None: it still can)."""
    undo = _undo_of(event)
    if not undo or undo.get("undone"):
        return _("This event is not a merge that can still be undone.")
    survivor, other = session.get(Customer, undo["survivor"]), session.get(Customer, undo["other"])
    if survivor is None or other is None or other.merged_into_id != survivor.id \
            or survivor.merged_into_id is not None:
        return _("The merged records no longer exist as they were.")
    if survivor.version != undo["survivor_version"]:
        return _("%(name)s was changed after the merge, so it cannot be undone automatically.",
                 name=survivor.display_name)
    return None


def undo_merge(session: DbSession, actor: Operator | None, event: AuditEvent) -> Customer:
    """Undo a merge from its audit event, while the survivor has not changed since (maintainers).
    The event and both records are locked and read again first: of two undos at the same
    moment, the second waits, then finds the merge undone and is refused with words."""
    if actor is not None and not actor.is_maintainer:
        raise PermissionDenied(_("Only a maintainer may undo a merge."))
    hold_transaction(session)  # SQLite: the write lock now, before anything is read again
    session.refresh(event, with_for_update=True)
    undo = _undo_of(event)
    if undo and not undo.get("undone"):
        for customer_id in sorted({undo["survivor"], undo["other"]}):  # locked in id order
            customer = session.get(Customer, customer_id)
            if customer is not None:
                session.refresh(customer, with_for_update=True)
    refusal = why_not_undone(session, event)
    if refusal is not None or undo is None:
        raise DomainError(refusal or _("This event is not a merge that can still be undone."))
    survivor, other = session.get(Customer, undo["survivor"]), session.get(Customer, undo["other"])
    assert survivor is not None and other is not None
    with session.no_autoflush:
        for name, value in undo["fields"].items():
            setattr(survivor, name, _restore(name, value))
    flush(session)  # the survivor gives a unique key back before the merged record takes it again
    with session.no_autoflush:
        for name, value in undo["other_fields"].items():
            if name != "status_id":
                setattr(other, name, _restore(name, value))
        identity = undo.get("identity")
        if identity:
            for key in IDENTITY:
                setattr(survivor, key, None)
            flush(session)
            for side, obj in (("survivor", survivor), ("other", other)):
                for key, value in identity[side].items():
                    setattr(obj, key, _restore(key, value))
        # Only what is still where the merge put it goes back: a contact moved on to a third
        # company since, a computer given away, stay where they are now.
        renamed = [int(i) for i in undo["moved"]["renamed_computers"]]
        back = set(session.scalars(select(Computer.id).where(Computer.id.in_(renamed),
                                                             Computer.customer_id == survivor.id)))
        for name, model in MOVED:
            if undo["moved"].get(name):  # older merge events did not move the mail
                session.execute(update(model).where(model.id.in_(undo["moved"][name]),
                                                    model.customer_id == survivor.id)
                                .values(customer_id=other.id).execution_options(synchronize_session="fetch"))
        for computer in session.scalars(select(Computer).where(Computer.id.in_(back))):
            computer.hostname = undo["moved"]["renamed_computers"][str(computer.id)]
        added_groups = set(undo["workgroups"])
        survivor.workgroups = [w for w in survivor.workgroups if w.id not in added_groups]
        added_ops = set(undo["operators"])
        survivor.operators = [o for o in survivor.operators if o.id not in added_ops]
        _unsettle(session, survivor, other, undo)
        other.status_id = undo["other_fields"]["status_id"]
        other.merged_into_id, other.merged_at = None, None
        for person in session.scalars(select(Customer).where(Customer.id.in_(undo.get("reports", [])),
                                                             Customer.manager_id == survivor.id)):
            person.manager_id = other.id
        session.expire(other, ["contacts"])
        session.expire(survivor, ["contacts"])
    flush(session)
    _keep_undo(event, {**undo, "undone": True})
    record(session, actor, "unmerge", survivor, {"unmerged": [survivor.display_name, other.display_name]})
    flush(session)
    return other


def _unsettle(session: DbSession, survivor: Customer, other: Customer, undo: dict[str, Any]) -> None:
    def account(account_id: int) -> PortalAccount:
        found = session.get(PortalAccount, account_id)
        if found is None:
            raise DomainError(_("A portal account of the merge no longer exists."))
        return found

    if "portal_moved" in undo and account(undo["portal_moved"]).customer_id == survivor.id:
        account(undo["portal_moved"]).customer_id = other.id
    if "portal_swapped" in undo:
        mine = session.scalar(select(PortalAccount).where(PortalAccount.customer_id == survivor.id))
        theirs = session.scalar(select(PortalAccount).where(PortalAccount.customer_id == other.id))
        if mine is None or theirs is None:
            raise DomainError(_("A portal account of the merge no longer exists."))
        _swap_accounts(session, mine, theirs)
        mine.is_active = undo["portal_swapped"]["was_active"]
    if "portal_disabled" in undo:
        account(undo["portal_disabled"]["id"]).is_active = undo["portal_disabled"]["was_active"]
    if undo.get("cmonitor_swapped"):
        _swap_cmonitor_passwords(session, survivor, other)


def _swap_cmonitor_passwords(session: DbSession, survivor: Customer, other: Customer) -> None:
    own, their = settings_of(session, survivor), settings_of(session, other)
    own.cmonitor_password_encrypted, their.cmonitor_password_encrypted = (
        their.cmonitor_password_encrypted, own.cmonitor_password_encrypted)
    session.add_all([own, their])  # either may be the defaults, not stored yet
