"""The wizard's screens: one URL per step, Back / Next, a summary, drafts to resume or discard.

Thin: forms come from wizards.steps, checks from wizards.flow, storage from wizards.drafts, the
summary's words from wizards.summary. Every write is a POST in `panel_write` (one unit of work;
refusals become messages): opening a page never writes. "Add a customer" opens an empty step 1
(`/new`) without a draft; the draft is made by the first save — step 1's autosave or its Next —
found again by the page's `key` (wizards.drafts.draft_for_key). Each step autosaves what is typed
(static/wizard.js posts the step's fields, debounced, to `…/autosave`, which checks nothing and
keeps the raw values: secrets sealed as at Next, never put back into a page). Discarding asks
first (a confirmation page; the POST alone does nothing without `confirmed`). Every POST carries
the app-wide CSRF token (CSRFProtect).
"""

from __future__ import annotations

import re
import secrets

from flask import abort, current_app, flash, jsonify, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user
from sqlalchemy import select

from admin_views.base import actor, deny_or_login, save_options
from admin_views.connection_tests import test_mail_server, with_uploaded_ca
from admin_views.refusals import attach_errors, panel_write
from extensions import db
from i18n import _
from models import GlobalSettings, Operator
from models.enums import CustomerKind
from services.customers import require_operator_assignment
from wizards import drafts
from wizards.flow import check_step, duplicate_candidates, finish
from wizards.steps import (
    FORMS,
    ORDER,
    SECRET_FIELDS,
    SERVER_PREFIXES,
    TEST_LABELS,
    TITLES,
    Step,
    next_step,
    previous_step,
)
from wizards.summary import summary_sections

KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


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
            flash(_("This draft was saved already."), "info")
            return redirect(url_for("customers.index_view"))
        flash(_("This draft was saved already: here is the customer it made."), "info")
        return redirect(url_for("customers.details_view", id=draft.customer_id))

    @expose("/")
    def index(self):
        return self.render("wizard/drafts.html", drafts=drafts.drafts_of(db.session, actor()),
                           wizard_titles=TITLES)

    @expose("/start", methods=("POST",))
    def start(self):
        """The Customers list's "Add a customer" button: an empty step 1; nothing is written."""
        return redirect(url_for(".new"))

    @staticmethod
    def _key(source) -> str:
        key = source.get("draft_key") or ""
        if not KEY.match(key):
            abort(400)
        return key

    @expose("/new", methods=("GET", "POST"))
    def new(self):
        """Step 1 of a customer not saved yet: no draft exists until this page's first save."""
        if request.method == "GET":
            key = request.args.get("draft_key") or secrets.token_urlsafe(18)
            if not KEY.match(key):
                key = secrets.token_urlsafe(18)
            form = FORMS[Step.CUSTOMER]()
            return self._render_step(None, Step.CUSTOMER, form, key=key)
        return self._post_step(None, Step.CUSTOMER, key=self._key(request.form))

    @expose("/new/autosave", methods=("POST",))
    def new_autosave(self):
        """The first autosave of a new wizard: makes (or finds, by the page's key) its draft."""
        key = self._key(request.form)
        with panel_write() as outcome:
            draft = drafts.draft_for_key(db.session, actor(), key)
            saved = drafts.is_saved(draft)
            if not saved:
                self._autosave(draft, Step.CUSTOMER)
        return self._autosave_answer(draft, Step.CUSTOMER, outcome, saved)

    @expose("/<int:draft_id>/<step>/autosave", methods=("POST",))
    def autosave(self, draft_id: int, step: str):
        """Keep what a step holds as it is typed: the raw values, no check, no step opened."""
        draft = self._draft(draft_id)
        current = self._step_of(step)
        if current == Step.SUMMARY:
            abort(404)
        saved = drafts.is_saved(draft)
        if not saved and not drafts.can_open(draft, current):
            return jsonify(ok=False, message=_("Finish the earlier steps first.")), 409
        with panel_write() as outcome:
            if not saved:
                self._autosave(draft, current)
        return self._autosave_answer(draft, current, outcome, saved)

    def _autosave(self, draft, step: Step) -> None:
        if step == Step.OPERATORS and "operators" in request.form:
            require_operator_assignment(actor())  # the field is not on an operator's page
        form = self._form(draft, step, request.form)
        values = {name: field.data for name, field in form._fields.items()}
        drafts.store_step(db.session, draft, step, values, _box())

    def _autosave_answer(self, draft, step: Step, outcome, saved: bool):
        if saved:
            return jsonify(ok=False, saved=True, message=_("This draft was saved already.")), 409
        if not outcome.ok:
            return jsonify(ok=False, message=_("What you typed could not be kept: try again.")), 409
        return jsonify(ok=True, message=_("Kept in the draft"), draft_id=draft.id,
                       step_url=url_for(".step", draft_id=draft.id, step=step.value),
                       autosave_url=url_for(".autosave", draft_id=draft.id, step=step.value),
                       discard_url=url_for(".discard", draft_id=draft.id, back=step.value),
                       test_urls={prefix: url_for(".test_connection", draft_id=draft.id, prefix=prefix)
                                  for prefix in SERVER_PREFIXES.get(step, ())})

    @expose("/<int:draft_id>/discard", methods=("GET", "POST"))
    def discard(self, draft_id: int):
        """GET: the question (what is lost, Discard / Keep). POST with `confirmed`: discard."""
        draft = self._draft(draft_id)
        if drafts.is_saved(draft):
            return self._saved(draft)
        if request.method == "GET" or request.form.get("confirmed") != "1":
            came_from = request.args.get("back")  # the step whose link asked: "Keep it" goes there
            back = came_from if came_from in {s.value for s in ORDER} else draft.step
            return self.render("wizard/discard.html", draft=draft, titles=TITLES,
                               name=drafts.draft_name(draft),
                               back_url=url_for(".step", draft_id=draft.id, step=back))
        with panel_write() as outcome:
            drafts.discard(db.session, draft)
        if outcome.ok:
            flash(_("The draft was discarded."), "info")
        return redirect(url_for("customers.index_view"))

    def _form(self, draft, step: Step, formdata=None):
        form = FORMS[step](formdata, data=drafts.form_values(draft, step) if draft is not None else None)
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

    def _render_step(self, draft, step: Step, form, key: str | None = None):
        if draft is None:  # the new wizard's step 1: only its own URLs
            action, autosave_url, discard_url = (url_for(".new"), url_for(".new_autosave"),
                                                 url_for("customers.index_view"))
            reachable: list[Step] = [Step.CUSTOMER]
        else:
            action = url_for(".step", draft_id=draft.id, step=step.value)
            autosave_url = url_for(".autosave", draft_id=draft.id, step=step.value)
            discard_url = url_for(".discard", draft_id=draft.id, back=step.value)
            reachable = [s for s in ORDER if drafts.can_open(draft, s)]
        return self.render(
            "wizard/step.html", draft=draft, step=step, form=form, order=ORDER, titles=TITLES,
            reachable=reachable, step_url=self._step_url(draft),
            action=action, autosave_url=autosave_url, discard_url=discard_url, draft_key=key,
            secrets_set=({f for f in SECRET_FIELDS if drafts.secret_is_set(draft, step, f)}
                         if draft is not None else set()),
            servers=SERVER_PREFIXES.get(step, ()), builtin=db.session.get(GlobalSettings, 1),
            candidates=self._candidates(form) if step == Step.CUSTOMER else [],
            may_assign=actor().is_maintainer, test_labels=TEST_LABELS,
            test_url=(lambda prefix: url_for(".test_connection", draft_id=draft.id, prefix=prefix))
            if draft is not None else (lambda prefix: ""),
        )

    @staticmethod
    def _step_url(draft):
        if draft is None:
            return lambda s: url_for(".new")
        return lambda s: url_for(".step", draft_id=draft.id, step=s.value)

    @staticmethod
    def _step_of(step: str) -> Step:
        try:
            return Step(step)
        except ValueError:
            abort(404)

    @expose("/<int:draft_id>/<step>", methods=("GET", "POST"))
    def step(self, draft_id: int, step: str):
        draft = self._draft(draft_id)
        current = self._step_of(step)
        if drafts.is_saved(draft):
            return self._saved(draft)
        if not drafts.can_open(draft, current):
            flash(_("Finish the earlier steps first."), "info")
            return redirect(url_for(".step", draft_id=draft.id, step=drafts.reached(draft).value))
        if current == Step.SUMMARY:
            return self._summary(draft)
        if request.method == "GET":
            return self._render_step(draft, current, self._form(draft, current))
        return self._post_step(draft, current)

    def _post_step(self, draft, current: Step, key: str | None = None):
        """Back / Next: keep what was typed (even when the step is refused); a passed step opens
        the next. `draft` None: the new wizard's step 1, whose draft this save makes."""
        if current == Step.OPERATORS and "operators" in request.form:
            require_operator_assignment(actor())  # read-only for operators: a posted value is tampering
        form = self._form(draft, current, with_uploaded_ca(request.form, request.files))
        values = {name: field.data for name, field in form._fields.items()}
        back = request.form.get("nav") == "back"
        errors: dict[str, list[str]] = {} if back or form.validate() else dict(form.errors)
        saved_already = False
        with panel_write(form) as outcome:
            if draft is None and key is not None:
                draft = drafts.draft_for_key(db.session, actor(), key)
                saved_already = drafts.is_saved(draft)
            if not saved_already:
                if not back and not errors:
                    errors = check_step(db.session, actor(), current, values, _box(), save_options())
                passed = not back and not errors
                drafts.store_step(db.session, draft, current, values, _box(),
                                  advance_to=next_step(current) if passed else None)
        if saved_already:
            return self._saved(draft)
        if key is not None and not outcome.ok:  # the first save itself was refused: the new page again
            return self._render_step(None, current, form, key=key)
        if outcome.ok and (back or not errors):
            target = previous_step(current) if back else next_step(current)
            return redirect(url_for(".step", draft_id=draft.id, step=target.value))
        if errors:
            _show_errors(form, errors)
        return self._render_step(draft, current, form)

    @expose("/<int:draft_id>/test-connection/<prefix>", methods=("POST",))
    def test_connection(self, draft_id: int, prefix: str):
        """Really connect to the server typed on the page (JSON for the step's button). An
        empty password means the one already kept in the draft, an empty CA field the CA kept
        there. Where it may connect and what it may say: services.outbound_policy (an operator:
        mail ports on ordinary hosts); how often: admin_views.connection_tests."""
        draft = self._draft(draft_id)
        if drafts.is_saved(draft):
            abort(404)
        step = next((s for s, prefixes in SERVER_PREFIXES.items() if prefix in prefixes), None)
        if step is None:
            abort(404)
        kept = drafts.plain_values(draft, step, _box())
        return test_mail_server(actor(), prefix, request.form, stored_password=kept.get(f"{prefix}_password"),
                                stored_ca=drafts.stored(draft, Step.MAIL).get("mail_ca_certificate"))

    def _summary(self, draft):
        candidates = []
        if request.method == "POST":
            with panel_write() as outcome:
                customer = finish(db.session, actor(), draft, _box(), save_options())
            if outcome.ok:
                if customer is None:  # another Save of this draft (a double click, a tab) made it
                    return self._saved(draft)
                flash(_("%(name)s was created.", name=customer.display_name), "success")
                if customer.kind == CustomerKind.COMPANY:  # the seed: prompted to add contacts
                    return redirect(url_for("customer_contacts.index", id=customer.id, created=1))
                return redirect(url_for("customers.details_view", id=customer.id))
            if "confirm_duplicate" in outcome.errors:  # created by someone else since step 1
                flash(_("Go back to the first step to confirm “create anyway”."), "info")
                candidates = [c for c in duplicate_candidates(
                    db.session, actor(), drafts.form_values(draft, Step.CUSTOMER), save_options())
                    if c.strong]
        steps = {step: drafts.form_values(draft, step) for step in ORDER if step != Step.SUMMARY}
        secrets_set = {step: {f for f in SECRET_FIELDS if drafts.secret_is_set(draft, step, f)}
                       for step in steps}
        chosen = [int(i) for i in steps[Step.OPERATORS].get("operators") or [] if str(i).isdigit()]
        names = db.session.scalars(select(Operator).where(Operator.id.in_(chosen))).all()
        return self.render("wizard/summary.html", draft=draft, titles=TITLES, order=ORDER,
                           sections=summary_sections(steps, secrets_set, [op.full_name for op in names]),
                           reachable=ORDER, step_url=self._step_url(draft), candidates=candidates,
                           back_url=url_for(".step", draft_id=draft.id,
                                            step=previous_step(Step.SUMMARY).value),
                           discard_url=url_for(".discard", draft_id=draft.id, back=Step.SUMMARY.value))


def _show_errors(form, errors: dict[str, list[str]]) -> None:
    """Messages on the fields they concern (the rest on the page). What was typed is kept in the
    draft all the same, and the note says so."""
    attach_errors(form, errors, _("This step was kept in the draft, but it cannot be passed yet: correct "
                                  "the fields marked below."))
