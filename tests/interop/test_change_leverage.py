"""Each real client changes leverage against the mock, with every key type it supports."""

from __future__ import annotations

import pytest

from .drivers import CLIENTS, KEY_TYPES, SDK, WIRE_DRIVERS, Driver

pytestmark = pytest.mark.interop

SYMBOL = "BTCUSD_PERP"


def _ids(driver: Driver) -> str:
    return driver.id


@pytest.mark.parametrize("key_type", KEY_TYPES)
@pytest.mark.parametrize("driver", CLIENTS, ids=_ids)
def test_change_leverage_to_20(dapi_mock, driver, key_type, creds):
    """BTCUSD_PERP at 20x: bracket 4 (20x) is the last one allowing it, qtyCap 150."""
    outcome = driver.change_leverage(dapi_mock.url, creds, SYMBOL, 20)

    assert outcome.leverage == {"symbol": SYMBOL, "leverage": 20, "maxQty": "150"}
    # JSON types as Binance sends them: leverage a number, maxQty a string.
    assert type(outcome.leverage["leverage"]) is int
    assert type(outcome.leverage["maxQty"]) is str


@pytest.mark.parametrize("key_type", KEY_TYPES)
@pytest.mark.parametrize("driver", CLIENTS, ids=_ids)
def test_change_is_visible_in_position_risk(dapi_mock, driver, key_type, creds):
    """After a change (fresh accounts start at 20x) the client's positionRisk shows it."""
    outcome = driver.change_leverage(dapi_mock.url, creds, SYMBOL, 100, with_position=True)

    # 100x: bracket 2 (100x, 5-10) is the last one allowing it.
    assert outcome.leverage == {"symbol": SYMBOL, "leverage": 100, "maxQty": "10"}
    # positionRisk reports every value as a string.
    assert outcome.position == {"symbol": SYMBOL, "leverage": "100", "maxQty": "10"}


@pytest.mark.parametrize("driver", WIRE_DRIVERS, ids=_ids)
def test_client_requests_as_seen_by_the_mock(dapi_mock, driver, hmac_creds, journal):
    """The mock answered every request the client made, in the client's own order.

    This is where python-binance's construction ping (/api/v3/ping), its async
    time sync (/api/v3/time) and ccxt's default market loading (/sapi ... and
    /dapi/v1/exchangeInfo) are exercised.
    """
    driver.change_leverage(dapi_mock.url, hmac_creds, SYMBOL, 20)

    entries = journal()
    assert [(e["method"], e["path"]) for e in entries] == list(driver.wire)
    assert [(e["path"], e["status"]) for e in entries] == [(path, 200) for _, path in driver.wire]
    leverage_calls = [e for e in entries if e["path"] == "/dapi/v1/leverage"]
    assert len(leverage_calls) == 1
    sent = (leverage_calls[0]["query"] or "") + "&" + (leverage_calls[0]["body"] or "")
    assert "symbol=BTCUSD_PERP" in sent
    assert "leverage=20" in sent
    assert "signature=" in sent


def test_sdk_reads_the_weight_header(dapi_mock, hmac_creds):
    """The official SDK parses X-MBX-USED-WEIGHT-1M into ApiResponse.rate_limits."""
    outcome = SDK.change_leverage(dapi_mock.url, hmac_creds, SYMBOL, 20)

    weights = [
        (r.rateLimitType, r.interval, r.intervalNum, r.count) for r in outcome.result.rate_limits
    ]
    # A fresh mock (rate counters reset) has seen exactly this one request.
    assert weights == [("REQUEST_WEIGHT", "MINUTE", 1, 1)]
