"""The owner's and the admin's pages follow a user who chose Kiswahili, like the counter does."""

from __future__ import annotations

import sqlalchemy as sa
from bs4 import BeautifulSoup

from app.extensions import db
from app.models import Till

ENGLISH_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _soup(response) -> BeautifulSoup:
    assert response.status_code == 200, response.status_code
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def _in_swahili(client) -> None:
    assert client.post("/language", data={"language": "sw"}).status_code == 302


def test_the_owner_report_in_swahili(owner_client):
    _in_swahili(owner_client)
    soup = _soup(owner_client.get("/owner/report"))
    assert soup.html["lang"] == "sw"
    heading = soup.find("h1").get_text()
    assert heading.startswith("Mapato ya ")
    assert not any(day in heading for day in ENGLISH_DAYS)  # the date is Swahili too
    assert soup.find(id="paid-count").find_previous("dt").get_text() == "Imelipwa"
    assert soup.find(id="empty-day").get_text() == "Hakuna malipo siku hii."
    assert soup.find("label", attrs={"for": "date"}).get_text() == "Siku"


def test_an_owner_payment_page_in_swahili(owner_client, make_payment):
    _in_swahili(owner_client)
    p = make_payment("paid", amount=200)  # paid, receipt still pending
    soup = _soup(owner_client.get(f"/owner/payments/{p.id}"))
    assert soup.html["lang"] == "sw"
    assert soup.find("h1").get_text().startswith(f"Malipo {p.id} ")
    assert soup.select_one("#flags .flag").get_text() == "risiti inasubiriwa"
    assert [dt.get_text() for dt in soup.select("dl.facts dt")][:3] == ["Kiasi", "Simu", "Risiti"]
    assert soup.find("h2").get_text() == "Kilichotokea"


def test_the_admin_users_page_in_swahili(admin_client):
    _in_swahili(admin_client)
    soup = _soup(admin_client.get("/admin/users"))
    assert soup.html["lang"] == "sw"
    assert soup.find("h1").get_text() == "Watumiaji"
    assert soup.find("label", attrs={"for": "role"}).get_text() == "Jukumu"
    roles = [o.get_text() for o in soup.find(id="role").find_all("option")]
    assert roles == ["Keshia", "Mwenye duka", "Msimamizi"]
    assert "Ongeza mtumiaji" in [b.get_text() for b in soup.find_all("button")]


def test_the_admin_till_pages_in_swahili(admin_client):
    _in_swahili(admin_client)
    soup = _soup(admin_client.get("/admin/tills"))
    assert soup.html["lang"] == "sw"
    assert soup.find("h1").get_text() == "Maduka na till"
    till_id = db.session.execute(sa.select(Till.id)).scalar_one()
    soup = _soup(admin_client.get(f"/admin/tills/{till_id}"))
    assert soup.html["lang"] == "sw"
    assert soup.find("label", attrs={"for": "name"}).get_text() == "Jina la till"
    assert soup.select_one("#till-form button[type=submit]").get_text() == "Hifadhi till"
    response = admin_client.post("/admin/shops", data={"name": "Duka la Pili"})
    flash = _soup(admin_client.get(response.headers["Location"])).select_one(".flash")
    assert flash.get_text() == "Duka limeongezwa."


def test_the_admin_callbacks_and_audit_pages_in_swahili(admin_client):
    _in_swahili(admin_client)
    for path, heading in (
        ("/admin/callbacks", "Kikasha cha arifa"),
        ("/admin/audit", "Daftari la ukaguzi"),
    ):
        soup = _soup(admin_client.get(path))
        assert soup.html["lang"] == "sw", path
        assert soup.find("h1").get_text() == heading
