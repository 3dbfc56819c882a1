"""The signed-in operator's own profile: who they are, their language and time zone, and changing
their own password. Reached from the profile menu under the operator's name in the top bar."""

from __future__ import annotations

from flask import current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_babel import refresh
from flask_login import login_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField

from admin_views.base import OwnAccountView, actor
from admin_views.refusals import panel_write
from extensions import db
from i18n import LANGUAGES, _, _l, time_zone_choices, when
from models.base import utcnow
from services.operators import MIN_PASSWORD_LENGTH, change_own_password, set_own_preferences


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(_l("Current password"))
    new_password = PasswordField(_l("New password"))
    repeat_password = PasswordField(_l("Repeat the new password"))


class PreferencesForm(FlaskForm):
    """Choices are checked by the service (services.operators.set_own_preferences), not here: a
    refused value comes back as a message on its field."""

    language = SelectField(_l("Language"), validate_choice=False)
    time_zone = SelectField(_l("Time zone"), validate_choice=False)

    def __init__(self, *args, desk_zone: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.language.choices = [("", _("As my browser")), *LANGUAGES.items()]
        self.time_zone.choices = [("", _("The desk's time zone (%(zone)s)", zone=desk_zone)),
                                  *((z, z) for z in time_zone_choices())]


class ProfileView(OwnAccountView):
    """Reached from the profile menu in the top bar, not from the menu of pages."""

    def is_visible(self) -> bool:
        return False

    def _preferences_form(self, formdata=None) -> PreferencesForm:
        operator = actor()
        chosen = {"language": operator.language or "", "time_zone": operator.time_zone or ""}
        desk_zone = current_app.config["DISPLAY_TIME_ZONE"]
        return PreferencesForm(formdata=formdata, desk_zone=desk_zone, data=chosen)

    def _page(self, password_form, preferences_form, status: int = 200):
        minimum = _("At least %(count)s characters.", count=MIN_PASSWORD_LENGTH)
        password_form.new_password.description = minimum
        return self.render("admin/profile.html", form=password_form, preferences=preferences_form,
                           now_shown=when(utcnow())), status

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
                flash(_("Your password was changed. You were signed out everywhere else."), "success")
                return redirect(url_for(".index"))
        status = 422 if form.errors or any(f.errors for f in form) else 200
        return self._page(form, self._preferences_form(), status)

    @expose("/preferences", methods=("POST",))
    def preferences(self):
        form = self._preferences_form(request.form)
        if form.validate():  # the CSRF token; the choices are the service's to check
            operator = actor()
            with panel_write(form) as outcome:
                set_own_preferences(db.session, operator, form.language.data, form.time_zone.data)
            if outcome.ok:
                refresh()  # this request's language and zone were chosen before the change
                flash(_("Your language and time zone were saved."), "success")
                return redirect(url_for(".index", _anchor="preferences"))
        return self._page(PasswordChangeForm(formdata=None), form, 422)
