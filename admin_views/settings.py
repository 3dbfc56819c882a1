"""Global settings pages for maintainers: the ownership-rights grid, and the quick-create rules
with what requests by e-mail do with mail from unknown senders (both about how customers
come to exist: never silently from a stranger's mail)."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user

from admin_views.base import actor, deny_or_login
from admin_views.ids import parse_id
from admin_views.refusals import panel_write
from extensions import db
from i18n import _
from models.enums import UnknownSenders
from services.access import Right, ownership_rights
from services.mail_admin import save_unknown_senders
from services.settings import AUDIENCES, rights_grid, save_ownership_rights, save_quick_create_rules


class MaintainerPage(BaseView):
    def is_accessible(self) -> bool:
        return current_user.is_authenticated and current_user.is_active and current_user.is_maintainer

    def inaccessible_callback(self, name, **kwargs):
        return deny_or_login()


class QuickCreateRulesView(MaintainerPage):
    """Whether the quick form requires an e-mail, and the name-similarity threshold of the
    duplicate search; in a form of its own, what happens to mail from unknown senders."""

    @expose("/", methods=("GET", "POST"))
    def index(self):
        errors: dict[str, list[str]] = {}
        rules = ownership_rights(db.session)
        typed = {"requires_email": rules.quick_form_requires_email,
                 "threshold": str(rules.duplicate_name_threshold),
                 "unknown_senders": rules.unknown_senders.value}
        if request.method == "POST" and request.form.get("form") == "unknown_senders":
            typed["unknown_senders"] = request.form.get("unknown_senders", "")
            with panel_write(flash_fields=False) as outcome:
                save_unknown_senders(db.session, actor(), typed["unknown_senders"],
                                     seen_version=parse_id(request.form.get("version_seen")))
            if outcome.ok:
                flash(_("Mail from unknown senders: saved."), "success")
                return redirect(url_for(".index"))
            errors = outcome.errors
        elif request.method == "POST":
            typed.update(requires_email="quick_form_requires_email" in request.form,
                         threshold=request.form.get("duplicate_name_threshold", ""))
            with panel_write(flash_fields=False) as outcome:  # the page shows the messages itself
                save_quick_create_rules(db.session, actor(), requires_email=typed["requires_email"],
                                        threshold=typed["threshold"],
                                        seen_version=parse_id(request.form.get("version_seen")))
            if outcome.ok:
                flash(_("Quick-create rules saved."), "success")
                return redirect(url_for(".index"))
            errors = outcome.errors
        return self.render("admin/quick_create_rules.html", typed=typed, errors=errors,
                           version=ownership_rights(db.session).version, unknown_senders=UnknownSenders)


class OwnershipRightsView(MaintainerPage):
    """View / Edit / Delete × Team members / Managers: whom, besides the assigned operators and
    the creator, a customer's rights reach. The form posts with the app-wide CSRF token."""

    @expose("/", methods=("GET", "POST"))
    def index(self):
        if request.method == "POST":
            grid = {r.value: {a: f"{r.value}_by_{a}" in request.form for a in AUDIENCES} for r in Right}
            with panel_write() as outcome:
                save_ownership_rights(db.session, actor(), grid, parse_id(request.form.get("version_seen")))
            if outcome.ok:
                flash(_("Ownership rights saved."), "success")
                return redirect(url_for(".index"))
            return self.render("admin/ownership_rights.html", grid=grid, rights=list(Right),
                               audiences=AUDIENCES, version=ownership_rights(db.session).version)
        return self.render("admin/ownership_rights.html", grid=rights_grid(db.session), rights=list(Right),
                           audiences=AUDIENCES, version=ownership_rights(db.session).version)
