"""The tabs of one customer after Basic information: Contacts, Operators, Portal access,
Workgroups, Computers and History (the technical settings are in customer_settings_tabs).

Each is a CustomerPage (admin_views.customer_page): it declares its template, form and rights,
reads the customer through the loader and writes through one domain command inside
panel_write. The commands check the rights again: only a maintainer changes operators, the
edit right for the rest, and the version.
"""

from __future__ import annotations

from flask import current_app, flash, make_response, redirect, request, url_for
from sqlalchemy import or_, select
from wtforms import Form, HiddenField, PasswordField, RadioField, SelectField, StringField

from admin_views.base import actor, save_options
from admin_views.customer_page import CustomerPage, TabSpec
from admin_views.ids import parse_id
from admin_views.refusals import panel_write
from extensions import db
from i18n import _, _l
from models import (
    AuditEvent,
    Computer,
    Contact,
    Customer,
    CustomerSettings,
    Operator,
    PortalAccount,
    SecurityGroup,
    Workgroup,
)
from models.enums import CustomerKind, PhoneType
from services.access import Right
from services.computers import (
    has_registration_key,
    may_issue_registration_key,
    push_settings,
    rotate_registration_key,
    settings_differ,
)
from services.contact_info import format_phone
from services.contacts import save_contact
from services.customers import set_operators, set_workgroups
from services.errors import DomainError, NotFound
from services.limits import max_length
from services.portal import (
    create_portal_account,
    portal_account_of,
    reset_portal_password,
    set_portal_access_enabled,
)


def _limit(column) -> dict:
    """The HTML maxlength of a field from its column (services.limits), for the browser's hint."""
    return {"maxlength": max_length(column)}


class NewContactForm(Form):
    first_name = StringField(_l("First name"), render_kw=_limit(Contact.first_name))
    last_name = StringField(_l("Last name *"), render_kw=_limit(Contact.last_name))
    email = StringField(_l("E-mail"), render_kw=_limit(Contact.email))
    phone = StringField(_l("Phone"), render_kw=_limit(Contact.phone))
    phone_type = SelectField(_l("Phone type"), choices=[("", "—")] + PhoneType.choices(), default="")
    title = StringField(_l("Title"), render_kw=_limit(Contact.title))
    role = RadioField(_l("Role"), default="contact", choices=[
        ("main", _l("Main contact — receives copies of the communication on all the customer's requests")),
        ("contact", _l("Contact — only on the requests it is assigned to")),
    ])


class PortalForm(Form):
    """The fields of the portal page's three small forms: create, reset the password, disable
    or enable sign-in (which one: `action`)."""

    action = HiddenField()
    username = StringField(_l("User name *"), render_kw=_limit(PortalAccount.username))
    password = PasswordField(_l("Password"))
    security_group = StringField(_l("Security group"))  # the id chosen in the page's select


def _chosen_ids(name: str) -> set[int]:
    return {i for i in map(parse_id, request.form.getlist(name)) if i is not None}


def _seen_version() -> int | None:
    return parse_id(request.form.get("version_seen"))


def _box():
    return current_app.extensions["secret_box"]


class ContactsPage(CustomerPage):
    """A company's contacts, and a form to add one (the prompt after creating a company)."""

    template = "admin/customer_contacts.html"
    form = NewContactForm
    right = Right.VIEW
    post_right = Right.EDIT
    tabs = (TabSpec("contacts", _l("Contacts")),)

    def get(self, customer: Customer, form: Form | None = None):
        contacts = db.session.scalars(select(Contact).where(Contact.customer_id == customer.id)
                                      .order_by(Contact.is_main.desc(), Contact.sort_name)).all()
        return self.render_page(customer, form=form or self.make_form(), contacts=contacts,
                                is_company=customer.kind == CustomerKind.COMPANY,
                                just_created=request.args.get("created") == "1", format_phone=format_phone)

    def post(self, customer: Customer):
        form = self.make_form()
        if not form.validate():  # a phone type or role that is not one of the choices
            return self.get(customer, form)
        values = dict(form.data)
        role, phone_type = values.pop("role"), values.pop("phone_type")
        with panel_write(form) as outcome:
            contact = Contact(customer=customer, is_main=role == "main",
                              phone_type=PhoneType(phone_type) if phone_type else None, **values)
            save_contact(db.session, contact, actor(), save_options().phone_region)
        if outcome.ok:
            flash(_("%(name)s was added as %(role)s.", name=contact.display_name,
                    role=contact.role_label.lower()), "success")
            return redirect(url_for(".index", id=customer.id))
        return self.get(customer, form)


class TickBoxPage(CustomerPage):
    """A tab of tick boxes over a lookup (Operators, Workgroups), saved by one command; a
    refusal is a page message and the ticks stay. Each page still declares its own template,
    form and rights."""

    relation = ""  # the customer's relationship and the posted field's name
    choices_name = ""  # the template's name for the choices
    saved = ""  # the message after a save

    def choices(self) -> list:
        raise NotImplementedError

    def save(self, customer: Customer, chosen: list) -> None:
        raise NotImplementedError

    def extra(self) -> dict:
        return {}

    def get(self, customer: Customer, chosen: set[int] | None = None):
        current = {row.id for row in getattr(customer, self.relation)}
        return self.render_page(customer, chosen=current if chosen is None else chosen,
                                **{self.choices_name: self.choices()}, **self.extra())

    def post(self, customer: Customer):
        chosen = _chosen_ids(self.relation)
        with panel_write() as outcome:
            self.save(customer, [row for row in self.choices() if row.id in chosen])
        if outcome.ok:
            flash(str(self.saved), "success")
            return redirect(url_for(".index", id=customer.id))
        return self.get(customer, chosen)


class OperatorsPage(TickBoxPage):
    """Responsible operators: a maintainer changes them; everyone else reads them."""

    template = "admin/customer_operators.html"
    form = None  # tick boxes over the active operators
    right = Right.VIEW
    post_right = Right.EDIT
    post_maintainer_only = True  # set_operators refuses everyone else too
    tabs = (TabSpec("operators", _l("Operators")),)
    relation, choices_name, saved = "operators", "operators", _l("Responsible operators saved.")

    def choices(self) -> list:
        return list(db.session.scalars(select(Operator).where(Operator.is_active.is_(True))
                                       .order_by(Operator.last_name, Operator.first_name)))

    def save(self, customer: Customer, chosen: list) -> None:
        set_operators(db.session, customer, actor(), save_options(), chosen, seen_version=_seen_version())

    def extra(self) -> dict:
        return {"may_assign": actor().is_maintainer}


class WorkgroupsPage(TickBoxPage):
    """Customer workgroups: whom the customer shares information with."""

    template = "admin/customer_workgroups.html"
    form = None  # tick boxes over the workgroups
    right = Right.VIEW
    post_right = Right.EDIT
    tabs = (TabSpec("workgroups", _l("Workgroups")),)
    relation, choices_name, saved = "workgroups", "groups", _l("Workgroups saved.")

    def choices(self) -> list:
        return list(db.session.scalars(select(Workgroup).order_by(Workgroup.name)))

    def save(self, customer: Customer, chosen: list) -> None:
        set_workgroups(db.session, customer, actor(), save_options(), chosen, seen_version=_seen_version())


class PortalPage(CustomerPage):
    """Portal access: create credentials, reset the password, disable or enable sign-in. Those
    who may only view the customer do not see its portal account at all."""

    template = "admin/customer_portal.html"
    form = PortalForm
    right = Right.EDIT
    post_right = Right.EDIT
    tabs = (TabSpec("portal", _l("Portal access")),)
    DONE = {"create": _l("Portal access created."), "reset": _l("The password was reset."),
            "disable": _l("Portal sign-in disabled."), "enable": _l("Portal sign-in enabled.")}

    def get(self, customer: Customer, form: Form | None = None):
        groups = db.session.scalars(select(SecurityGroup).order_by(SecurityGroup.name)).all()
        return self.render_page(customer, form=form or self.make_form(), groups=groups,
                                account=portal_account_of(db.session, customer))

    def post(self, customer: Customer):
        form = self.make_form()
        action, password = form.action.data or "", form.password.data or ""
        with panel_write(form) as outcome:
            if action == "create":
                group = db.session.get(SecurityGroup, parse_id(form.security_group.data) or 0)
                create_portal_account(db.session, customer, actor(), username=form.username.data or "",
                                      password=password, security_group=group)
            elif action == "reset":  # based on the account's version the page showed
                reset_portal_password(db.session, customer, actor(), password, seen_version=_seen_version())
            elif action in ("disable", "enable"):
                set_portal_access_enabled(db.session, customer, actor(), action == "enable",
                                          seen_version=_seen_version())
            else:
                raise DomainError(_("Choose one of the page's buttons."))
        if outcome.ok:
            flash(str(self.DONE[action]), "success")
            return redirect(url_for(".index", id=customer.id))
        return self.get(customer, form)


class ComputersPage(CustomerPage):
    """Computers registered under the customer, whether their settings still match the
    customer's, "push current settings", and the registration key: whether one exists, and a
    new one made on purpose (a POST), shown once on the page that answers it."""

    template = "admin/customer_computers.html"
    form = None  # two buttons: action=rotate, action=push with the computer's id
    right = Right.VIEW
    post_right = Right.EDIT
    tabs = (TabSpec("computers", _l("Computers")),)

    def get(self, customer: Customer, new_key: str | None = None):
        computers = db.session.scalars(select(Computer).where(Computer.customer_id == customer.id)
                                       .order_by(Computer.hostname)).all()
        box = _box()
        return self.render_page(customer, computers=computers, new_key=new_key,
                                has_key=has_registration_key(customer),
                                may_issue_key=may_issue_registration_key(actor()),
                                differs={c.id: settings_differ(db.session, c, box) for c in computers})

    def post(self, customer: Customer):
        if request.form.get("action") == "rotate":
            with panel_write() as outcome:
                key = rotate_registration_key(db.session, actor(), customer)
            if not outcome.ok:
                return redirect(url_for(".index", id=customer.id))
            # Shown on this answer only: not flashed (the session cookie would carry it) and
            # not cached by the browser.
            response = make_response(self.get(customer, new_key=key))
            response.headers["Cache-Control"] = "no-store"
            return response
        with panel_write() as outcome:
            computer = db.session.scalar(select(Computer).where(
                Computer.id == (parse_id(request.form.get("computer")) or 0),
                Computer.customer_id == customer.id))
            if computer is None:
                raise NotFound(_("No such computer under this customer."))
            push_settings(db.session, actor(), computer, _box())
        if outcome.ok:
            flash(_("%(host)s now has the customer's current settings.", host=computer.hostname), "success")
        return redirect(url_for(".index", id=customer.id))


class HistoryPage(CustomerPage):
    """Everything recorded about the customer, its contacts and its settings, newest first."""

    template = "admin/customer_history.html"
    form = None
    right = Right.VIEW
    post_right = None
    tabs = (TabSpec("history", _l("History")),)

    def get(self, customer: Customer):
        contact_ids = select(Contact.id).where(Contact.customer_id == customer.id)
        settings_ids = select(CustomerSettings.id).where(CustomerSettings.customer_id == customer.id)
        events = db.session.scalars(
            select(AuditEvent).where(or_(
                (AuditEvent.entity_type == "customer") & (AuditEvent.entity_id == customer.id),
                (AuditEvent.entity_type == "contact") & AuditEvent.entity_id.in_(contact_ids),
                (AuditEvent.entity_type == "customersettings") & AuditEvent.entity_id.in_(settings_ids),
            )).order_by(AuditEvent.id.desc()).limit(500)
        ).all()
        return self.render_page(customer, events=events)
