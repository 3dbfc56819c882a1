"""The doors' side of "Test connection" (the wizard's mail servers, a customer's Mail servers and
Notifications tabs, a directory source's Test connection): one rate limit per operator over all
of them, one JSON shape the buttons show, and one way to read a mail server from a form.

Where a test may connect and what it may say is services.outbound_policy's rule; the limit lives
here because it needs the application's limiter storage (RATELIMIT_STORAGE_URI, as the sign-in
limits: shared by every process when it is Redis or Memcached, per process with memory://).
`TEST_CONNECTION_RATE_LIMIT` ("10 per minute; 60 per hour" by default) counts every test an
operator starts, answered or refused, so a script cannot sweep a network through the button; a
test over the limit answers 429 with a sentence, and is never started.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Response, current_app, jsonify

from admin_views.ids import parse_id
from extensions import take_one
from i18n import _
from models.enums import MailSecurity
from services.customer_settings import DEFAULT_PORTS, DEFAULT_SECURITY, clean_ca_certificate
from services.mail_check import MailServer, check_pop3, check_smtp
from services.outbound_policy import Outcome, reach_of

SCOPE = "test-connection"
CA_FIELD = "mail_ca_certificate"


def refused_over_limit(actor) -> Response | None:
    """None when `actor` may start one more test (and counts it); otherwise the 429 answer."""
    text = current_app.config.get("TEST_CONNECTION_RATE_LIMIT") or "10 per minute; 60 per hour"
    if not take_one(SCOPE, text, str(actor.id)):
        response = answer(False, _("You have run too many connection tests in a short time: wait a minute "
                                   "and try again. (Test connection is limited to %(limit)s for each "
                                   "person.)", limit=text.replace(";", " and")), Outcome.TOO_MANY)
        response.status_code = 429
        return response
    return None


def answer(ok: bool, message: str, outcome: Outcome, field: str | None = None, **extra) -> Response:
    """The JSON every Test connection button reads: ok, the sentence, its outcome and the form
    field it belongs under (the button marks that field)."""
    return jsonify(ok=ok, message=message, outcome=outcome.value, field=field, **extra)


def test_mail_server(actor, prefix: str, form: Mapping[str, str], *, stored_password: str | None,
                     stored_ca: str | None) -> Response:
    """Really connect to the server whose `<prefix>_…` fields were posted (a wizard step or a
    settings tab), and answer the button. An empty password means `stored_password` (the one
    kept in the draft or the settings); the CA certificate typed on the page — or else the
    stored one — is trusted besides the system store. Counted by the rate limit first."""
    refused = refused_over_limit(actor)
    if refused is not None:
        return refused
    kind = "pop3" if prefix == "pop3" else "smtp"
    try:
        security = MailSecurity(form.get(f"{prefix}_security") or DEFAULT_SECURITY[kind])
    except ValueError:
        return answer(False, _("Choose the security: None, SSL/TLS or STARTTLS."), Outcome.INVALID,
                      f"{prefix}_security")
    typed_ca = form.get(CA_FIELD)
    try:
        ca = clean_ca_certificate(typed_ca) if (typed_ca or "").strip() else stored_ca
    except ValueError as exc:
        return answer(False, str(exc), Outcome.INVALID, CA_FIELD)
    typed_port = (form.get(f"{prefix}_port") or "").strip()
    port = parse_id(typed_port) or (-1 if typed_port and typed_port != "0" else None)
    password = form.get(f"{prefix}_password") or stored_password
    server = MailServer((form.get(f"{prefix}_host") or "").strip(),
                        port or DEFAULT_PORTS[(kind, security)], security,
                        (form.get(f"{prefix}_username") or "").strip() or None, password or None,
                        cadata=ca or None)
    result = (check_pop3 if kind == "pop3" else check_smtp)(server, timeout=5.0, reach=reach_of(actor))
    return answer(result.ok, result.message, result.outcome,
                  f"{prefix}_{result.field}" if result.field else None)


def with_uploaded_ca(form, files):
    """The posted form, with the text of an uploaded CA certificate file (`…_file`) in place of
    the pasted field when one was chosen (a page without JavaScript; with it, static/wizard.js
    reads the file into the field). An unreadable file is passed on as text and refused there."""
    upload = files.get(f"{CA_FIELD}_file") if files else None
    if upload is None or not upload.filename:
        return form
    data = upload.read(256 * 1024 + 1)
    merged = form.copy()
    merged[CA_FIELD] = data.decode("utf-8", "replace")
    return merged
