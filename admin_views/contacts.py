"""Contacts of companies: list, search and edit on their own (inline on a company as well)."""

from __future__ import annotations

from flask import request
from sqlalchemy import exists, select

from admin_views.base import SecuredModelView, VersionSeenField, actor, save_options, seen_version
from admin_views.customers import PHONE_TYPE, _phone
from admin_views.fields import CustomerAjaxLoader, EnumSelectField
from admin_views.filters import BooleanChoiceFilter
from admin_views.row_access import RowAccessMixin, customer_scope
from admin_views.search_mixin import TokenSearchMixin
from extensions import db
from i18n import _l
from models import Contact, Customer
from models.enums import CustomerKind
from services.access import Right
from services.contact_info import format_phone
from services.contacts import delete_contact, save_contact
from services.search import contact_listed_page, contact_search_conditions


class ContactView(RowAccessMixin, TokenSearchMixin, SecuredModelView):
    """Contacts of the companies the operator may see; changing one needs the edit right on
    its company (a contact's delete is an edit of its company)."""

    search_conditions = staticmethod(contact_search_conditions)
    listed_search = staticmethod(contact_listed_page)
    search_placeholder_text = _l("Name, e-mail or phone")

    column_list = ["display_name", "customer", "is_main", "email", "phone", "title"]
    column_labels = {"display_name": _l("Name"), "customer": _l("Company"), "is_main": _l("Role"),
                     "email": _l("E-mail"), "phone": _l("Phone"), "phone_type": _l("Phone type"),
                     "title": _l("Title"), "first_name": _l("First name")}
    sort_by = {"display_name": Contact.sort_name}
    column_sortable_list = [("customer", "customer.sort_name"), "email", "is_main"]
    column_default_sort = [("sort_name", False), ("id", False)]
    column_searchable_list = ["display_name"]
    column_formatters = {
        "phone": _phone,
        "is_main": lambda v, c, m, n: m.role_label,
    }
    column_filters = [BooleanChoiceFilter(Contact.is_main, _l("Role"), _l("Main contact"), _l("Contact"))]
    can_export = True
    export_types = ["csv", "xlsx"]
    column_export_list = ["display_name", "customer", "is_main", "email", "phone", "title"]
    column_formatters_export = {
        **column_formatters,
        "customer": lambda v, c, m, n: str(m.customer),
    }

    form_columns = ["customer", "first_name", "last_name", "email", "phone", "phone_type",
                    "title", "is_main", "version_seen"]
    form_extra_fields = {"version_seen": VersionSeenField()}
    form_overrides = {"phone_type": EnumSelectField}
    form_args = {"phone_type": PHONE_TYPE, "is_main": {"label": _l("Main contact")},
                 "last_name": {"label": _l("Last name *")}, "customer": {"label": _l("Company *")}}
    form_ajax_refs = {
        "customer": CustomerAjaxLoader("customer", db, kind=CustomerKind.COMPANY, right=Right.EDIT),
    }

    def scope(self, right):
        company_right = Right.VIEW if right == Right.VIEW else Right.EDIT
        companies = customer_scope(company_right)
        operator = actor()
        if operator is not None and operator.is_maintainer:
            # A maintainer sees nearly every company: asked row by row, the page walks the contacts
            # in name order and stops after 20 (as IN, SQLite sorted all 3 million contacts first).
            return exists().where(Customer.id == Contact.customer_id, companies)
        # An operator sees a few: their companies' contacts are gathered first.
        return Contact.customer_id.in_(select(Customer.id).where(companies))

    def on_form_prefill(self, form, id):
        if request.method == "GET":
            form.version_seen.data = db.session.get(Contact, int(id)).version
            form.phone.data = format_phone(form.phone.data)

    def save_model(self, form, model, is_created):
        save_contact(db.session, model, actor(), save_options().phone_region,
                     seen_version=seen_version(form))

    def remove_model(self, model):
        delete_contact(db.session, model, actor())
