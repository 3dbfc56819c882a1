"""Requests (incidents): of the customers the operator may see, created from a customer too.
Their details page is the request's page for operators: the discussion, status history,
attachments and the copies mailed (admin_views.request_discussion).

The form's "Assigned contacts" lists the chosen customer's contacts only (name, role, e-mail;
templates/admin/request_contacts.html); when the operator chooses another customer, the page
reloads the list from `contacts_of_view` (a GET answering only for a customer the operator may
view). The server still refuses a contact of another customer with a message on the field."""

from __future__ import annotations

from flask import get_template_attribute, jsonify, url_for
from flask import request as http_request
from flask_admin import expose
from markupsafe import Markup
from sqlalchemy import select
from wtforms import Field
from wtforms.validators import ValidationError

from admin_views.base import SecuredModelView, VersionSeenField, actor, seen_version
from admin_views.fields import CustomerAjaxLoader, EnumSelectField
from admin_views.filters import EnumFilter, IdFilter
from admin_views.ids import parse_id
from admin_views.quick_create import quick_form_context
from admin_views.request_discussion import (
    CommentForm,
    StatusForm,
    attachment_response,
    page_context,
    post_comment,
    post_status,
    status_badge,
)
from admin_views.row_access import RowAccessMixin, customer_scope
from extensions import db
from i18n import _, _l, when
from models import Contact, Customer, Request
from models.enums import CustomerKind, RequestSource, RequestStatus
from services.access import Right, load_customer
from services.errors import ValidationFailed
from services.requests import (
    contacts_of_customer,
    delete_request,
    offered_contacts,
    request_recipients,
    save_request,
)

# Why a recipient receives copies, as services.requests stores it (in English: the mail queue
# and the API keep it) → as the page says it.
REASONS = {"the customer": _l("the customer"), "main contact": _l("main contact"),
           "assigned to this request": _l("assigned to this request"),
           "raised this request": _l("raised this request")}


def reason_shown(why: str | None) -> str:
    return str(REASONS.get(why or "", why or ""))


def contact_choice(contact: Contact) -> dict:
    """One contact as the picker shows it (and contacts_of_view answers it)."""
    role = _("Main contact") if contact.is_main else _("Contact")
    if contact.title:
        role = f"{role}, {contact.title}"
    return {"id": contact.id, "name": contact.display_name, "role": role, "email": contact.email or "",
            "inactive": not contact.is_active}


def _picker(field, **kwargs) -> Markup:
    macro = get_template_attribute("admin/request_contacts.html", "contact_picker")
    return Markup(macro(field, kwargs.get("class", ""), url_for("requests.contacts_of_view")))


class AssignedContactsField(Field):
    """The request's assigned contacts as checkboxes of the chosen customer's contacts; the ids
    posted are checked against that customer (services.requests.contacts_of_customer) with the
    one refusal on this field, whatever they name."""

    widget = staticmethod(_picker)

    def __init__(self, label=None, validators=None, allow_blank=None, **kwargs):
        kwargs.pop("query_factory", None)
        super().__init__(label, [], **kwargs)
        self.unreadable = False
        self.chosen: list[Contact] | None = None
        self.customer: Customer | None = None  # whose contacts are offered (set by the view)

    def process_data(self, value):
        self.data = [c.id for c in value or [] if getattr(c, "id", None) is not None]

    def process_formdata(self, valuelist):
        self.data, self.unreadable = [], False
        for raw in valuelist:
            number = parse_id(raw)
            if number is None:
                self.unreadable = True
            elif number not in self.data:
                self.data.append(number)

    def offered(self) -> list[dict]:
        return [contact_choice(c) for c in offered_contacts(db.session, self.customer, self.data)]

    def pre_validate(self, form):
        if self.unreadable:
            raise ValidationError(_("Choose the contacts from the list."))
        customer = form.customer.data
        if not isinstance(customer, Customer):
            self.chosen = []  # the customer's own message says what to do first
            return
        try:
            self.chosen = contacts_of_customer(db.session, customer, self.data)
        except ValidationFailed as exc:
            raise ValidationError(" ".join(exc.errors.get("contacts", []))) from None

    def populate_obj(self, obj, name):
        if self.chosen is None:  # filled without validating: the same check
            self.chosen = contacts_of_customer(db.session, obj.customer, self.data) if obj.customer else []
        setattr(obj, name, self.chosen)


def _subject_link(view, context, model, name) -> Markup:
    return Markup('<a href="{}">{}</a>').format(url_for(".details_view", id=model.id), model.subject)


class RequestView(RowAccessMixin, SecuredModelView):
    column_list = ["id", "subject", "customer", "status", "source", "created_by", "created_at"]
    column_labels = {"id": "#", "subject": _l("Subject"), "customer": _l("Customer"), "status": _l("Status"),
                     "source": _l("Source"), "created_by": _l("Created by"), "created_at": _l("Created")}
    column_searchable_list = ["subject"]
    column_default_sort = ("id", True)
    column_formatters = {"status": lambda v, c, m, n: status_badge(m.status),
                         "source": lambda v, c, m, n: m.source.label, "subject": _subject_link,
                         "created_at": lambda v, c, m, n: when(m.created_at)}
    column_filters = [
        EnumFilter(Request.status, _l("Status"), RequestStatus),
        EnumFilter(Request.source, _l("Source"), RequestSource),
        IdFilter(Request.customer_id, _l("Customer #")),
    ]
    CUSTOMER_FILTER = 2  # its index above: the customer's Mail tab links to its requests with it
    can_export = True
    export_types = ["csv", "xlsx"]
    column_formatters_export = {"status": lambda v, c, m, n: m.status.label,
                                "customer": lambda v, c, m, n: str(m.customer),
                                "source": lambda v, c, m, n: m.source.label,
                                "subject": lambda v, c, m, n: m.subject,
                                "created_by": lambda v, c, m, n: str(m.created_by or "")}
    form_columns = ["customer", "subject", "description", "status", "contacts", "version_seen"]
    form_extra_fields = {"version_seen": VersionSeenField()}
    form_overrides = {"status": EnumSelectField, "contacts": AssignedContactsField}
    form_args = {"status": {"enum": RequestStatus, "blank": False, "label": _l("Status")},
                 "customer": {"label": _l("Customer")}, "subject": {"label": _l("Subject")},
                 "description": {"label": _l("Description")},
                 "contacts": {"label": _l("Assigned contacts")}}
    form_ajax_refs = {
        "customer": CustomerAjaxLoader("customer", db, placeholder=_l("Type a name, e-mail or phone")),
    }

    create_template = "admin/request_create.html"
    edit_template = "admin/request_edit.html"
    details_template = "admin/request_details.html"

    def render(self, template, **kwargs):
        kwargs["reason_shown"] = reason_shown
        if template == self.details_template:
            model = kwargs["model"]
            for name, value in page_context(model, kwargs.pop("comment_form", None),
                                            kwargs.pop("status_form", None)).items():
                kwargs.setdefault(name, value)
            return super().render(template, **kwargs)
        kwargs.update(quick_form_context(db.session))
        form = kwargs.get("form")
        if form is not None and hasattr(form, "contacts") and hasattr(form, "customer"):
            chosen = form.customer.data
            form.contacts.customer = chosen if isinstance(chosen, Customer) else None
        if template == self.edit_template and kwargs.get("model") is not None:
            kwargs["recipients"] = request_recipients(kwargs["model"])
        return super().render(template, **kwargs)

    @expose("/contacts-of/")
    def contacts_of_view(self):
        """The contacts the form offers for a customer (?customer=id), as JSON: only for a
        customer the operator may view (404 otherwise: its existence is not revealed). Reads
        only."""
        customer = load_customer(db.session, actor(), http_request.args.get("customer"), Right.VIEW)
        offered = [contact_choice(c) for c in offered_contacts(db.session, customer)]
        if customer.kind == CustomerKind.PERSON:
            empty = _("A private person has no contacts: the copies go to the person.")
        else:
            empty = _("This customer has no contacts yet.")
        return jsonify(contacts=offered, empty=empty)

    def details_page(self, model: Request, comment_form: CommentForm | None = None,
                     status_form: StatusForm | None = None):
        """The details page again after a refused POST, with the forms as the user sent them."""
        return self.render(self.details_template, model=model, details_columns=self._details_columns,
                           get_value=self.get_detail_value, return_url=self.get_url(".index_view"),
                           comment_form=comment_form, status_form=status_form)

    @expose("/comment/", methods=("POST",))
    def comment_view(self):
        """Add a comment or an internal note (the details page's first form)."""
        return post_comment(self, self.get_one(http_request.args.get("id")))

    @expose("/status/", methods=("POST",))
    def status_view(self):
        """Change the status, with an optional comment (the details page's second form)."""
        return post_status(self, self.get_one(http_request.args.get("id")))

    @expose("/attachment/")
    def attachment_view(self):
        """Download one attachment of the request (?id=request&attachment=id)."""
        return attachment_response(self.get_one(http_request.args.get("id")))

    def scope(self, right):
        company_right = Right.VIEW if right == Right.VIEW else Right.EDIT
        return Request.customer_id.in_(select(Customer.id).where(customer_scope(company_right)))

    def create_form(self, obj=None):
        form = super().create_form(obj)
        # "Create an Incident" on a customer: the request starts with that customer chosen.
        chosen = parse_id(http_request.args.get("customer"))
        if http_request.method == "GET" and chosen is not None:
            form.customer.data = form.customer.loader.get_one(chosen)
        return form

    def on_form_prefill(self, form, id):
        # Called again after a refused POST: then the version the user's input is based on stays.
        if http_request.method == "GET":
            form.version_seen.data = db.session.get(Request, int(id)).version

    def save_model(self, form, model, is_created):
        save_request(db.session, model, actor(), seen_version=seen_version(form))

    def remove_model(self, model):
        delete_request(db.session, model, actor())
