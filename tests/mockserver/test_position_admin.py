"""Arranging position configuration without a signed call: /__admin routes, [[accounts]]
settings, reset, and the state view (docs/behaviour.md#control-plane, #settings)."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mockserver.app import create_app
from mockserver.config import AccountConfig, ConfigError, load
from mockserver.state import SetupError
from tests.mockserver.conftest import FROZEN_MS, error_of, signed

DEMO = "dapimockdemokey"


def admin(client, path: str, body: Any):
    return client.admin("POST", path, body)


def ok(client, path: str, body: Any) -> None:
    response = admin(client, path, body)
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"}), response.json


def refused(client, path: str, body: Any) -> str:
    response = admin(client, path, body)
    assert response.status_code == 400, response.json
    assert list(response.get_json()) == ["error"]
    return str(response.get_json()["error"])


def demo_state(client) -> dict[str, Any]:
    accounts = client.admin("GET", "/state").get_json()["accounts"]
    return next(a for a in accounts if a["api_key"] == DEMO)


def get(client, path: str, secret: str = "dapimockdemosecret", api_key: str = DEMO):
    return client.get(path, signed({"timestamp": FROZEN_MS}, secret), api_key=api_key)


# -- POST /__admin/balances -------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "1000000000", "0.00000001", "12.5", "3"])
def test_balances_take_decimals_from_0_to_1e9_with_8_decimals(client, value):
    ok(client, "/balances", {"api_key": DEMO, "asset": "BTC", "walletBalance": value})
    expected = format(float(value), ".8f") if value != "0.00000001" else "0.00000001"
    assert demo_state(client)["balances"]["BTC"] == {
        "walletBalance": expected,
        "updateTime": FROZEN_MS,
    }


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"asset": "BTC", "walletBalance": "-1"}, "from 0 to 1000000000"),
        ({"asset": "BTC", "walletBalance": "1000000000.00000001"}, "from 0 to 1000000000"),
        ({"asset": "BTC", "walletBalance": "1e10"}, "from 0 to 1000000000"),
        ({"asset": "BTC", "walletBalance": "0.123456789"}, "8 decimals"),
        ({"asset": "BTC", "walletBalance": "1e-9"}, "8 decimals"),
        ({"asset": "BTC", "walletBalance": "NaN"}, "decimal string"),
        ({"asset": "BTC", "walletBalance": "Infinity"}, "decimal string"),
        ({"asset": "BTC", "walletBalance": "abc"}, "decimal string"),
        ({"asset": "BTC", "walletBalance": 1.5}, "decimal string"),
        ({"asset": "BTC", "walletBalance": 3}, "decimal string"),
        ({"asset": "BTC", "walletBalance": True}, "decimal string"),
        ({"asset": "BTC", "walletBalance": None}, "decimal string"),
        ({"asset": "BTC"}, "decimal string"),
        ({"asset": "USDT", "walletBalance": "1"}, "not a margin asset"),
        ({"asset": "btc", "walletBalance": "1"}, "not a margin asset"),
        ({"asset": 5, "walletBalance": "1"}, "asset must be a string"),
        ({"asset": "BTC", "walletBalance": "1", "extra": 1}, "unknown key"),
    ],
)
def test_bad_balances_are_400_and_change_nothing(client, body, why):
    before = demo_state(client)["balances"]
    assert why in refused(client, "/balances", {"api_key": DEMO, **body})
    assert demo_state(client)["balances"] == before


def test_a_balance_for_an_unknown_account_is_400(client):
    body = {"api_key": "nosuchkey", "asset": "BTC", "walletBalance": "1"}
    assert "existing account" in refused(client, "/balances", body)


# -- POST /__admin/position_mode and /__admin/margin_type ----------------------------------


def test_position_mode_is_set_without_the_no_change_rule(client):
    ok(client, "/position_mode", {"api_key": DEMO, "dualSidePosition": False})
    ok(client, "/position_mode", {"api_key": DEMO, "dualSidePosition": True})
    ok(client, "/position_mode", {"api_key": DEMO, "dualSidePosition": True})
    assert demo_state(client)["dual_side_position"] is True
    assert get(client, "/dapi/v1/positionSide/dual").get_json() == {"dualSidePosition": True}


def test_position_mode_refuses_a_change_that_would_strand_a_position(client):
    ok(client, "/positions", {"api_key": DEMO, "symbol": "BTCUSD_PERP", "positionAmt": "3"})
    why = refused(client, "/position_mode", {"api_key": DEMO, "dualSidePosition": True})
    assert "open positions" in why
    ok(client, "/position_mode", {"api_key": DEMO, "dualSidePosition": False})


@pytest.mark.parametrize(
    "body",
    [
        {"api_key": DEMO, "dualSidePosition": "true"},
        {"api_key": DEMO, "dualSidePosition": 1},
        {"api_key": DEMO},
        {"api_key": "nosuchkey", "dualSidePosition": True},
        {"dualSidePosition": True},
        ["not", "an", "object"],
    ],
)
def test_bad_position_mode_bodies_are_400(client, body):
    refused(client, "/position_mode", body)


def test_margin_type_is_set_without_the_trading_rules(client):
    ok(client, "/positions", {"api_key": DEMO, "symbol": "BTCUSD_PERP", "positionAmt": "3"})
    body = {"api_key": DEMO, "symbol": "BTCUSD_PERP", "marginType": "ISOLATED"}
    ok(client, "/margin_type", body)  # an open position does not stop it (no -4048)
    ok(client, "/margin_type", body)  # nor does the same value (no -4046)
    assert demo_state(client)["symbols"] == {
        "BTCUSD_PERP": {"leverage": 20, "marginType": "ISOLATED"}
    }
    ok(client, "/margin_type", {**body, "marginType": "CROSSED"})
    assert demo_state(client)["symbols"] == {}


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"symbol": "BTCUSD_PERP", "marginType": "isolated"}, "ISOLATED or CROSSED"),
        ({"symbol": "BTCUSD_PERP", "marginType": ["ISOLATED"]}, "ISOLATED or CROSSED"),
        ({"symbol": "BTCUSD_PERP"}, "ISOLATED or CROSSED"),
        ({"symbol": "XRPUSD_PERP", "marginType": "ISOLATED"}, "not listed"),
        ({"symbol": 7, "marginType": "ISOLATED"}, "symbol must be a string"),
    ],
)
def test_bad_margin_type_bodies_are_400(client, body, why):
    assert why in refused(client, "/margin_type", {"api_key": DEMO, **body})


# -- POST /__admin/positions: sides and margin type ------------------------------------------


def seed_body(amount: str, side: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"api_key": DEMO, "symbol": "BTCUSD_PERP", "positionAmt": amount, **extra}
    return body if side is None else {**body, "positionSide": side}


@pytest.mark.parametrize(
    ("hedge", "body", "why"),
    [
        (False, seed_body("1", "LONG"), "needs hedge mode"),
        (False, seed_body("-1", "SHORT"), "needs hedge mode"),
        (True, seed_body("1"), "hedge mode: seed LONG or SHORT"),
        (True, seed_body("1", "BOTH"), "hedge mode: seed LONG or SHORT"),
        (True, seed_body("-1", "LONG"), "LONG positionAmt must be >= 0"),
        (True, seed_body("1", "SHORT"), "SHORT positionAmt must be <= 0"),
        (True, seed_body("1", "long"), "positionSide must be one of"),
        (True, seed_body("1", None, marginType="ISOLATED"), "cross or isolated"),
    ],
)
def test_a_side_that_does_not_suit_the_mode_or_sign_is_400(client, hedge, body, why):
    ok(client, "/position_mode", {"api_key": DEMO, "dualSidePosition": hedge})
    assert why in refused(client, "/positions", body)
    assert demo_state(client)["positions"] == []


def test_seeding_zero_closes_the_position(client):
    ok(client, "/positions", seed_body("5"))
    ok(client, "/positions", seed_body("0"))
    assert demo_state(client)["positions"] == []
    row = next(r for r in get(client, "/dapi/v1/positionRisk").json if r["symbol"] == "BTCUSD_PERP")
    assert (row["positionAmt"], row["entryPrice"], row["updateTime"]) == ("0", "0.00000000", 0)


def test_a_margin_type_on_a_seed_sets_it_and_its_absence_leaves_it(client):
    ok(client, "/positions", seed_body("5", marginType="isolated"))
    assert demo_state(client)["symbols"]["BTCUSD_PERP"]["marginType"] == "ISOLATED"
    ok(client, "/positions", seed_body("6"))
    assert demo_state(client)["symbols"]["BTCUSD_PERP"]["marginType"] == "ISOLATED"
    ok(client, "/positions", seed_body("7", marginType="cross"))
    assert demo_state(client)["symbols"] == {}


# -- POST /__admin/accounts: settings ---------------------------------------------------------


def test_an_added_account_takes_balances_cap_and_mode(client):
    ok_body = {
        "api_key": "bot",
        "secret": "botsecret",
        "balances": {"BTC": "1.5", "ETH": "0"},
        "max_leverage": 15,
        "dual_side_position": True,
    }
    response = admin(client, "/accounts", ok_body)
    assert response.get_json() == {"api_key": "bot", "type": "hmac"}
    bot = next(a for a in client.admin("GET", "/state").json["accounts"] if a["api_key"] == "bot")
    assert (bot["max_leverage"], bot["max_leverage_rule"], bot["dual_side_position"]) == (
        15,
        "country",
        True,
    )
    assert bot["balances"] == {
        "BTC": {"walletBalance": "1.50000000", "updateTime": FROZEN_MS},
        "ETH": {"walletBalance": "0.00000000", "updateTime": FROZEN_MS},
    }
    assets = get(client, "/dapi/v1/account", "botsecret", "bot").json["assets"]
    assert [(a["walletBalance"], a["updateTime"]) for a in assets] == [
        ("1.50000000", FROZEN_MS),
        ("0.00000000", FROZEN_MS),
    ]


def test_replacing_an_account_keeps_its_state_and_what_is_not_given(client):
    client.change_leverage("BTCUSD_PERP", 50)
    ok(client, "/position_mode", {"api_key": DEMO, "dualSidePosition": True})
    ok(client, "/positions", seed_body("2", "LONG"))
    body = {"api_key": DEMO, "secret": "newsecret", "max_leverage_rule": "kyc"}
    assert admin(client, "/accounts", body).status_code == 200
    state = demo_state(client)
    assert state["dual_side_position"] is True
    assert state["symbols"] == {"BTCUSD_PERP": {"leverage": 50, "marginType": "CROSSED"}}
    assert len(state["positions"]) == 1
    assert (state["max_leverage"], state["max_leverage_rule"]) == (20, "kyc")
    assert set(state["balances"]) == {"BTC", "ETH"}  # not given: kept
    body = {"api_key": DEMO, "secret": "newsecret", "balances": {"ETH": "2"}}
    assert admin(client, "/accounts", body).status_code == 200
    assert set(demo_state(client)["balances"]) == {"ETH"}  # given: replaced whole
    body = {"api_key": DEMO, "secret": "newsecret", "max_leverage": None}
    assert admin(client, "/accounts", body).status_code == 200
    assert demo_state(client)["max_leverage"] is None


def test_replacing_an_account_may_not_strand_its_positions(client):
    ok(client, "/positions", seed_body("2"))
    body = {"api_key": DEMO, "secret": "x", "dual_side_position": True}
    assert "open positions" in refused(client, "/accounts", body)


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({"max_leverage": 126}, "1 to 125"),
        ({"max_leverage": 0}, "1 to 125"),
        ({"max_leverage": "20"}, "whole number"),
        ({"max_leverage": 20.0}, "whole number"),
        ({"max_leverage": True}, "whole number"),
        ({"max_leverage_rule": "country"}, "needs max_leverage"),
        ({"max_leverage_rule": "kyc", "max_leverage": 50}, "caps leverage at 20"),
        ({"max_leverage_rule": "new_account", "max_leverage": 10}, "caps leverage at 20"),
        ({"max_leverage_rule": "moon"}, "max_leverage_rule must be one of"),
        ({"balances": ["BTC", "1"]}, "balances must be an object"),
        ({"balances": {"BTC": "-1"}}, "from 0 to 1000000000"),
        ({"balances": {"DOGE": "1"}}, "not a margin asset"),
        ({"dual_side_position": "true"}, "true or false"),
    ],
)
def test_bad_account_settings_are_400_and_add_nothing(client, extra, why):
    body = {"api_key": "bot", "secret": "botsecret", **extra}
    assert why in refused(client, "/accounts", body)
    assert [a["api_key"] for a in client.admin("GET", "/accounts").json["accounts"]] == [DEMO]


def test_a_deleted_account_added_again_starts_fresh(client):
    ok(client, "/margin_type", {"api_key": DEMO, "symbol": "BTCUSD_PERP", "marginType": "ISOLATED"})
    client.admin("DELETE", f"/accounts/{DEMO}")
    admin(client, "/accounts", {"api_key": DEMO, "secret": "dapimockdemosecret"})
    state = demo_state(client)
    assert (state["symbols"], state["balances"]) == ({}, {})


# -- config and reset ----------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_accounts_settings_come_from_the_config_file(tmp_path):
    path = write(
        tmp_path,
        '[[accounts]]\napi_key = "bot"\nsecret = "s"\nbalances = {BTC = "1.5", ETH = "2"}\n'
        'dual_side_position = true\nmax_leverage = 20\nmax_leverage_rule = "position_limit"\n',
    )
    assert load(path, env={}).accounts == (
        AccountConfig(
            "bot",
            "s",
            balances=(("BTC", Decimal("1.5")), ("ETH", Decimal(2))),
            dual_side_position=True,
            max_leverage=20,
            max_leverage_rule="position_limit",
        ),
    )


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        ("balances = {BTC = 1.5}", "balances.BTC must be a decimal string"),
        ('balances = {BTC = "-1"}', "from 0 to 1000000000"),
        ('balances = {BTC = "0.000000001"}', "8 decimals"),
        ('balances = "1.5"', "'balances' must be a table"),
        ("dual_side_position = 1", "'dual_side_position' must be true or false"),
        ("max_leverage = 200", "1 to 125"),
        ('max_leverage = "20"', "whole number"),
        ('max_leverage_rule = "country"', "needs max_leverage"),
        ('max_leverage_rule = "kyc"\nmax_leverage = 25', "caps leverage at 20"),
        ('max_leverage_rule = "vip"', "max_leverage_rule must be one of"),
    ],
)
def test_bad_account_settings_stop_start_up_with_a_clear_error(tmp_path, lines, why):
    path = write(tmp_path, f'[[accounts]]\napi_key = "bot"\nsecret = "s"\n{lines}\n')
    with pytest.raises(ConfigError, match="accounts\\[0\\]") as caught:
        load(path, env={})
    assert why in str(caught.value)


def test_a_balance_in_an_asset_no_symbol_is_margined_in_stops_start_up(tmp_path):
    path = write(tmp_path, '[[accounts]]\napi_key = "bot"\nsecret = "s"\nbalances = {XRP = "1"}\n')
    with pytest.raises(SetupError, match="'XRP' is not a margin asset"):
        create_app(load(path, env={}))


def test_the_demo_account_starts_with_btc_1_and_eth_10(client):
    balances = demo_state(client)["balances"]
    assert [(a, b["walletBalance"]) for a, b in balances.items()] == [
        ("BTC", "1.00000000"),
        ("ETH", "10.00000000"),
    ]


def test_reset_restores_the_configured_mode_cap_and_balances_set_at_reset_time(make_client):
    config = AccountConfig(
        "bot",
        "botsecret",
        balances=(("BTC", Decimal("2")),),
        dual_side_position=True,
        max_leverage=10,
        max_leverage_rule="country",
    )
    client = make_client(accounts=(config,))
    ok(client, "/position_mode", {"api_key": "bot", "dualSidePosition": False})
    ok(client, "/balances", {"api_key": "bot", "asset": "BTC", "walletBalance": "9"})
    ok(client, "/balances", {"api_key": "bot", "asset": "ETH", "walletBalance": "9"})
    ok(client, "/margin_type", {"api_key": DEMO, "symbol": "ETHUSD_PERP", "marginType": "ISOLATED"})
    admin(client, "/accounts", {"api_key": "bot", "secret": "botsecret", "max_leverage": None})
    before = time.time_ns() // 1_000_000
    client.admin("POST", "/reset")
    after = time.time_ns() // 1_000_000
    accounts = {a["api_key"]: a for a in client.admin("GET", "/state").json["accounts"]}
    bot = accounts["bot"]
    assert (bot["dual_side_position"], bot["max_leverage"], bot["max_leverage_rule"]) == (
        True,
        10,
        "country",
    )
    assert list(bot["balances"]) == ["BTC"]
    assert bot["balances"]["BTC"]["walletBalance"] == "2.00000000"
    assert before <= bot["balances"]["BTC"]["updateTime"] <= after
    assert accounts[DEMO]["symbols"] == {}


# -- GET /__admin/state ---------------------------------------------------------------------


def test_state_lists_symbols_only_where_leverage_or_margin_type_differs_from_the_start(
    make_client,
):
    client = make_client(
        accounts=(AccountConfig("capped", "cs", max_leverage=10, max_leverage_rule="country"),)
    )
    query = signed({"symbol": "BTCUSD_PERP", "leverage": 10, "timestamp": FROZEN_MS}, "cs")
    assert client.post("/dapi/v1/leverage", query, api_key="capped").status_code == 200
    client.change_leverage("ETHUSD_PERP", 20)  # the start value again: not a difference
    accounts = {a["api_key"]: a for a in client.admin("GET", "/state").json["accounts"]}
    assert accounts["capped"]["symbols"] == {}  # 10 is that account's start
    assert accounts[DEMO]["symbols"] == {}
    query = signed({"symbol": "BTCUSD_PERP", "leverage": 3, "timestamp": FROZEN_MS}, "cs")
    client.post("/dapi/v1/leverage", query, api_key="capped")
    accounts = {a["api_key"]: a for a in client.admin("GET", "/state").json["accounts"]}
    assert accounts["capped"]["symbols"] == {
        "BTCUSD_PERP": {"leverage": 3, "marginType": "CROSSED"}
    }


def test_state_shows_positions_of_every_side(client):
    ok(client, "/position_mode", {"api_key": DEMO, "dualSidePosition": True})
    ok(client, "/positions", seed_body("2", "LONG"))
    ok(client, "/positions", seed_body("-3", "SHORT", markPrice="95000.5"))
    assert demo_state(client)["positions"] == [
        {
            "symbol": "BTCUSD_PERP",
            "positionSide": "LONG",
            "positionAmt": "2",
            "markPrice": "100000",
        },
        {
            "symbol": "BTCUSD_PERP",
            "positionSide": "SHORT",
            "positionAmt": "-3",
            "markPrice": "95000.5",
        },
    ]


def test_unsigned_error_bodies_still_have_the_binance_form(client):
    response = client.post("/dapi/v1/positionSide/dual", api_key="nosuchkey")
    assert error_of(response) == (401, -2015, "Invalid API-key, IP, or permissions for action")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/position_mode", {"api_key": DEMO, "dualSidePosition": True}),
        (
            "/accounts",
            {"api_key": DEMO, "secret": "dapimockdemosecret", "dual_side_position": True},
        ),
    ],
)
def test_a_delivered_symbols_position_does_not_block_a_mode_change(client, path, body):
    """docs/behaviour.md#quarterly-delivery: a delivered symbol's positions go with it, also
    when the control plane is the first to ask after the delivery."""
    listing = client.exchange.market.listing(FROZEN_MS)
    quarterly = min(listing.symbols.values(), key=lambda s: s.delivery_date)
    ok(client, "/positions", {"api_key": DEMO, "symbol": quarterly.name, "positionAmt": "3"})
    client.exchange.clock.freeze_at(quarterly.delivery_date + 1)

    response = admin(client, path, body)

    assert response.status_code == 200, response.get_json()
    state = demo_state(client)
    assert (state["dual_side_position"], state["positions"]) == (True, [])
