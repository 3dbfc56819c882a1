"""The doors' side of "Test connection" (the wizard's mail servers, a directory source's Test
connection): one rate limit per operator over all of them, and one JSON shape the buttons show.

Where a test may connect and what it may say is services.outbound_policy's rule; the limit lives
here because it needs the application's limiter storage (RATELIMIT_STORAGE_URI, as the sign-in
limits: shared by every process when it is Redis or Memcached, per process with memory://).
`TEST_CONNECTION_RATE_LIMIT` ("10 per minute; 60 per hour" by default) counts every test an
operator starts, answered or refused, so a script cannot sweep a network through the button; a
test over the limit answers 429 with a sentence, and is never started.
"""

from __future__ import annotations

from flask import Response, current_app, jsonify

from extensions import take_one
from services.outbound_policy import Outcome

SCOPE = "test-connection"
TOO_MANY = ("You have run too many connection tests in a short time: wait a minute and try again. "
            "(Test connection is limited to {limit} for each person.)")


def refused_over_limit(actor) -> Response | None:
    """None when `actor` may start one more test (and counts it); otherwise the 429 answer."""
    text = current_app.config.get("TEST_CONNECTION_RATE_LIMIT") or "10 per minute; 60 per hour"
    if not take_one(SCOPE, text, str(actor.id)):
        response = answer(False, TOO_MANY.format(limit=text.replace(";", " and")), Outcome.TOO_MANY)
        response.status_code = 429
        return response
    return None


def answer(ok: bool, message: str, outcome: Outcome, field: str | None = None, **extra) -> Response:
    """The JSON every Test connection button reads: ok, the sentence, its outcome and the form
    field it belongs under (the button marks that field)."""
    return jsonify(ok=ok, message=message, outcome=outcome.value, field=field, **extra)
