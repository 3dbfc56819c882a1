"""Sign-in and sign-out. Not a Flask-Admin view: it must work before anybody is signed in.

A session cookie names the operator and their session generation (Operator.get_id); the loader
refuses it once the generation moved on, so sessions end on the server, not only in a browser."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, ValidationError

from extensions import db, login_manager
from i18n import _, _l
from models import Operator
from services.contact_info import CONTROL_CHARACTERS
from services.operators import authenticate, sign_out
from services.sign_in_throttle import SignInThrottled, ThrottlePolicy
from services.transactions import unit_of_work

auth = Blueprint("auth", __name__)


def _no_control_characters(_form, field) -> None:
    # No login name holds one, and PostgreSQL refuses a NUL even in a comparison.
    if CONTROL_CHARACTERS.intersection(field.data or ""):
        raise ValidationError(_("Not a valid e-mail address."))


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(message=_l("Type your e-mail.")),
                                                 _no_control_characters])
    password = PasswordField(_l("Password"), validators=[DataRequired(message=_l("Type your password."))])


@login_manager.user_loader
def load_operator(user_id: str) -> Operator | None:
    """The active operator of a session cookie whose generation is still current, else None
    (signed out: the cookie predates a sign-out, password change or deactivation)."""
    operator_id, _, generation = (user_id or "").partition(":")
    if not (operator_id.isdigit() and generation.isdigit() and len(operator_id) < 19):
        return None
    operator = db.session.get(Operator, int(operator_id))
    if operator is None or not operator.is_active or str(operator.session_generation) != generation:
        return None
    return operator


login_manager.login_view = "auth.login"
login_manager.login_message = _l("Please sign in to continue.")
login_manager.localize_callback = str  # flashed in the reader's language, stored as text
login_manager.login_message_category = "info"


def _safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would hand sign-ins to a phishing page."""
    if target and not urlsplit(target).netloc and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("admin.index")


@auth.route("/login", methods=["GET", "POST"])
def login():
    """Sign-in. Its limits are counted in the database by services.sign_in_throttle — failures
    only (per account and address, per account, per address over all accounts), shared by every
    process and host — so an office behind one address is never limited by its correct sign-ins.
    The address is the client's: behind TRUSTED_PROXIES reverse proxies, from X-Forwarded-For."""
    if current_user.is_authenticated:
        return redirect(url_for("admin.index"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            # Committed either way: a refused sign-in is recorded as well as a successful one.
            with unit_of_work(db.session):
                operator = authenticate(db.session, form.email.data, form.password.data, request.remote_addr,
                                        ThrottlePolicy.from_config(current_app.config))
        except SignInThrottled as exc:
            form.email.errors = [str(exc)]
            response = current_app.make_response((render_template("auth/login.html", form=form), 429))
            response.headers["Retry-After"] = str(exc.seconds)
            return response
        if operator is not None:
            login_user(operator)
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors.append(_("Wrong e-mail or password."))
    status = 200 if request.method == "GET" or not form.errors else 422
    return render_template("auth/login.html", form=form), status


@auth.route("/logout", methods=["POST"])
@login_required
def logout():
    with unit_of_work(db.session):
        sign_out(db.session, current_user._get_current_object(), request.remote_addr)
    logout_user()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))

