"""Admin forms: till settings and users."""

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DecimalField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from app.models import Role
from app.models.till import ENVIRONMENTS, TILL_TYPES

# [0-9], not \d: \d also takes Arabic-Indic and fullwidth digits, which Daraja refuses.
_DIGITS = Regexp(r"^[0-9]{5,10}$", message="Digits only, 5 to 10 of them.")
_TILL_TYPE_LABELS = {"paybill": "Paybill", "till": "Till (Buy Goods)"}
_ENVIRONMENT_LABELS = {
    "simulator": "Simulator (built-in, demo)",
    "sandbox": "Safaricom sandbox",
    "production": "Production",
}


class TillForm(FlaskForm):
    name = StringField("Shop name", validators=[DataRequired(), Length(max=80)])
    till_type = SelectField(
        "Type",
        choices=[SelectChoice(t, _TILL_TYPE_LABELS[t]) for t in TILL_TYPES],
        validators=[DataRequired()],
    )
    shortcode = StringField(
        "Business shortcode",
        description="The paybill number; for a till, the store or HO number used at go-live.",
        validators=[DataRequired(), _DIGITS],
    )
    till_number = StringField(
        "Till number",
        description="Only for Buy Goods: the till customers pay (sent as PartyB).",
        validators=[Optional(), _DIGITS],
    )
    environment = SelectField(
        "Environment",
        choices=[SelectChoice(e, _ENVIRONMENT_LABELS[e]) for e in ENVIRONMENTS],
    )
    query_budget_per_s = DecimalField(
        "Status queries per second",
        description="The most STK queries the poller sends for this till, across all processes.",
        places=1,
        default=2,
        validators=[DataRequired(), NumberRange(min=0.1, max=50)],
    )
    allow_ported_numbers = BooleanField(
        "Allow ported numbers",
        description=(
            "Accept numbers on Airtel, Telkom or other networks' prefixes, for customers who "
            "moved their number to Safaricom. Off: such numbers are refused before sending."
        ),
    )
    # Secrets: left blank means "keep the stored value"; stored values are never sent back.
    consumer_key = PasswordField("Consumer key", validators=[Optional(), Length(max=200)])
    consumer_secret = PasswordField("Consumer secret", validators=[Optional(), Length(max=200)])
    passkey = PasswordField("Passkey", validators=[Optional(), Length(max=200)])

    def validate(self, extra_validators=None) -> bool:  # noqa: ANN001
        ok = super().validate(extra_validators)
        # Checked here, not inline: Optional() on the field stops its own validator chain.
        if self.till_type.data == "till" and not self.till_number.data:
            self.till_number.errors = [
                *self.till_number.errors,
                "A Buy Goods till needs its till number.",
            ]
            ok = False
        return ok


class NewUserForm(FlaskForm):
    username = StringField(
        "Username",
        validators=[DataRequired(), Length(max=64), Regexp(r"^[A-Za-z0-9_.-]+$")],
    )
    role = SelectField("Role", choices=[SelectChoice(r.value, r.value.title()) for r in Role])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8, max=256)])


class EditUserForm(FlaskForm):
    role = SelectField("Role", choices=[SelectChoice(r.value, r.value.title()) for r in Role])
    active = BooleanField("Active")
    password = PasswordField(
        "New password (optional)", validators=[Optional(), Length(min=8, max=256)]
    )
