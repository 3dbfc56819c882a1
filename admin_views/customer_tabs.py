"""The per-customer edit page as tabs, each its own URL that saves on its own.

Basic information is Flask-Admin's edit form; the technical settings, portal access and history
tabs live in their own mixins. This module adds the tab bar they all share and the Contacts,
Operators, Workgroups and Computers tabs. Every tab reads the customer through the view's
`get_one` (access policy: 404 / 403) and writes through the domain services, which check the
rights again (only a maintainer changes operators, the edit right for the rest) and the version.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import expose
from sqlalchemy import select
from wtforms import Form, RadioField, SelectField, StringField

from admin_views.base import actor, attach_errors, save_options
from admin_views.ids import parse_id
from extensions import db
from models import Computer, Contact, Operator, Workgroup
from models.enums import CustomerKind, PhoneType
from services.access import Right, can
from services.computers import push_settings, registration_key, rotate_registration_key, settings_differ
from services.contact_info import format_phone
from services.contacts import save_contact
from services.customers import save_customer
from services.errors import PermissionDenied, StaleRecord, ValidationFailed

# (key, label, endpoint, extra URL arguments): the tab bar of every customer page, in order.
CUSTOMER_TABS = [
    ("basic", "Basic information", ".edit_view", {}),
    ("contacts", "Contacts", ".contacts_tab_view", {}),
    ("cmonitor", "C-Monitor", ".settings_view", {"tab": "cmonitor"}),
    ("mail", "Mail servers", ".settings_view", {"tab": "mail"}),
    ("notifications", "Notifications", ".settings_view", {"tab": "notifications"}),
    ("requests", "Requests by e-mail", ".settings_view", {"tab": "requests"}),
    ("operators", "Operators", ".operators_tab_view", {}),
    ("portal", "Portal access", ".portal_view", {}),
    ("workgroups", "Workgroups", ".workgroups_tab_view", {}),
    ("computers", "Computers", ".computers_tab_view", {}),
    ("history", "History", ".history_view", {}),
]


class NewContactForm(Form):
    first_name = StringField("First name")
    last_name = StringField("Last name *")
    email = StringField("E-mail")
    phone = StringField("Phone")
    phone_type = SelectField("Phone type", choices=[("", "—")] + PhoneType.choices(), default="")
    title = StringField("Title")
    role = RadioField("Role", default="contact", choices=[
        ("main", "Main contact — receives copies of the communication on all the customer's requests"),
        ("contact", "Contact — only on the requests it is assigned to"),
    ])


def _chosen_ids(name: str) -> set[int]:
    return {i for i in map(parse_id, request.form.getlist(name)) if i is not None}


class CustomerTabsMixin:
    def _tab_page(self, template: str, customer, active: str, **kwargs):
        return self.render(template, customer=customer, active_tab=active,
                           may_edit=can(db.session, actor(), customer.id, Right.EDIT), **kwargs)

    def _relation_tab(self, customer, relation: str, choices: list, message: str, template: str, **extra):
        """The Operators and Workgroups tabs: tick boxes over `choices`, saved through the domain
        (rights, version, audit); a refusal lands on the same tab with the ticks kept."""
        errors: dict[str, list[str]] = {}
        if request.method == "POST":
            chosen = _chosen_ids(relation)
            try:
                with db.session.no_autoflush:
                    setattr(customer, relation, [c for c in choices if c.id in chosen])
                save_customer(db.session, customer, actor(), save_options(),
                              seen_version=parse_id(request.form.get("version_seen")))
            except PermissionDenied:
                db.session.rollback()
                abort(403)
            except (StaleRecord, ValidationFailed) as exc:
                db.session.rollback()
                errors = exc.errors
            else:
                flash(message, "success")
                return redirect(url_for(f".{relation}_tab_view", id=customer.id))
        chosen = _chosen_ids(relation) if errors else {c.id for c in getattr(customer, relation)}
        return self._tab_page(template, customer, relation, errors=errors, chosen=chosen, **extra)

    @expose("/contacts-tab/", methods=("GET", "POST"))
    def contacts_tab_view(self):
        """A company's contacts, and a form to add one (the prompt after creating a company)."""
        customer = self.get_one(request.args.get("id"))
        form = NewContactForm(request.form if request.method == "POST" else None)
        if request.method == "POST":
            values = form.data
            contact = Contact(customer=customer, is_main=values.pop("role") == "main",
                              phone_type=PhoneType(values["phone_type"]) if values["phone_type"] else None,
                              **{k: v for k, v in values.items() if k != "phone_type"})
            try:
                save_contact(db.session, contact, actor(), save_options().phone_region)
            except PermissionDenied:
                db.session.rollback()
                abort(403)
            except ValidationFailed as exc:
                db.session.rollback()
                attach_errors(form, exc.errors)
            else:
                flash(f"{contact.display_name} was added as {contact.role_label.lower()}.", "success")
                return redirect(url_for(".contacts_tab_view", id=customer.id))
        contacts = db.session.scalars(select(Contact).where(Contact.customer_id == customer.id)
                                      .order_by(Contact.is_main.desc(), Contact.sort_name)).all()
        return self._tab_page("admin/customer_contacts.html", customer, "contacts", form=form,
                              contacts=contacts, is_company=customer.kind == CustomerKind.COMPANY,
                              just_created=request.args.get("created") == "1", format_phone=format_phone)

    @expose("/operators-tab/", methods=("GET", "POST"))
    def operators_tab_view(self):
        """Responsible operators: a maintainer changes them; everyone else reads them."""
        customer = self.get_one(request.args.get("id"))
        if request.method == "POST" and not actor().is_maintainer:
            abort(403)  # the tab is read-only for operators: a POST is tampering
        operators = db.session.scalars(select(Operator).where(Operator.is_active.is_(True))
                                       .order_by(Operator.last_name, Operator.first_name)).all()
        return self._relation_tab(customer, "operators", operators, "Responsible operators saved.",
                                  "admin/customer_operators.html", operators=operators,
                                  may_assign=actor().is_maintainer)

    @expose("/workgroups-tab/", methods=("GET", "POST"))
    def workgroups_tab_view(self):
        """Customer workgroups: whom the customer shares information with."""
        customer = self.get_one(request.args.get("id"))
        groups = db.session.scalars(select(Workgroup).order_by(Workgroup.name)).all()
        return self._relation_tab(customer, "workgroups", groups, "Workgroups saved.",
                                  "admin/customer_workgroups.html", groups=groups)

    @expose("/computers-tab/", methods=("GET", "POST"))
    def computers_tab_view(self):
        """Computers registered under the customer, whether their settings still match the
        customer's, "push current settings", and the registration key (for those who may edit)."""
        customer = self.get_one(request.args.get("id"))
        box = current_app.extensions["secret_box"]
        if request.method == "POST":
            try:
                if request.form.get("action") == "rotate":
                    rotate_registration_key(db.session, actor(), customer, box)
                    flash("A new registration key was made; the old one no longer registers computers.",
                          "success")
                else:
                    computer = db.session.scalar(select(Computer).where(
                        Computer.id == (parse_id(request.form.get("computer")) or 0),
                        Computer.customer_id == customer.id))
                    if computer is None:
                        abort(404)
                    push_settings(db.session, actor(), computer, box)
                    flash(f"{computer.hostname} now has the customer's current settings.", "success")
            except PermissionDenied:
                db.session.rollback()
                abort(403)
            return redirect(url_for(".computers_tab_view", id=customer.id))
        computers = db.session.scalars(select(Computer).where(Computer.customer_id == customer.id)
                                       .order_by(Computer.hostname)).all()
        may_edit = can(db.session, actor(), customer.id, Right.EDIT)
        key = registration_key(db.session, actor(), customer, box) if may_edit else None
        return self._tab_page("admin/customer_computers.html", customer, "computers", computers=computers,
                              key=key, differs={c.id: settings_differ(db.session, c, box) for c in computers})
