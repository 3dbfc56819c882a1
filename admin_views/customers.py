"""Customers: list, search, filters, export, the plain create form and the Basic information tab
(the edit form, in the Cherwell sections General / Contact / Organization).

One way to create a customer per intent, named on the list: "Quick add" (the quick modal) and
"Add with the wizard". Flask-Admin's own Create button is not shown; its URL still answers with
the plain one-page form (which the tests and scripts post to), saving to the customer's page."""

from __future__ import annotations

from flask import flash, g, redirect, request, url_for
from flask_admin import expose
from flask_admin.form import FormOpts, rules
from flask_admin.helpers import get_redirect_target
from flask_admin.model.helpers import get_mdict_item_or_list
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload
from wtforms.fields import TextAreaField

from admin_views.base import (
    ConfirmDuplicateField,
    SecuredModelView,
    VersionSeenField,
    actor,
    exporting,
    save_options,
    seen_version,
)
from admin_views.customer_pages import CustomerPagesMixin
from admin_views.fields import CustomerAjaxLoader, EnumSelectField
from admin_views.filters import EnumFilter, IdChoiceFilter, OperatorFilter
from admin_views.list_rows import record_url
from admin_views.merge import MergeMixin
from admin_views.quick_create import QuickCreateMixin, quick_form_context
from admin_views.row_access import RowAccessMixin, customer_scope, visible_label
from admin_views.search_mixin import TokenSearchMixin
from extensions import db
from i18n import _, _l, when
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
from services.customers import (
    default_status,
    delete_customer,
    require_operator_assignment,
    save_customer_changes,
)
from services.search import customer_listed_page, customer_search_conditions
from services.wording import field_label
from wizards.drafts import drafts_of
from wizards.steps import TITLES


def _operators(view, context, model, name) -> str:
    return ", ".join(op.full_name for op in model.operators)


def _phone(view, context, model, name):
    # One line per number: "+421 905 123 456" never breaks at its spaces.
    return Markup(f'<span class="text-nowrap">{escape(format_phone(getattr(model, name)))}</span>')


def _phone_text(view, context, model, name) -> str:
    return format_phone(getattr(model, name))


def _name_link(view, context, model, name):
    href = record_url("customer_overview.index", model.id)
    return Markup(f'<a href="{escape(href)}" data-testid="customer-link">{escape(model.display_name)}</a>')


def status_badge(status) -> Markup:
    """A customer's status as a badge: green for the statuses of daily work, grey for the rest."""
    if status is None:
        return Markup("")
    tone = "badge-success" if status.is_active else "badge-secondary"
    return Markup(f'<span class="badge {tone}" data-testid="status-badge">{escape(status.name)}</span>')


def _status(view, context, model, name):
    return status_badge(model.status)


def _when(view, context, model, name):
    return Markup(f'<span class="text-nowrap">{escape(when(getattr(model, name)))}</span>')


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
    "display_name": _name_link,
    "kind": _label,
    "status": _status,
    "employee_type": _label,
    "primary_phone": _phone,
    "secondary_phone": _phone,
    "operators": _operators,
    "updated_at": _when,
}
EXPORT_FORMATTERS = {**LIST_FORMATTERS, "display_name": lambda v, c, m, n: m.display_name,
                     "primary_phone": _phone_text, "secondary_phone": _phone_text}


class Section(rules.NestedRule):
    """A section of the form (the Cherwell form's General / Contact / Organization): a fieldset
    with its legend around its fields."""

    def __init__(self, title, fields, name: str) -> None:
        super().__init__(list(fields))
        self.title, self.name = title, name

    def __call__(self, form, form_opts=None, field_args=None):
        inner = super().__call__(form, form_opts, field_args)
        return Markup('<fieldset class="cd-section mb-3" data-section="{}">'
                      '<legend class="h5 border-bottom pb-1">{}</legend>{}</fieldset>').format(
                          self.name, self.title, inner)


class HiddenKept(rules.BaseRule):
    """A hidden field kept in a form with rules (Flask-Admin renders hidden fields itself)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    @property
    def visible_fields(self) -> list[str]:
        return [self.name]

    def __call__(self, form, form_opts=None, field_args=None) -> str:
        return ""


# Basic information: a person's fields in the Cherwell form's sections (the company's fields in
# General too; static/customer_form.js shows only the chosen kind's). The status has its own
# dialog in the header; contacts, operators and workgroups have tabs of their own.
EDIT_RULES = [
    HiddenKept("version_seen"),
    Section(_l("General"), ("kind", "company_name", "registration_number", "vat_id", "first_name",
                            "middle_name", "last_name", "employee_type", "sla_level", "site", "building",
                            "location_code"), "general"),
    Section(_l("Contact"), ("primary_phone", "primary_phone_type", "secondary_phone", "secondary_phone_type",
                            "email", "secondary_email"), "contact"),
    Section(_l("Organization"), ("department", "title", "manager", "notes"), "organization"),
]

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
    listed_search = staticmethod(customer_listed_page)
    search_placeholder_text = _l("Name, company, e-mail or phone")

    column_list = ["photo", "display_name", "kind", "status", "email", "primary_phone", "sla_level",
                   "operators", "updated_at"]
    column_labels = {
        "photo": _l("Photo"),
        "display_name": _l("Name"),
        "kind": _l("Kind"),
        "status": _l("Status"),
        "primary_phone": _l("Primary phone"),
        "sla_level": _l("SLA level"),
        "operators": _l("Responsible operators"),
        "registration_number": _l("Company ID (IČO)"),
        "vat_id": _l("VAT ID"),
        "company_name": _l("Company name"),
        "first_name": _l("First name"),
        "last_name": _l("Last name"),
        "middle_name": _l("Middle"),
        "title": _l("Title"),
        "department": _l("Department"),
        "manager": _l("Manager"),
        "site": _l("Site"),
        "building": _l("Building"),
        "location_code": _l("Location ID"),
        "email": _l("E-mail"),
        "secondary_email": _l("Secondary e-mail"),
        "secondary_phone": _l("Secondary phone"),
        "primary_phone_type": _l("Type"),
        "secondary_phone_type": _l("Type"),
        "employee_type": _l("Employee type"),
        "sla_level.name": _l("SLA level"),
        "workgroups": _l("Workgroups"),
        "contacts": _l("Contacts"),
        "notes": _l("Notes"),
        "updated_at": _l("Last changed"),
    }
    sort_by = {"display_name": Customer.sort_name}
    column_sortable_list = [
        "kind",
        ("status", "status.name"),
        "email",
        ("sla_level", "sla_level.name"),
        "updated_at",
    ]
    column_default_sort = [("sort_name", False), ("id", False)]
    # Many-to-one columns joined into the page query; operators come by selectinload (get_query).
    column_select_related_list = [Customer.status, Customer.sla_level]
    column_searchable_list = ["display_name"]  # shows the search box; the search is our own
    column_formatters = LIST_FORMATTERS
    column_filters = [
        EnumFilter(Customer.kind, _l("Kind"), CustomerKind),
        IdChoiceFilter(Customer.status_id, _l("Status"), CustomerStatus),
        IdChoiceFilter(Customer.sla_level_id, _l("SLA level"), SlaLevel),
        IdChoiceFilter(Customer.site_id, _l("Site"), Site),
        IdChoiceFilter(Customer.department_id, _l("Department"), Department),
        OperatorFilter(),
    ]
    # The details page is the customer's Overview (customer_pages.OverviewPage): details_view
    # leads there.

    can_export = True
    export_types = ["csv", "xlsx"]
    column_export_list = [
        "display_name", "kind", "status", "company_name", "registration_number", "vat_id",
        "first_name", "middle_name", "last_name", "employee_type", "title", "department",
        "manager", "email", "secondary_email", "primary_phone", "secondary_phone", "sla_level",
        "site", "building", "location_code", "operators",
    ]
    column_formatters_export = {
        **EXPORT_FORMATTERS,
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
            _l("Create anyway: this is not one of the existing records named above")),
    }
    form_edit_rules = EDIT_RULES
    form_overrides = {
        "kind": EnumSelectField,
        "employee_type": EnumSelectField,
        "primary_phone_type": EnumSelectField,
        "secondary_phone_type": EnumSelectField,
        "notes": TextAreaField,
    }
    form_args = {
        "kind": {"enum": CustomerKind, "blank": False, "label": _l("Kind")},
        "employee_type": {"enum": EmployeeType},
        "primary_phone_type": {**PHONE_TYPE, "label": _l("Type")},
        "secondary_phone_type": {**PHONE_TYPE, "label": _l("Type")},
        "company_name": {"label": _l("Company name *")},
        "first_name": {"label": _l("First name *")},
        "last_name": {"label": _l("Last name *")},
        "operators": {
            "label": _l("Responsible operators"),
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
            "form_args": {"phone_type": PHONE_TYPE, "is_main": {"label": _l("Main contact")},
                          "email": {"label": _l("E-mail")}},
            "form_label": _l("Contact"),
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
        if exporting():
            # The export prints these for every row: joined into its batches, not one SELECT each.
            query = query.options(*(joinedload(rel) for rel in EXPORT_RELATIONS))
        return query

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
            if getattr(form, "operators", None) is not None:
                del form.operators
        return form

    def create_form(self, obj=None):
        form = super().create_form(obj)
        if request.method == "GET":
            form.status.data = default_status(db.session)  # what a new customer gets anyway
        return self._refuse_operator_tampering(form)

    def get_edit_form(self):
        # Basic information holds the fields of EDIT_RULES only: the status has its dialog,
        # contacts, operators and workgroups their tabs, the duplicate confirmation is for new ones.
        form_class = super().get_edit_form()
        for name in (*EDIT_TAB_FIELDS, "status"):
            if hasattr(form_class, name):
                delattr(form_class, name)
        return form_class

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
        # What the save changed, for the tab's message (edit_view).
        g.customer_changes = save_customer_changes(
            db.session, model, actor(), save_options(), seen_version=seen_version(form),
            confirm_duplicate=bool(confirm is not None and confirm.data))

    def get_save_return_url(self, model, is_created=False):
        return url_for("customer_overview.index", id=model.id)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        """Basic information, a tab of the customer: saving stays on it and says what changed."""
        customer_id = get_mdict_item_or_list(request.args, "id")
        if customer_id is None:
            return redirect(get_redirect_target() or self.get_url(".index_view"))
        model = self.get_one(customer_id)  # 404 / 403 / the survivor of a merge
        form = self.edit_form(obj=model)
        if not getattr(form, "_validated_ruleset", False):
            self._validate_form_instance(ruleset=self._form_edit_rules, form=form)
        if self.validate_form(form):
            if self.update_model(form, model):
                flash(saved_message(g.pop("customer_changes", {})), "success")
                return redirect(self.get_url(".edit_view", id=model.id))
        elif request.method == "POST":
            flash(_("Not saved: correct the fields marked below."), "error")
        if request.method == "GET" or form.errors:
            self.on_form_prefill(form, customer_id)
        form_opts = FormOpts(widget_args=self.form_widget_args, form_rules=self._form_edit_rules)
        return self.render(self.edit_template, model=model, form=form, form_opts=form_opts,
                           return_url=url_for("customer_overview.index", id=model.id))

    def remove_model(self, model):
        delete_customer(db.session, model, actor())


def saved_message(changes: dict) -> str:
    """"Saved: Title, Primary phone." — the labels of what a save changed, in the users' words."""
    if not changes:
        return _("Saved: nothing was changed.")
    labels = list(dict.fromkeys(field_label("customer", field) for field in changes))
    return _("Saved: %(fields)s.", fields=", ".join(labels))
