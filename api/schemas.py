"""The API's request and response shapes (marshmallow; they make the OpenAPI document too).
Field names are DESIGN.md's. Unknown fields in a request are refused (422), never ignored.

Every text that is stored in a column takes its limit from that column (services.limits), so a
too-long value is a 422 on its field here — never a database error (PostgreSQL) or a silently
stored overflow (SQLite). Free text in unlimited (Text) columns keeps a sanity limit.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate
from sqlalchemy.orm import InstrumentedAttribute

from models import Computer, Contact, Customer, Request
from models.enums import CustomerKind, EmployeeType, PhoneType, RequestStatus
from services.access import MAX_ID
from services.limits import max_length, too_long

KINDS = [k.value for k in CustomerKind]
PHONE_TYPES = [t.value for t in PhoneType]
NOTES_LIMIT = 10_000  # Text columns: no database limit, only a sane size for one request
DESCRIPTION_LIMIT = 20_000


def text(column: InstrumentedAttribute, *, required: bool = False, allow_none: bool = True,
         **kw) -> fields.String:
    """A text field limited by its column (`text(Customer.company_name)` → at most 200); a
    required one is also not empty, an optional one may be null unless told otherwise."""
    limit = max_length(column)
    if not limit:
        raise TypeError(f"{column} has no length: give the field a limit of its own")
    if required:
        return fields.String(required=True, validate=[validate.Length(min=1), at_most(limit)], **kw)
    return fields.String(allow_none=allow_none, validate=at_most(limit), **kw)


def at_most(limit: int):
    """The domain's own words for a value longer than its column (services.limits.too_long)."""
    def check(value: str) -> None:
        if len(value) > limit:
            raise ValidationError(too_long(limit, len(value)))
    return check


class Shown:
    """A row with the extra values its answer carries (a computer's `settings_differ`, a
    request's recipients…), read through to the row otherwise — nothing is stuck onto the ORM
    object."""

    def __init__(self, row: Any, **extra: Any):
        self._row, self._extra = row, extra

    def __getattr__(self, name: str) -> Any:
        extra = self.__dict__["_extra"]
        return extra[name] if name in extra else getattr(self.__dict__["_row"], name)


class UtcDateTime(fields.DateTime):
    """Stored times are UTC without a zone; the API says so (RFC 3339 wants an offset)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)


def utc_time(**kw) -> fields.DateTime:
    return UtcDateTime(**kw)


class Strict(Schema):
    class Meta:
        unknown = RAISE


def _enum(values: list[str], **kw) -> fields.String:
    return fields.String(validate=validate.OneOf(values), **kw)


class CustomerFields(Strict):
    company_name = text(Customer.company_name)
    registration_number = text(Customer.registration_number)
    vat_id = text(Customer.vat_id)
    first_name = text(Customer.first_name)
    middle_name = text(Customer.middle_name)
    last_name = text(Customer.last_name)
    employee_type = _enum([t.value for t in EmployeeType], allow_none=True)
    title = text(Customer.title)
    location_code = text(Customer.location_code)
    # A phone is stored as E.164 (at most 16 characters); what is typed must fit the column too.
    primary_phone = text(Customer.primary_phone)
    primary_phone_type = _enum(PHONE_TYPES, allow_none=True)
    secondary_phone = text(Customer.secondary_phone)
    secondary_phone_type = _enum(PHONE_TYPES, allow_none=True)
    email = text(Customer.email)
    secondary_email = text(Customer.secondary_email)
    notes = fields.String(allow_none=True, validate=validate.Length(max=NOTES_LIMIT))


class ContactIn(Strict):
    first_name = text(Contact.first_name)
    last_name = text(Contact.last_name, required=True)
    email = text(Contact.email)
    phone = text(Contact.phone)
    phone_type = _enum(PHONE_TYPES, allow_none=True)
    title = text(Contact.title)
    is_main = fields.Boolean(load_default=False)


class CustomerCreate(CustomerFields):
    kind = _enum(KINDS, required=True)
    contacts = fields.List(fields.Nested(ContactIn), load_default=list, validate=validate.Length(max=50),
                           metadata={"description": "A company needs at least one contact with an e-mail "
                                                    "(otherwise 422 with errors.contacts)."})
    confirm_duplicate = fields.Boolean(load_default=False, metadata={
        "description": "Create even though a strong duplicate exists (otherwise 409 with the candidates)."})


def version_field() -> fields.Integer:
    """The version a change of an existing record is based on: required on every such call, here
    or as If-Match (neither: 428; a newer record: 412)."""
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID), metadata={
        "description": "The version the change is based on (or send If-Match); a newer record answers "
                       "412, neither sent 428."})


class CustomerPatch(CustomerFields):
    version = version_field()


class VersionIn(Strict):
    """The body of an action that changes an existing customer (deactivate): only its version."""

    version = version_field()


class ContactOut(Schema):
    id = fields.Integer()
    first_name = fields.String(allow_none=True)
    last_name = fields.String()
    display_name = fields.String()
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    phone_type = fields.Function(lambda c: c.phone_type.value if c.phone_type else None, allow_none=True)
    title = fields.String(allow_none=True)
    is_main = fields.Boolean()
    is_active = fields.Boolean()
    version = fields.Integer()


def _name(attribute: str):
    return fields.Function(lambda c: getattr(getattr(c, attribute), "name", None), allow_none=True)


def _value(attribute: str):
    return fields.Function(lambda c: getattr(getattr(c, attribute), "value", None), allow_none=True)


class CustomerOut(Schema):
    id = fields.Integer()
    version = fields.Integer()
    kind = _value("kind")
    display_name = fields.String()
    company_name = fields.String(allow_none=True)
    registration_number = fields.String(allow_none=True)
    vat_id = fields.String(allow_none=True)
    first_name = fields.String(allow_none=True)
    middle_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    employee_type = _value("employee_type")
    title = fields.String(allow_none=True)
    department = _name("department")
    manager_id = fields.Integer(allow_none=True)
    status = _name("status")
    active = fields.Function(lambda c: bool(c.status is None or c.status.is_active))
    sla_level = _name("sla_level")
    site = _name("site")
    building = _name("building")
    location_code = fields.String(allow_none=True)
    primary_phone = fields.String(allow_none=True)
    primary_phone_type = _value("primary_phone_type")
    secondary_phone = fields.String(allow_none=True)
    secondary_phone_type = _value("secondary_phone_type")
    email = fields.String(allow_none=True)
    secondary_email = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)
    operators = fields.Function(lambda c: [op.id for op in c.operators])
    sam_account_name = fields.String(allow_none=True)
    created_at = utc_time()
    updated_at = utc_time()


class CustomerDetail(CustomerOut):
    contacts = fields.List(fields.Nested(ContactOut))


class Page(Schema):
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer(metadata={"description": "Matching records, counted up to 10,000: "
                                                    "10,001 means more (then total_exact is false)"})
    total_exact = fields.Boolean()


class CustomerPage(Page):
    items = fields.List(fields.Nested(CustomerOut))


class CustomerQuery(Strict):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    q = fields.String(validate=validate.Length(max=200), metadata={"description": "Search: words of names, "
                                                                                  "e-mail, phone"})
    kind = _enum(KINDS)
    active = fields.Boolean()


class DuplicateQuery(Strict):
    kind = _enum(KINDS, required=True)
    name = text(Customer.display_name, allow_none=False, metadata={"description": "Company or person name"})
    email = text(Customer.email, allow_none=False)
    phone = text(Customer.primary_phone, allow_none=False)
    registration_number = text(Customer.registration_number, allow_none=False)
    vat_id = text(Customer.vat_id, allow_none=False)
    while_typing = fields.Boolean(load_default=False, metadata={
        "description": "A search while typing: the last word of the name may be unfinished, so names "
                       "that start with what is typed are listed too"})


class Candidate(Schema):
    record = fields.String()
    id = fields.Integer(allow_none=True)
    customer_id = fields.Integer(allow_none=True)
    reasons = fields.List(fields.String())
    strong = fields.Boolean()
    score = fields.Float(allow_none=True, metadata={
        "description": "The evidence in bits (higher is likelier the same record); null for a record "
                       "you may not view"})
    visible = fields.Boolean()
    label = fields.String()
    customer_label = fields.String()
    kind = fields.String()
    email = fields.String()
    phone = fields.String()
    status = fields.String()
    inactive = fields.Boolean()
    ask = fields.String()


class Candidates(Schema):
    candidates = fields.List(fields.Nested(Candidate))


class OperatorsIn(Strict):
    operator_ids = fields.List(fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID)),
                               required=True, validate=validate.Length(max=100))
    version = version_field()


class OperatorOut(Schema):
    id = fields.Integer()
    email = fields.String()
    full_name = fields.String()
    role = _value("role")


class RequestIn(Strict):
    subject = text(Request.subject, required=True)
    description = fields.String(allow_none=True, validate=validate.Length(max=DESCRIPTION_LIMIT))
    status = _enum([s.value for s in RequestStatus], load_default=RequestStatus.NEW.value)
    contact_ids = fields.List(fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID)),
                              load_default=list, validate=validate.Length(max=100))


class Recipient(Schema):
    name = fields.String()
    email = fields.String()
    why = fields.String()


class RequestOut(Schema):
    id = fields.Integer()
    customer_id = fields.Integer()
    subject = fields.String()
    description = fields.String(allow_none=True)
    status = _value("status")
    contact_ids = fields.Function(lambda r: [c.id for c in r.contacts])
    recipients = fields.List(fields.Nested(Recipient))
    created_at = utc_time()


class RegisterIn(Strict):
    # Not a column (only the key's hash is stored): a sanity limit far above a real key's 32.
    registration_key = fields.String(required=True, validate=validate.Length(min=1, max=200))
    hostname = text(Computer.hostname, required=True)
    operating_system = text(Computer.operating_system)
    agent_version = text(Computer.agent_version)


class ComputerOut(Schema):
    id = fields.Integer()
    customer_id = fields.Integer()
    hostname = fields.String()
    operating_system = fields.String(allow_none=True)
    agent_version = fields.String(allow_none=True)
    registered_at = utc_time()
    settings_received_at = utc_time(allow_none=True)
    settings_differ = fields.Boolean(
        metadata={"description": "Whether the customer's settings changed since it received them"})


class RegisteredOut(ComputerOut):
    settings = fields.Dict(metadata={"description": (
        "The effective settings: the global defaults overridden by the customer's own — cmonitor "
        "(access_password), mail (source builtin|customer, pop3, smtp: primary then fallback), "
        "notifications (route, smtp, from_address, to_address), requests_by_email.")})


class KeyOut(Schema):
    registration_key = fields.String(allow_none=True, metadata={"description": (
        "The new key, only in the answer of the POST that made it — the one time it is shown "
        "(only its hash is stored). Always null on GET.")})
    exists = fields.Boolean(metadata={"description": "Whether the customer has a registration key."})
