"""A trading bot's set-up sequence through each real client: position mode, margin type,
leverage, then positions, account and balance read back; each no-change answer reaches
the client as its own error (docs/behaviour.md#position-configuration)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from .drivers import CCXT_DEFAULT, SET_UP_CLIENTS, Driver

pytestmark = pytest.mark.interop

SET_UP_CALLS = [
    ("POST", "/dapi/v1/positionSide/dual"),
    ("POST", "/dapi/v1/marginType"),
    ("POST", "/dapi/v1/leverage"),
    ("GET", "/dapi/v1/positionSide/dual"),
    ("GET", "/dapi/v1/positionRisk"),
    ("GET", "/dapi/v1/account"),
    ("GET", "/dapi/v1/balance"),
]
NO_CHANGE = {
    "position_mode": (-4059, "No need to change position side."),
    "margin_type": (-4046, "No need to change margin type."),
}


def _ids(driver: Driver) -> str:
    return driver.id


@pytest.mark.parametrize("driver", SET_UP_CLIENTS, ids=_ids)
def test_a_bot_sets_up_and_reads_it_all_back(dapi_mock, driver, hmac_creds, journal):
    dapi_mock.balances.set("BTC", "2.5")
    outcome = driver.set_up(dapi_mock.url, hmac_creds, "BTCUSD_PERP", 50)

    assert outcome.hedged is True
    assert outcome.leverage == {"symbol": "BTCUSD_PERP", "leverage": 50, "maxQty": "25"}
    assert outcome.sides == [
        ("BOTH", "50", "isolated"),
        ("LONG", "50", "isolated"),
        ("SHORT", "50", "isolated"),
    ]
    assert outcome.isolated is True
    assert outcome.wallet == {"BTC": Decimal("2.5"), "ETH": Decimal(10)}
    assert outcome.balance == {"BTC": Decimal("2.5"), "ETH": Decimal(10)}
    sent = [(e["method"], e["path"], e["status"]) for e in journal()]
    assert set(SET_UP_CALLS) <= {(method, path) for method, path, _ in sent}, sent
    assert all(status == 200 for *_, status in sent), sent


@pytest.mark.parametrize("what", sorted(NO_CHANGE))
@pytest.mark.parametrize("driver", SET_UP_CLIENTS, ids=_ids)
def test_a_no_change_answer_is_the_clients_own_error(dapi_mock, driver, hmac_creds, what):
    code, message = NO_CHANGE[what]
    with pytest.raises(driver.error_class(code)) as caught:
        driver.no_change(dapi_mock.url, hmac_creds, what, "ETHUSD_PERP")

    assert driver.error_code(caught.value) == code
    assert driver.error_message(caught.value) == message


def test_ccxt_raises_margin_mode_already_set_from_the_exact_4046_text(dapi_mock, hmac_creds):
    import ccxt

    with pytest.raises(ccxt.MarginModeAlreadySet):
        CCXT_DEFAULT.no_change(dapi_mock.url, hmac_creds, "margin_type", "BTCUSD_PERP")
    # The same code with another text is only a code to ccxt: the exact text is the contract.
    dapi_mock.faults.add(
        {
            "match": {"method": "POST", "path": "/dapi/v1/marginType"},
            "action": {
                "type": "error",
                "status": 400,
                "code": -4046,
                "msg": "No need to change margin type",
            },
        }
    )
    with pytest.raises(ccxt.OperationRejected) as caught:
        CCXT_DEFAULT.no_change(dapi_mock.url, hmac_creds, "margin_type", "BTCUSD_PERP")
    assert not isinstance(caught.value, ccxt.MarginModeAlreadySet)


@pytest.mark.parametrize("driver", SET_UP_CLIENTS, ids=_ids)
def test_leverage_over_the_accounts_cap_is_the_clients_own_error(dapi_mock, driver, hmac_creds):
    dapi_mock.accounts.add(hmac_creds.api_key, secret=hmac_creds.secret, max_leverage=10)
    with pytest.raises(driver.error_class(-4201)) as caught:
        driver.change_leverage(dapi_mock.url, hmac_creds, "BTCUSD_PERP", 11)

    assert driver.error_code(caught.value) == -4201
    assert driver.error_message(caught.value) == (
        "Users in your location/country can only access a maximum leverage of 10"
    )
