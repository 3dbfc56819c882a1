"""The C-Monitor agent's door (no operator token):

- `POST /api/v1/computers/register` with the customer's registration key registers a computer and
  answers its agent credential — shown in that answer only, stored as a hash — with the settings
  it inherits, secrets left out;
- `POST /api/v1/computers/settings` with `Authorization: Bearer AGENT_CREDENTIAL` answers the
  computer's settings, secrets included. A POST: every fetch is recorded on the customer's
  History, and a GET never writes.
"""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint
from marshmallow import fields
from werkzeug.exceptions import HTTPException, Unauthorized

from api.auth import box
from api.errors import json_error, register_domain_errors
from api.schemas import RegisteredOut, RegisterIn, Shown
from extensions import db
from services.computers import (
    UnknownAgentCredential,
    UnknownRegistrationKey,
    register_computer,
    settings_for_agent,
    settings_of_computer,
)
from services.transactions import unit_of_work

blp = Blueprint("api_computers", __name__, description="Registration of computers by the C-Monitor agent")
blp.register_error_handler(HTTPException, json_error)
register_domain_errors(blp)


class AgentRegisteredOut(RegisteredOut):
    agent_credential = fields.String(metadata={"description": (
        "The computer's agent credential, for `POST /computers/settings` — in this answer only (only "
        "its hash is stored). Settings here leave the secrets out.")})


class AgentSettingsOut(RegisteredOut):
    """The computer with its settings, secrets included."""


@blp.errorhandler(UnknownRegistrationKey)
def unknown_key(exc: UnknownRegistrationKey):
    """The key is the agent's credential: an unknown or rotated one is 401, not 403."""
    return json_error(Unauthorized(str(exc)))


@blp.errorhandler(UnknownAgentCredential)
def unknown_credential(exc: UnknownAgentCredential):
    return json_error(Unauthorized(str(exc)))


@blp.route("/computers/register", methods=["POST"])
@blp.arguments(RegisterIn)
@blp.response(200, AgentRegisteredOut, description="Already registered: the same computer, a new credential")
@blp.alt_response(201, schema=AgentRegisteredOut, description="Registered now, with its agent credential")
@blp.doc(security=[])
def register(data):
    """Register a computer under the customer whose key this is; the same hostname again returns
    the same computer with a new agent credential (the one before stops working). The answer's
    `agent_credential` is shown here only; the settings are the computer's snapshot without its
    secrets — the agent fetches them with its credential (`POST /computers/settings`)."""
    with unit_of_work(db.session):
        computer, new, credential = register_computer(
            db.session, data["registration_key"], data["hostname"], box(),
            operating_system=data.get("operating_system"), agent_version=data.get("agent_version"))
    shown = Shown(computer, settings=settings_of_computer(computer, None), settings_differ=False,
                  agent_credential=credential)
    return shown, (201 if new else 200)


@blp.route("/computers/settings", methods=["POST"])
@blp.response(200, AgentSettingsOut, description="The computer's settings, secrets included")
@blp.doc(security=[{"bearerAuth": []}])
def agent_settings():
    """The settings the computer received (its snapshot), secrets included, for the agent that
    holds the computer's credential (`Authorization: Bearer AGENT_CREDENTIAL`); 401 otherwise.
    Recorded on the customer's History without any secret."""
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    with unit_of_work(db.session):
        computer, settings = settings_for_agent(
            db.session, credential.strip() if scheme.lower() == "bearer" else None, box())
    return Shown(computer, settings=settings, settings_differ=False)
