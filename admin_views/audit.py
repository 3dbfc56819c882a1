"""The audit trail, maintainer-wide: read-only, filterable, never edited or deleted here."""

from __future__ import annotations

import json

from flask_admin.contrib.sqla.filters import DateBetweenFilter, FilterEqual, FilterLike

from admin_views.base import MaintainerModelView
from admin_views.filters import IdFilter
from models import AuditEvent

ACTIONS = ["create", "update", "delete", "status_change", "operator_assignment", "login_success",
           "login_failure", "logout", "password_change", "password_reset", "portal_credentials", "import",
           "merge", "unmerge", "rotate_registration_key", "register_computer", "reregister_computer",
           "fetch_computer_settings", "push_settings", "revoke", "portal_sign_in", "portal_sign_in_failure",
           "portal_sign_in_throttled", "portal_sign_out", "portal_password_change", "comment", "status",
           "rating", "resend", "intake_decision"]
ENTITIES = ["customer", "contact", "operator", "globalsettings", "customerstatus", "slalevel", "site",
            "building", "department", "workgroup", "team", "securitygroup", "portalaccount", "request",
            "incomingmail", "outgoingmail"]


def format_changes(view, context, model, name) -> str:
    if not model.changes:
        return ""
    return "; ".join(_change(field, value) for field, value in model.changes.items())


def _change(field: str, value) -> str:
    # Most events record [old, new]; a merge also keeps what its undo needs (not a pair).
    if isinstance(value, list | tuple) and len(value) == 2:
        old, new = value
        return f"{field}: {json.dumps(old, ensure_ascii=False)} → {json.dumps(new, ensure_ascii=False)}"
    return f"{field}: recorded"


class AuditEventView(MaintainerModelView):
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    action_disallowed_list = ["delete"]
    column_list = ["at", "actor_label", "action", "entity_type", "entity_label", "changes", "ip_address"]
    column_labels = {"at": "When (UTC)", "actor_label": "Who", "entity_type": "Record type",
                     "entity_label": "Record", "ip_address": "Address"}
    column_default_sort = ("id", True)
    column_formatters = {"changes": format_changes}
    column_filters = [
        FilterEqual(AuditEvent.action, "Action", options=[(a, a.replace("_", " ")) for a in ACTIONS]),
        FilterEqual(AuditEvent.entity_type, "Record type", options=[(e, e) for e in ENTITIES]),
        FilterLike(AuditEvent.actor_label, "Who"),
        IdFilter(AuditEvent.entity_id, "Record id"),
        DateBetweenFilter(AuditEvent.at, "When"),
    ]
    page_size = 50
