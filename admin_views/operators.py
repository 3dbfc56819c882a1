"""Operators and teams: maintainers only."""

from __future__ import annotations

from flask import request
from flask_login import login_user

from admin_views.base import MaintainerModelView, VersionSeenField, actor, seen_version
from admin_views.fields import EnumSelectField, NewPasswordField
from extensions import db
from i18n import _l, when
from models import Operator
from models.enums import OperatorRole
from services.operators import save_operator


class OperatorView(MaintainerModelView):
    column_list = ["email", "first_name", "last_name", "role", "teams", "manager", "is_active",
                   "last_login_at"]
    column_labels = {"email": _l("E-mail (login)"), "first_name": _l("First name"),
                     "last_name": _l("Last name"), "role": _l("Role"), "teams": _l("Teams"),
                     "manager": _l("Manager"), "is_active": _l("Active"), "last_login_at": _l("Last sign-in"),
                     "password": _l("New password")}
    column_searchable_list = ["email", "first_name", "last_name"]
    column_default_sort = [("last_name", False), ("first_name", False)]
    column_formatters = {
        "role": lambda v, c, m, n: m.role.label,
        "teams": lambda v, c, m, n: ", ".join(t.name for t in m.teams),
        "last_login_at": lambda v, c, m, n: when(m.last_login_at),
    }
    column_details_list = column_list
    can_export = False  # operator rows hold login data; nobody needs them in a spreadsheet

    form_columns = ["email", "first_name", "last_name", "role", "teams", "manager", "is_active", "password",
                    "version_seen"]
    form_overrides = {"role": EnumSelectField}
    form_args = {"role": {"enum": OperatorRole, "blank": False}}
    form_extra_fields = {
        "password": NewPasswordField(
            _l("New password"), description=_l("Required for a new operator; leave empty to keep.")
        ),
        "version_seen": VersionSeenField(),
    }

    def on_form_prefill(self, form, id):
        # Called again after a refused POST: then the version the user's input is based on stays.
        if request.method == "GET":
            form.version_seen.data = db.session.get(Operator, int(id)).version

    def save_model(self, form, model, is_created):
        save_operator(db.session, model, actor(), form.password.data, seen_version=seen_version(form))
        if model is actor() and model.is_active:
            # A maintainer giving themselves a new password ended their sessions; not this one.
            login_user(model)
