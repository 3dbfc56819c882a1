"""Lookup tables and operator teams: maintainers only."""

from __future__ import annotations

from admin_views.base import MaintainerModelView, actor
from extensions import db
from i18n import _l
from models import Building
from services.reference_data import save_status


class LookupView(MaintainerModelView):
    """A named lookup: list, search and edit by name."""

    column_list = ["name"]
    column_labels = {"name": _l("Name"), "site": _l("Site"), "buildings": _l("Buildings")}
    column_searchable_list = ["name"]
    column_default_sort = "name"
    form_excluded_columns: list[str] = []
    can_view_details = False


class StatusView(LookupView):
    column_list = ["name", "is_default", "is_active"]
    column_labels = {"name": _l("Name"), "is_default": _l("Default for new customers"),
                     "is_active": _l("Counts as active")}
    form_columns = ["name", "is_default", "is_active"]

    def save_model(self, form, model, is_created):
        save_status(db.session, model, actor())


class SiteView(LookupView):
    form_columns = ["name"]
    inline_models = [(Building, {"form_columns": ["id", "name"]})]


class BuildingView(LookupView):
    column_list = ["name", "site"]
    column_sortable_list = ["name", ("site", "site.name")]
    form_columns = ["site", "name"]
