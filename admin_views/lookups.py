"""Lookup tables and operator teams: maintainers only."""

from __future__ import annotations

from admin_views.base import MaintainerModelView
from models import Building


class LookupView(MaintainerModelView):
    """A named lookup: list, search and edit by name."""

    column_list = ["name"]
    column_searchable_list = ["name"]
    column_default_sort = "name"
    form_excluded_columns = []
    can_view_details = False


class StatusView(LookupView):
    column_list = ["name", "is_default", "is_active"]
    column_labels = {"is_default": "Default for new customers", "is_active": "Counts as active"}
    form_columns = ["name", "is_default", "is_active"]


class SiteView(LookupView):
    form_columns = ["name"]
    inline_models = [(Building, {"form_columns": ["id", "name"]})]


class BuildingView(LookupView):
    column_list = ["name", "site"]
    column_sortable_list = ["name", ("site", "site.name")]
    form_columns = ["site", "name"]
