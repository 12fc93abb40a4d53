"""The endpoints clients call around the leverage change
(docs/behaviour.md#endpoints, #exchange-info, #position-risk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import FROZEN_MS, signed
from tests.mockserver.conftest import error_of

REPO = Path(__file__).resolve().parents[2]
BTCUSD_PERP_ROW_KEYS = [
    "symbol", "pair", "contractType", "deliveryDate", "onboardDate", "contractStatus",
    "contractSize", "marginAsset", "maintMarginPercent", "requiredMarginPercent", "baseAsset",
    "quoteAsset", "pricePrecision", "quantityPrecision", "baseAssetPrecision", "quotePrecision",
    "equalQtyPrecision", "maxMoveOrderLimit", "triggerProtect", "underlyingType",
    "underlyingSubType", "filters", "orderTypes", "timeInForce", "liquidationFee",
    "marketTakeBound",
]  # fmt: skip


def _signed_get(client, path: str, **params):
    return client.get(path, signed({**params, "timestamp": client.exchange.clock.now_ms()}))


@pytest.mark.parametrize("path", ["/dapi/v1/ping", "/api/v3/ping"])
def test_ping_answers_an_empty_object(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.get_data() == b"{}"
    assert response.content_type == "application/json"


@pytest.mark.parametrize("path", ["/dapi/v1/time", "/api/v3/time"])
def test_time_answers_the_mock_clock(client, path):
    assert client.get(path).get_json() == {"serverTime": FROZEN_MS}
    client.exchange.clock.advance(1234)
    assert client.get(path).get_json() == {"serverTime": FROZEN_MS + 1234}


def test_exchange_info_lists_the_shipped_symbols_with_real_row_shapes(client):
    info = client.get("/dapi/v1/exchangeInfo").get_json()
    assert list(info) == ["timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols"]
    assert info["timezone"] == "UTC"
    assert info["serverTime"] == FROZEN_MS
    assert info["rateLimits"] == [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    ]
    rows = {row["symbol"]: row for row in info["symbols"]}
    # 2020-06-09: the current quarter delivers 2020-06-26, the next 2020-09-25.
    assert set(rows) == {
        "BTCUSD_PERP", "ETHUSD_PERP", "BTCUSD_200626", "BTCUSD_200925", "ETHUSD_200626",
        "ETHUSD_200925",
    }  # fmt: skip
    btc = rows["BTCUSD_PERP"]
    assert list(btc) == BTCUSD_PERP_ROW_KEYS
    assert btc["contractType"] == "PERPETUAL"
    assert btc["deliveryDate"] == 4133404800000
    assert btc["onboardDate"] == 1597042800000
    assert btc["contractSize"] == 100
    assert btc["underlyingSubType"] == ["PoW"]
    assert [f["filterType"] for f in btc["filters"]] == [
        "PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "MAX_NUM_ORDERS", "MAX_NUM_ALGO_ORDERS",
        "PERCENT_PRICE",
    ]  # fmt: skip
    quarter = rows["BTCUSD_200626"]
    assert quarter["contractType"] == "CURRENT_QUARTER"
    assert quarter["deliveryDate"] == 1593158400000  # 2020-06-26 08:00 UTC
    assert rows["BTCUSD_200925"]["contractType"] == "NEXT_QUARTER"


def test_exchange_info_shows_the_configured_weight_limit(make_client):
    info = make_client(weight_per_minute=600).get("/dapi/v1/exchangeInfo").get_json()
    assert info["rateLimits"][0]["limit"] == 600
    info = make_client(weight_per_minute=0).get("/dapi/v1/exchangeInfo").get_json()
    assert info["rateLimits"][0]["limit"] == 2400


def test_quarterlies_roll_at_delivery(client):
    delivery = 1593158400000
    client.exchange.clock.freeze_at(delivery - 1)
    names = {r["symbol"] for r in client.get("/dapi/v1/exchangeInfo").get_json()["symbols"]}
    assert "BTCUSD_200626" in names
    client.exchange.clock.freeze_at(delivery)
    names = {r["symbol"] for r in client.get("/dapi/v1/exchangeInfo").get_json()["symbols"]}
    assert "BTCUSD_200626" not in names
    assert {"BTCUSD_200925", "BTCUSD_201225"} <= names


def test_a_delivered_quarter_answers_1121_and_loses_its_leverage(client):
    delivery = 1593158400000
    client.exchange.clock.freeze_at(delivery - 10_000)
    assert client.change_leverage("BTCUSD_200626", 5).status_code == 200
    client.exchange.clock.freeze_at(delivery)
    assert error_of(client.change_leverage("BTCUSD_200626", 5))[1] == -1121
    client.exchange.clock.freeze_at(delivery - 10_000)  # back in time: the old value is gone
    rows = _signed_get(client, "/dapi/v1/positionRisk").get_json()
    assert next(r for r in rows if r["symbol"] == "BTCUSD_200626")["leverage"] == "20"


def _bracket(number, leverage, floor, cap, mmr, cum):
    return {
        "bracket": number,
        "initialLeverage": leverage,
        "qtyCap": cap,
        "qtyFloor": floor,
        "maintMarginRatio": mmr,
        "cum": cum,
    }


BTCUSD_PERP_V2 = [
    _bracket(1, 125, 0, 5, 0.004, 0),
    _bracket(2, 100, 5, 10, 0.005, 0.005),
    _bracket(3, 50, 10, 25, 0.01, 0.055),
]


def test_v2_brackets_for_one_symbol(client):
    response = _signed_get(client, "/dapi/v2/leverageBracket", symbol="BTCUSD_PERP")
    (row,) = response.get_json()
    assert row["symbol"] == "BTCUSD_PERP"
    assert row["brackets"][:3] == BTCUSD_PERP_V2
    assert len(row["brackets"]) == 10
    assert row["brackets"][-1]["qtyCap"] == 3500
    assert response.headers["X-MBX-USED-WEIGHT-1M"] == "1"


def test_v2_brackets_for_all_symbols_weigh_2(client):
    response = _signed_get(client, "/dapi/v2/leverageBracket")
    assert {r["symbol"] for r in response.get_json()} >= {"BTCUSD_PERP", "ETHUSD_PERP"}
    assert len(response.get_json()) == 6
    assert response.headers["X-MBX-USED-WEIGHT-1M"] == "2"


def test_v2_brackets_for_an_unknown_symbol_is_1121(client):
    response = _signed_get(client, "/dapi/v2/leverageBracket", symbol="NOPE")
    assert error_of(response) == (400, -1121, "Invalid symbol.")


@pytest.mark.parametrize(
    ("mode", "keys"),
    [("qtyFloor", {"qtyFloor"}), ("qtylFloor", {"qtylFloor"}), ("both", {"qtyFloor", "qtylFloor"})],
)
def test_bracket_floor_field_is_configurable(make_client, mode, keys):
    client = make_client(bracket_floor_field=mode)
    for path, extra, floor in [("/dapi/v2/leverageBracket", {"symbol": "ETHUSD_PERP"}, 15),
                               ("/dapi/v1/leverageBracket", {"pair": "ETHUSD"}, 100)]:  # fmt: skip
        bracket = _signed_get(client, path, **extra).get_json()[0]["brackets"][1]
        assert keys == set(bracket) & {"qtyFloor", "qtylFloor"}
        assert all(bracket[k] == floor for k in keys)


def test_v1_brackets_give_a_pair_its_current_quarter_table(client):
    (row,) = _signed_get(client, "/dapi/v1/leverageBracket", pair="BTCUSD").get_json()
    assert row["pair"] == "BTCUSD"
    assert row["brackets"][0]["initialLeverage"] == 50
    assert [b["qtyCap"] for b in row["brackets"]] == [10, 50, 100, 200, 400, 800, 1500, 5000]
    everything = _signed_get(client, "/dapi/v1/leverageBracket").get_json()
    assert [r["pair"] for r in everything] == ["BTCUSD", "ETHUSD"]


def test_v1_brackets_for_an_unknown_pair_is_1121(client):
    assert error_of(_signed_get(client, "/dapi/v1/leverageBracket", pair="XRPUSD"))[1] == -1121


def test_position_risk_lists_every_symbol_with_string_values(client):
    rows = _signed_get(client, "/dapi/v1/positionRisk").get_json()
    assert len(rows) == 6
    row = next(r for r in rows if r["symbol"] == "ETHUSD_PERP")
    # docs/behaviour.md#position-risk: a real capture's flat row, keys in its order.
    assert list(row.items()) == [
        ("symbol", "ETHUSD_PERP"),
        ("positionAmt", "0"),
        ("entryPrice", "0.00000000"),
        ("markPrice", "0.00000000"),
        ("unRealizedProfit", "0.00000000"),
        ("liquidationPrice", "0"),
        ("leverage", "20"),
        ("maxQty", "1500"),
        ("marginType", "cross"),
        ("isolatedMargin", "0.00000000"),
        ("isAutoAddMargin", "false"),
        ("positionSide", "BOTH"),
        ("notionalValue", "0"),
        ("isolatedWallet", "0"),
        ("updateTime", 0),
        ("breakEvenPrice", "0.00000000"),
    ]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"pair": "BTCUSD"}, {"BTCUSD_PERP", "BTCUSD_200626", "BTCUSD_200925"}),
        ({"marginAsset": "ETH"}, {"ETHUSD_PERP", "ETHUSD_200626", "ETHUSD_200925"}),
        ({"pair": "ETHUSD", "marginAsset": "BTC"}, set()),
        ({"pair": "XRPUSD"}, set()),
    ],
)
def test_position_risk_filters_by_pair_and_margin_asset(client, filters, expected):
    rows = _signed_get(client, "/dapi/v1/positionRisk", **filters).get_json()
    assert {r["symbol"] for r in rows} == expected


@pytest.mark.parametrize("path", ["/sapi/v1/capital/config/getall", "/sapi/v1/margin/allPairs"])
def test_sapi_routes_ccxt_calls_answer_an_empty_list_when_signed(client, path):
    assert _signed_get(client, path, recvWindow=10000).get_json() == []
    assert error_of(client.get(path))[1] == -1102  # signed: a timestamp is required


@pytest.mark.parametrize(
    "path", ["/dapi/v2/leverageBracket", "/dapi/v1/leverageBracket", "/dapi/v1/positionRisk"]
)
def test_user_data_routes_need_a_valid_signature(client, path):
    query = f"timestamp={FROZEN_MS}&signature=00"
    assert error_of(client.get(path, query))[1] == -1022
    assert error_of(client.get(path, signed({"timestamp": FROZEN_MS}), api_key=None))[1] == -2014


def test_the_contract_is_served_byte_for_byte(client):
    response = client.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.get_data() == (REPO / "openapi.yaml").read_bytes()
    assert "X-MBX-USED-WEIGHT-1M" not in response.headers
