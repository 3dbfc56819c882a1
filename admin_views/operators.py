"""Operators and teams: maintainers only."""

from __future__ import annotations

from flask_login import login_user

from admin_views.base import MaintainerModelView, actor
from admin_views.fields import EnumSelectField, NewPasswordField
from extensions import db
from models.enums import OperatorRole
from services.audit import save_audited
from services.operators import validate_operator


class OperatorView(MaintainerModelView):
    column_list = ["email", "first_name", "last_name", "role", "teams", "manager", "is_active",
                   "last_login_at"]
    column_labels = {"email": "E-mail (login)", "is_active": "Active", "last_login_at": "Last sign-in"}
    column_searchable_list = ["email", "first_name", "last_name"]
    column_default_sort = [("last_name", False), ("first_name", False)]
    column_formatters = {
        "role": lambda v, c, m, n: m.role.label,
        "teams": lambda v, c, m, n: ", ".join(t.name for t in m.teams),
    }
    column_details_list = column_list
    can_export = False  # operator rows hold login data; nobody needs them in a spreadsheet

    form_columns = ["email", "first_name", "last_name", "role", "teams", "manager", "is_active", "password"]
    form_overrides = {"role": EnumSelectField}
    form_args = {"role": {"enum": OperatorRole, "blank": False}}
    form_extra_fields = {
        "password": NewPasswordField(
            "New password", description="Required for a new operator; leave empty to keep."
        )
    }

    def save_model(self, form, model, is_created):
        validate_operator(db.session, model, form.password.data)
        save_audited(db.session, actor(), model)
        if model is actor() and model.is_active:
            # A maintainer giving themselves a new password ended their sessions; not this one.
            login_user(model)
