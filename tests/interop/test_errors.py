"""Binance errors from the mock reach each real client as that client's own error."""

from __future__ import annotations

import pytest

from .drivers import ALL_DRIVERS, CCXT_ADJUST_ONLY, CLIENTS, Driver

pytestmark = pytest.mark.interop

TOO_OLD = "Timestamp for this request is outside of the recvWindow."
AHEAD = "Timestamp for this request was 1000ms ahead of the server's time."


def _ids(driver: Driver) -> str:
    return driver.id


@pytest.mark.parametrize("driver", CLIENTS, ids=_ids)
def test_leverage_above_max_is_4028(dapi_mock, driver, hmac_creds, journal):
    """ETHUSD_PERP's largest bracket is 100x, so 101 is rejected with -4028."""
    with pytest.raises(driver.error_class(-4028)) as caught:
        driver.change_leverage(dapi_mock.url, hmac_creds, "ETHUSD_PERP", 101)

    assert driver.error_code(caught.value) == -4028
    assert driver.error_message(caught.value) == "Leverage 101 is not valid"
    last = journal()[-1]
    assert (last["method"], last["path"], last["status"], last["code"]) == (
        "POST",
        "/dapi/v1/leverage",
        400,
        -4028,
    )


@pytest.mark.parametrize(
    ("offset_ms", "message"),
    [
        # Mock 30 s behind: the client's local-time timestamp is 30 s ahead of it.
        pytest.param(-30_000, AHEAD, id="mock-30s-behind"),
        # Mock 30 s ahead: the timestamp is 30 s old, beyond any client's recvWindow.
        pytest.param(30_000, TOO_OLD, id="mock-30s-ahead"),
    ],
)
@pytest.mark.parametrize("driver", ALL_DRIVERS, ids=_ids)
def test_clock_skew(dapi_mock, driver, hmac_creds, offset_ms, message):
    """Clients sending local time get -1021; clients that sync time succeed anyway."""
    dapi_mock.clock.offset(offset_ms)

    if driver.syncs_time:
        outcome = driver.change_leverage(dapi_mock.url, hmac_creds, "BTCUSD_PERP", 20)
        assert outcome.leverage == {"symbol": "BTCUSD_PERP", "leverage": 20, "maxQty": "150"}
        return

    with pytest.raises(driver.error_class(-1021)) as caught:
        driver.change_leverage(dapi_mock.url, hmac_creds, "BTCUSD_PERP", 20)

    assert driver.error_code(caught.value) == -1021
    assert driver.error_message(caught.value) == message


def test_ccxt_adjust_for_time_difference_alone_syncs_too_late(dapi_mock, hmac_creds, journal):
    """ccxt's automatic sync runs inside fetch_markets, after fetch_currencies' signed calls.

    So with default options a skewed server rejects the first /sapi call and
    the leverage request is never sent (real ccxt behaves the same against
    Binance; see CCXT_ADJUST_ONLY in drivers.py). The sync itself is shown to
    work by the ``ccxt-adjustForTimeDifference`` rows of test_clock_skew.
    """
    import ccxt

    dapi_mock.clock.offset(-30_000)

    with pytest.raises(ccxt.InvalidNonce) as caught:
        CCXT_ADJUST_ONLY.change_leverage(dapi_mock.url, hmac_creds, "BTCUSD_PERP", 20)

    assert CCXT_ADJUST_ONLY.error_code(caught.value) == -1021
    assert CCXT_ADJUST_ONLY.error_message(caught.value) == AHEAD
    assert [(e["method"], e["path"], e["status"], e["code"]) for e in journal()] == [
        ("GET", "/sapi/v1/capital/config/getall", 400, -1021),
    ]
