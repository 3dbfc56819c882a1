"""The admin home page: counts of what the desk holds."""

from __future__ import annotations

from flask_admin import AdminIndexView, expose
from flask_login import current_user

from admin_views.base import actor, deny_or_login
from extensions import db
from i18n import _l
from services.dashboard import dashboard_counts

# (count, label, link text, list page): the words in the reader's language (lazy: made per request).
TILES = [
    ("customers", _l("Customers"), _l("Open customers"), "customers.index_view"),
    ("contacts", _l("Contacts"), _l("Open contacts"), "contacts.index_view"),
    ("requests", _l("Requests"), _l("Open requests"), "requests.index_view"),
    ("operators", _l("Operators"), None, None),
]


class DashboardView(AdminIndexView):
    def is_accessible(self) -> bool:
        return current_user.is_authenticated and current_user.is_active

    def inaccessible_callback(self, name, **kwargs):
        return deny_or_login()

    @expose("/")
    def index(self):
        return self.render("admin/dashboard.html", counts=dashboard_counts(db.session, actor()), tiles=TILES)
