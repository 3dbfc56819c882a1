"""Customers: list, search, filters, export, and the plain create / edit forms."""

from __future__ import annotations

from flask import g, request, url_for
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload
from wtforms.fields import TextAreaField

from admin_views.base import (
    ConfirmDuplicateField,
    SecuredModelView,
    VersionSeenField,
    actor,
    save_options,
    seen_version,
)
from admin_views.customer_pages import CustomerPagesMixin
from admin_views.fields import CustomerAjaxLoader, EnumSelectField
from admin_views.filters import EnumFilter, IdChoiceFilter, OperatorFilter
from admin_views.merge import MergeMixin
from admin_views.quick_create import QuickCreateMixin, quick_form_context
from admin_views.row_access import RowAccessMixin, customer_scope, visible_label
from admin_views.search_mixin import TokenSearchMixin
from extensions import db
from models import (
    Building,
    Contact,
    Customer,
    CustomerStatus,
    Department,
    Operator,
    Site,
    SlaLevel,
)
from models.enums import CustomerKind, EmployeeType, PhoneType
from services.access import load_customer
from services.contact_info import format_phone
from services.customers import default_status, delete_customer, require_operator_assignment, save_customer
from services.search import customer_search_conditions
from wizards.drafts import drafts_of
from wizards.steps import TITLES


def _operators(view, context, model, name) -> str:
    return ", ".join(op.full_name for op in model.operators)


def _phone(view, context, model, name) -> str:
    return format_phone(getattr(model, name))


def _label(view, context, model, name) -> str:
    value = getattr(model, name)
    return value.label if value is not None else ""


def _thumbnail(view, context, model, name):
    if not model.photo:
        return ""
    src = url_for("customer_photo_file.index", customer_id=model.id, size="thumb")
    return Markup('<img src="{}" alt="" height="32" class="rounded">').format(src)


def _text(view, context, model, name) -> str:
    related = getattr(model, name)
    return "" if related is None else getattr(related, "name", None) or str(related)


LIST_FORMATTERS = {
    "photo": _thumbnail,
    "kind": _label,
    "employee_type": _label,
    "primary_phone": _phone,
    "secondary_phone": _phone,
    "operators": _operators,
}

PHONE_TYPE = {"enum": PhoneType}
# Not on the edit page: contacts, operators and workgroups have tabs of their own, and the
# duplicate confirmation belongs to creating a customer.
EDIT_TAB_FIELDS = ("contacts", "operators", "workgroups", "confirm_duplicate")
EXPORT_RELATIONS = (Customer.department, Customer.manager, Customer.site, Customer.building)


class CustomerView(MergeMixin, QuickCreateMixin, CustomerPagesMixin, RowAccessMixin, TokenSearchMixin,
                   SecuredModelView):
    """Customers of both kinds. Person and company fields share one form; the fields of the
    other kind are hidden by static/customer_form.js and cleared by the domain on save."""

    search_conditions = staticmethod(customer_search_conditions)
    search_placeholder_text = "Name, company, e-mail or phone"

    column_list = ["photo", "display_name", "kind", "status", "email", "primary_phone", "sla_level",
                   "operators"]
    column_labels = {
        "display_name": "Name",
        "primary_phone": "Primary phone",
        "sla_level": "SLA level",
        "operators": "Responsible operators",
        "registration_number": "Company ID (IČO)",
        "vat_id": "VAT ID",
        "middle_name": "Middle",
        "location_code": "Location ID",
        "email": "E-mail",
        "secondary_email": "Secondary e-mail",
        "secondary_phone": "Secondary phone",
        "employee_type": "Employee type",
        "sla_level.name": "SLA level",
    }
    sort_by = {"display_name": Customer.sort_name}
    column_sortable_list = [
        "kind",
        ("status", "status.name"),
        "email",
        ("sla_level", "sla_level.name"),
    ]
    column_default_sort = [("sort_name", False), ("id", False)]
    # Many-to-one columns joined into the page query; operators come by selectinload (get_query).
    column_select_related_list = [Customer.status, Customer.sla_level]
    column_searchable_list = ["display_name"]  # shows the search box; the search is our own
    column_formatters = LIST_FORMATTERS
    column_filters = [
        EnumFilter(Customer.kind, "Kind", CustomerKind),
        IdChoiceFilter(Customer.status_id, "Status", CustomerStatus),
        IdChoiceFilter(Customer.sla_level_id, "SLA level", SlaLevel),
        IdChoiceFilter(Customer.site_id, "Site", Site),
        IdChoiceFilter(Customer.department_id, "Department", Department),
        OperatorFilter(),
    ]
    column_details_list = [
        "display_name", "kind", "status", "company_name", "registration_number", "vat_id",
        "first_name", "middle_name", "last_name", "employee_type", "title", "department",
        "manager", "sla_level", "site", "building", "location_code", "primary_phone",
        "primary_phone_type", "secondary_phone", "secondary_phone_type", "email",
        "secondary_email", "workgroups", "operators", "contacts", "notes", "created_at",
        "updated_at",
    ]
    column_formatters_detail = {
        **LIST_FORMATTERS,
        "primary_phone_type": _label,
        "secondary_phone_type": _label,
        "manager": lambda v, c, m, n: visible_label(m.manager),
        "workgroups": lambda v, c, m, n: ", ".join(w.name for w in m.workgroups),
        "contacts": lambda v, c, m, n: "; ".join(
            f"{x.display_name} ({x.role_label}, {x.email or 'no e-mail'})" for x in m.contacts
        ),
    }

    can_export = True
    export_types = ["csv", "xlsx"]
    column_export_list = [
        "display_name", "kind", "status", "company_name", "registration_number", "vat_id",
        "first_name", "middle_name", "last_name", "employee_type", "title", "department",
        "manager", "email", "secondary_email", "primary_phone", "secondary_phone", "sla_level",
        "site", "building", "location_code", "operators",
    ]
    column_formatters_export = {
        **LIST_FORMATTERS,
        **dict.fromkeys(("status", "department", "sla_level", "site", "building"), _text),
        "manager": lambda v, c, m, n: visible_label(m.manager),
    }

    form_columns = [
        "kind", "company_name", "registration_number", "vat_id",
        "first_name", "middle_name", "last_name", "employee_type", "title", "department",
        "manager", "status", "sla_level", "site", "building", "location_code",
        "primary_phone", "primary_phone_type", "secondary_phone", "secondary_phone_type",
        "email", "secondary_email", "workgroups", "operators", "notes", "contacts", "version_seen",
        "confirm_duplicate",
    ]
    form_extra_fields = {
        "version_seen": VersionSeenField(),
        "confirm_duplicate": ConfirmDuplicateField(
            "Create anyway: this is not one of the existing records named above"),
    }
    form_overrides = {
        "kind": EnumSelectField,
        "employee_type": EnumSelectField,
        "primary_phone_type": EnumSelectField,
        "secondary_phone_type": EnumSelectField,
        "notes": TextAreaField,
    }
    form_args = {
        "kind": {"enum": CustomerKind, "blank": False, "label": "Kind"},
        "employee_type": {"enum": EmployeeType},
        "primary_phone_type": {**PHONE_TYPE, "label": "Type"},
        "secondary_phone_type": {**PHONE_TYPE, "label": "Type"},
        "company_name": {"label": "Company name *"},
        "first_name": {"label": "First name *"},
        "last_name": {"label": "Last name *"},
        "operators": {
            "label": "Responsible operators",
            "query_factory": lambda: db.session.scalars(
                select(Operator).where(Operator.is_active.is_(True))
                .order_by(Operator.last_name, Operator.first_name)
            ).all(),
        },
        "building": {
            "query_factory": lambda: db.session.scalars(
                select(Building).options(selectinload(Building.site)).order_by(Building.name)
            ).all(),
        },
    }
    form_ajax_refs = {
        "manager": CustomerAjaxLoader("manager", db, kind=CustomerKind.PERSON,
                                      current_of=Customer.manager_id),
    }
    inline_models = [
        (Contact, {
            "form_columns": ["id", "first_name", "last_name", "email", "phone", "phone_type",
                             "title", "is_main"],
            "form_overrides": {"phone_type": EnumSelectField},
            "form_args": {"phone_type": PHONE_TYPE, "is_main": {"label": "Main contact"},
                          "email": {"label": "E-mail"}},
            "form_label": "Contact",
        }),
    ]
    form_widget_args = {"notes": {"rows": 4}}
    list_template = "admin/customer_list.html"
    details_template = "admin/customer_details.html"
    create_template = "admin/customer_create.html"
    edit_template = "admin/customer_edit.html"

    def scope(self, right):
        return customer_scope(right)

    def render(self, template, **kwargs):
        if template == self.list_template:
            kwargs.update(drafts=drafts_of(db.session, actor()), wizard_titles=TITLES,
                          **quick_form_context(db.session))
        return super().render(template, **kwargs)

    def get_query(self):
        # Operators are many-to-many: one extra SELECT … IN for the page, never one per row.
        query = super().get_query().options(selectinload(Customer.operators))
        if g.get("exporting_customers"):
            # An export streams after the request's session is gone: load what it prints now.
            query = query.options(*(joinedload(rel) for rel in EXPORT_RELATIONS))
        return query

    def _export_data(self):
        g.exporting_customers = True
        return super()._export_data()

    def on_form_prefill(self, form, id):
        # Flask-Admin calls this again after a refused POST: then the typed values stay.
        if request.method != "GET":
            return
        form.version_seen.data = db.session.get(Customer, int(id)).version
        for name in ("primary_phone", "secondary_phone"):
            getattr(form, name).data = format_phone(getattr(form, name).data)

    def _refuse_operator_tampering(self, form):
        # Only maintainers get the operators field; a posted value from anyone else is a
        # tampered request, refused outright rather than silently ignored.
        if not actor().is_maintainer:
            if request.method == "POST" and "operators" in request.form:
                require_operator_assignment(actor())  # refused: the 403 page says why
            del form.operators
        return form

    def create_form(self, obj=None):
        form = super().create_form(obj)
        if request.method == "GET":
            form.status.data = default_status(db.session)  # what a new customer gets anyway
        return self._refuse_operator_tampering(form)

    def edit_form(self, obj=None):
        form = self._refuse_operator_tampering(super().edit_form(obj))
        # The edit page is tabbed: this form is "Basic information"; contacts, operators and
        # workgroups have tabs of their own (admin_views.customer_tabs), each saving on its own.
        for name in EDIT_TAB_FIELDS:
            if getattr(form, name, None) is not None:
                delattr(form, name)
        return form

    def get_one(self, id):
        # The one loader: 404 / 403 by the endpoint's declared right (RowAccessMixin), a
        # merged-away id redirected to its survivor only after the access check.
        return load_customer(db.session, actor(), id, self.required_right())

    def save_model(self, form, model, is_created):
        confirm = getattr(form, "confirm_duplicate", None)  # not on the edit form
        save_customer(db.session, model, actor(), save_options(), seen_version=seen_version(form),
                      confirm_duplicate=bool(confirm is not None and confirm.data))

    def remove_model(self, model):
        delete_customer(db.session, model, actor())
