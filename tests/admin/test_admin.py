"""Admin: till credentials encrypted at rest and never rendered back; users and roles."""

import pytest
import sqlalchemy as sa
from bs4 import BeautifulSoup

from app.crypto import decrypt
from app.extensions import db
from app.models import Till, User
from app.shops import fingerprint
from tests.helpers import PASSWORD, login

SECRET = "Zq9-consumer-secret-0001-XYZW"
KEY = "Ab3-consumer-key-000000-LMNO"
PASSKEY = "passkey-0123456789abcdef-QRST"


def _till():
    return db.session.execute(sa.select(Till).order_by(Till.id)).scalars().first()


def _url():
    """The page of the till the fixture seeded (one shop, one till)."""
    return f"/admin/tills/{_till().id}"


def _form(**overrides):
    data = {
        "shop_id": str(_till().shop_id),
        "name": "Mama Mboga Store",
        "till_type": "paybill",
        "shortcode": "600123",
        "till_number": "",
        "environment": "sandbox",
        "consumer_key": KEY,
        "consumer_secret": SECRET,
        "passkey": PASSKEY,
        "query_budget_per_s": "2",
        # Saving the page says who works at the till: keep the seeded cashier there.
        "cashier_ids": [str(u.id) for u in _till().cashiers],
    }
    data.update(overrides)
    return data


def test_secrets_are_encrypted_and_never_shown(admin_client):
    r = admin_client.post(_url(), data=_form())
    assert r.status_code == 302
    till = _till()
    db.session.refresh(till)
    assert till.shortcode == "600123" and till.environment == "sandbox"
    for raw, column in (
        (KEY, "consumer_key_enc"),
        (SECRET, "consumer_secret_enc"),
        (PASSKEY, "passkey_enc"),
    ):
        stored = getattr(till, column)
        assert raw.encode() not in stored
        assert decrypt(stored) == raw
    html = admin_client.get(_url()).get_data(as_text=True)
    for raw in (KEY, SECRET, PASSKEY):
        assert raw not in html
        # Neither its start nor its end: only a fingerprint of it.
        assert raw[:12] not in html and raw[-4:] not in html
        assert fingerprint(raw) in html


def test_blank_secret_keeps_the_stored_one(admin_client):
    admin_client.post(_url(), data=_form())
    admin_client.post(_url(), data=_form(consumer_secret="", name="Renamed"))
    till = _till()
    db.session.refresh(till)
    assert till.name == "Renamed" and decrypt(till.consumer_secret_enc) == SECRET


def test_till_type_needs_till_number(admin_client):
    r = admin_client.post(_url(), data=_form(till_type="till", till_number=""))
    assert r.status_code == 200 and b"needs its till number" in r.data
    r = admin_client.post(_url(), data=_form(till_type="till", till_number="5123456"))
    assert r.status_code == 302
    till = _till()
    db.session.refresh(till)
    assert till.transaction_type == "CustomerBuyGoodsOnline" and till.party_b == "5123456"


def test_simulator_cannot_be_chosen_when_disabled(app, admin_client):
    app.config["SIMULATOR_ENABLED"] = False
    r = admin_client.post(_url(), data=_form(environment="simulator"))
    assert r.status_code == 200 and b"not enabled" in r.data


def test_admin_creates_a_user_who_can_log_in(app, admin_client):
    r = admin_client.post(
        "/admin/users", data={"username": "wanjiku", "role": "owner", "password": "long-enough-pw"}
    )
    assert r.status_code == 302
    user = db.session.execute(sa.select(User).where(User.username == "wanjiku")).scalar_one()
    assert user.role == "owner" and "long-enough-pw" not in user.password_hash
    c = app.test_client()
    r = c.post("/login", data={"username": "wanjiku", "password": "long-enough-pw"})
    assert r.headers["Location"].endswith("/owner/report")


def test_admin_changes_a_role_and_disables(app, admin_client):
    cashier = db.session.execute(sa.select(User).where(User.username == "cashier")).scalar_one()
    prefix = f"u{cashier.id}"
    r = admin_client.post(
        f"/admin/users/{cashier.id}", data={f"{prefix}-role": "owner", f"{prefix}-active": ""}
    )
    assert r.status_code == 302
    db.session.refresh(cashier)
    assert cashier.role == "owner" and cashier.active is False
    c = app.test_client()
    c.post("/login", data={"username": "cashier", "password": PASSWORD})
    assert c.get("/owner/report").status_code == 302  # disabled: not logged in


def test_admin_cannot_lock_themselves_out(admin_client):
    admin = db.session.execute(sa.select(User).where(User.username == "admin")).scalar_one()
    prefix = f"u{admin.id}"
    admin_client.post(
        f"/admin/users/{admin.id}", data={f"{prefix}-role": "cashier", f"{prefix}-active": "y"}
    )
    db.session.refresh(admin)
    assert admin.role == "admin"


def test_owner_cannot_reach_admin(app):
    c = app.test_client()
    login(c, "owner")
    assert c.get("/admin/till").status_code == 403


def test_query_budget_is_configurable_and_bounded(admin_client):
    assert admin_client.post(_url(), data=_form(query_budget_per_s="5.5")).status_code == 302
    till = _till()
    db.session.refresh(till)
    assert till.query_budget_per_s == 5.5
    r = admin_client.post(_url(), data=_form(query_budget_per_s="500"))
    assert r.status_code == 200 and b"Number must be between" in r.data


def test_ported_numbers_are_refused_until_the_admin_allows_them(admin_client, cashier_client):
    """An Airtel-prefix number is refused at the counter with the network named; an admin can
    allow ported numbers (customers who moved their number to Safaricom) on the till page."""
    from bs4 import BeautifulSoup

    from app.models import Payment

    def send():
        return cashier_client.post(
            "/cashier/payments",
            data={"phone": "0733 123 456", "amount": "50", "idempotency_key": "a" * 32},
            headers={"HX-Request": "true"},
        )

    html = send().get_data(as_text=True)
    assert "looks like a number on the Airtel network" in html
    assert 'value="0733 123 456"' in html  # what was typed stays
    assert db.session.execute(sa.select(Payment)).first() is None  # nothing saved or sent
    till = _till()
    form = _form(
        name=till.name, shortcode=till.shortcode, environment=till.environment,
        consumer_key="", consumer_secret="", passkey="", allow_ported_numbers="y",
    )  # fmt: skip
    assert admin_client.post(_url(), data=form).status_code == 302
    db.session.refresh(till)
    assert till.allow_ported_numbers is True
    page = BeautifulSoup(admin_client.get(_url()).data, "html.parser")
    assert page.select_one("input#allow_ported_numbers").has_attr("checked")
    send()
    [payment] = db.session.execute(sa.select(Payment)).scalars().all()
    assert payment.phone == "254733123456"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "x" * 300),  # over-long
        ("shortcode", "60O123"),  # a letter O for a zero
        ("query_budget_per_s", "two"),  # wrong type
        ("query_budget_per_s", "99999999999999999999"),
        ("consumer_key", "k" * 5000),
    ],
)
def test_a_till_field_it_cannot_store_is_refused_beside_that_field(admin_client, field, value):
    before = _till().name
    r = admin_client.post(_url(), data=_form(**{field: value}))
    assert r.status_code == 200
    soup = BeautifulSoup(r.data, "html.parser")
    error = soup.select_one(f"#{field}-field .form-error")
    assert error is not None and error.get_text(strip=True)
    assert soup.select_one(f"#{field}")["aria-describedby"] == f"{field}-error"
    db.session.expire_all()
    assert _till().name == before
