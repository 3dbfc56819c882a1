"""/api/v1: customers, their contacts, operators, requests and computers, and the duplicate check.
Every call acts as the token's operator through the domain services, so the access policy, the
duplicate refusal, the version check and the audit trail are the panel's."""

from __future__ import annotations

from flask import abort as flask_abort
from flask import redirect, request
from flask_smorest import Blueprint, abort
from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException

from admin_views.ids import MAX_ID
from api.auth import box, require_operator, save_options
from api.errors import json_error
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
)
from extensions import db
from models import Computer, Contact, Customer, CustomerStatus, Operator, Request
from models.enums import CustomerKind, EmployeeType, PhoneType, RequestStatus
from services.access import Right, can, customer_condition, require_maintainer
from services.computers import push_settings, registration_key, rotate_registration_key, settings_differ
from services.contacts import save_contact
from services.customers import change_status, create_customer, save_customer
from services.duplicates import (
    DuplicateSuspected,
    customer_probe,
    find_duplicates,
    make_probe,
    refuse_duplicates,
)
from services.errors import FORM, PermissionDenied, StaleRecord, ValidationFailed
from services.merge import survivor_of
from services.requests import request_recipients, save_request
from services.search import customer_search_conditions

blp = Blueprint("api_customers", __name__, description="Customers, contacts, operators, requests, computers")
blp.register_error_handler(HTTPException, json_error)
ENUMS = {"employee_type": EmployeeType, "primary_phone_type": PhoneType, "secondary_phone_type": PhoneType,
         "phone_type": PhoneType}


@blp.before_request
def _authenticate():
    require_operator()


def _actor() -> Operator:
    from flask import g

    return g.api_actor


def _refuse(exc: ValidationFailed, code: int = 422):
    errors = {("_form" if k == FORM else k): v for k, v in exc.errors.items()}
    abort(code, message="The request was refused: see errors.", errors=errors)


def _customer(customer_id: int, right: Right = Right.VIEW) -> Customer:
    """A customer the operator may view (404 otherwise: its existence is not revealed)."""
    if not 0 < customer_id <= MAX_ID:  # before it reaches SQL, where it would overflow
        abort(404, message="No such customer.")
    merged = db.session.scalar(select(Customer).where(Customer.id == customer_id,
                                                      Customer.merged_into_id.isnot(None)))
    if merged is not None:  # an id merged away leads to the survivor (308 keeps the method)
        alive = survivor_of(db.session, merged)
        target = request.path.replace(f"/customers/{customer_id}", f"/customers/{alive.id}", 1)
        flask_abort(redirect(target, 308))
    customer = db.session.scalar(select(Customer).where(
        Customer.id == customer_id, customer_condition(db.session, _actor(), Right.VIEW)))
    if customer is None:
        abort(404, message="No such customer.")
    if right != Right.VIEW and not can(db.session, _actor(), customer.id, right):
        abort(403, message=f"You may view this customer but not {right} it.")
    return customer


def _values(data: dict) -> dict:
    return {k: (ENUMS[k](v) if k in ENUMS and v is not None else v) for k, v in data.items()}


def _detail(customer: Customer) -> Customer:
    actor = _actor()
    customer.registration_key = registration_key(db.session, actor, customer, box()) \
        if actor.is_maintainer or can(db.session, actor, customer.id, Right.EDIT) else None
    return customer


def _write(call):
    """Run a domain write; its refusals become the API's answers (nothing is written then)."""
    try:
        return call()
    except PermissionDenied as exc:
        db.session.rollback()
        abort(403, message=str(exc))
    except StaleRecord as exc:
        db.session.rollback()
        abort(412, message=exc.errors[FORM][0])
    except ValidationFailed as exc:
        db.session.rollback()
        _refuse(exc)


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
    total = db.session.scalar(select(func.count()).select_from(Customer).where(*conditions))
    items = db.session.scalars(select(Customer).where(*conditions).order_by(Customer.sort_name, Customer.id)
                               .offset((args["page"] - 1) * args["per_page"]).limit(args["per_page"])).all()
    return {"items": items, "page": args["page"], "per_page": args["per_page"], "total": total}


@blp.route("/customers", methods=["POST"])
@blp.arguments(CustomerCreate)
@blp.response(201, CustomerDetail)
@blp.alt_response(409, description="A strong duplicate exists: see candidates; send confirm_duplicate")
def create(data):
    """Create a customer (and contacts) through the same service as the quick form and wizard."""
    contacts = [_values(c) for c in data.pop("contacts")]
    confirmed = data.pop("confirm_duplicate")
    values = _values(data)
    values["kind"] = CustomerKind(values["kind"])
    probe = customer_probe(Customer(**values), save_options().phone_region)
    try:
        refuse_duplicates(db.session, _actor(), probe, confirmed=confirmed)
    except DuplicateSuspected as exc:
        abort(409, message=exc.errors[FORM][0], candidates=[c.as_dict() for c in exc.candidates])
    customer = _write(lambda: create_customer(db.session, _actor(), save_options(), contacts=contacts,
                                              **values))
    return _detail(customer)


@blp.route("/customers/<int:customer_id>")
@blp.response(200, CustomerDetail)
def get(customer_id: int):
    return _detail(_customer(customer_id))


@blp.route("/customers/<int:customer_id>", methods=["PATCH"])
@blp.arguments(CustomerPatch)
@blp.response(200, CustomerDetail)
@blp.alt_response(412, description="The record changed since that version; nothing was changed")
@blp.alt_response(428, description="Neither a version nor If-Match was sent")
def update(data, customer_id: int):
    """Change fields of a customer, based on the version you read (body `version` or If-Match)."""
    customer = _customer(customer_id)
    version = data.pop("version", None)
    if version is None and request.headers.get("If-Match"):
        version = _version_of(request.headers["If-Match"])
    if version is None:
        abort(428, message="Send the version the change is based on (field version, or If-Match).")
    if version != customer.version:
        abort(412, message=f"The customer changed since version {version} (now {customer.version}); "
                           "read it again and apply your change to the current version.")
    with db.session.no_autoflush:
        for key, value in _values(data).items():
            setattr(customer, key, value)
    _write(lambda: save_customer(db.session, customer, _actor(), save_options(), seen_version=version))
    return _detail(customer)


def _version_of(header: str) -> int | None:
    value = header.strip().removeprefix("W/").strip('"')
    return int(value) if value.isdigit() and len(value) < 10 else -1


@blp.route("/customers/<int:customer_id>/deactivate", methods=["POST"])
@blp.response(200, CustomerOut)
def deactivate(customer_id: int):
    """Set the customer's status to the first inactive status (customers are never deleted here)."""
    customer = _customer(customer_id, Right.EDIT)
    inactive = db.session.scalar(select(CustomerStatus).where(CustomerStatus.is_active.is_(False))
                                 .order_by(CustomerStatus.id))
    if inactive is None:
        abort(409, message="No inactive status exists: a maintainer must add one.")
    return _write(lambda: change_status(db.session, customer, _actor(), inactive, save_options()))


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
    contact = Contact(customer=customer, **_values(data))
    return _write(lambda: save_contact(db.session, contact, _actor(), save_options().phone_region))


@blp.route("/customers/<int:customer_id>/operators")
@blp.response(200, OperatorOut(many=True))
def operators(customer_id: int):
    return _customer(customer_id).operators


@blp.route("/customers/<int:customer_id>/operators", methods=["PUT"])
@blp.arguments(OperatorsIn)
@blp.response(200, OperatorOut(many=True))
def set_operators(data, customer_id: int):
    """Replace the responsible operators (maintainers only)."""
    customer = _customer(customer_id)
    try:
        require_maintainer(_actor(), "assign a customer's operators")
    except PermissionDenied as exc:
        abort(403, message=str(exc))
    chosen = db.session.scalars(select(Operator).where(Operator.id.in_(data["operator_ids"]))).all()
    if len(chosen) != len(set(data["operator_ids"])):
        abort(422, message="Unknown operator id.",
              errors={"operator_ids": ["Not all of these operators exist."]})
    with db.session.no_autoflush:
        customer.operators = list(chosen)
    _write(lambda: save_customer(db.session, customer, _actor(), save_options(),
                                 seen_version=data.get("version")))
    return customer.operators


@blp.route("/customers/<int:customer_id>/requests")
@blp.response(200, RequestOut(many=True))
def requests_of(customer_id: int):
    rows = db.session.scalars(select(Request).where(Request.customer_id == _customer(customer_id).id)
                              .order_by(Request.id.desc()).limit(200)).all()
    for row in rows:
        row.recipients = request_recipients(row)
    return rows


@blp.route("/customers/<int:customer_id>/requests", methods=["POST"])
@blp.arguments(RequestIn)
@blp.response(201, RequestOut)
def create_request(data, customer_id: int):
    """Raise a request (incident) for the customer, with assigned contacts of that customer."""
    customer = _customer(customer_id)
    ids = data.pop("contact_ids")
    assigned = db.session.scalars(select(Contact).where(Contact.id.in_(ids))).all()
    if len(assigned) != len(set(ids)):
        abort(422, message="Unknown contact id.",
              errors={"contact_ids": ["Not all of these contacts exist."]})
    status = RequestStatus(data.pop("status"))
    row = Request(customer=customer, contacts=list(assigned), status=status, **data)
    _write(lambda: save_request(db.session, row, _actor()))
    row.recipients = request_recipients(row)
    return row


@blp.route("/duplicates", methods=["POST"])
@blp.arguments(DuplicateQuery)
@blp.response(200, Candidates)
def duplicates(data):
    """Existing customers and contacts like these values, scored, with reasons (the quick form's check)."""
    probe = make_probe(phone_region=save_options().phone_region, **data)
    return {"candidates": [c.as_dict() for c in find_duplicates(db.session, _actor(), probe)]}


@blp.route("/customers/<int:customer_id>/registration-key")
@blp.response(200, KeyOut)
def key(customer_id: int):
    """The key C-Monitor agents register this customer's computers with."""
    customer = _customer(customer_id, Right.EDIT)
    return {"registration_key": _write(lambda: registration_key(db.session, _actor(), customer, box()))}


@blp.route("/customers/<int:customer_id>/registration-key", methods=["POST"])
@blp.response(200, KeyOut)
def rotate_key(customer_id: int):
    """A new key; computers not yet registered need it, the old one stops working."""
    customer = _customer(customer_id, Right.EDIT)
    new_key = _write(lambda: rotate_registration_key(db.session, _actor(), customer, box()))
    return {"registration_key": new_key}


@blp.route("/customers/<int:customer_id>/computers")
@blp.response(200, ComputerOut(many=True))
def computers(customer_id: int):
    rows = db.session.scalars(select(Computer).where(Computer.customer_id == _customer(customer_id).id)
                              .order_by(Computer.hostname)).all()
    for row in rows:
        row.settings_differ = settings_differ(db.session, row, box())
    return rows


@blp.route("/customers/<int:customer_id>/computers/<int:computer_id>/push-settings", methods=["POST"])
@blp.response(200, ComputerOut)
def push(customer_id: int, computer_id: int):
    """Give a computer the customer's current settings, on purpose."""
    customer = _customer(customer_id, Right.EDIT)
    computer = db.session.scalar(select(Computer).where(Computer.id == min(computer_id, MAX_ID),
                                                        Computer.customer_id == customer.id))
    if computer is None:
        abort(404, message="No such computer of this customer.")
    _write(lambda: push_settings(db.session, _actor(), computer, box()))
    computer.settings_differ = False
    return computer
