"""One error shape for every API answer: {"code", "status", "message", "errors": {field:
[messages]}}, plus "candidates" for a 409 duplicate. Registered on each API blueprint."""

from __future__ import annotations

import re

from flask import redirect, request
from werkzeug.exceptions import HTTPException

from services.duplicates import DuplicateSuspected
from services.errors import (
    FORM,
    DomainError,
    MergedAway,
    NotFound,
    PermissionDenied,
    StaleRecord,
    ValidationFailed,
    VersionRequired,
)


def error_body(exc: HTTPException) -> tuple[dict, int]:
    data = getattr(exc, "data", None) or {}
    errors: dict[str, list[str]] = {}
    for where, fields in (data.get("messages") or {}).items():  # webargs: {"json": {field: [..]}}
        if isinstance(fields, dict):
            for field, messages in fields.items():
                errors[field] = _flatten(messages)
        else:
            errors[where] = _flatten(fields)
    errors.update(data.get("errors") or {})
    message = data.get("message") or exc.description or exc.name
    body = {"code": exc.code, "status": exc.name, "message": message, "errors": errors}
    if "candidates" in data:
        body["candidates"] = data["candidates"]
    return body, exc.code or 500


def _flatten(messages) -> list[str]:
    if isinstance(messages, dict):  # nested (a list item or a sub-object): "field.0.name: …"
        return [f"{key}: {m}" for key, value in messages.items() for m in _flatten(value)]
    if isinstance(messages, list):
        return [m if isinstance(m, str) else str(m) for m in messages]
    return [str(messages)]


def json_error(exc: HTTPException):
    body, code = error_body(exc)
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    return body, code, headers


def _body(code: int, status: str, message: str, errors: dict | None = None, **extra):
    body = {"code": code, "status": status, "message": message, "errors": errors or {}, **extra}
    return body, code


def _field_errors(exc: ValidationFailed) -> dict[str, list[str]]:
    return {("_form" if key == FORM else key): messages for key, messages in exc.errors.items()}


def register_domain_errors(blueprint) -> None:
    """The one translation of the domain's refusals into API answers, registered on every API
    blueprint; the unit of work has already rolled back whatever the call wrote."""

    @blueprint.errorhandler(NotFound)
    def not_found(exc: NotFound):
        return _body(404, "Not Found", str(exc) or "No such record.")

    @blueprint.errorhandler(MergedAway)
    def merged_away(exc: MergedAway):
        target = re.sub(r"/customers/\d+", f"/customers/{exc.survivor_id}", request.path, count=1)
        if request.query_string:
            target += "?" + request.query_string.decode()
        return redirect(target, 308)

    @blueprint.errorhandler(PermissionDenied)
    def denied(exc: PermissionDenied):
        return _body(403, "Forbidden", str(exc))

    @blueprint.errorhandler(VersionRequired)
    def version_required(exc: VersionRequired):
        return _body(428, "Precondition Required", str(exc))

    @blueprint.errorhandler(DuplicateSuspected)
    def duplicate(exc: DuplicateSuspected):
        message = (exc.errors.get(FORM) or exc.errors.get("confirm_duplicate") or [str(exc)])[0]
        return _body(409, "Conflict", message, candidates=[c.as_dict() for c in exc.candidates])

    @blueprint.errorhandler(StaleRecord)
    def stale(exc: StaleRecord):
        return _body(412, "Precondition Failed", exc.errors[FORM][0])

    @blueprint.errorhandler(ValidationFailed)
    def invalid(exc: ValidationFailed):
        return _body(422, "Unprocessable Entity", "The request was refused: see errors.", _field_errors(exc))

    @blueprint.errorhandler(DomainError)
    def refused(exc: DomainError):
        return _body(409, "Conflict", str(exc))
