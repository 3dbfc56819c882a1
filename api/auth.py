"""Who is calling: an operator by API token (`Authorization: Bearer TOKEN`)."""

from __future__ import annotations

from flask import current_app, g, request
from flask_smorest import abort

from admin_views.base import save_options
from extensions import db
from services.api_tokens import authenticate_token
from services.transactions import unit_of_work


def require_operator():
    """The token's operator (also in g.api_actor); 401 without a valid token. Browser session
    cookies do not count: the API is for scripts, and a cookie would invite cross-site requests.
    The token's last use is bookkeeping, committed here by its own unit of work (the only write
    a GET makes: it changes nothing of the customers)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    with unit_of_work(db.session):
        operator = authenticate_token(db.session, token) if scheme.lower() == "bearer" else None
    if operator is None:
        abort(401, message="Send a valid API token: Authorization: Bearer TOKEN.")
    g.api_actor = operator
    return operator


def box():
    return current_app.extensions["secret_box"]


__all__ = ["box", "require_operator", "save_options"]
