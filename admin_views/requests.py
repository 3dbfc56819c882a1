"""Requests (incidents): of the customers the operator may see, created from a customer too.
Their details page is the request's page for operators: the discussion, status history,
attachments and the copies mailed (admin_views.request_discussion)."""

from __future__ import annotations

from flask import request as http_request
from flask import url_for
from flask_admin import expose
from flask_admin.contrib.sqla.ajax import QueryAjaxModelLoader
from markupsafe import Markup
from sqlalchemy import select

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
from models import Contact, Customer, Request
from models.enums import RequestSource, RequestStatus
from services.access import Right
from services.requests import delete_request, request_recipients, save_request


class ContactAjaxLoader(QueryAjaxModelLoader):
    """Contacts of the companies the operator may view, found by name or e-mail."""

    def __init__(self, name, session, **options):
        options.setdefault("fields", ["display_name"])
        super().__init__(name, session, Contact, **options)

    def _allowed(self, *conditions):
        visible = select(Customer.id).where(customer_scope(Right.VIEW))
        return select(Contact).where(Contact.customer_id.in_(visible), *conditions)

    def get_one(self, pk):
        number = parse_id(pk)
        return None if number is None else db.session.scalar(self._allowed(Contact.id == number))

    def get_list(self, term, offset=0, limit=10):
        from services.search import contact_search_conditions

        query = self._allowed(*contact_search_conditions(term)).order_by(Contact.sort_name)
        return list(db.session.scalars(query.offset(offset).limit(limit)))


def _subject_link(view, context, model, name) -> Markup:
    return Markup('<a href="{}">{}</a>').format(url_for(".details_view", id=model.id), model.subject)


class RequestView(RowAccessMixin, SecuredModelView):
    column_list = ["id", "subject", "customer", "status", "source", "created_by", "created_at"]
    column_labels = {"id": "#", "created_by": "Created by", "created_at": "Created (UTC)"}
    column_searchable_list = ["subject"]
    column_default_sort = ("id", True)
    column_formatters = {"status": lambda v, c, m, n: status_badge(m.status),
                         "source": lambda v, c, m, n: m.source.label, "subject": _subject_link,
                         "created_at": lambda v, c, m, n: m.created_at.strftime("%Y-%m-%d %H:%M")}
    column_filters = [
        EnumFilter(Request.status, "Status", RequestStatus),
        EnumFilter(Request.source, "Source", RequestSource),
        IdFilter(Request.customer_id, "Customer #"),
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
    form_overrides = {"status": EnumSelectField}
    form_args = {"status": {"enum": RequestStatus, "blank": False},
                 "customer": {"label": "Customer"}, "subject": {"label": "Subject"},
                 "contacts": {"label": "Assigned contacts"}}
    form_ajax_refs = {
        "customer": CustomerAjaxLoader("customer", db),
        "contacts": ContactAjaxLoader("contacts", db),
    }

    create_template = "admin/request_create.html"
    edit_template = "admin/request_edit.html"
    details_template = "admin/request_details.html"

    def render(self, template, **kwargs):
        if template == self.details_template:
            model = kwargs["model"]
            for name, value in page_context(model, kwargs.pop("comment_form", None),
                                            kwargs.pop("status_form", None)).items():
                kwargs.setdefault(name, value)
            return super().render(template, **kwargs)
        kwargs.update(quick_form_context(db.session))
        if template == self.edit_template and kwargs.get("model") is not None:
            kwargs["recipients"] = request_recipients(kwargs["model"])
        return super().render(template, **kwargs)

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
