"""The signed-in operator's own profile: who they are, and changing their own password."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import expose
from flask_login import login_user
from flask_wtf import FlaskForm
from wtforms import PasswordField

from admin_views.base import OwnAccountView, actor
from admin_views.refusals import panel_write
from extensions import db
from services.operators import MIN_PASSWORD_LENGTH, change_own_password


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField("Current password")
    new_password = PasswordField("New password", description=f"At least {MIN_PASSWORD_LENGTH} characters.")
    repeat_password = PasswordField("Repeat the new password")


class ProfileView(OwnAccountView):
    """Reached from the top bar (next to Sign out), not from the menu."""

    def is_visible(self) -> bool:
        return False

    @expose("/", methods=("GET", "POST"))
    def index(self):
        form = PasswordChangeForm()
        if form.validate_on_submit():
            operator = actor()
            with panel_write(form) as outcome:
                change_own_password(db.session, operator, form.current_password.data,
                                    form.new_password.data, form.repeat_password.data, request.remote_addr)
            if outcome.ok:
                # Every other session ended with the change; this one goes on, with the new
                # generation in its cookie.
                login_user(operator)
                flash("Your password was changed. You were signed out everywhere else.", "success")
                return redirect(url_for(".index"))
        status = 422 if form.errors or any(f.errors for f in form) else 200
        return self.render("admin/profile.html", form=form), status
