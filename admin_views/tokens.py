"""The operator's own API tokens (the profile menu's "My API tokens"): create (shown once), list,
revoke. The page has one heading, its own (templates/admin/api_tokens.html)."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from markupsafe import Markup
from sqlalchemy import select

from admin_views.base import OwnAccountView, actor
from admin_views.ids import parse_id
from admin_views.refusals import panel_write
from extensions import db
from i18n import _
from models import ApiToken
from services.api_tokens import create_token, revoke_token

# The header a script sends (the same in every language).
AUTH_HEADER = Markup("<code>Authorization: Bearer TOKEN</code>")


class ApiTokenView(OwnAccountView):
    @expose("/", methods=("GET", "POST"))
    def index(self):
        shown, errors = None, {}
        if request.method == "POST":
            with panel_write(flash_fields=False) as outcome:  # the page shows the messages itself
                _, shown = create_token(db.session, actor(), request.form.get("name"))
            errors = outcome.errors
        tokens = db.session.scalars(select(ApiToken).where(ApiToken.operator_id == actor().id)
                                    .order_by(ApiToken.id.desc())).all()
        return self.render("admin/api_tokens.html", tokens=tokens, shown=shown, errors=errors,
                           typed=request.form.get("name", "") if errors else "", auth_header=AUTH_HEADER)

    @expose("/<int:token_id>/revoke", methods=("POST",))
    def revoke(self, token_id: int):
        row = db.session.get(ApiToken, parse_id(token_id) or 0)
        if row is None:
            abort(404)
        name = row.name
        with panel_write() as outcome:
            revoke_token(db.session, actor(), row)
        if outcome.ok:
            flash(_("The token “%(name)s” was revoked.", name=name), "success")
        return redirect(url_for(".index"))
