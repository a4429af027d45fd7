"""Admin forms: users (the till forms are in app/admin/tills.py)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from app.auth.passwords import MAX_LENGTH, USERNAME_MAX, password_problem, username_problem
from app.models import Role

#: the role as a person reads it (the stored value stays "cashier", "owner", "admin")
_ROLE_LABELS = {Role.CASHIER: _l("Cashier"), Role.OWNER: _l("Owner"), Role.ADMIN: _l("Admin")}
# WTForms' own messages, as the catalogue's msgids (WTForms has no Swahili of its own).
_REQUIRED = _l("This field is required.")
_MAX_LENGTH = _l("Field cannot be longer than %(max)d characters.")


class NewUserForm(FlaskForm):
    username = StringField(
        _l("Username"),
        validators=[DataRequired(_REQUIRED), Length(max=USERNAME_MAX, message=_MAX_LENGTH)],
    )
    role = SelectField(_l("Role"), choices=[SelectChoice(r.value, _ROLE_LABELS[r]) for r in Role])
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(_REQUIRED), Length(max=MAX_LENGTH, message=_MAX_LENGTH)],
    )

    def validate_username(self, field: StringField) -> None:
        problem = username_problem(field.data or "")
        if problem:
            raise ValidationError(problem)

    def validate_password(self, field: PasswordField) -> None:
        problem = password_problem(field.data or "", (self.username.data or "").strip())
        if problem:
            raise ValidationError(problem)


class EditUserForm(FlaskForm):
    role = SelectField(_l("Role"), choices=[SelectChoice(r.value, _ROLE_LABELS[r]) for r in Role])
    active = BooleanField(_l("Active"))
    password = PasswordField(
        _l("New password (optional)"),
        validators=[Optional(), Length(max=MAX_LENGTH, message=_MAX_LENGTH)],
    )

    #: whose password it is (set by the view; the rules compare it with the username)
    for_username = ""

    def validate_password(self, field: PasswordField) -> None:
        problem = password_problem(field.data or "", self.for_username)
        if problem:
            raise ValidationError(problem)


class TwoFactorPolicyForm(FlaskForm):
    """Which roles must sign in with a second factor (stored in the settings table)."""

    owner = BooleanField(_l("Owners"))
    admin = BooleanField(_l("Admins"))
