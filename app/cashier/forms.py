"""The payment form; the real rules live in app.payments.rules so every entry point shares them."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import Length


class PaymentForm(FlaskForm):
    phone = StringField(_l("Customer phone"), validators=[Length(max=20)])
    amount = StringField(_l("Amount (KES)"), validators=[Length(max=12)])
    reference = StringField(_l("Reference (optional)"), validators=[Length(max=40)])
    #: a fresh key per form render: a double submit of the same form is one payment
    idempotency_key = HiddenField()
