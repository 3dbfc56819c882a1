"""Security headers on every response, with a Content-Security-Policy the admin pages run under.

Scripts run only from this site or with the per-request nonce Flask-Admin puts on its inline
scripts (Admin(csp_nonce_generator=…)). The inline handlers of Flask-Admin's templates that the
admin uses (a list row's delete confirmation, the bulk "Delete" and "Merge" actions, the filter menu's
"return false", the "Add …" button of inline lists) are allowed by their hashes
('unsafe-hashes'); nothing else inline runs. Styles allow inline attributes: Select2 and
Bootstrap write them, and a style cannot run code.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from flask import Flask, g

# Inline lists of the admin views (customer contacts, site buildings): their "Add …" button.
INLINE_LISTS = ("contacts", "buildings")
ALLOWED_INLINE_HANDLERS = (
    "return faHelpers.safeConfirm('Are you sure you want to delete this record?');",
    "return false;",
    "return modelActions.execute('delete');",
    "return modelActions.execute('merge');",  # the Customers list's "Merge the two selected"
    *(f"faForm.addInlineField(this, '{name}');" for name in INLINE_LISTS),
    "javascript:void(0)",  # the do-nothing href of Flask-Admin's menus and buttons
)


def _hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


HANDLER_HASHES = " ".join(_hash(h) for h in ALLOWED_INLINE_HANDLERS)


def csp_nonce() -> str:
    """This request's nonce (made on first use)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def init_security_headers(app: Flask) -> None:
    @app.after_request
    def add_headers(response):
        policy = (
            "default-src 'self'; "
            f"script-src 'self' 'nonce-{csp_nonce()}' 'unsafe-hashes' {HANDLER_HASHES}; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
        )
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if app.config.get("SESSION_COOKIE_SECURE"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
