"""The JSON API (/api/v1) on the same domain services as the panel: flask-smorest builds the
OpenAPI 3 document from the marshmallow schemas; operators authenticate with their API tokens
(`Authorization: Bearer …`), C-Monitor agents with a customer's registration key.

Errors have one shape everywhere (api.errors); their handlers belong to the API's blueprints
only, so the admin panel keeps its HTML pages.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, render_template, send_from_directory
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from extensions import csrf

PREFIX = "/api/v1"
SWAGGER_UI = Path(__import__("swagger_ui_bundle").swagger_ui_path)


docs = Blueprint("api_docs", __name__, url_prefix=PREFIX)


@docs.route("/docs")
def docs_page():
    """Swagger UI on the app's own OpenAPI document, served from local files (no CDN)."""
    return render_template("api/docs.html", spec_url=f"{PREFIX}/openapi.json")


@docs.route("/docs/assets/<path:filename>")
def docs_asset(filename: str):
    return send_from_directory(SWAGGER_UI, filename)


def init_api(app: Flask) -> Api:
    app.config.update(
        API_TITLE="Customer Desk API", API_VERSION="v1", OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=PREFIX, OPENAPI_JSON_PATH="openapi.json",
    )
    api = Api(app, spec_kwargs={
        "info": {"description": "Customers, contacts, requests and computers of Customer Desk. "
                                "Operators authenticate with an API token (the menu under your name → "
                                "[My API tokens](/admin/api-tokens/), or "
                                "`flask --app app tokens create EMAIL`)."},
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearerAuth": []}],
    })
    # flask-smorest answers every HTTP error of the app in JSON: keep that to the API.
    for handlers in app.error_handler_spec[None].values():
        handlers.pop(HTTPException, None)

    from api.computers import blp as computers
    from api.customers import blp as customers

    for blueprint in (customers, computers):
        csrf.exempt(blueprint)  # tokens, not cookies: no cross-site request can carry one
        api.register_blueprint(blueprint, url_prefix=PREFIX)
    app.register_blueprint(docs)
    return api
