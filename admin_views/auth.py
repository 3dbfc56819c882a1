"""Sign-in and sign-out. Not a Flask-Admin view: it must work before anybody is signed in."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from extensions import db, limiter, login_manager
from models import Operator
from services.operators import authenticate
from services.transactions import unit_of_work

auth = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


@login_manager.user_loader
def load_operator(operator_id: str) -> Operator | None:
    operator = db.session.get(Operator, int(operator_id))
    return operator if operator is not None and operator.is_active else None


login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"


def _safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would hand sign-ins to a phishing page."""
    if target and not urlsplit(target).netloc and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("admin.index")


def _account_key() -> str:
    return "login-account:" + (request.form.get("email") or "").strip().lower()


@auth.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
# Per account too, so guessing one password from many addresses is slowed as well. Only
# refused attempts count, and the window passes: the real owner is never locked out for good.
@limiter.limit(lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"], methods=["POST"],
               key_func=_account_key, deduct_when=lambda response: response.status_code != 302)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("admin.index"))
    form = LoginForm()
    if form.validate_on_submit():
        # Committed either way: a refused sign-in is recorded as well as a successful one.
        with unit_of_work(db.session):
            operator = authenticate(db.session, form.email.data, form.password.data, request.remote_addr)
        if operator is not None:
            login_user(operator)
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors.append("Wrong e-mail or password.")
    status = 200 if request.method == "GET" or not form.errors else 422
    return render_template("auth/login.html", form=form), status


@auth.route("/logout", methods=["POST"])
@login_required
def logout():
    logout_user()
    flash("You have signed out.", "info")
    return redirect(url_for("auth.login"))


@auth.app_errorhandler(429)
def too_many_attempts(_error):
    form = LoginForm()
    form.email.errors = ["Too many sign-in attempts from your address. Wait a minute and try again."]
    return render_template("auth/login.html", form=form), 429
