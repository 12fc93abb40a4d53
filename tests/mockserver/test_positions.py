"""Seeded positions: /__admin/positions, positionRisk rows
(docs/behaviour.md#position-risk), -2027 and -4150."""

from __future__ import annotations

from typing import Any

import pytest

from mockserver.config import AccountConfig
from tests.helpers import FROZEN_MS, signed
from tests.mockserver.conftest import error_of

EXCEEDS = (400, -2027, "Exceeded the maximum allowable position at current leverage.")
ISOLATED = (
    400,
    -4150,
    "Leverage reduction is not supported in Isolated Margin Mode with open positions.",
)


def seed(client, symbol: str, amount: str, margin_type: str = "cross", **extra: Any):
    body = {"api_key": "dapimockdemokey", "symbol": symbol, "positionAmt": amount}
    body.update(marginType=margin_type, **extra)
    return client.admin("POST", "/positions", body)


def seeded(client, symbol: str, amount: str, margin_type: str = "cross", **extra: Any) -> None:
    response = seed(client, symbol, amount, margin_type, **extra)
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def position_rows(client, query: dict[str, Any] | None = None, **kwargs: Any) -> list[dict]:
    response = client.get(
        "/dapi/v1/positionRisk", signed({**(query or {}), "timestamp": FROZEN_MS}), **kwargs
    )
    assert response.status_code == 200
    return response.get_json()


def row_of(client, symbol: str) -> dict[str, Any]:
    return next(r for r in position_rows(client) if r["symbol"] == symbol)


# -- positionRisk ------------------------------------------------------------------------


def test_a_seeded_position_shows_in_position_risk(client):
    client.change_leverage("BTCUSD_PERP", 10)
    client.exchange.clock.advance(1000)
    seeded(client, "BTCUSD_PERP", "30000")
    assert list(row_of(client, "BTCUSD_PERP").items()) == [
        ("symbol", "BTCUSD_PERP"),
        ("positionAmt", "30000"),
        ("entryPrice", "100000.00000000"),
        ("markPrice", "100000.00000000"),
        ("unRealizedProfit", "0.00000000"),
        ("liquidationPrice", "0"),
        ("leverage", "10"),
        ("maxQty", "400"),
        ("marginType", "cross"),
        ("isolatedMargin", "0.00000000"),
        ("isAutoAddMargin", "false"),
        ("positionSide", "BOTH"),
        ("notionalValue", "30.00000000"),  # 30000 contracts x 100 USD / 100000 USD per BTC
        ("isolatedWallet", "0"),
        ("updateTime", FROZEN_MS + 1000),
        ("breakEvenPrice", "100000.00000000"),
    ]


def test_entry_and_mark_price_are_the_seeds_mark_price(client):
    seeded(client, "ETHUSD_PERP", "-7", "isolated", markPrice="3200.5")
    row = row_of(client, "ETHUSD_PERP")
    assert row["entryPrice"] == row["markPrice"] == row["breakEvenPrice"] == "3200.50000000"
    assert row["positionAmt"] == "-7"
    assert row["marginType"] == "isolated"
    # -7 x 10 / 3200.5 = -0.02187158..., in coin, negative for a short
    assert row["notionalValue"] == "-0.02187158"


def test_the_default_mark_price_is_the_symbols(client):
    seeded(client, "ETHUSD_PERP", "350")
    row = row_of(client, "ETHUSD_PERP")
    assert (row["markPrice"], row["notionalValue"]) == ("3500.00000000", "1.00000000")


def test_symbols_without_a_position_report_zero(client):
    seeded(client, "BTCUSD_PERP", "5")
    for row in position_rows(client):
        if row["symbol"] != "BTCUSD_PERP":
            assert (row["positionAmt"], row["notionalValue"], row["marginType"]) == (
                "0",
                "0",
                "cross",
            )


def test_a_position_belongs_to_its_account(make_client):
    client = make_client(accounts=(AccountConfig("other", "othersecret"),))
    seeded(client, "BTCUSD_PERP", "5")
    query = signed({"timestamp": FROZEN_MS}, "othersecret")
    rows = client.get("/dapi/v1/positionRisk", query, api_key="other").get_json()
    assert next(r for r in rows if r["symbol"] == "BTCUSD_PERP")["positionAmt"] == "0"


def test_seeding_again_replaces_the_position(client):
    seeded(client, "BTCUSD_PERP", "5", "isolated")
    seeded(client, "BTCUSD_PERP", "8", "cross")
    row = row_of(client, "BTCUSD_PERP")
    assert (row["positionAmt"], row["marginType"]) == ("8", "cross")


def test_position_risk_filters_by_pair(client):
    seeded(client, "ETHUSD_PERP", "10")
    rows = position_rows(client, {"pair": "ETHUSD"})
    assert rows and all(r["symbol"].startswith("ETHUSD_") for r in rows)


def test_reset_drops_positions(client):
    seeded(client, "BTCUSD_PERP", "5")
    client.admin("POST", "/reset")
    client.exchange.clock.freeze_at(FROZEN_MS)
    assert row_of(client, "BTCUSD_PERP")["positionAmt"] == "0"


# -- -2027: raising leverage past an open position -------------------------------------------


# BTCUSD_PERP at 100000: a position of N contracts is N/1000 BTC. maxQty: 20x 150, 50x 25.
@pytest.mark.parametrize(
    ("amount", "leverage", "expected"),
    [
        ("25000", 50, 200),  # 25 BTC == maxQty 25: equal is allowed
        ("25001", 50, EXCEEDS),  # 25.001 BTC > 25
        ("-25001", 50, EXCEEDS),  # a short counts by its size
        ("-25000", 50, 200),
        ("5000", 125, 200),  # 5 BTC at 125x, maxQty 5
        ("5001", 125, EXCEEDS),
    ],
)
def test_raising_leverage_is_refused_when_max_qty_drops_below_the_position(
    client, amount, leverage, expected
):
    seeded(client, "BTCUSD_PERP", amount)
    response = client.change_leverage("BTCUSD_PERP", leverage)
    if expected == 200:
        assert response.status_code == 200
        assert row_of(client, "BTCUSD_PERP")["leverage"] == str(leverage)
    else:
        assert error_of(response) == expected
        assert row_of(client, "BTCUSD_PERP")["leverage"] == "20"


def test_the_position_is_sized_at_the_seeds_mark_price(client):
    # 12500 contracts x 100 / 50000 = 25 BTC: allowed at 50x; at 40000 it is 31.25 BTC.
    seeded(client, "BTCUSD_PERP", "12500", markPrice="50000")
    assert client.change_leverage("BTCUSD_PERP", 50).status_code == 200
    client.change_leverage("BTCUSD_PERP", 20)
    seeded(client, "BTCUSD_PERP", "12500", markPrice="40000")
    assert error_of(client.change_leverage("BTCUSD_PERP", 50)) == EXCEEDS


def test_lowering_or_keeping_leverage_is_never_2027(client):
    client.change_leverage("BTCUSD_PERP", 5)  # maxQty 950
    seeded(client, "BTCUSD_PERP", "900000")  # 900 BTC, above every maxQty from 10x up
    assert client.change_leverage("BTCUSD_PERP", 5).status_code == 200
    assert client.change_leverage("BTCUSD_PERP", 2).status_code == 200
    assert error_of(client.change_leverage("BTCUSD_PERP", 10)) == EXCEEDS


def test_a_zero_position_has_no_rules(client):
    seeded(client, "BTCUSD_PERP", "0", "isolated")
    assert client.change_leverage("BTCUSD_PERP", 125).status_code == 200
    assert client.change_leverage("BTCUSD_PERP", 1).status_code == 200


def test_the_2027_reason_is_journaled(client):
    seeded(client, "BTCUSD_PERP", "30000")
    client.change_leverage("BTCUSD_PERP", 50)
    entry = client.admin("GET", "/requests").get_json()["requests"][-1]
    assert entry["code"] == -2027
    assert entry["reason"] == "open position of 30 coin is above maxQty 25 at 50x"


def test_a_position_on_another_symbol_does_not_count(client):
    seeded(client, "ETHUSD_PERP", "1000000")
    assert client.change_leverage("BTCUSD_PERP", 125).status_code == 200


def test_range_is_checked_before_the_position(client):
    seeded(client, "BTCUSD_PERP", "900000")
    assert error_of(client.change_leverage("BTCUSD_PERP", 126))[1] == -4028


# -- -4150: lowering leverage on isolated margin ---------------------------------------------


def test_lowering_leverage_of_an_isolated_position_is_4150(client):
    seeded(client, "BTCUSD_PERP", "10", "isolated")
    assert error_of(client.change_leverage("BTCUSD_PERP", 19)) == ISOLATED
    entry = client.admin("GET", "/requests").get_json()["requests"][-1]
    assert entry["reason"] == "isolated position open on BTCUSD_PERP; leverage 20 -> 19"
    assert row_of(client, "BTCUSD_PERP")["leverage"] == "20"


def test_raising_or_keeping_leverage_of_an_isolated_position_is_allowed(client):
    seeded(client, "BTCUSD_PERP", "10", "isolated")
    assert client.change_leverage("BTCUSD_PERP", 20).status_code == 200
    assert client.change_leverage("BTCUSD_PERP", 50).status_code == 200
    assert error_of(client.change_leverage("BTCUSD_PERP", 49)) == ISOLATED


def test_lowering_leverage_of_a_cross_position_is_allowed(client):
    seeded(client, "BTCUSD_PERP", "-10", "cross")
    assert client.change_leverage("BTCUSD_PERP", 1).status_code == 200


def test_a_short_isolated_position_also_blocks_lowering(client):
    seeded(client, "ETHUSD_PERP", "-3", "isolated")
    assert error_of(client.change_leverage("ETHUSD_PERP", 10)) == ISOLATED


def test_an_isolated_position_can_be_both_over_max_qty_and_refused_for_raising(client):
    seeded(client, "BTCUSD_PERP", "30000", "isolated")
    assert error_of(client.change_leverage("BTCUSD_PERP", 50)) == EXCEEDS
    assert error_of(client.change_leverage("BTCUSD_PERP", 10)) == ISOLATED


# -- the control plane ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error_part"),
    [
        ({"api_key": "nosuchkey", "symbol": "BTCUSD_PERP", "positionAmt": "1"}, "api_key"),
        ({"api_key": "dapimockdemokey", "symbol": "XRPUSD_PERP", "positionAmt": "1"}, "symbol"),
        ({"api_key": "dapimockdemokey", "symbol": 5, "positionAmt": "1"}, "symbol"),
        (
            {"api_key": "dapimockdemokey", "symbol": "BTCUSD_PERP", "positionAmt": "x"},
            "positionAmt",
        ),
        ({"api_key": "dapimockdemokey", "symbol": "BTCUSD_PERP"}, "positionAmt"),
        (
            {
                "api_key": "dapimockdemokey",
                "symbol": "BTCUSD_PERP",
                "positionAmt": "NaN",
            },
            "positionAmt",
        ),
        (
            {
                "api_key": "dapimockdemokey",
                "symbol": "BTCUSD_PERP",
                "positionAmt": "1",
                "marginType": "ISOLATED",
            },
            "marginType",
        ),
        (
            {
                "api_key": "dapimockdemokey",
                "symbol": "BTCUSD_PERP",
                "positionAmt": "1",
                "markPrice": "0",
            },
            "markPrice",
        ),
        (
            {
                "api_key": "dapimockdemokey",
                "symbol": "BTCUSD_PERP",
                "positionAmt": "1",
                "markPrice": "-5",
            },
            "markPrice",
        ),
    ],
)
def test_a_bad_seed_is_refused_with_400_naming_the_field(client, body, error_part):
    response = client.admin("POST", "/positions", body)
    assert response.status_code == 400
    assert error_part in response.get_json()["error"]
    assert row_of(client, "BTCUSD_PERP")["positionAmt"] == "0"


def test_the_live_handle_seeds_positions(dapi_mock):
    import requests

    dapi_mock.clock.freeze(FROZEN_MS)
    dapi_mock.positions.seed("BTCUSD_PERP", 30000, margin_type="isolated", mark_price="100000")
    query = signed({"symbol": "BTCUSD_PERP", "leverage": 10, "timestamp": FROZEN_MS})
    response = requests.post(
        f"{dapi_mock.url}/dapi/v1/leverage?{query}",
        headers={"X-MBX-APIKEY": dapi_mock.api_key},
        timeout=5,
    )
    assert (response.status_code, response.json()["code"]) == (400, -4150)
