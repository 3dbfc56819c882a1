"""Portal access of one contact of a company: create its credentials, reset the password,
disable or enable sign-in — the same three forms and rules as the customer's own Portal access
tab (services.portal), reached from the customer's Contacts tab."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from sqlalchemy import select
from wtforms import Form

from admin_views.base import actor
from admin_views.customer_page import CustomerPage
from admin_views.customer_tabs import PortalForm
from admin_views.ids import parse_id
from admin_views.refusals import panel_write
from extensions import db
from i18n import _, _l
from models import Contact, Customer, SecurityGroup
from services.access import Right
from services.errors import DomainError
from services.portal import (
    create_portal_account,
    portal_account_of,
    reset_portal_password,
    set_portal_access_enabled,
)


class ContactPortalPage(CustomerPage):
    """/admin/customers/contact-portal/<customer>/<contact>: one contact's portal account. Only
    for operators with the edit right on the customer (as the customer's own portal tab); a
    contact of another customer is a 404."""

    template = "admin/contact_portal.html"
    form = PortalForm
    right = Right.EDIT
    post_right = Right.EDIT
    tabs = ()  # a page under the Contacts tab, not a tab of its own
    route = "/<int:customer_id>/<int:contact_id>"
    DONE = {"create": _l("Portal access created."), "reset": _l("The password was reset."),
            "disable": _l("Portal sign-in disabled."), "enable": _l("Portal sign-in enabled.")}

    def _contact(self, customer: Customer) -> Contact:
        contact_id = (request.view_args or {}).get("contact_id")
        contact = db.session.get(Contact, contact_id) if isinstance(contact_id, int) else None
        if contact is None or contact.customer_id != customer.id:
            abort(404)
        return contact

    def get(self, customer: Customer, form: Form | None = None):
        contact = self._contact(customer)
        groups = db.session.scalars(select(SecurityGroup).order_by(SecurityGroup.name)).all()
        form = form or self.make_form(data=_suggested(contact))
        return self.render_page(customer, contact=contact, form=form, groups=groups, active_tab="contacts",
                                account=portal_account_of(db.session, customer, contact))

    def post(self, customer: Customer):
        contact = self._contact(customer)
        form = self.make_form()
        action, password = form.action.data or "", form.password.data or ""
        seen = parse_id(request.form.get("version_seen"))
        with panel_write(form) as outcome:
            if action == "create":
                group = db.session.get(SecurityGroup, parse_id(form.security_group.data) or 0)
                create_portal_account(db.session, customer, actor(), username=form.username.data or "",
                                      password=password, security_group=group, contact=contact)
            elif action == "reset":  # based on the account's version the page showed
                reset_portal_password(db.session, customer, actor(), password, seen_version=seen,
                                      contact=contact)
            elif action in ("disable", "enable"):
                set_portal_access_enabled(db.session, customer, actor(), action == "enable",
                                          seen_version=seen, contact=contact)
            else:
                raise DomainError(_("Choose one of the page's buttons."))
        if outcome.ok:
            flash(f"{contact.display_name}: {self.DONE[action]}", "success")
            return redirect(url_for(".index", customer_id=customer.id, contact_id=contact.id))
        return self.get(customer, form)


def _suggested(contact: Contact) -> dict:
    # The contact's e-mail is the user name people expect; the operator may type another.
    return {"username": contact.email or ""}
