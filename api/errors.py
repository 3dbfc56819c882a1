"""One error shape for every API answer: {"code", "status", "message", "errors": {field:
[messages]}}, plus "candidates" for a 409 duplicate. Registered on each API blueprint."""

from __future__ import annotations

from werkzeug.exceptions import HTTPException


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
