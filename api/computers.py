"""/api/v1/computers/register: the C-Monitor agent registers a computer with its customer's
registration key (no operator token) and receives the settings it inherits."""

from __future__ import annotations

from flask_smorest import Blueprint
from werkzeug.exceptions import HTTPException, Unauthorized

from api.auth import box
from api.errors import json_error, register_domain_errors
from api.schemas import RegisteredOut, RegisterIn, Shown
from extensions import db
from services.computers import UnknownRegistrationKey, register_computer, settings_of_computer
from services.transactions import unit_of_work

blp = Blueprint("api_computers", __name__, description="Registration of computers by the C-Monitor agent")
blp.register_error_handler(HTTPException, json_error)
register_domain_errors(blp)


@blp.errorhandler(UnknownRegistrationKey)
def unknown_key(exc: UnknownRegistrationKey):
    """The key is the agent's credential: an unknown or rotated one is 401, not 403."""
    return json_error(Unauthorized(str(exc)))


@blp.route("/computers/register", methods=["POST"])
@blp.arguments(RegisterIn)
@blp.response(200, RegisteredOut, description="Already registered: the same computer and its settings")
@blp.alt_response(201, schema=RegisteredOut, description="Registered now, with the inherited settings")
@blp.doc(security=[])
def register(data):
    """Register a computer under the customer whose key this is; the same hostname again returns
    the same computer. The settings are its snapshot: what the customer had when it registered
    (or when someone last pushed the current settings)."""
    with unit_of_work(db.session):
        computer, new = register_computer(db.session, data["registration_key"], data["hostname"], box(),
                                          operating_system=data.get("operating_system"),
                                          agent_version=data.get("agent_version"))
    shown = Shown(computer, settings=settings_of_computer(computer, box()), settings_differ=False)
    return shown, (201 if new else 200)
