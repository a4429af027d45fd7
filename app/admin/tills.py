"""Admin pages for shops and tills: add, edit, archive, test the connection, rotate the
callback token, and say which cashiers work where. The work is done in app/shops.py."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import (
    BooleanField,
    DecimalField,
    PasswordField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from app import shops
from app.admin.views import bp
from app.auth.roles import role_required
from app.extensions import db
from app.models import Role, Shop, Till, User
from app.models.till import ENVIRONMENTS, TILL_TYPES
from app.payments import tills as daraja_tills
from app.timeutil import NAIROBI

# [0-9], not \d: \d also takes Arabic-Indic and fullwidth digits, which Daraja refuses.
_DIGITS = Regexp(r"^[0-9]{5,10}$", message=_l("Digits only, 5 to 10 of them."))
_TILL_TYPE_LABELS = {"paybill": _l("Paybill"), "till": _l("Till (Buy Goods)")}
_ENVIRONMENT_LABELS = {
    "simulator": _l("Simulator (built-in, demo)"),
    "sandbox": _l("Safaricom sandbox"),
    "production": _l("Production"),
}
# WTForms' own messages, as the catalogue's msgids (WTForms has no Swahili of its own).
_REQUIRED = _l("This field is required.")
_MAX_LENGTH = _l("Field cannot be longer than %(max)d characters.")


class TillForm(FlaskForm):
    shop_id = SelectField(_l("Shop"), coerce=int, validators=[DataRequired(_REQUIRED)])
    name = StringField(
        _l("Till name"),
        description=_l("What the counter, receipts and reports call it, e.g. 'Main counter'."),
        validators=[DataRequired(_REQUIRED), Length(max=80, message=_MAX_LENGTH)],
    )
    till_type = SelectField(
        _l("Type"),
        choices=[SelectChoice(t, _TILL_TYPE_LABELS[t]) for t in TILL_TYPES],
        validators=[DataRequired(_REQUIRED)],
    )
    shortcode = StringField(
        _l("Business shortcode"),
        description=_l("The paybill number; for a till, the store or HO number used at go-live."),
        validators=[DataRequired(_REQUIRED), _DIGITS],
    )
    till_number = StringField(
        _l("Till number"),
        description=_l("Only for Buy Goods: the till customers pay (sent as PartyB)."),
        validators=[Optional(), _DIGITS],
    )
    environment = SelectField(
        _l("Environment"),
        choices=[SelectChoice(e, _ENVIRONMENT_LABELS[e]) for e in ENVIRONMENTS],
    )
    query_budget_per_s = DecimalField(
        _l("Status queries per second"),
        description=_l(
            "The most STK queries the poller sends for this till, across all processes."
        ),
        places=1,
        default=2,
        validators=[
            DataRequired(_REQUIRED),
            NumberRange(min=0.1, max=50, message=_l("Number must be between %(min)s and %(max)s.")),
        ],
    )
    allow_ported_numbers = BooleanField(
        _l("Allow ported numbers"),
        description=_l(
            "Accept numbers on Airtel, Telkom or other networks' prefixes, for customers who "
            "moved their number to Safaricom. Off: such numbers are refused before sending."
        ),
    )
    # Secrets: left blank means "keep the stored value"; stored values are never sent back.
    consumer_key = PasswordField(
        _l("Consumer key"), validators=[Optional(), Length(max=200, message=_MAX_LENGTH)]
    )
    consumer_secret = PasswordField(
        _l("Consumer secret"), validators=[Optional(), Length(max=200, message=_MAX_LENGTH)]
    )
    passkey = PasswordField(
        _l("Passkey"), validators=[Optional(), Length(max=200, message=_MAX_LENGTH)]
    )
    cashier_ids = SelectMultipleField(
        _l("Cashiers who work at this till"),
        coerce=int,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )

    def validate(self, extra_validators=None) -> bool:  # noqa: ANN001
        ok = super().validate(extra_validators)
        # Checked here, not inline: Optional() on the field stops its own validator chain.
        if self.till_type.data == "till" and not self.till_number.data:
            self.till_number.errors = [
                *self.till_number.errors,
                gettext("A Buy Goods till needs its till number."),
            ]
            ok = False
        return ok


class ShopForm(FlaskForm):
    name = StringField(
        _l("Shop name"),
        validators=[DataRequired(_REQUIRED), Length(max=80, message=_MAX_LENGTH)],
    )


def _till_form(till: Till | None) -> TillForm:
    form = TillForm(obj=till) if till is not None else TillForm()
    form.shop_id.choices = [
        SelectChoice(s.id, s.name)
        for s in db.session.execute(select(Shop).order_by(Shop.name)).scalars()
    ]
    cashiers = db.session.execute(
        select(User).where(User.role == Role.CASHIER).order_by(User.username)
    ).scalars()
    form.cashier_ids.choices = [SelectChoice(u.id, u.username) for u in cashiers]
    if till is not None and not form.is_submitted():
        form.cashier_ids.data = [u.id for u in till.cashiers]
    return form


@bp.get("/tills")
@role_required(Role.ADMIN)
def tills():
    """Every shop with its tills (archived ones last), and a form to add a shop."""
    all_shops = db.session.execute(select(Shop).order_by(Shop.name)).scalars().all()
    return render_template("admin/tills.html", shops=all_shops, shop_form=ShopForm())


@bp.get("/till")
@role_required(Role.ADMIN)
def till():
    """The old single-till page: now the list."""
    return redirect(url_for("admin.tills"))


@bp.post("/shops")
@role_required(Role.ADMIN)
def add_shop():
    form = ShopForm()
    if form.validate_on_submit():
        shops.save_shop(None, form.name.data.strip())
        flash(gettext("Shop added."), "info")
    else:
        flash("; ".join(str(e) for errs in form.errors.values() for e in errs), "error")
    return redirect(url_for("admin.tills"))


@bp.post("/shops/<int:shop_id>")
@role_required(Role.ADMIN)
def rename_shop(shop_id: int):
    shop = db.get_or_404(Shop, shop_id)
    form = ShopForm()
    if form.validate_on_submit():
        shops.save_shop(shop, form.name.data.strip())
        flash(gettext("Shop renamed."), "info")
    else:
        flash("; ".join(str(e) for errs in form.errors.values() for e in errs), "error")
    return redirect(url_for("admin.tills"))


@bp.route("/tills/new", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def new_till():
    return _edit(None)


@bp.route("/tills/<int:till_id>", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def edit_till(till_id: int):
    return _edit(db.get_or_404(Till, till_id))


def _edit(till: Till | None):
    if till is None and not db.session.execute(select(Shop.id).limit(1)).first():
        flash(gettext("Add a shop first: every till belongs to one."), "error")
        return redirect(url_for("admin.tills"))
    form = _till_form(till)
    if form.validate_on_submit():
        secrets = {
            name: value
            for name in shops.SECRET_FIELDS
            if (value := (getattr(form, name).data or "").strip())
        }
        missing = shops.missing_secrets(till, secrets)
        if form.environment.data == "simulator" and not current_app.config["SIMULATOR_ENABLED"]:
            form.environment.errors.append(gettext("The simulator is not enabled on this install."))
        elif missing:
            form.passkey.errors.append(
                gettext("Enter %(fields)s.", fields=", ".join(m.replace("_", " ") for m in missing))
            )
        else:
            saved = shops.save_till(
                till,
                shops.TillSettings(
                    shop_id=form.shop_id.data,
                    name=form.name.data.strip(),
                    till_type=form.till_type.data,
                    shortcode=form.shortcode.data,
                    till_number=form.till_number.data or None,
                    environment=form.environment.data,
                    query_budget_per_s=float(form.query_budget_per_s.data),
                    allow_ported_numbers=bool(form.allow_ported_numbers.data),
                    secrets=secrets,
                    cashier_ids=list(form.cashier_ids.data or []),
                ),
            )
            flash(gettext("Till saved."), "info")
            for warning in shops.callback_url_warnings(saved):
                flash(warning, "error")
            return redirect(url_for("admin.edit_till", till_id=saved.id))
    return _page(till, form)


def _page(till: Till | None, form: TillForm, check: shops.ConnectionCheck | None = None):
    return render_template(
        "admin/till.html",
        form=form,
        till=till,
        fingerprints=shops.fingerprints(till) if till is not None else {},
        callback_url=daraja_tills.callback_url(till) if till is not None else None,
        warnings=shops.callback_url_warnings(till) if till is not None else [],
        check=check,
    )


@bp.post("/tills/<int:till_id>/test")
@role_required(Role.ADMIN)
def test_till(till_id: int):
    """Ask Daraja for a token with the stored credentials, and say what is wrong if anything."""
    till = db.get_or_404(Till, till_id)
    check = shops.check_connection(till)
    shops.record_check(till, check)
    return _page(till, _till_form(till), check)


@bp.post("/tills/<int:till_id>/rotate")
@role_required(Role.ADMIN)
def rotate_till_token(till_id: int):
    till = db.get_or_404(Till, till_id)
    until = shops.rotate_callback_token(till)
    flash(
        gettext(
            "New callback URL. The old one keeps working until %(until)s (Nairobi time) for "
            "pushes already sent, then answers 403.",
            until=until.astimezone(NAIROBI).strftime("%Y-%m-%d %H:%M"),
        ),
        "info",
    )
    return redirect(url_for("admin.edit_till", till_id=till.id))


@bp.post("/tills/<int:till_id>/archive")
@role_required(Role.ADMIN)
def archive_till(till_id: int):
    till = db.get_or_404(Till, till_id)
    archive = request.form.get("archive") != "0"
    shops.set_archived(till, archive)
    flash(
        gettext("Till archived: no new sales.") if archive else gettext("Till back in use."), "info"
    )
    return redirect(url_for("admin.tills"))
