"""A customer's technical settings as tabs (C-Monitor, Mail servers, Notifications, Requests by
e-mail): one page at /settings/?tab=…, each tab saving on its own through
services.customer_settings with a version check. The forms are the wizard's, so both ask the
same questions and the domain checks both the same.

The Mail servers and Notifications tabs have the wizard's Test connection buttons: they post to
/settings/test-connection/<prefix>?id=…, which needs the right to edit the customer (it may use
the stored password and CA certificate) and is rate-limited like every test."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import expose
from wtforms import Form

from admin_views.base import actor
from admin_views.connection_tests import test_mail_server, with_uploaded_ca
from admin_views.customer_page import CustomerPage, TabSpec
from admin_views.ids import parse_id
from admin_views.refusals import panel_write
from extensions import db
from i18n import _, _l
from models import Customer
from services.access import Right, load_customer
from services.customer_settings import save_customer_settings, settings_form_values, settings_of
from wizards.flow import settings_values
from wizards.steps import FORMS, SECRET_FIELDS, SERVER_PREFIXES, TEST_LABELS, TITLES, Step

STEPS = {"cmonitor": Step.CMONITOR, "mail": Step.MAIL, "notifications": Step.NOTIFICATIONS,
         "requests": Step.REQUESTS}


def _form_data(values: dict) -> dict:
    """Stored values as the forms show them (enums as their values, flags as the radio's 1/0)."""
    shown = {k: (v.value if hasattr(v, "value") else v) for k, v in values.items()}
    shown["use_builtin_mail_servers"] = "1" if values.get("use_builtin_mail_servers") else "0"
    return {k: ("" if v is None else str(v) if isinstance(v, int) and not isinstance(v, bool) else v)
            for k, v in shown.items()}


class SettingsPage(CustomerPage):
    """The four settings tabs; `?tab=` picks one (C-Monitor without it)."""

    template = "admin/customer_settings.html"
    form = None  # one per tab: FORMS[step], the wizard's step forms
    right = Right.VIEW
    post_right = Right.EDIT
    tabs = (
        TabSpec("cmonitor", _l("C-Monitor"), {"tab": "cmonitor"}),
        TabSpec("mail", _l("Mail servers"), {"tab": "mail"}),
        TabSpec("notifications", _l("Notifications"), {"tab": "notifications"}),
        TabSpec("requests", _l("Requests by e-mail"), {"tab": "requests"}),
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Test connection beside the page's own route (CustomerPage keeps only that one).
        self._urls.append(("/test-connection/<prefix>", "test_connection", ("POST",)))

    # Exposed so that Flask-Admin wraps it with the page's access check (a signed-in, active
    # operator; anonymous visitors go to the sign-in page): without it load_customer would read
    # an anonymous visitor as the system itself and test the stored password against any host.
    @expose("/test-connection/<prefix>", methods=("POST",))
    def test_connection(self, prefix: str):
        """The Test connection button of the Mail servers / Notifications tab (JSON). An empty
        password means the stored one; an empty CA field the stored CA certificate."""
        if prefix not in SERVER_PREFIXES[Step.MAIL] + SERVER_PREFIXES[Step.NOTIFICATIONS]:
            abort(404)
        customer = load_customer(db.session, actor(), request.args.get("id"), Right.EDIT)
        row = settings_of(db.session, customer)
        box = current_app.extensions["secret_box"]
        return test_mail_server(actor(), prefix, request.form,
                                stored_password=box.decrypt(getattr(row, f"{prefix}_password_encrypted")),
                                stored_ca=row.mail_ca_certificate)

    @staticmethod
    def tab() -> str:
        tab = request.args.get("tab", "cmonitor")
        if tab not in STEPS:
            abort(404)
        return tab

    def get(self, customer: Customer, form: Form | None = None):
        tab = self.tab()
        step = STEPS[tab]
        row = settings_of(db.session, customer)  # unsaved defaults when it has none: nothing written
        stored = settings_form_values(row)
        form = form or FORMS[step](data=_form_data(stored))
        servers = SERVER_PREFIXES.get(step, ())
        return self.render_page(
            customer, form=form, active_tab=tab, titles=TITLES,
            secrets_set={f for f in SECRET_FIELDS if stored.get(f"{f}_set")},
            servers=servers, version=row.version, test_labels=TEST_LABELS,
            test_url=(lambda prefix: url_for(".test_connection", prefix=prefix, id=customer.id))
            if servers else None,
        )

    def post(self, customer: Customer):
        tab = self.tab()
        step = STEPS[tab]
        stored = settings_form_values(settings_of(db.session, customer))
        form = FORMS[step](with_uploaded_ca(request.form, request.files), data=_form_data(stored))
        if not form.validate():
            return self.get(customer, form)
        values = {name: field.data for name, field in form._fields.items()}
        with panel_write(form) as outcome:
            save_customer_settings(db.session, customer, actor(), current_app.extensions["secret_box"],
                                   settings_values({step: values}),
                                   seen_version=parse_id(request.form.get("version_seen")))
        if outcome.ok:
            flash(_("%(tab)s saved.", tab=TITLES[step]), "success")
            return redirect(url_for(".index", id=customer.id, tab=tab))
        return self.get(customer, form)  # the stored version again: after a stale refusal, the current one
