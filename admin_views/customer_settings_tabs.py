"""A customer's technical settings as tabs (C-Monitor, Mail servers, Notifications, Requests by
e-mail): one page at /settings/?tab=…, each tab saving on its own through
services.customer_settings with a version check. The forms are the wizard's, so both ask the
same questions and the domain checks both the same."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from wtforms import Form

from admin_views.base import actor
from admin_views.customer_page import CustomerPage, TabSpec
from admin_views.ids import parse_id
from admin_views.refusals import panel_write
from extensions import db
from models import Customer
from services.access import Right
from services.customer_settings import save_customer_settings, settings_form_values, settings_of
from wizards.flow import settings_values
from wizards.steps import FORMS, SECRET_FIELDS, SERVER_PREFIXES, TITLES, Step

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
        TabSpec("cmonitor", "C-Monitor", {"tab": "cmonitor"}),
        TabSpec("mail", "Mail servers", {"tab": "mail"}),
        TabSpec("notifications", "Notifications", {"tab": "notifications"}),
        TabSpec("requests", "Requests by e-mail", {"tab": "requests"}),
    )

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
        return self.render_page(
            customer, form=form, active_tab=tab, titles=TITLES,
            secrets_set={f for f in SECRET_FIELDS if stored.get(f"{f}_set")},
            servers=SERVER_PREFIXES.get(step, ()), version=row.version,
        )

    def post(self, customer: Customer):
        tab = self.tab()
        step = STEPS[tab]
        stored = settings_form_values(settings_of(db.session, customer))
        form = FORMS[step](request.form, data=_form_data(stored))
        if not form.validate():
            return self.get(customer, form)
        values = {name: field.data for name, field in form._fields.items()}
        with panel_write(form) as outcome:
            save_customer_settings(db.session, customer, actor(), current_app.extensions["secret_box"],
                                   settings_values({step: values}),
                                   seen_version=parse_id(request.form.get("version_seen")))
        if outcome.ok:
            flash(f"{TITLES[step]} saved.", "success")
            return redirect(url_for(".index", id=customer.id, tab=tab))
        return self.get(customer, form)  # the stored version again: after a stale refusal, the current one
