"""The portal's forms. Each carries the CSRF token (Flask-WTF); the rules of what is typed —
lengths of subjects and comments, a reopen's comment, the rating's range, password strength —
are services.discussion's and services.portal's, so the forms only read the fields."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, ValidationError

from i18n import _, _l
from services.contact_info import CONTROL_CHARACTERS
from services.discussion import SUBJECT_LIMIT

RATINGS = [("5", _l("5 – excellent")), ("4", _l("4 – good")), ("3", _l("3 – fair")), ("2", _l("2 – poor")),
           ("1", _l("1 – bad"))]


def _no_control_characters(_form, field) -> None:
    # No user name holds one, and PostgreSQL refuses a NUL even in a comparison.
    if CONTROL_CHARACTERS.intersection(field.data or ""):
        raise ValidationError(_("Remove the invisible characters from the user name."))


class SignInForm(FlaskForm):
    username = StringField(_l("User name"),
                           validators=[DataRequired(_l("Type your user name.")), _no_control_characters],
                           render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Type your password."))],
                             render_kw={"autocomplete": "current-password"})


class PasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), render_kw={"autocomplete": "current-password"})
    new_password = PasswordField(_l("New password"), render_kw={"autocomplete": "new-password"})
    repeat_password = PasswordField(_l("Repeat the new password"), render_kw={"autocomplete": "new-password"})


class NewRequestForm(FlaskForm):
    subject = StringField(_l("Subject"), render_kw={"maxlength": SUBJECT_LIMIT})
    description = TextAreaField(_l("What do you need?"), render_kw={"rows": 8})


class CommentForm(FlaskForm):
    body = TextAreaField(_l("Your comment"), render_kw={"rows": 4})


class AcceptForm(FlaskForm):
    rating = RadioField(_l("Rate the service (optional)"), choices=RATINGS, validate_choice=False)
    remark = TextAreaField(_l("Remark about the service (optional)"), render_kw={"rows": 2})
    comment = TextAreaField(_l("Comment (optional)"), render_kw={"rows": 2})


class ReopenForm(FlaskForm):
    comment = TextAreaField(_l("What is still wrong?"), render_kw={"rows": 3})


class RateForm(FlaskForm):
    rating = RadioField(_l("Your rating"), choices=RATINGS, validate_choice=False)
    remark = TextAreaField(_l("Remark (optional)"), render_kw={"rows": 2})
