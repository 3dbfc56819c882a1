"""/api/v1: customers, their contacts, operators, requests and computers, and the duplicate check.
Every call acts as the token's operator through the domain commands, so the access policy, the
duplicate refusal, the company-contact rule, the version check and the audit trail are the
panel's. Each write runs in one unit of work; the domain's refusals become answers in one place
(api.errors.register_domain_errors): 403, 404, 308 for a merged-away id, 409, 412, 422, 428."""

from __future__ import annotations

from flask import g, request
from flask_smorest import Blueprint
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from api.auth import box, require_operator, save_options
from api.errors import json_error, register_domain_errors
from api.schemas import (
    Candidates,
    ComputerOut,
    ContactIn,
    ContactOut,
    CustomerCreate,
    CustomerDetail,
    CustomerOut,
    CustomerPage,
    CustomerPatch,
    CustomerQuery,
    DuplicateQuery,
    KeyOut,
    OperatorOut,
    OperatorsIn,
    RequestIn,
    RequestOut,
    Shown,
    VersionIn,
)
from extensions import db
from models import Computer, Contact, Customer, CustomerStatus, Operator, Request
from models.enums import CustomerKind, EmployeeType, PhoneType, RequestStatus
from services.access import MAX_ID, Right, customer_condition, load_customer
from services.computers import (
    has_registration_key,
    push_settings,
    rotate_registration_key,
    settings_differ,
)
from services.contacts import save_contact
from services.counting import capped_count
from services.customers import (
    create_customer,
    deactivate_customer,
    require_operator_assignment,
    update_customer,
)
from services.customers import set_operators as assign_operators
from services.duplicates import find_duplicates, make_probe
from services.errors import NotFound, ValidationFailed
from services.requests import contacts_of_customer, request_recipients, save_request
from services.search import customer_search_conditions
from services.transactions import unit_of_work

blp = Blueprint("api_customers", __name__, description="Customers, contacts, operators, requests, computers")
blp.register_error_handler(HTTPException, json_error)
register_domain_errors(blp)
ENUMS = {"employee_type": EmployeeType, "primary_phone_type": PhoneType, "secondary_phone_type": PhoneType,
         "phone_type": PhoneType}


@blp.before_request
def _authenticate():
    require_operator()


def _actor() -> Operator:
    return g.api_actor


def _customer(customer_id: int, right: Right = Right.VIEW) -> Customer:
    """The customer for the token's operator with `right` (services.access.load_customer: 404,
    403, or a 308 to the survivor of a merge)."""
    return load_customer(db.session, _actor(), customer_id, right)


def _values(data: dict) -> dict:
    return {k: (ENUMS[k](v) if k in ENUMS and v is not None else v) for k, v in data.items()}


@blp.route("/customers")
@blp.arguments(CustomerQuery, location="query")
@blp.response(200, CustomerPage)
def list_customers(args):
    """Customers the operator may see, by name; search and filters as in the panel."""
    conditions = [customer_condition(db.session, _actor(), Right.VIEW),
                  *customer_search_conditions(args.get("q"))]
    if "kind" in args:
        conditions.append(Customer.kind == CustomerKind(args["kind"]))
    if "active" in args:
        active = select(CustomerStatus.id).where(CustomerStatus.is_active.is_(args["active"]))
        conditions.append(Customer.status_id.in_(active))
    listed = select(Customer).where(*conditions)
    total = capped_count(db.session, listed)
    items = db.session.scalars(listed.order_by(Customer.sort_name, Customer.id)
                               .offset((args["page"] - 1) * args["per_page"]).limit(args["per_page"])).all()
    return {"items": items, "page": args["page"], "per_page": args["per_page"], "total": total,
            "total_exact": total.exact}


@blp.route("/customers", methods=["POST"])
@blp.arguments(CustomerCreate)
@blp.response(201, CustomerDetail)
@blp.alt_response(409, description="A strong duplicate exists: see candidates; send confirm_duplicate")
def create(data):
    """Create a customer (and contacts) through the same command as the quick form and wizard. A
    company needs a contact with an e-mail (422, errors.contacts)."""
    contacts = [_values(c) for c in data.pop("contacts")]
    confirmed = data.pop("confirm_duplicate")
    values = _values(data)
    values["kind"] = CustomerKind(values["kind"])
    with unit_of_work(db.session):
        return create_customer(db.session, _actor(), save_options(), contacts=contacts,
                               confirm_duplicate=confirmed, **values)


@blp.route("/customers/<int:customer_id>")
@blp.response(200, CustomerDetail)
def get(customer_id: int):
    return _customer(customer_id)


@blp.route("/customers/<int:customer_id>", methods=["PATCH"])
@blp.arguments(CustomerPatch)
@blp.response(200, CustomerDetail)
@blp.alt_response(412, description="The record changed since that version; nothing was changed")
@blp.alt_response(428, description="Neither a version nor If-Match was sent")
def update(data, customer_id: int):
    """Change fields of a customer, based on the version you read (body `version` or If-Match)."""
    customer = _customer(customer_id, Right.EDIT)
    version = _based_on(data)
    with unit_of_work(db.session):
        return update_customer(db.session, customer, _actor(), save_options(), _values(data),
                               seen_version=version)


def _based_on(data: dict) -> int | None:
    """The version a change names: the body's `version`, else If-Match; None when neither (the
    command then refuses: 428)."""
    version = data.pop("version", None)
    if version is None and request.headers.get("If-Match"):
        version = _version_of(request.headers["If-Match"])
    return version


def _version_of(header: str) -> int:
    """The version an If-Match names ("7", W/"7"); -1 (no version: 412) for anything else."""
    value = header.strip().removeprefix("W/").strip('"')
    return int(value) if value.isdigit() and len(value) < 10 else -1


@blp.route("/customers/<int:customer_id>/deactivate", methods=["POST"])
@blp.arguments(VersionIn, required=False)
@blp.response(200, CustomerOut)
@blp.alt_response(412, description="The record changed since that version; nothing was changed")
@blp.alt_response(428, description="Neither a version nor If-Match was sent")
def deactivate(data, customer_id: int):
    """Set the customer's status to the first inactive status (customers are never deleted here),
    based on the version you read (body `version` or If-Match)."""
    customer = _customer(customer_id, Right.EDIT)
    with unit_of_work(db.session):
        return deactivate_customer(db.session, customer, _actor(), save_options(),
                                   seen_version=_based_on(data or {}))


@blp.route("/customers/<int:customer_id>/contacts")
@blp.response(200, ContactOut(many=True))
def contacts(customer_id: int):
    return db.session.scalars(select(Contact).where(Contact.customer_id == _customer(customer_id).id)
                              .order_by(Contact.sort_name)).all()


@blp.route("/customers/<int:customer_id>/contacts", methods=["POST"])
@blp.arguments(ContactIn)
@blp.response(201, ContactOut)
def add_contact(data, customer_id: int):
    customer = _customer(customer_id, Right.EDIT)
    with unit_of_work(db.session):
        contact = Contact(customer=customer, **_values(data))
        return save_contact(db.session, contact, _actor(), save_options().phone_region)


@blp.route("/customers/<int:customer_id>/operators")
@blp.response(200, OperatorOut(many=True))
def operators(customer_id: int):
    return _customer(customer_id).operators


@blp.route("/customers/<int:customer_id>/operators", methods=["PUT"])
@blp.arguments(OperatorsIn)
@blp.response(200, OperatorOut(many=True))
@blp.alt_response(412, description="The record changed since that version; nothing was changed")
@blp.alt_response(428, description="Neither a version nor If-Match was sent")
def set_operators(data, customer_id: int):
    """Replace the responsible operators (maintainers only), based on the customer's version you
    read (body `version` or If-Match)."""
    customer = _customer(customer_id)
    require_operator_assignment(_actor())  # first: a refused caller learns nothing of the ids
    # The operators the panel offers: active ones (one deactivated since it was assigned may stay).
    kept = [op.id for op in customer.operators]
    chosen = db.session.scalars(select(Operator).where(
        Operator.id.in_(data["operator_ids"]), Operator.is_active.is_(True) | Operator.id.in_(kept))).all()
    if len(chosen) != len(set(data["operator_ids"])):
        raise ValidationFailed({"operator_ids": ["Not all of these operators exist and may sign in."]})
    with unit_of_work(db.session):
        assign_operators(db.session, customer, _actor(), save_options(), list(chosen),
                         seen_version=_based_on(data))
    return customer.operators


@blp.route("/customers/<int:customer_id>/requests")
@blp.response(200, RequestOut(many=True))
def requests_of(customer_id: int):
    rows = db.session.scalars(select(Request).where(Request.customer_id == _customer(customer_id).id)
                              .order_by(Request.id.desc()).limit(200)).all()
    return [Shown(row, recipients=request_recipients(row)) for row in rows]


@blp.route("/customers/<int:customer_id>/requests", methods=["POST"])
@blp.arguments(RequestIn)
@blp.response(201, RequestOut)
def create_request(data, customer_id: int):
    """Raise a request (incident) for the customer, with assigned contacts of that customer (an
    id that is not one of them is refused with the same message whatever it names)."""
    customer = _customer(customer_id)
    assigned = contacts_of_customer(db.session, customer, data.pop("contact_ids"), "contact_ids")
    status = RequestStatus(data.pop("status"))
    with unit_of_work(db.session):
        row = Request(customer=customer, contacts=list(assigned), status=status, **data)
        save_request(db.session, row, _actor())
    return Shown(row, recipients=request_recipients(row))


@blp.route("/duplicates", methods=["POST"])
@blp.arguments(DuplicateQuery)
@blp.response(200, Candidates)
def duplicates(data):
    """Existing customers and contacts like these values, scored, with reasons (the quick form's check)."""
    partial = data.pop("while_typing")
    probe = make_probe(phone_region=save_options().phone_region, partial=partial, **data)
    return {"candidates": [c.as_dict() for c in find_duplicates(db.session, _actor(), probe)]}


@blp.route("/customers/<int:customer_id>/registration-key")
@blp.response(200, KeyOut)
def key(customer_id: int):
    """Whether the customer has a key C-Monitor agents register its computers with. The key
    itself is never shown again (only its hash is stored): `registration_key` is always null
    here; POST makes a new one. Reading never makes a key."""
    customer = _customer(customer_id, Right.EDIT)
    return {"registration_key": None, "exists": has_registration_key(customer)}


@blp.route("/customers/<int:customer_id>/registration-key", methods=["POST"])
@blp.response(200, KeyOut)
def rotate_key(customer_id: int):
    """A new key, shown in this answer only; computers not yet registered need it, the old one
    stops working."""
    customer = _customer(customer_id, Right.EDIT)
    with unit_of_work(db.session):
        new_key = rotate_registration_key(db.session, _actor(), customer)
    return {"registration_key": new_key, "exists": True}


@blp.route("/customers/<int:customer_id>/computers")
@blp.response(200, ComputerOut(many=True))
def computers(customer_id: int):
    rows = db.session.scalars(select(Computer).where(Computer.customer_id == _customer(customer_id).id)
                              .order_by(Computer.hostname)).all()
    return [Shown(row, settings_differ=settings_differ(db.session, row, box())) for row in rows]


@blp.route("/customers/<int:customer_id>/computers/<int:computer_id>/push-settings", methods=["POST"])
@blp.response(200, ComputerOut)
def push(customer_id: int, computer_id: int):
    """Give a computer the customer's current settings, on purpose."""
    customer = _customer(customer_id, Right.EDIT)
    computer = db.session.scalar(select(Computer).where(Computer.id == min(computer_id, MAX_ID),
                                                        Computer.customer_id == customer.id))
    if computer is None:
        raise NotFound("No such computer of this customer.")
    with unit_of_work(db.session):
        push_settings(db.session, _actor(), computer, box())
    return Shown(computer, settings_differ=False)
