"""The wizard's screens: one URL per step, Back / Next, a summary, drafts to resume or discard.

Thin: forms come from wizards.steps, checks from wizards.flow, storage from wizards.drafts.
Every write is a POST in `panel_write` (one unit of work; refusals become messages): opening a
page never writes, a draft is made by the "Start" button. Every POST carries the app-wide CSRF
token (CSRFProtect).
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user
from sqlalchemy import select

from admin_views.base import actor, deny_or_login, save_options
from admin_views.connection_tests import answer, refused_over_limit
from admin_views.ids import parse_id
from admin_views.refusals import attach_errors, panel_write
from extensions import db
from models import GlobalSettings, Operator
from models.enums import CustomerKind, MailSecurity
from services.customer_settings import DEFAULT_PORTS, DEFAULT_SECURITY
from services.customers import require_operator_assignment
from services.mail_check import MailServer, check_pop3, check_smtp
from services.outbound_policy import Outcome, reach_of
from wizards import drafts
from wizards.flow import check_step, duplicate_candidates, finish
from wizards.steps import FORMS, ORDER, SECRET_FIELDS, SERVER_PREFIXES, TITLES, Step, next_step, previous_step


def _box():
    return current_app.extensions["secret_box"]


class WizardView(BaseView):
    """Reached from the Customers list ("Add a customer"); not a menu entry of its own."""

    def is_accessible(self) -> bool:
        return current_user.is_authenticated and current_user.is_active

    def is_visible(self) -> bool:
        return False

    def inaccessible_callback(self, name, **kwargs):
        return deny_or_login()

    def _draft(self, draft_id: int):
        draft = drafts.get_draft(db.session, actor(), draft_id)
        if draft is None:
            abort(404)
        return draft

    def _saved(self, draft):
        """A draft saved already (a second Save, another tab, the browser's Back): the customer
        it made, with a plain word; the list when that customer is gone since."""
        if draft.customer_id is None:
            flash("This draft was saved already.", "info")
            return redirect(url_for("customers.index_view"))
        flash("This draft was saved already: here is the customer it made.", "info")
        return redirect(url_for("customers.details_view", id=draft.customer_id))

    @expose("/")
    def index(self):
        return self.render("wizard/drafts.html", drafts=drafts.drafts_of(db.session, actor()),
                           wizard_titles=TITLES)

    @expose("/start", methods=("POST",))
    def start(self):
        with panel_write() as outcome:
            draft_id = drafts.start_draft(db.session, actor()).id
        if not outcome.ok:
            return redirect(url_for("customers.index_view"))
        return redirect(url_for(".step", draft_id=draft_id, step=Step.CUSTOMER.value))

    @expose("/<int:draft_id>/discard", methods=("POST",))
    def discard(self, draft_id: int):
        draft = self._draft(draft_id)
        if drafts.is_saved(draft):
            return self._saved(draft)
        with panel_write() as outcome:
            drafts.discard(db.session, draft)
        if outcome.ok:
            flash("The draft was discarded.", "info")
        return redirect(url_for("customers.index_view"))

    def _form(self, draft, step: Step, formdata=None):
        form = FORMS[step](formdata, data=drafts.form_values(draft, step))
        if step == Step.OPERATORS:
            form.operators.choices = [
                (str(op.id), op.full_name) for op in db.session.scalars(
                    select(Operator).where(Operator.is_active.is_(True))
                    .order_by(Operator.last_name, Operator.first_name))]
        return form

    def _candidates(self, form):
        """Existing records like the typed one, shown while a duplicate holds step 1."""
        if not form.confirm_duplicate.errors and not form.confirm_duplicate.data:
            return []
        values = {name: field.data for name, field in form._fields.items()}
        return duplicate_candidates(db.session, actor(), values, save_options())

    def _render_step(self, draft, step: Step, form):
        return self.render(
            "wizard/step.html", draft=draft, step=step, form=form, order=ORDER, titles=TITLES,
            reachable=[s for s in ORDER if drafts.can_open(draft, s)],
            secrets_set={f for f in SECRET_FIELDS if drafts.secret_is_set(draft, step, f)},
            servers=SERVER_PREFIXES.get(step, ()), builtin=db.session.get(GlobalSettings, 1),
            candidates=self._candidates(form) if step == Step.CUSTOMER else [],
            may_assign=actor().is_maintainer,
            test_url=lambda prefix: url_for(".test_connection", draft_id=draft.id, prefix=prefix),
        )

    @expose("/<int:draft_id>/<step>", methods=("GET", "POST"))
    def step(self, draft_id: int, step: str):
        draft = self._draft(draft_id)
        try:
            current = Step(step)
        except ValueError:
            abort(404)
        if drafts.is_saved(draft):
            return self._saved(draft)
        if not drafts.can_open(draft, current):
            flash("Finish the earlier steps first.", "info")
            return redirect(url_for(".step", draft_id=draft.id, step=drafts.reached(draft).value))
        if current == Step.SUMMARY:
            return self._summary(draft)
        if request.method == "GET":
            return self._render_step(draft, current, self._form(draft, current))

        if current == Step.OPERATORS and "operators" in request.form:
            require_operator_assignment(actor())  # read-only for operators: a posted value is tampering
        form = self._form(draft, current, request.form)
        values = {name: field.data for name, field in form._fields.items()}
        back = request.form.get("nav") == "back"
        errors: dict[str, list[str]] = {} if back or form.validate() else dict(form.errors)
        with panel_write(form) as outcome:
            if not back and not errors:
                errors = check_step(db.session, actor(), current, values, _box(), save_options())
            # What was typed is kept even when the step is refused; a passed step opens the next.
            passed = not back and not errors
            drafts.store_step(db.session, draft, current, values, _box(),
                              advance_to=next_step(current) if passed else None)
        if outcome.ok and (back or not errors):
            target = previous_step(current) if back else next_step(current)
            return redirect(url_for(".step", draft_id=draft.id, step=target.value))
        if errors:
            attach_errors(form, {k: list(v) for k, v in errors.items()})
        return self._render_step(draft, current, form)

    @expose("/<int:draft_id>/test-connection/<prefix>", methods=("POST",))
    def test_connection(self, draft_id: int, prefix: str):
        """Really connect to the server typed on the page (JSON for the step's button). An
        empty password means the one already kept in the draft. Where it may connect and what
        it may say: services.outbound_policy (an operator: mail ports on ordinary hosts); how
        often: admin_views.connection_tests."""
        draft = self._draft(draft_id)
        if drafts.is_saved(draft):
            abort(404)
        step = next((s for s, prefixes in SERVER_PREFIXES.items() if prefix in prefixes), None)
        if step is None:
            abort(404)
        refused = refused_over_limit(actor())
        if refused is not None:
            return refused
        form = request.form
        kind = "pop3" if prefix == "pop3" else "smtp"
        try:
            security = MailSecurity(form.get(f"{prefix}_security") or DEFAULT_SECURITY[kind])
        except ValueError:
            return answer(False, "Choose the security: None, SSL/TLS or STARTTLS.", Outcome.INVALID,
                          f"{prefix}_security")
        typed_port = (form.get(f"{prefix}_port") or "").strip()
        port = parse_id(typed_port) or (-1 if typed_port and typed_port != "0" else None)
        password = (form.get(f"{prefix}_password")
                    or drafts.plain_values(draft, step, _box()).get(f"{prefix}_password"))
        server = MailServer((form.get(f"{prefix}_host") or "").strip(),
                            port or DEFAULT_PORTS[(kind, security)], security,
                            (form.get(f"{prefix}_username") or "").strip() or None, password or None)
        result = (check_pop3 if kind == "pop3" else check_smtp)(server, timeout=5.0, reach=reach_of(actor()))
        return answer(result.ok, result.message, result.outcome,
                      f"{prefix}_{result.field}" if result.field else None)

    def _summary(self, draft):
        candidates = []
        if request.method == "POST":
            with panel_write() as outcome:
                customer = finish(db.session, actor(), draft, _box(), save_options())
            if outcome.ok:
                if customer is None:  # another Save of this draft (a double click, a tab) made it
                    return self._saved(draft)
                flash(f"{customer.display_name} was created.", "success")
                if customer.kind == CustomerKind.COMPANY:  # the seed: prompted to add contacts
                    return redirect(url_for("customer_contacts.index", id=customer.id, created=1))
                return redirect(url_for("customers.details_view", id=customer.id))
            if "confirm_duplicate" in outcome.errors:  # created by someone else since step 1
                flash("Go back to the first step to confirm “create anyway”.", "info")
                candidates = [c for c in duplicate_candidates(
                    db.session, actor(), drafts.form_values(draft, Step.CUSTOMER), save_options())
                    if c.strong]
        steps = {step: drafts.form_values(draft, step) for step in ORDER if step != Step.SUMMARY}
        secrets = {step: {f for f in SECRET_FIELDS if drafts.secret_is_set(draft, step, f)} for step in steps}
        chosen = [int(i) for i in steps[Step.OPERATORS].get("operators") or [] if str(i).isdigit()]
        names = db.session.scalars(select(Operator).where(Operator.id.in_(chosen))).all()
        return self.render("wizard/summary.html", draft=draft, steps=steps, secrets=secrets, titles=TITLES,
                           forms=FORMS, operator_names=[op.full_name for op in names], order=ORDER,
                           reachable=ORDER, candidates=candidates)
