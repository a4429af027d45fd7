"""Today's search reads ASCII digits only: "١٥٠" or "１５０" is not the amount 150."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import select

from app.cashier.today import search_clause
from app.extensions import db
from app.models import Payment

NON_ASCII_QUERIES = [
    "\u0661\u0665\u0660",  # Arabic-Indic ١٥٠
    "\uff11\uff15\uff10",  # fullwidth １５０
    "\U0001d7cf\U0001d7d3\U0001d7ce",  # mathematical bold 𝟏𝟓𝟎
    "KES \u0661\u0665\u0660",
    "1\u06650",  # ASCII 1 and 0 around an Extended Arabic-Indic 5
    "\u0660\u0667\u0660\u0668\u0663\u0667\u0664\u0661\u0664\u0669",  # ٠٧٠٨٣٧٤١٤٩
    "0708 374 \uff11\uff14\uff19",  # the phone's last digits in fullwidth
    "\u0661\u0664\u0669",  # ١٤٩: the masked phone's tail
]


@pytest.fixture
def sales(make_payment) -> dict[str, Payment]:
    return {
        "150": make_payment("paid", amount=150, receipt_number="UAB1CD2EF3"),
        "1500": make_payment("paid", amount=1500, phone="254711222333"),
        "airtel": make_payment("pending", amount=40, phone="254733444555"),
    }


def _ids(q: str) -> list[int]:
    clause = search_clause(q)
    query = select(Payment.id).order_by(Payment.id)
    if clause is not None:
        query = query.where(clause)
    return list(db.session.execute(query).scalars())


def test_ascii_150_finds_the_kes_150_sale(sales):
    assert _ids("150") == [sales["150"].id]
    assert _ids("KES 150") == [sales["150"].id]


@pytest.mark.parametrize("q", NON_ASCII_QUERIES)
def test_non_ascii_digits_find_nothing(sales, q):
    assert q.strip() != q.strip().encode("ascii", "ignore").decode()  # really non-ASCII
    assert _ids(q) == []


def test_a_whole_number_on_another_network_is_still_found(sales):
    # Searching sends nothing, so a sale to a ported Airtel number must stay findable.
    assert _ids("0733 444 555") == [sales["airtel"].id]
    assert _ids("+254733444555") == [sales["airtel"].id]


def _row_ids(response) -> list[str]:
    soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    return [li["id"] for li in soup.select("#payment-rows li.row")]


def test_the_cashier_page_agrees(cashier_client, sales):
    found = _row_ids(cashier_client.get("/cashier/", query_string={"q": "150"}))
    assert found == [f"payment-{sales['150'].id}"]
    for q in ("\u0661\u0665\u0660", "\uff11\uff15\uff10"):
        response = cashier_client.get("/cashier/", query_string={"q": q})
        assert response.status_code == 200
        assert _row_ids(response) == []
