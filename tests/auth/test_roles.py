"""Every URL checks its role: a parametrised walk over the whole URL map."""

import pytest

from app import create_app
from tests.helpers import login

# Endpoints reachable without logging in, each for a stated reason.
PUBLIC = {
    "static": "CSS and vendored htmx",
    "auth.login": "the login page itself",
    "auth.index": "redirects to login or to the user's home",
    "auth.login_code": "the second sign-in step; only after a right password in this session",
    "callbacks.stk_callback": "Safaricom; guarded by the secret token in its URL",
}
# (endpoint, url, method) → roles allowed (admin is always allowed).
ROLE_URLS = [
    ("cashier.index", "/cashier/", "GET", {"cashier"}),
    ("cashier.create_payment", "/cashier/payments", "POST", {"cashier"}),
    ("cashier.payment_row", "/cashier/payments/999/row", "GET", {"cashier"}),
    ("cashier.send", "/cashier/payments/999/send", "POST", {"cashier"}),
    ("cashier.totals", "/cashier/totals", "GET", {"cashier"}),
    ("cashier.resend", "/cashier/payments/999/resend", "POST", {"cashier"}),
    ("cashier.cancel", "/cashier/payments/999/cancel", "POST", {"cashier"}),
    ("cashier.receipt", "/cashier/payments/999/receipt", "GET", {"cashier", "owner"}),
    ("auth.set_language", "/language", "POST", {"cashier", "owner"}),
    ("owner.report", "/owner/report", "GET", {"owner"}),
    ("owner.takings_page", "/owner/takings", "GET", {"owner"}),
    ("owner.takings_csv", "/owner/takings.csv", "GET", {"owner"}),
    ("owner.payments", "/owner/payments", "GET", {"owner"}),
    ("owner.payments_csv", "/owner/payments.csv", "GET", {"owner"}),
    ("owner.orphan_money", "/owner/orphans", "GET", {"owner"}),
    ("owner.day_close", "/owner/close", "GET", {"owner"}),
    ("owner.close_the_day", "/owner/close", "POST", {"owner"}),
    ("owner.statement_page", "/owner/statements", "GET", {"owner"}),
    ("owner.upload_statement", "/owner/statements", "POST", {"owner"}),
    ("owner.attach_statement_line", "/owner/statements/lines/1/attach", "POST", {"owner"}),
    ("owner.statement_confirms_orphan", "/owner/statements/lines/1/orphan/1", "POST", {"owner"}),
    ("owner.statement_paid_outside", "/owner/statements/lines/1/outside", "POST", {"owner"}),
    ("owner.link_orphan", "/owner/orphans/1/link", "POST", set()),
    ("owner.accept_orphan", "/owner/orphans/1/accept", "POST", set()),
    ("owner.payment", "/owner/payments/1", "GET", {"owner"}),
    ("owner.resolve", "/owner/payments/1/resolve", "POST", set()),
    ("owner.add_receipt", "/owner/payments/1/receipt", "POST", set()),
    ("admin.callbacks", "/admin/callbacks", "GET", set()),
    ("admin.audit", "/admin/audit", "GET", set()),
    ("admin.audit_csv", "/admin/audit.csv", "GET", set()),
    ("admin.callback_detail", "/admin/callbacks/1", "GET", set()),
    ("admin.callback_reprocess", "/admin/callbacks/1/reprocess", "POST", set()),
    ("admin.index", "/admin/", "GET", set()),
    ("admin.till", "/admin/till", "GET", set()),
    ("admin.tills", "/admin/tills", "GET", set()),
    ("admin.new_till", "/admin/tills/new", "GET", set()),
    ("admin.edit_till", "/admin/tills/1", "GET", set()),
    ("admin.test_till", "/admin/tills/1/test", "POST", set()),
    ("admin.rotate_till_token", "/admin/tills/1/rotate", "POST", set()),
    ("admin.archive_till", "/admin/tills/1/archive", "POST", set()),
    ("admin.add_shop", "/admin/shops", "POST", set()),
    ("admin.rename_shop", "/admin/shops/1", "POST", set()),
    ("cashier.choose_till", "/cashier/till", "GET", {"cashier"}),
    ("admin.users", "/admin/users", "GET", set()),
    ("admin.edit_user", "/admin/users/1", "POST", set()),
    ("admin.unlock_user", "/admin/users/1/unlock", "POST", set()),
    ("admin.reset_two_factor", "/admin/users/1/two-factor/reset", "POST", set()),
    ("admin.two_factor_policy", "/admin/users/two-factor", "POST", set()),
    ("auth.change_password", "/account/password", "GET", {"cashier", "owner"}),
    ("auth.two_factor", "/account/two-factor", "GET", {"owner"}),
    ("auth.logout", "/logout", "POST", {"cashier", "owner"}),
]


def _app_endpoints(app):
    return {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if not rule.endpoint.startswith("simulator.")  # demo-only fake Daraja, tested apart
    }


def test_every_endpoint_is_classified():
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "x",
            "ENCRYPTION_KEY": "",
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "SIMULATOR_ENABLED": True,
        }
    )
    listed = set(PUBLIC) | {e for e, *_ in ROLE_URLS}
    assert _app_endpoints(app) == listed


def test_every_protected_view_declares_roles(app):
    for endpoint, *_ in ROLE_URLS:
        if endpoint == "auth.logout":
            continue  # any logged-in user may log out
        view = app.view_functions[endpoint]
        assert hasattr(view, "required_roles"), endpoint


@pytest.mark.parametrize(("endpoint", "url", "method", "allowed"), ROLE_URLS)
def test_anonymous_is_sent_to_login(client, endpoint, url, method, allowed):
    response = client.open(url, method=method)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize("role", ["cashier", "owner", "admin"])
@pytest.mark.parametrize(("endpoint", "url", "method", "allowed"), ROLE_URLS)
def test_role_per_url(app, role, endpoint, url, method, allowed):
    client = app.test_client()
    login(client, role)
    response = client.open(url, method=method, data={})
    if role == "admin" or role in allowed:
        assert response.status_code != 403, (role, url)
    else:
        assert response.status_code == 403, (role, url)
