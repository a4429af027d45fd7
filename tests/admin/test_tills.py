"""Several tills grouped by shop: each with its own credentials, callback URL, token, budget
and cashiers; a till page that checks itself; callback URLs that rotate and are guarded."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from bs4 import BeautifulSoup

from app.callbacks import guard
from app.crypto import encrypt
from app.extensions import db
from app.jobs.poll import poll_payments
from app.jobs.retention import purge_callbacks
from app.models import AuditEntry, DarajaToken, Payment, RawCallback, Shop, Till, User
from app.models.types import utcnow
from app.payments import service, tills
from app.simulator.server import create_simulator_app, serve_in_thread
from app.simulator.state import get_state
from tests.helpers import login, post_json, success_callback, wait_for

SECOND_KEY, SECOND_SECRET = "second-app-key", "second-app-secret"
SECOND_SHORTCODE, SECOND_PASSKEY = "600100", "second-passkey-0000"


def _user(name: str) -> User:
    return db.session.execute(sa.select(User).where(User.username == name)).scalar_one()


@pytest.fixture
def two_tills(app, till):
    """A second shop with a Buy Goods till on its own Daraja app (the same simulator)."""
    app.config["SIMULATOR_CREDENTIALS"] = [
        ("pesadesk-demo-key", "pesadesk-demo-secret"),
        (SECOND_KEY, SECOND_SECRET),
    ]
    app.config["SIMULATOR_PASSKEYS"] = {
        "174379": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
        SECOND_SHORTCODE: SECOND_PASSKEY,
    }
    branch = Shop(name="Branch")
    second = Till(
        name="Branch counter",
        shop=branch,
        shortcode=SECOND_SHORTCODE,
        till_type="till",
        till_number="5123456",
        environment="simulator",
        consumer_key_enc=encrypt(SECOND_KEY),
        consumer_secret_enc=encrypt(SECOND_SECRET),
        passkey_enc=encrypt(SECOND_PASSKEY),
        query_budget_per_s=1.0,
    )
    other = User(username="cashier2", role="cashier", password_hash=_user("cashier").password_hash)
    second.cashiers.append(other)
    db.session.add_all([branch, second, other])
    db.session.commit()
    return till, second


def test_two_tills_each_with_their_own_till_url_token_and_cashiers(live_app, two_tills):
    first, second = two_tills
    sales = {}
    for name, phone in (("cashier", "0711000001"), ("cashier2", "0711000002")):
        client = live_app.test_client()
        login(client, name)
        page = BeautifulSoup(client.get("/cashier/").data, "html.parser")
        assert (first if name == "cashier" else second).name in page.select_one("#today-title").text
        payment, _ = service.initiate_payment(
            first if name == "cashier" else second,
            _user(name),
            phone=phone,
            amount="25",
            reference=None,
            idempotency_key=uuid.uuid4().hex,
        )
        sales[name] = payment.id
    sim = get_state(live_app)
    pushes = {
        p["phone"]: p for p in wait_for(lambda: len(sim.list_pushes()) == 2 and sim.list_pushes())
    }
    # Each push carries its own till's shortcode, PartyB and callback URL.
    assert pushes["254711000001"]["business_short_code"] == "174379"
    assert pushes["254711000002"]["business_short_code"] == SECOND_SHORTCODE
    assert pushes["254711000001"]["callback_url"].endswith(first.callback_token)
    assert pushes["254711000002"]["callback_url"].endswith(second.callback_token)
    for pid in sales.values():
        wait_for(
            lambda pid=pid: db.session.get(Payment, pid, populate_existing=True).status == "paid"
        )
    # The payment's move and its raw callback's link are committed one after the other.
    wait_for(
        lambda: all(
            pid is not None
            for pid in db.session.execute(sa.select(RawCallback.payment_id)).scalars().all()
        )
    )
    raws = db.session.execute(sa.select(RawCallback.till_id, RawCallback.payment_id)).all()
    assert sorted(raws) == sorted([(first.id, sales["cashier"]), (second.id, sales["cashier2"])])
    # One Daraja token per till (each till is its own Daraja app).
    tokens = dict(db.session.execute(sa.select(DarajaToken.till_id, DarajaToken.fetch_count)).all())
    assert tokens == {first.id: 1, second.id: 1}
    # A callback for one till's payment posted at the other till's URL changes nothing.
    p = db.session.get(Payment, sales["cashier"])
    cross = success_callback(p.checkout_request_id, amount=25, receipt="CROSS12345")
    r = post_json(live_app.test_client(), f"/cb/stk/{second.callback_token}", cross)
    assert r.status_code == 200
    assert db.session.get(Payment, p.id, populate_existing=True).receipt_number != "CROSS12345"


def test_each_till_has_its_own_query_budget(app, two_tills, make_payment):
    from app.jobs.poll import _take_budget

    first, second = two_tills
    a = make_payment(status="pending")
    b = make_payment(status="pending")
    db.session.execute(sa.update(Payment).where(Payment.id == b.id).values(till_id=second.id))
    db.session.commit()
    now = utcnow()
    assert _take_budget(a.id, now) and _take_budget(b.id, now)
    slots = dict(db.session.execute(sa.select(Till.id, Till.query_slot_at)).all())
    assert slots[first.id] != slots[second.id]  # two budgets, not one


def test_a_cashier_at_several_tills_picks_one_per_login(app, two_tills):
    first, second = two_tills
    cashier = _user("cashier")
    second.cashiers.append(cashier)
    db.session.commit()
    client = app.test_client()
    login(client, "cashier")
    r = client.get("/cashier/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/cashier/till")
    page = BeautifulSoup(client.get("/cashier/till").data, "html.parser")
    assert {i["value"] for i in page.select("input[name=till_id]")} == {
        str(first.id),
        str(second.id),
    }
    client.post("/cashier/till", data={"till_id": str(second.id)})
    page = BeautifulSoup(client.get("/cashier/").data, "html.parser")
    assert "Branch counter" in page.select_one("#today-title").text
    # A till the cashier may not work at cannot be picked.
    third_shop = Shop(name="Elsewhere")
    db.session.add(third_shop)
    db.session.commit()
    assert client.post("/cashier/till", data={"till_id": "999"}).status_code == 200


def test_a_cashier_without_a_till_is_told(app, till):
    till.cashiers.clear()
    db.session.commit()
    client = app.test_client()
    login(client, "cashier")
    r = client.get("/cashier/")
    assert r.status_code == 409 and b"No till is assigned to you" in r.data


def test_owners_see_all_shops_or_one(app, two_tills, owner_client, make_payment):
    first, second = two_tills
    here = make_payment(status="paid", amount=111, receipt_number="HERE123456")
    there = make_payment(status="paid", amount=222, receipt_number="THRE123456")
    db.session.execute(sa.update(Payment).where(Payment.id == there.id).values(till_id=second.id))
    db.session.commit()
    all_shops = owner_client.get("/owner/report").get_data(as_text=True)
    assert f"receipt-{here.id}" in all_shops and f"receipt-{there.id}" in all_shops
    branch = owner_client.get(f"/owner/report?shop={second.shop_id}").get_data(as_text=True)
    assert f"receipt-{there.id}" in branch and f"receipt-{here.id}" not in branch
    assert "KES 222" in BeautifulSoup(branch, "html.parser").select_one("#paid-kes").text


def test_admin_adds_a_shop_and_a_till_and_archives_it(app, admin_client):
    admin_client.post("/admin/shops", data={"name": "Westlands"})
    shop = db.session.execute(sa.select(Shop).where(Shop.name == "Westlands")).scalar_one()
    r = admin_client.post(
        "/admin/tills/new",
        data={
            "shop_id": str(shop.id), "name": "Westlands till", "till_type": "till",
            "shortcode": "600200", "till_number": "7654321", "environment": "sandbox",
            "query_budget_per_s": "1.5", "consumer_key": "k" * 20, "consumer_secret": "s" * 20,
            "passkey": "p" * 30, "cashier_ids": [str(_user("cashier").id)],
        },
    )  # fmt: skip
    assert r.status_code == 302
    new = db.session.execute(sa.select(Till).where(Till.name == "Westlands till")).scalar_one()
    assert new.shop_id == shop.id and [u.username for u in new.cashiers] == ["cashier"]
    listing = admin_client.get("/admin/tills").get_data(as_text=True)
    assert "Westlands till" in listing and "Westlands" in listing
    admin_client.post(f"/admin/tills/{new.id}/archive", data={"archive": "1"})
    db.session.refresh(new)
    assert new.archived_at is not None
    # An archived till is not offered at the counter any more.
    from app.shops import tills_for

    assert new not in tills_for(_user("cashier"))
    actions = [
        e.action
        for e in db.session.execute(sa.select(AuditEntry).order_by(AuditEntry.id)).scalars()
        if not e.action.startswith("sign_in.")
    ]
    assert actions[:3] == ["shop.created", "till.created", "till.credentials_replaced"]
    assert "till.archived" in actions


def test_test_connection_says_all_good_with_the_token_lifetime(live_app, admin_client, till):
    page = admin_client.post(f"/admin/tills/{till.id}/test").get_data(as_text=True)
    soup = BeautifulSoup(page, "html.parser")
    verdict = soup.select_one("#check-verdict")
    assert verdict["data-verdict"] == "all_good"
    assert "a token lasts 35" in verdict.text  # the simulator's 3599 s
    assert "Shortcode and passkey are right" in soup.select_one("#check-merchant").text


def test_test_connection_names_wrong_keys_and_a_wrong_passkey(live_app, admin_client, till):
    till.consumer_secret_enc = encrypt("not-the-secret")
    db.session.commit()
    soup = BeautifulSoup(admin_client.post(f"/admin/tills/{till.id}/test").data, "html.parser")
    assert soup.select_one("#check-verdict")["data-verdict"] == "wrong_credentials"
    assert "refuses this consumer key and secret" in soup.select_one("#check-verdict").text
    from app.demo import simulator_till

    good = simulator_till("x")
    till.consumer_secret_enc = good.consumer_secret_enc
    till.passkey_enc = encrypt("not-the-passkey")
    db.session.commit()
    soup = BeautifulSoup(admin_client.post(f"/admin/tills/{till.id}/test").data, "html.parser")
    assert soup.select_one("#check-verdict")["data-verdict"] == "wrong_merchant"
    assert "passkey" in soup.select_one("#check-merchant").text


def test_test_connection_recognises_the_wrong_environment(app, admin_client, till):
    """Keys of a sandbox app entered on a production till: the sandbox accepts them."""
    production = create_simulator_app({"SIMULATOR_CREDENTIALS": [("prod-key", "prod-secret")]})
    sandbox = create_simulator_app({})  # accepts the demo keys this till holds
    with serve_in_thread(production) as prod, serve_in_thread(sandbox) as sand:
        app.config["DARAJA_URLS"] = {"production": prod.base_url, "sandbox": sand.base_url}
        till.environment = "production"
        db.session.commit()
        tills.reset_clients()
        soup = BeautifulSoup(admin_client.post(f"/admin/tills/{till.id}/test").data, "html.parser")
    verdict = soup.select_one("#check-verdict")
    assert verdict["data-verdict"] == "wrong_environment"
    assert "sandbox accepts them" in verdict.text


def test_test_connection_says_when_there_is_no_network(app, admin_client, till):
    from tests.conftest import free_port

    app.config["SIMULATOR_URL"] = f"http://127.0.0.1:{free_port()}/simulator"  # nobody there
    soup = BeautifulSoup(admin_client.post(f"/admin/tills/{till.id}/test").data, "html.parser")
    assert soup.select_one("#check-verdict")["data-verdict"] == "no_network"
    assert "No answer from 127.0.0.1" in soup.select_one("#check-verdict").text


@pytest.mark.parametrize(
    ("base_url", "warning"),
    [
        ("http://pay.example.co.ke", "is not HTTPS"),
        ("https://127.0.0.1:8443", "loopback or private"),
        ("https://10.0.0.5", "loopback or private"),
        ("https://localhost", "loopback or private"),
    ],
)
def test_a_production_till_warns_about_an_unreachable_callback_url(
    app, admin_client, till, base_url, warning
):
    from tests.admin.test_admin import _form

    app.config["BASE_URL"] = base_url
    r = admin_client.post(f"/admin/tills/{till.id}", data=_form(environment="production"),
                          follow_redirects=True)  # fmt: skip
    assert warning in r.get_data(as_text=True)


def test_rotating_the_callback_token_keeps_the_old_one_for_the_grace_period(
    app, client, admin_client, till, make_payment
):
    old = till.callback_token
    p = make_payment(amount=150)
    admin_client.post(f"/admin/tills/{till.id}/rotate")
    db.session.refresh(till)
    assert till.callback_token != old and till.previous_callback_token == old
    # A push sent before the rotation carries the old URL: still accepted.
    assert (
        post_json(client, f"/cb/stk/{old}", success_callback(p.checkout_request_id)).status_code
        == 200
    )
    assert db.session.get(Payment, p.id, populate_existing=True).status == "paid"
    # After the grace period the old URL is refused; the new one works.
    till.previous_token_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert post_json(client, f"/cb/stk/{old}", success_callback("ws_CO_X")).status_code == 403
    assert (
        post_json(client, f"/cb/stk/{till.callback_token}", success_callback("ws_CO_Y")).status_code
        == 200
    )
    [entry] = [e for e in db.session.execute(sa.select(AuditEntry)).scalars()
               if e.action == "till.callback_token_rotated"]  # fmt: skip
    assert entry.target == f"till:{till.id}"


def test_callbacks_from_addresses_outside_the_allowlist_are_refused_and_counted(app, till):
    app.config["CALLBACK_ALLOWED_IPS"] = "safaricom"
    client = app.test_client()
    r = client.post(f"/cb/stk/{till.callback_token}", json=success_callback("ws_CO_A"),
                    environ_base={"REMOTE_ADDR": "203.0.113.9"})  # fmt: skip
    assert r.status_code == 403
    r = client.post(f"/cb/stk/{till.callback_token}", json=success_callback("ws_CO_B"),
                    environ_base={"REMOTE_ADDR": "196.201.214.200"})  # fmt: skip
    assert r.status_code == 200
    db.session.refresh(till)
    assert till.callbacks_refused == 1 and "203.0.113.9" in till.last_refused_why
    assert db.session.execute(sa.select(sa.func.count(RawCallback.id))).scalar_one() == 1


def test_behind_trusted_proxies_the_forwarded_address_is_the_one_checked(
    sqlite_dir, database_url, app, till
):
    from tests.conftest import make_test_app

    proxied = make_test_app(database_url, sqlite_dir, TRUSTED_PROXIES=1,
                            CALLBACK_ALLOWED_IPS="196.201.214.0/24")  # fmt: skip
    client = proxied.test_client()
    url = f"/cb/stk/{till.callback_token}"
    allowed = client.post(url, json=success_callback("ws_CO_C"),
                          headers={"X-Forwarded-For": "196.201.214.207"})  # fmt: skip
    spoofed = client.post(url, json=success_callback("ws_CO_D"),
                          headers={"X-Forwarded-For": "196.201.214.207, 198.51.100.1"})  # fmt: skip
    assert (allowed.status_code, spoofed.status_code) == (200, 403)
    with proxied.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_flood_on_one_callback_url_is_rate_limited(app, till):
    app.config["CALLBACK_RATE_PER_S"] = 2
    guard.LIMITER.reset()
    client = app.test_client()
    codes = [
        client.post(
            f"/cb/stk/{till.callback_token}", json=success_callback(f"ws_CO_F{i}")
        ).status_code
        for i in range(12)
    ]
    assert codes.count(429) >= 6 and codes[0] == 200
    db.session.refresh(till)
    assert till.callbacks_refused == codes.count(429)
    guard.LIMITER.reset()


def test_old_raw_callbacks_are_purged_after_the_retention_period(app, client, till, make_payment):
    p = make_payment(amount=150)
    post_json(client, f"/cb/stk/{till.callback_token}", success_callback(p.checkout_request_id))
    post_json(client, f"/cb/stk/{till.callback_token}", success_callback("ws_CO_NEW"))
    old, new = db.session.execute(sa.select(RawCallback).order_by(RawCallback.id)).scalars().all()
    db.session.execute(sa.update(RawCallback).where(RawCallback.id == old.id)
                       .values(received_at=utcnow() - timedelta(days=401)))  # fmt: skip
    db.session.commit()
    assert purge_callbacks() == {"deleted": 1}
    db.session.expire_all()
    assert [r.id for r in db.session.execute(sa.select(RawCallback)).scalars()] == [new.id]
    # The payment's timeline keeps its event, without the link to the deleted body.
    assert db.session.get(Payment, p.id).status == "paid"
    [event] = db.session.get(Payment, p.id).events
    assert event.raw_callback_id is None and event.data["receipt_number"]


def test_secrets_show_a_fingerprint_only(admin_client, till):
    from app.shops import fingerprint

    secret, passkey = "zq9Xw7Lm4Pk2Vb8N", "pk-6Hq2Rt8Yu1Io3Pa5"
    till.consumer_secret_enc, till.passkey_enc = encrypt(secret), encrypt(passkey)
    db.session.commit()
    page = admin_client.get(f"/admin/tills/{till.id}").get_data(as_text=True)
    assert fingerprint(secret) in page and fingerprint(passkey) in page
    for value in (secret, passkey, till.callback_token):
        # Not the value, nor its end (what "****Vb8N" style hints would leak).
        assert value[-4:] not in page and value[:4] not in page


def test_poller_answers_are_per_till_even_with_two_tills(live_app, two_tills):
    """Payments of both tills are queried with their own shortcode and passkey."""
    first, second = two_tills
    ids = []
    for t, name, phone in ((first, "cashier", "0711000003"), (second, "cashier2", "0711000004")):
        payment, _ = service.initiate_payment(
            t, _user(name), phone=phone, amount="4040", reference=None,
            idempotency_key=uuid.uuid4().hex,
        )  # fmt: skip
        ids.append(payment.id)
    sim = get_state(live_app)
    wait_for(lambda: all(p["state"] == "completed" for p in sim.list_pushes()))
    poll_payments(now=utcnow() + timedelta(seconds=60))
    assert [db.session.get(Payment, i, populate_existing=True).status for i in ids] == [
        "paid",
        "paid",
    ]
