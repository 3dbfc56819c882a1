"""A customer's technical settings as tabs (C-Monitor, Mail servers, Notifications, Requests by
e-mail), each saving on its own through services.customer_settings with a version check. The
forms are the wizard's, so both ask the same questions and the domain checks both the same."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import expose

from admin_views.base import actor, attach_errors
from admin_views.ids import parse_id
from extensions import db
from services.access import Right, can
from services.customer_settings import save_customer_settings, settings_form_values, settings_of
from services.errors import PermissionDenied, StaleRecord, ValidationFailed
from wizards.flow import settings_values
from wizards.steps import FORMS, SECRET_FIELDS, SERVER_PREFIXES, TITLES, Step

TABS = {"cmonitor": Step.CMONITOR, "mail": Step.MAIL, "notifications": Step.NOTIFICATIONS,
        "requests": Step.REQUESTS}


def _form_data(values: dict) -> dict:
    """Stored values as the forms show them (enums as their values, flags as the radio's 1/0)."""
    shown = {k: (v.value if hasattr(v, "value") else v) for k, v in values.items()}
    shown["use_builtin_mail_servers"] = "1" if values.get("use_builtin_mail_servers") else "0"
    return {k: ("" if v is None else str(v) if isinstance(v, int) and not isinstance(v, bool) else v)
            for k, v in shown.items()}


class CustomerSettingsMixin:
    @expose("/settings/", methods=("GET", "POST"))
    def settings_view(self):
        customer = self.get_one(request.args.get("id"))  # 404 without the view right
        tab = request.args.get("tab", "cmonitor")
        if tab not in TABS:
            abort(404)
        step = TABS[tab]
        row = settings_of(db.session, customer)
        stored = settings_form_values(row)
        form = FORMS[step](request.form if request.method == "POST" else None, data=_form_data(stored))
        if request.method == "POST":
            values = {name: field.data for name, field in form._fields.items()}
            if form.validate():
                try:
                    box = current_app.extensions["secret_box"]
                    save_customer_settings(db.session, customer, actor(), box,
                                           settings_values({step: values}),
                                           seen_version=parse_id(request.form.get("version_seen")))
                except PermissionDenied:
                    abort(403)
                except StaleRecord as exc:
                    db.session.rollback()
                    attach_errors(form, exc.errors)
                    row = settings_of(db.session, customer)
                except ValidationFailed as exc:
                    db.session.rollback()
                    attach_errors(form, exc.errors)
                else:
                    flash(f"{TITLES[step]} saved.", "success")
                    return redirect(url_for(".settings_view", id=customer.id, tab=tab))
        secrets_set = {f for f in SECRET_FIELDS if stored.get(f"{f}_set")}
        return self.render(
            "admin/customer_settings.html", customer=customer, form=form, tab=tab, tabs=TABS,
            titles=TITLES, secrets_set=secrets_set, servers=SERVER_PREFIXES.get(step, ()),
            version=row.version, may_edit=can(db.session, actor(), customer.id, Right.EDIT),
        )
