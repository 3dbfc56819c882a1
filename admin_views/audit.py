"""The audit trail, maintainer-wide: read-only, filterable, never edited or deleted here.

Every value is shown in the users' words (services.wording), in the same format as a
customer's History tab (templates/admin/_changes.html): labels, not column names; times to the
minute in the reader's zone; actions and record types in words. Any stored event renders, a
merge's undo record or a deletion's summary included.
"""

from __future__ import annotations

from flask import get_template_attribute
from flask_admin.contrib.sqla.filters import DateBetweenFilter, FilterEqual, FilterLike
from markupsafe import Markup

from admin_views.base import MaintainerModelView
from admin_views.filters import IdFilter
from i18n import _l, when
from models import AuditEvent
from services.wording import (
    action_name,
    actor_name,
    change_lines,
    entity_name,
    record_name,
)

ACTIONS = ["create", "update", "delete", "status_change", "operator_assignment", "login_success",
           "login_failure", "logout", "password_change", "password_reset", "portal_credentials", "import",
           "merge", "merged_into", "unmerge", "rotate_registration_key", "register_computer",
           "reregister_computer", "fetch_computer_settings", "push_settings", "revoke", "portal_sign_in",
           "portal_sign_in_failure", "portal_sign_in_throttled", "portal_sign_out", "portal_password_change",
           "comment", "status", "rating", "resend", "intake_decision"]
ENTITIES = ["customer", "contact", "customersettings", "operator", "globalsettings", "customerstatus",
            "slalevel", "site", "building", "department", "workgroup", "team", "securitygroup",
            "portalaccount", "request", "incomingmail", "outgoingmail", "computer", "directorysource",
            "apitoken"]


def change_list(lines) -> Markup:
    """The shared macro's HTML for change lines (one format with the History tab)."""
    return Markup(get_template_attribute("admin/_changes.html", "change_list")(lines))


def format_changes(view, context, model, name) -> Markup:
    return change_list(change_lines(model.entity_type, model.changes))


def _label(model) -> str:
    # The record's own name, without the type (its own column); an older repr reads as nothing.
    full = record_name(model.entity_type, model.entity_label)
    kind = entity_name(model.entity_type)
    return "" if full == kind else (model.entity_label or "")


FORMATTERS = {
    "at": lambda v, c, m, n: when(m.at),
    "actor_label": lambda v, c, m, n: actor_name(m.actor_label, m.actor),
    "action": lambda v, c, m, n: action_name(m.action),
    "entity_type": lambda v, c, m, n: entity_name(m.entity_type),
    "entity_label": lambda v, c, m, n: _label(m),
    "changes": format_changes,
}


class AuditEventView(MaintainerModelView):
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    action_disallowed_list = ["delete"]
    column_list = ["at", "actor_label", "action", "entity_type", "entity_label", "changes", "ip_address"]
    column_details_list = ["at", "actor_label", "action", "entity_type", "entity_label", "entity_id",
                           "entity_version", "changes", "ip_address"]
    column_labels = {"at": _l("When"), "actor_label": _l("Who"), "action": _l("What"),
                     "entity_type": _l("Record type"), "entity_label": _l("Record"),
                     "entity_id": _l("Record id"), "entity_version": _l("Record version"),
                     "changes": _l("Changes"), "ip_address": _l("Address")}
    column_default_sort = ("id", True)
    column_formatters = FORMATTERS
    column_formatters_detail = FORMATTERS
    column_filters = [
        FilterEqual(AuditEvent.action, _l("What"),
                    options=lambda: [(a, action_name(a)) for a in ACTIONS]),
        FilterEqual(AuditEvent.entity_type, _l("Record type"),
                    options=lambda: [(e, entity_name(e)) for e in ENTITIES]),
        FilterLike(AuditEvent.actor_label, _l("Who")),
        IdFilter(AuditEvent.entity_id, _l("Record id")),
        DateBetweenFilter(AuditEvent.at, _l("When")),
    ]
    page_size = 50
