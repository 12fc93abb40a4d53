"""Each endpoint's answer read into typed values; a 2xx of the wrong shape is malformed."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from contracts.client import MalformedResponse
from tests.contracts.client_fakes import LEVERAGE_OK, Reply, request_params

# --- typed answers and malformed 2xx ------------------------------------------


@pytest.mark.parametrize("max_qty", ["150", "0.5", "3500", "0.00000001"])
def test_max_qty_is_an_exact_decimal(make: Any, max_qty: str) -> None:
    client, _, _ = make(Reply(body={**LEVERAGE_OK, "maxQty": max_qty}))

    change = client.change_leverage("BTCUSD_PERP", 20)

    assert change.max_qty == Decimal(max_qty)
    assert isinstance(change.max_qty, Decimal)
    assert (change.leverage, change.symbol) == (20, "BTCUSD_PERP")


@pytest.mark.parametrize(
    "body",
    [
        b'{"leverage":20,"maxQty":"15',
        b"<html>ok</html>",
        b"",
        [],
        {"leverage": 20, "maxQty": "150"},
        {"leverage": "20", "maxQty": "150", "symbol": "BTCUSD_PERP"},
        {"leverage": True, "maxQty": "150", "symbol": "BTCUSD_PERP"},
        {"leverage": 20, "maxQty": 150, "symbol": "BTCUSD_PERP"},
        {"leverage": 20, "maxQty": "1e3", "symbol": "BTCUSD_PERP"},
        {"leverage": 20, "maxQty": "NaN", "symbol": "BTCUSD_PERP"},
        {"leverage": 20, "maxQty": " 150", "symbol": "BTCUSD_PERP"},
    ],
)
def test_2xx_of_the_wrong_shape_is_malformed(make: Any, body: Any) -> None:
    client, _, _ = make(Reply(body=body))

    with pytest.raises(MalformedResponse) as caught:
        client.change_leverage("BTCUSD_PERP", 20)

    assert caught.value.status == 200
    assert caught.value.response is not None


def test_time_answer_of_the_wrong_shape_is_malformed(make: Any) -> None:
    client, _, _ = make(Reply(body={"serverTime": "123"}))

    with pytest.raises(MalformedResponse, match="serverTime"):
        client.server_time()


BRACKET_ROW = {
    "bracket": 1,
    "initialLeverage": 125,
    "qtyCap": 5,
    "qtyFloor": 0,
    "maintMarginRatio": 0.004,
    "cum": 0,
}


@pytest.mark.parametrize("floor_field", ["qtyFloor", "qtylFloor"])
def test_brackets_read_either_floor_spelling_as_exact_decimals(make: Any, floor_field: str) -> None:
    row = {k: v for k, v in BRACKET_ROW.items() if k != "qtyFloor"}
    last = {
        "bracket": 10,
        "initialLeverage": 1,
        "qtyCap": 3500,
        "maintMarginRatio": 0.5,
        "cum": 837.93,
    }
    row[floor_field] = 0
    last[floor_field] = 2400
    raw = json.dumps([{"symbol": "BTCUSD_PERP", "brackets": [row, last]}]).encode()
    client, transport, _ = make(Reply(body=raw))

    (table,) = client.leverage_brackets("BTCUSD_PERP")

    assert request_params(transport.sent[0])["symbol"] == "BTCUSD_PERP"
    assert table.symbol == "BTCUSD_PERP"
    assert table.notional_coef is None
    first, tenth = table.brackets
    assert first.maint_margin_ratio == Decimal("0.004")
    assert (first.initial_leverage, first.qty_cap, first.qty_floor) == (125, Decimal(5), Decimal(0))
    assert tenth.cum == Decimal("837.93")
    assert tenth.qty_floor == Decimal(2400)


def test_brackets_without_a_floor_are_malformed(make: Any) -> None:
    row = {k: v for k, v in BRACKET_ROW.items() if k != "qtyFloor"}
    client, _, _ = make(Reply(body=[{"symbol": "BTCUSD_PERP", "brackets": [row]}]))

    with pytest.raises(MalformedResponse, match="qtyFloor"):
        client.leverage_brackets()


def test_v1_brackets_are_keyed_by_pair(make: Any) -> None:
    client, transport, _ = make(Reply(body=[{"pair": "BTCUSD", "brackets": [BRACKET_ROW]}]))

    (table,) = client.leverage_brackets_v1("BTCUSD")

    assert transport.sent[0].path_url.startswith("/dapi/v1/leverageBracket?pair=BTCUSD&")
    assert table.pair == "BTCUSD"
    assert table.brackets[0].initial_leverage == 125


POSITION_ROW = {
    "symbol": "BTCUSD_PERP",
    "positionAmt": "-3",
    "entryPrice": "100000",
    "breakEvenPrice": "100000",
    "markPrice": "100000",
    "unRealizedProfit": "0",
    "liquidationPrice": "0",
    "leverage": "20",
    "maxQty": "150",
    "marginType": "isolated",
    "isolatedMargin": "0.00000000",
    "isAutoAddMargin": "false",
    "positionSide": "BOTH",
    "notionalValue": "-0.003",
    "isolatedWallet": "0",
    "updateTime": 0,
}


def test_position_risk_rows_are_typed(make: Any) -> None:
    docs_row = {
        k: v
        for k, v in POSITION_ROW.items()
        if k not in ("notionalValue", "isolatedWallet", "breakEvenPrice")
    }
    client, transport, _ = make(Reply(body=[POSITION_ROW, docs_row]))

    full, sparse = client.position_risk(margin_asset="BTC")

    assert request_params(transport.sent[0])["marginAsset"] == "BTC"
    assert full.leverage == 20
    assert full.max_qty == Decimal(150)
    assert full.position_amt == Decimal(-3)
    assert full.notional_value == Decimal("-0.003")
    assert full.is_auto_add_margin is False
    assert (full.margin_type, full.position_side, full.update_time) == ("isolated", "BOTH", 0)
    assert sparse.notional_value is None and sparse.break_even_price is None


@pytest.mark.parametrize(
    ("key", "value"), [("leverage", 20), ("positionAmt", 0), ("isAutoAddMargin", False)]
)
def test_position_risk_rows_with_wrong_types_are_malformed(make: Any, key: str, value: Any) -> None:
    client, _, _ = make(Reply(body=[{**POSITION_ROW, key: value}]))

    with pytest.raises(MalformedResponse, match=key):
        client.position_risk()


def test_exchange_info_is_returned_as_json_after_a_shape_check(make: Any) -> None:
    info = {"timezone": "UTC", "serverTime": 1, "rateLimits": [], "symbols": [{"symbol": "X"}]}
    client, _, _ = make(Reply(body=info), Reply(body={"timezone": "UTC"}))

    assert client.exchange_info() == info
    with pytest.raises(MalformedResponse, match="symbols"):
        client.exchange_info()


def test_spot_ping_and_time_use_api_v3(make: Any) -> None:
    client, transport, _ = make(Reply(body={}), Reply(body={"serverTime": 42}))

    client.spot_ping()
    assert client.spot_time() == 42

    assert [r.path_url for r in transport.sent] == ["/api/v3/ping", "/api/v3/time"]
