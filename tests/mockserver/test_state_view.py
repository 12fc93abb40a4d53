"""GET /__admin/state: clock, each account's trading state, fault rules; never a secret."""

from __future__ import annotations

from tests.mockserver.conftest import FROZEN_MS

FAULT = {
    "match": {"method": "POST", "path": "/dapi/v1/leverage"},
    "action": {"type": "drop"},
    "times": 1,
}


def state(client) -> dict:
    response = client.admin("GET", "/state")
    assert response.status_code == 200
    return response.get_json()


def test_state_of_a_fresh_mock_has_every_key_and_nothing_changed(client):
    view = state(client)
    assert list(view) == ["clock", "accounts", "faults"]
    assert view["clock"] == {
        "now_ms": FROZEN_MS,
        "offset_ms": 0,
        "frozen": True,
        "frozen_at_ms": FROZEN_MS,
    }
    [demo] = view["accounts"]
    assert list(demo) == [
        "api_key",
        "type",
        "dual_side_position",
        "max_leverage",
        "max_leverage_rule",
        "balances",
        "symbols",
        "positions",
    ]
    assert (demo["api_key"], demo["type"], demo["dual_side_position"]) == (
        "dapimockdemokey",
        "hmac",
        False,
    )
    assert (demo["max_leverage"], demo["max_leverage_rule"]) == (None, None)
    assert (demo["symbols"], demo["positions"]) == ({}, [])
    assert view["faults"] == []


def test_state_shows_changed_leverage_positions_and_fault_rules(client):
    client.change_leverage("BTCUSD_PERP", 50)
    client.admin(
        "POST",
        "/positions",
        {"api_key": "dapimockdemokey", "symbol": "ETHUSD_PERP", "positionAmt": "-7"},
    )
    client.admin("POST", "/faults", FAULT)
    view = state(client)
    [demo] = view["accounts"]
    assert demo["symbols"] == {"BTCUSD_PERP": {"leverage": 50, "marginType": "CROSSED"}}
    assert demo["positions"] == [
        {"symbol": "ETHUSD_PERP", "positionSide": "BOTH", "positionAmt": "-7", "markPrice": "3500"}
    ]
    assert view["faults"] == client.admin("GET", "/faults").get_json()["faults"]


def test_state_never_shows_a_secret(client):
    client.admin("POST", "/accounts", {"api_key": "other", "secret": "topsecretvalue"})
    text = client.admin("GET", "/state").get_data(as_text=True)
    assert "topsecretvalue" not in text
    assert "dapimockdemosecret" not in text
    assert [a["api_key"] for a in state(client)["accounts"]] == ["dapimockdemokey", "other"]


def test_state_needs_the_admin_token_when_one_is_set(make_client):
    client = make_client(admin_token="tok")
    assert client.admin("GET", "/state").status_code == 401
    assert client.admin("GET", "/state", **{"X-Admin-Token": "tok"}).status_code == 200
