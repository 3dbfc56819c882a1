"""Held mail: the intake's mail an operator decides about (services.held_mail has the rules)."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import expose

from admin_views.base import SignedInView, actor
from admin_views.ids import parse_id
from admin_views.refusals import panel_write
from extensions import db
from i18n import _
from models import Customer
from models.enums import IntakeOutcome
from services import held_mail as decisions
from services.access import Right, can

SHOWN = {"held": IntakeOutcome.HELD, "refused": IntakeOutcome.REFUSED, "discarded": IntakeOutcome.DISCARDED}


class HeldMailView(SignedInView):
    """The list of held (or refused, or discarded) mail the operator may see, and one mail's page
    with its three decisions. Every POST carries the app-wide CSRF token."""

    @expose("/")
    def index(self):
        show = request.args.get("show", "held")
        outcome = SHOWN.get(show, IntakeOutcome.HELD)
        return self.render("admin/held_mail.html", mails=decisions.held_mail(db.session, actor(), outcome),
                           outcome=outcome, shown=SHOWN)

    @expose("/<int:mail_id>")
    def details(self, mail_id: int):
        mail = decisions.load_mail(db.session, actor(), mail_id)
        search = (request.args.get("q") or "").strip()[:100]
        found = decisions.candidates(db.session, actor(), mail, search or None)
        chosen = None
        chosen_id = parse_id(request.args.get("customer"))
        if chosen_id is not None and can(db.session, actor(), chosen_id, Right.VIEW):
            chosen = db.session.get(Customer, chosen_id)
        contacts = sorted((c for c in chosen.contacts if c.is_active), key=lambda c: c.sort_name) \
            if chosen is not None else []
        return self.render("admin/held_mail_details.html", mail=mail, found=found, search=search,
                           chosen=chosen, contacts=contacts, held=mail.outcome == IntakeOutcome.HELD)

    @expose("/<int:mail_id>/create", methods=("POST",))
    def create(self, mail_id: int):
        mail = decisions.load_mail(db.session, actor(), mail_id)
        customer_id = parse_id(request.form.get("customer_id"))
        contact_id = parse_id(request.form.get("contact_id"))
        with panel_write() as outcome:
            made = decisions.create_request(db.session, actor(), mail, customer_id, contact_id)
        if outcome.ok:
            flash(_("Request %(reference)s created from the mail.", reference=made.reference), "success")
            return redirect(url_for("requests.details_view", id=made.id))
        return redirect(url_for(".details", mail_id=mail_id, customer=customer_id or ""))

    @expose("/<int:mail_id>/add", methods=("POST",))
    def add(self, mail_id: int):
        mail = decisions.load_mail(db.session, actor(), mail_id)
        with panel_write() as outcome:
            target = decisions.add_to_request(db.session, actor(), mail, request.form.get("request", "")[:40])
        if outcome.ok:
            flash(_("The mail was added to %(reference)s.", reference=target.reference), "success")
            return redirect(url_for("requests.details_view", id=target.id))
        return redirect(url_for(".details", mail_id=mail_id))

    @expose("/<int:mail_id>/discard", methods=("POST",))
    def discard(self, mail_id: int):
        mail = decisions.load_mail(db.session, actor(), mail_id)
        with panel_write() as outcome:
            decisions.discard(db.session, actor(), mail)
        if outcome.ok:
            flash(_("The mail was discarded."), "success")
            return redirect(url_for(".index"))
        return redirect(url_for(".details", mail_id=mail_id))

