"""Configuration from the environment."""

from app.config import from_env


def test_defaults():
    cfg = from_env({})
    assert cfg["BASE_URL"] == "http://127.0.0.1:5000"
    assert cfg["MAX_AMOUNT"] == 250_000 and cfg["GIVE_UP_AFTER"] == 180
    assert cfg["DEMO"] is False and cfg["SIMULATOR_ENABLED"] is False


def test_port_and_demo():
    cfg = from_env({"PORT": "8001", "PESADESK_DEMO": "1"})
    assert cfg["BASE_URL"] == "http://127.0.0.1:8001"
    assert cfg["SIMULATOR_ENABLED"] is True
    assert cfg["SIMULATOR_URL"] == "http://127.0.0.1:8001/simulator"


def test_any_simulator_setting_passes_through():
    cfg = from_env(
        {
            "PESADESK_SIMULATOR_SPIKE_ARREST_RPS": "5",
            "PESADESK_SIMULATOR_PINS": '{"254708374149": "9999"}',
            "PESADESK_SIMULATOR_SPIKE_ARREST_SCOPE": "global",
            "PESADESK_SIMULATOR_CALLBACK_DELAY": "0.5",
        }
    )
    assert cfg["SIMULATOR_SPIKE_ARREST_RPS"] == 5
    assert cfg["SIMULATOR_PINS"] == {"254708374149": "9999"}
    assert cfg["SIMULATOR_SPIKE_ARREST_SCOPE"] == "global"
    assert cfg["SIMULATOR_CALLBACK_DELAY"] == 0.5
