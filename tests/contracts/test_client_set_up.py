"""DapiClient's set-up calls (docs/behaviour.md#position-configuration): margin type,
position mode, and the account and balance reads."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from contracts.client import DapiClient, MalformedResponse
from tests.contracts.client_fakes import Reply, request_params, request_parts, verify_hmac

# --- the set-up sequence: margin type, position mode, account, balance ----------

SUCCESS = {"code": 200, "msg": "success"}
ASSET_ROW = {
    "asset": "BTC",
    "walletBalance": "1.50000000",
    "unrealizedProfit": "0.00000000",
    "marginBalance": "1.50000000",
    "maintMargin": "0.00000000",
    "initialMargin": "0.00000000",
    "positionInitialMargin": "0.00000000",
    "openOrderInitialMargin": "0.00000000",
    "maxWithdrawAmount": "1.50000000",
    "crossWalletBalance": "1.50000000",
    "crossUnPnl": "0.00000000",
    "availableBalance": "1.50000000",
    "updateTime": 1_700_000_000_000,
}
ACCOUNT_POSITION_ROW = {
    "symbol": "BTCUSD_PERP",
    "positionAmt": "-3",
    "initialMargin": "0",
    "maintMargin": "0",
    "unrealizedProfit": "0.00000000",
    "positionInitialMargin": "0",
    "openOrderInitialMargin": "0",
    "leverage": "20",
    "isolated": True,
    "positionSide": "SHORT",
    "entryPrice": "100000.00000000",
    "breakEvenPrice": "100000.00000000",
    "maxQty": "150",
    "updateTime": 5,
}
ACCOUNT = {
    "assets": [ASSET_ROW],
    "positions": [ACCOUNT_POSITION_ROW],
    "canDeposit": True,
    "canTrade": True,
    "canWithdraw": False,
    "feeTier": 0,
    "updateTime": 0,
}
BALANCE_ROW = {
    "accountAlias": "SgsR",
    "asset": "BTC",
    "balance": "1.50000000",
    "withdrawAvailable": "1.50000000",
    "crossWalletBalance": "1.50000000",
    "crossUnPnl": "0.00000000",
    "availableBalance": "1.50000000",
    "updateTime": 1_700_000_000_000,
}


def test_change_margin_type_posts_a_signed_form(make: Any) -> None:
    client, transport, _ = make(Reply(body=SUCCESS))

    assert client.change_margin_type("BTCUSD_PERP", "ISOLATED") is None

    (sent,) = transport.sent
    assert (sent.method, sent.path_url) == ("POST", "/dapi/v1/marginType")
    assert request_parts(sent)[1].startswith(
        "symbol=BTCUSD_PERP&marginType=ISOLATED&timestamp=1700000000000&signature="
    )
    verify_hmac(sent)


@pytest.mark.parametrize(("dual", "wire"), [(True, "true"), (False, "false")])
def test_change_position_mode_sends_true_or_false(make: Any, dual: bool, wire: str) -> None:
    client, transport, _ = make(Reply(body=SUCCESS))

    client.change_position_mode(dual)

    (sent,) = transport.sent
    assert (sent.method, sent.path_url) == ("POST", "/dapi/v1/positionSide/dual")
    assert request_params(sent)["dualSidePosition"] == wire
    verify_hmac(sent)


@pytest.mark.parametrize("dual", [True, False])
def test_position_mode_reads_the_json_boolean(make: Any, dual: bool) -> None:
    client, transport, _ = make(Reply(body={"dualSidePosition": dual}))

    assert client.position_mode() is dual
    (sent,) = transport.sent
    assert sent.method == "GET" and sent.path_url.startswith(
        "/dapi/v1/positionSide/dual?timestamp="
    )
    verify_hmac(sent)


@pytest.mark.parametrize(
    ("call", "body"),
    [
        (lambda c: c.change_margin_type("BTCUSD_PERP", "CROSSED"), {"code": 0, "msg": "success"}),
        (lambda c: c.change_margin_type("BTCUSD_PERP", "CROSSED"), []),
        (lambda c: c.change_position_mode(True), {"msg": "success"}),
        (lambda c: c.position_mode(), {"dualSidePosition": "true"}),
        (lambda c: c.position_mode(), {"dualSidePosition": 1}),
        (lambda c: c.position_mode(), {}),
    ],
)
def test_set_up_answers_of_the_wrong_shape_are_malformed(
    make: Any, call: Callable[[DapiClient], Any], body: Any
) -> None:
    client, _, _ = make(Reply(body=body))

    with pytest.raises(MalformedResponse):
        call(client)


def test_account_is_typed_with_exact_decimals(make: Any) -> None:
    sparse = {k: v for k, v in ACCOUNT_POSITION_ROW.items() if k != "breakEvenPrice"}
    client, transport, _ = make(
        Reply(body={**ACCOUNT, "positions": [ACCOUNT_POSITION_ROW, sparse]})
    )

    account = client.account()

    assert transport.sent[0].path_url.startswith("/dapi/v1/account?timestamp=")
    (btc,) = account.assets
    assert account.asset("BTC") == btc and account.asset("ETH") is None
    assert btc.wallet_balance == Decimal("1.5") and isinstance(btc.wallet_balance, Decimal)
    assert (btc.available_balance, btc.update_time) == (Decimal("1.5"), 1_700_000_000_000)
    short, no_break_even = account.positions
    assert (short.position_amt, short.leverage, short.isolated) == (Decimal(-3), 20, True)
    assert (short.position_side, short.max_qty, short.update_time) == ("SHORT", Decimal(150), 5)
    assert no_break_even.break_even_price is None
    assert (account.can_trade, account.can_withdraw, account.fee_tier) == (True, False, 0)


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        ("asset", "walletBalance", 1.5),
        ("asset", "updateTime", "0"),
        ("position", "isolated", "true"),
        ("position", "leverage", 20),
        ("account", "canTrade", "true"),
        ("account", "feeTier", True),
        ("account", "assets", {}),
    ],
)
def test_account_answers_with_wrong_types_are_malformed(
    make: Any, where: str, key: str, value: Any
) -> None:
    body = {
        "asset": {**ACCOUNT, "assets": [{**ASSET_ROW, key: value}]},
        "position": {**ACCOUNT, "positions": [{**ACCOUNT_POSITION_ROW, key: value}]},
        "account": {**ACCOUNT, key: value},
    }[where]
    client, _, _ = make(Reply(body=body))

    with pytest.raises(MalformedResponse, match=key):
        client.account()


def test_balance_rows_are_typed(make: Any) -> None:
    client, transport, _ = make(Reply(body=[BALANCE_ROW, {**BALANCE_ROW, "asset": "ETH"}]))

    btc, eth = client.balance()

    assert transport.sent[0].path_url.startswith("/dapi/v1/balance?timestamp=")
    assert (btc.account_alias, btc.asset, btc.balance) == ("SgsR", "BTC", Decimal("1.5"))
    assert btc.cross_un_pnl == Decimal(0) and btc.update_time == 1_700_000_000_000
    assert eth.asset == "ETH"


@pytest.mark.parametrize("body", [{}, [{**BALANCE_ROW, "balance": "1e3"}], [{"asset": "BTC"}]])
def test_balance_of_the_wrong_shape_is_malformed(make: Any, body: Any) -> None:
    client, _, _ = make(Reply(body=body))

    with pytest.raises(MalformedResponse):
        client.balance()
