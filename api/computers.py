"""/api/v1/computers/register: the C-Monitor agent registers a computer with its customer's
registration key (no operator token) and receives the settings it inherits."""

from __future__ import annotations

from flask_smorest import Blueprint, abort
from werkzeug.exceptions import HTTPException

from api.auth import box
from api.errors import json_error
from api.schemas import RegisteredOut, RegisterIn
from extensions import db
from services.computers import register_computer, settings_of_computer
from services.errors import FORM, PermissionDenied, ValidationFailed

blp = Blueprint("api_computers", __name__, description="Registration of computers by the C-Monitor agent")
blp.register_error_handler(HTTPException, json_error)


@blp.route("/computers/register", methods=["POST"])
@blp.arguments(RegisterIn)
@blp.response(200, RegisteredOut, description="Already registered: the same computer and its settings")
@blp.alt_response(201, schema=RegisteredOut, description="Registered now, with the inherited settings")
@blp.doc(security=[])
def register(data):
    """Register a computer under the customer whose key this is; the same hostname again returns
    the same computer. The settings are its snapshot: what the customer had when it registered
    (or when someone last pushed the current settings)."""
    try:
        computer, new = register_computer(db.session, data["registration_key"], data["hostname"], box(),
                                     operating_system=data.get("operating_system"),
                                     agent_version=data.get("agent_version"))
    except PermissionDenied:
        abort(401, message="Unknown or rotated registration key.")
    except ValidationFailed as exc:
        db.session.rollback()
        abort(422, message="The registration was refused: see errors.",
              errors={("_form" if k == FORM else k): v for k, v in exc.errors.items()})
    computer.settings = settings_of_computer(computer, box())
    computer.settings_differ = False
    return computer, (201 if new else 200)
