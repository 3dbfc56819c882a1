"""Operators' API tokens: made of 32 random bytes, shown once, stored only as a SHA-256 hash
(the token has full entropy, so a plain hash cannot be guessed back), revocable."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from i18n import _
from models import ApiToken, Operator
from models.base import utcnow
from services.audit import record
from services.contact_info import clean_text
from services.errors import ErrorBag, PermissionDenied
from services.limits import max_length, too_long
from services.transactions import DbSession, flush

PREFIX = "cd_"  # recognisable in logs and secret scanners


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: DbSession, operator: Operator, name: str | None) -> tuple[ApiToken, str]:
    """A new token for `operator`: (the row, the token itself — shown now and never again)."""
    bag = ErrorBag()
    name = bag.check("name", clean_text, name)
    limit = max_length(ApiToken.name) or 120
    if not name:
        bag.add("name", _("Name the token after where it is used, e.g. “monitoring script”."))
    elif len(name) > limit:
        bag.add("name", too_long(limit, len(name)))
    bag.raise_if_any()
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(operator=operator, name=name, token_hash=token_hash(token))
    session.add(row)
    flush(session)
    record(session, operator, "create", row, {"name": [None, row.name]}, entity_type="apitoken")
    flush(session)
    return row, token


def revoke_token(session: DbSession, actor: Operator, row: ApiToken) -> None:
    """Revoke a token: its owner or a maintainer may."""
    if actor.id != row.operator_id and not actor.is_maintainer:
        raise PermissionDenied(_("You may revoke only your own tokens."))
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        record(session, actor, "revoke", row, {"name": [row.name, row.name]}, entity_type="apitoken")
        flush(session)


def authenticate_token(session: DbSession, token: str | None) -> Operator | None:
    """The active operator a token belongs to, or None (unknown, revoked, inactive operator)."""
    if not token:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token.strip())))
    if row is None or row.revoked_at is not None or not row.operator.is_active:
        return None
    row.last_used_at = utcnow()
    flush(session)
    return row.operator
