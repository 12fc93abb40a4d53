"""The bot's set-up sequence on the trading API: margin type, position mode, leverage caps,
hedge-mode positions, account and balance (docs/behaviour.md#position-configuration)."""

from __future__ import annotations

from typing import Any

import pytest

from mockserver.config import AccountConfig
from tests.mockserver.conftest import FROZEN_MS, error_of, signed

DEMO = "dapimockdemokey"
WEIGHT = "X-MBX-USED-WEIGHT-1M"
NO_NEED_MARGIN = (400, -4046, "No need to change margin type.")
MARGIN_WITH_POSITION = (400, -4048, "Margin type cannot be changed if there exists position.")
NO_NEED_SIDE = (400, -4059, "No need to change position side.")
SIDE_WITH_POSITION = (400, -4068, "Position side cannot be changed if there exists position.")
EXCEEDS = (400, -2027, "Exceeded the maximum allowable position at current leverage.")
ISOLATED_REDUCTION = (
    400,
    -4150,
    "Leverage reduction is not supported in Isolated Margin Mode with open positions.",
)
SUCCESS = {"code": 200, "msg": "success"}


def post(client, path: str, **params: Any):
    return client.post(path, body=signed({**params, "timestamp": FROZEN_MS}))


def get(client, path: str, **params: Any):
    return client.get(path, signed({**params, "timestamp": FROZEN_MS}))


def margin_type(client, symbol: str, value: str):
    return post(client, "/dapi/v1/marginType", symbol=symbol, marginType=value)


def position_mode(client, value: str):
    return post(client, "/dapi/v1/positionSide/dual", dualSidePosition=value)


def admin_ok(client, path: str, body: dict[str, Any]) -> None:
    response = client.admin("POST", path, body)
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"}), response.json


def seed(client, symbol: str, amount: str, side: str = "BOTH", **extra: Any) -> None:
    body = {"api_key": DEMO, "symbol": symbol, "positionAmt": amount, "positionSide": side}
    admin_ok(client, "/positions", {**body, **extra})


def hedge(client) -> None:
    admin_ok(client, "/position_mode", {"api_key": DEMO, "dualSidePosition": True})


def rows(client, **filters: Any) -> list[dict[str, Any]]:
    response = get(client, "/dapi/v1/positionRisk", **filters)
    assert response.status_code == 200
    return response.get_json()


def capped(make_client, max_leverage: int | None, rule: str | None):
    account = AccountConfig(
        "capped", "cappedsecret", max_leverage=max_leverage, max_leverage_rule=rule
    )
    return make_client(accounts=(account,))


def capped_leverage(client, symbol: str, leverage: int):
    query = signed({"symbol": symbol, "leverage": leverage, "timestamp": FROZEN_MS}, "cappedsecret")
    return client.post("/dapi/v1/leverage", query, api_key="capped")


# -- POST /dapi/v1/marginType -----------------------------------------------------------


def test_changing_the_margin_type_answers_success_and_shows_in_the_views(client):
    response = margin_type(client, "BTCUSD_PERP", "ISOLATED")
    assert (response.status_code, response.get_json()) == (200, SUCCESS)
    assert response.get_data() == b'{"code":200,"msg":"success"}'
    btc = next(r for r in rows(client) if r["symbol"] == "BTCUSD_PERP")
    assert btc["marginType"] == "isolated"
    others = {r["marginType"] for r in rows(client) if r["symbol"] != "BTCUSD_PERP"}
    assert others == {"cross"}
    positions = get(client, "/dapi/v1/account").get_json()["positions"]
    assert next(p for p in positions if p["symbol"] == "BTCUSD_PERP")["isolated"] is True
    assert margin_type(client, "BTCUSD_PERP", "CROSSED").get_json() == SUCCESS


@pytest.mark.parametrize("value", ["CROSSED", "ISOLATED"])
def test_the_current_margin_type_again_is_4046(client, value):
    if value == "ISOLATED":
        margin_type(client, "ETHUSD_PERP", "ISOLATED")
    assert error_of(margin_type(client, "ETHUSD_PERP", value)) == NO_NEED_MARGIN


def test_a_fresh_symbol_is_crossed(client):
    assert error_of(margin_type(client, "BTCUSD_PERP", "CROSSED")) == NO_NEED_MARGIN


def test_margin_type_is_kept_per_account_and_symbol(make_client):
    client = make_client(accounts=(AccountConfig("other", "othersecret"),))
    margin_type(client, "BTCUSD_PERP", "ISOLATED")
    query = signed(
        {"symbol": "BTCUSD_PERP", "marginType": "ISOLATED", "timestamp": FROZEN_MS}, "othersecret"
    )
    response = client.post("/dapi/v1/marginType", query, api_key="other")
    assert response.get_json() == SUCCESS
    assert margin_type(client, "ETHUSD_PERP", "ISOLATED").get_json() == SUCCESS


@pytest.mark.parametrize("side", ["BOTH", "LONG", "SHORT"])
def test_changing_the_margin_type_with_a_position_open_on_any_side_is_4048(client, side):
    if side != "BOTH":
        hedge(client)
    seed(client, "BTCUSD_PERP", "-5" if side == "SHORT" else "5", side)
    assert error_of(margin_type(client, "BTCUSD_PERP", "ISOLATED")) == MARGIN_WITH_POSITION
    assert margin_type(client, "ETHUSD_PERP", "ISOLATED").get_json() == SUCCESS


def test_no_change_is_checked_before_the_open_position(client):
    seed(client, "BTCUSD_PERP", "5")
    assert error_of(margin_type(client, "BTCUSD_PERP", "CROSSED")) == NO_NEED_MARGIN


@pytest.mark.parametrize("value", ["isolated", "CROSS", "Isolated", "BOTH", "ISOLATED "])
def test_a_margin_type_other_than_the_exact_names_is_1130(client, value):
    assert error_of(margin_type(client, "BTCUSD_PERP", value)) == (
        400,
        -1130,
        "Data sent for parameter 'marginType' is not valid.",
    )


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "symbol"),
        ({"marginType": "ISOLATED"}, "symbol"),
        ({"symbol": "BTCUSD_PERP"}, "marginType"),
        ({"symbol": "BTCUSD_PERP", "marginType": ""}, "marginType"),
    ],
)
def test_margin_type_needs_symbol_then_margin_type(client, params, expected):
    assert error_of(post(client, "/dapi/v1/marginType", **params)) == (
        400,
        -1102,
        f"Mandatory parameter '{expected}' was not sent, was empty/null, or malformed.",
    )


def test_an_unknown_symbol_is_1121_before_a_bad_margin_type(client):
    assert error_of(margin_type(client, "XRPUSD_PERP", "bad")) == (400, -1121, "Invalid symbol.")


def test_margin_type_is_signed(client):
    response = client.post(
        "/dapi/v1/marginType", body="symbol=BTCUSD_PERP&marginType=ISOLATED&timestamp=1"
    )
    assert error_of(response)[1] == -1102
    assert error_of(client.post("/dapi/v1/marginType", api_key=None))[1] == -2014


def test_strict_params_refuse_unknown_parameters_before_the_symbol(make_client):
    client = make_client(strict_params=True)
    response = post(client, "/dapi/v1/marginType", symbol="NOPE", marginType="X", extra="1")
    assert error_of(response)[1] == -1104


# -- /dapi/v1/positionSide/dual -----------------------------------------------------------


def test_position_mode_starts_one_way_and_switches(client):
    response = get(client, "/dapi/v1/positionSide/dual")
    assert response.get_data() == b'{"dualSidePosition":false}'
    assert position_mode(client, "true").get_json() == SUCCESS
    assert get(client, "/dapi/v1/positionSide/dual").get_json() == {"dualSidePosition": True}
    assert position_mode(client, "false").get_json() == SUCCESS
    assert get(client, "/dapi/v1/positionSide/dual").get_json() == {"dualSidePosition": False}


@pytest.mark.parametrize("value", ["TRUE", "True", "tRuE"])
def test_dual_side_position_is_read_in_any_case(client, value):
    assert position_mode(client, value).get_json() == SUCCESS
    assert get(client, "/dapi/v1/positionSide/dual").get_json() == {"dualSidePosition": True}


def test_the_current_mode_again_is_4059(client):
    assert error_of(position_mode(client, "false")) == NO_NEED_SIDE
    position_mode(client, "true")
    assert error_of(position_mode(client, "TRUE")) == NO_NEED_SIDE


@pytest.mark.parametrize("symbol", ["BTCUSD_PERP", "ETHUSD_PERP"])
def test_changing_the_mode_with_any_position_open_is_4068(client, symbol):
    seed(client, symbol, "-3")
    assert error_of(position_mode(client, "true")) == SIDE_WITH_POSITION
    assert get(client, "/dapi/v1/positionSide/dual").get_json() == {"dualSidePosition": False}


def test_leaving_hedge_mode_with_a_hedge_position_open_is_4068(client):
    hedge(client)
    seed(client, "BTCUSD_PERP", "4", "LONG")
    assert error_of(position_mode(client, "false")) == SIDE_WITH_POSITION


def test_no_change_is_checked_before_the_open_positions(client):
    seed(client, "BTCUSD_PERP", "4")
    assert error_of(position_mode(client, "false")) == NO_NEED_SIDE


@pytest.mark.parametrize("value", ["yes", "1", "0", "truee", "null"])
def test_dual_side_position_other_than_true_or_false_is_1130(client, value):
    assert error_of(position_mode(client, value)) == (
        400,
        -1130,
        "Data sent for parameter 'dualSidePosition' is not valid.",
    )


def test_dual_side_position_is_mandatory(client):
    assert error_of(post(client, "/dapi/v1/positionSide/dual")) == (
        400,
        -1102,
        "Mandatory parameter 'dualSidePosition' was not sent, was empty/null, or malformed.",
    )


# -- weights ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "params", "weight"),
    [
        ("POST", "/dapi/v1/marginType", {"symbol": "BTCUSD_PERP", "marginType": "ISOLATED"}, 1),
        ("POST", "/dapi/v1/positionSide/dual", {"dualSidePosition": "true"}, 1),
        ("GET", "/dapi/v1/positionSide/dual", {}, 30),
        ("GET", "/dapi/v1/account", {}, 5),
        ("GET", "/dapi/v1/balance", {}, 1),
    ],
)
def test_each_route_weighs_its_documented_weight(client, method, path, params, weight):
    send = post if method == "POST" else get
    first = send(client, path, **params)
    assert first.headers[WEIGHT] == str(weight)
    second = send(client, path, **params)  # a rejected request (-4046, -4059) weighs the same
    assert second.headers[WEIGHT] == str(2 * weight)


# -- leverage: the account's cap --------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "max_leverage", "code", "msg"),
    [
        ("country", 10, -4201, "Users in your location/country can only access a maximum "
         "leverage of 10"),
        (None, 7, -4201, "Users in your location/country can only access a maximum leverage of 7"),
        ("new_account", None, -4200, "More than 20x leverage is available 30 days after Futures "
         "account registration."),
        ("kyc", 20, -4194, "Intermediate Personal Verification is required for adjusting "
         "leverage over 20x."),
        ("position_limit", None, -4202, "Current symbol leverage cannot exceed 20 when using "
         "position limit adjustment service."),
    ],
)  # fmt: skip
def test_leverage_above_the_accounts_cap_answers_its_rules_error(
    make_client, rule, max_leverage, code, msg
):
    client = capped(make_client, max_leverage, rule)
    cap = max_leverage or 20
    assert error_of(capped_leverage(client, "BTCUSD_PERP", cap + 1)) == (400, code, msg)
    assert capped_leverage(client, "BTCUSD_PERP", cap).get_json()["leverage"] == cap
    assert capped_leverage(client, "BTCUSD_PERP", 1).status_code == 200


def test_the_cap_binds_only_its_account(make_client):
    client = capped(make_client, 10, "country")
    assert client.change_leverage("BTCUSD_PERP", 125).status_code == 200


def test_the_leverage_range_is_checked_before_the_cap(make_client):
    client = capped(make_client, 10, "country")
    assert error_of(capped_leverage(client, "BTCUSD_PERP", 126))[1] == -4028
    assert error_of(capped_leverage(client, "BTCUSD_PERP", 0))[1] == -4028


def test_the_cap_is_checked_before_the_position_rules(make_client):
    client = capped(make_client, 10, "country")
    body = {"api_key": "capped", "symbol": "BTCUSD_PERP", "positionAmt": "10000000"}
    admin_ok(client, "/positions", body)
    assert error_of(capped_leverage(client, "BTCUSD_PERP", 50))[1] == -4201


def test_a_fresh_account_starts_under_its_cap(make_client):
    client = capped(make_client, 5, "country")
    query = signed({"timestamp": FROZEN_MS}, "cappedsecret")
    answer = client.get("/dapi/v1/positionRisk", query, api_key="capped").get_json()
    btc = next(r for r in answer if r["symbol"] == "BTCUSD_PERP")
    assert (btc["leverage"], btc["maxQty"]) == ("5", "950")
    demo = next(r for r in rows(client) if r["symbol"] == "BTCUSD_PERP")
    assert demo["leverage"] == "20"


def test_a_cap_above_20_leaves_the_start_at_20(make_client):
    client = capped(make_client, 50, "country")
    query = signed({"timestamp": FROZEN_MS}, "cappedsecret")
    answer = client.get("/dapi/v1/positionRisk", query, api_key="capped").get_json()
    assert {r["leverage"] for r in answer} == {"20"}


# -- hedge mode: positions per side, shared leverage -------------------------------------------


def test_hedge_mode_shows_both_long_and_short_rows_per_symbol(client):
    hedge(client)
    seed(client, "BTCUSD_PERP", "30", "LONG")
    seed(client, "BTCUSD_PERP", "-20", "SHORT")
    btc = [r for r in rows(client, pair="BTCUSD") if r["symbol"] == "BTCUSD_PERP"]
    assert [(r["positionSide"], r["positionAmt"], r["notionalValue"]) for r in btc] == [
        ("BOTH", "0", "0"),
        ("LONG", "30", "0.03000000"),
        ("SHORT", "-20", "-0.02000000"),
    ]
    assert len(rows(client)) == 3 * 6


def test_one_way_mode_shows_one_both_row_per_symbol(client):
    assert {r["positionSide"] for r in rows(client)} == {"BOTH"}
    assert len(rows(client)) == 6


def test_hedge_leverage_compares_max_qty_with_both_sides_together(client):
    # BTCUSD_PERP at 100000: 3000 contracts are 3 BTC; 125x allows 5 BTC.
    hedge(client)
    seed(client, "BTCUSD_PERP", "3000", "LONG")
    assert client.change_leverage("BTCUSD_PERP", 125).status_code == 200
    client.change_leverage("BTCUSD_PERP", 20)
    seed(client, "BTCUSD_PERP", "-2001", "SHORT")
    assert error_of(client.change_leverage("BTCUSD_PERP", 125)) == EXCEEDS
    seed(client, "BTCUSD_PERP", "-2000", "SHORT")  # 5 BTC in all: equal is allowed
    assert client.change_leverage("BTCUSD_PERP", 125).status_code == 200


@pytest.mark.parametrize(("side", "amount"), [("LONG", "1"), ("SHORT", "-1")])
def test_lowering_isolated_leverage_with_either_side_open_is_4150(client, side, amount):
    hedge(client)
    margin_type(client, "ETHUSD_PERP", "ISOLATED")
    seed(client, "ETHUSD_PERP", amount, side)
    assert error_of(client.change_leverage("ETHUSD_PERP", 10)) == ISOLATED_REDUCTION
    rows_now = [r for r in rows(client, pair="ETHUSD") if r["symbol"] == "ETHUSD_PERP"]
    assert {r["leverage"] for r in rows_now} == {"20"}  # one leverage for all sides


def test_the_margin_type_set_through_the_api_drives_4150(client):
    seed(client, "BTCUSD_PERP", "5")
    assert client.change_leverage("BTCUSD_PERP", 10).status_code == 200  # cross: allowed
    seed(client, "BTCUSD_PERP", "0")
    margin_type(client, "BTCUSD_PERP", "ISOLATED")
    seed(client, "BTCUSD_PERP", "5")
    assert error_of(client.change_leverage("BTCUSD_PERP", 5)) == ISOLATED_REDUCTION


# -- GET /dapi/v1/account -------------------------------------------------------------------


ASSET_KEYS = [
    "asset",
    "walletBalance",
    "unrealizedProfit",
    "marginBalance",
    "maintMargin",
    "initialMargin",
    "positionInitialMargin",
    "openOrderInitialMargin",
    "maxWithdrawAmount",
    "crossWalletBalance",
    "crossUnPnl",
    "availableBalance",
    "updateTime",
]
ACCOUNT_POSITION_KEYS = [
    "symbol",
    "positionAmt",
    "initialMargin",
    "maintMargin",
    "unrealizedProfit",
    "positionInitialMargin",
    "openOrderInitialMargin",
    "leverage",
    "isolated",
    "positionSide",
    "entryPrice",
    "breakEvenPrice",
    "maxQty",
    "updateTime",
]


def test_account_shows_balances_as_set_and_zero_margins(client):
    admin_ok(client, "/balances", {"api_key": DEMO, "asset": "BTC", "walletBalance": "2.5"})
    account = get(client, "/dapi/v1/account").get_json()
    assert list(account) == [
        "assets",
        "positions",
        "canDeposit",
        "canTrade",
        "canWithdraw",
        "feeTier",
        "updateTime",
    ]
    assert (account["canDeposit"], account["canTrade"], account["canWithdraw"]) == (
        True,
        True,
        True,
    )
    assert (account["feeTier"], account["updateTime"]) == (0, 0)
    btc, eth = account["assets"]
    assert list(btc) == ASSET_KEYS
    wallet = "2.50000000"
    assert btc == {
        "asset": "BTC",
        "walletBalance": wallet,
        "unrealizedProfit": "0.00000000",
        "marginBalance": wallet,
        "maintMargin": "0.00000000",
        "initialMargin": "0.00000000",
        "positionInitialMargin": "0.00000000",
        "openOrderInitialMargin": "0.00000000",
        "maxWithdrawAmount": wallet,
        "crossWalletBalance": wallet,
        "crossUnPnl": "0.00000000",
        "availableBalance": wallet,
        "updateTime": FROZEN_MS,
    }
    assert (eth["asset"], eth["walletBalance"]) == ("ETH", "10.00000000")  # the demo's start
    assert eth["updateTime"] > 0


def test_an_asset_never_set_reads_zero_with_update_time_0(make_client):
    client = make_client(accounts=(AccountConfig("bare", "baresecret"),))
    query = signed({"timestamp": FROZEN_MS}, "baresecret")
    assets = client.get("/dapi/v1/account", query, api_key="bare").get_json()["assets"]
    assert [(a["asset"], a["walletBalance"], a["updateTime"]) for a in assets] == [
        ("BTC", "0.00000000", 0),
        ("ETH", "0.00000000", 0),
    ]


def test_account_position_rows_follow_the_mode(client):
    account = get(client, "/dapi/v1/account").get_json()
    assert [(p["symbol"], p["positionSide"]) for p in account["positions"][:1]] == [
        ("BTCUSD_PERP", "BOTH")
    ]
    assert len(account["positions"]) == 6
    hedge(client)
    margin_type(client, "BTCUSD_PERP", "ISOLATED")
    client.change_leverage("BTCUSD_PERP", 50)
    seed(client, "BTCUSD_PERP", "-7", "SHORT", markPrice="90000")
    positions = get(client, "/dapi/v1/account").get_json()["positions"]
    assert len(positions) == 18
    btc = [p for p in positions if p["symbol"] == "BTCUSD_PERP"]
    assert [p["positionSide"] for p in btc] == ["BOTH", "LONG", "SHORT"]
    short = btc[2]
    assert list(short) == ACCOUNT_POSITION_KEYS
    assert short == {
        "symbol": "BTCUSD_PERP",
        "positionAmt": "-7",
        "initialMargin": "0",
        "maintMargin": "0",
        "unrealizedProfit": "0.00000000",
        "positionInitialMargin": "0",
        "openOrderInitialMargin": "0",
        "leverage": "50",
        "isolated": True,
        "positionSide": "SHORT",
        "entryPrice": "90000.00000000",
        "breakEvenPrice": "90000.00000000",
        "maxQty": "25",
        "updateTime": FROZEN_MS,
    }
    assert (btc[0]["entryPrice"], btc[0]["updateTime"], btc[0]["isolated"]) == (
        "0.00000000",
        0,
        True,
    )


# -- GET /dapi/v1/balance -------------------------------------------------------------------


def test_balance_has_one_row_per_margin_asset(client):
    admin_ok(client, "/balances", {"api_key": DEMO, "asset": "ETH", "walletBalance": "0.00000001"})
    btc, eth = get(client, "/dapi/v1/balance").get_json()
    assert list(eth) == [
        "accountAlias",
        "asset",
        "balance",
        "withdrawAvailable",
        "crossWalletBalance",
        "crossUnPnl",
        "availableBalance",
        "updateTime",
    ]
    assert eth == {
        "accountAlias": eth["accountAlias"],
        "asset": "ETH",
        "balance": "0.00000001",
        "withdrawAvailable": "0.00000001",
        "crossWalletBalance": "0.00000001",
        "crossUnPnl": "0.00000000",
        "availableBalance": "0.00000001",
        "updateTime": FROZEN_MS,
    }
    assert (btc["asset"], btc["balance"]) == ("BTC", "1.00000000")


def test_the_account_alias_is_four_letters_stable_per_key(make_client):
    client = make_client(accounts=(AccountConfig("other", "othersecret"),))
    first = {r["accountAlias"] for r in get(client, "/dapi/v1/balance").get_json()}
    again = {r["accountAlias"] for r in get(client, "/dapi/v1/balance").get_json()}
    query = signed({"timestamp": FROZEN_MS}, "othersecret")
    other = {r["accountAlias"] for r in client.get("/dapi/v1/balance", query, api_key="other").json}
    assert first == again and len(first) == 1
    [alias] = first
    assert len(alias) == 4 and alias.isalpha() and alias.isascii()
    assert other != first


# -- quarterly delivery ------------------------------------------------------------------------


def test_delivery_drops_margin_type_leverage_and_positions_of_every_side(client):
    from mockserver.market import delivery_ms

    delivery = delivery_ms(2026, 12)
    client.exchange.clock.freeze_at(delivery - 60_000)
    hedge(client)
    now = delivery - 60_000

    def at_now(path: str, **params: Any):
        return client.post(path, body=signed({**params, "timestamp": now}))

    assert at_now("/dapi/v1/marginType", symbol="BTCUSD_261225", marginType="ISOLATED").json == (
        SUCCESS
    )
    at_now("/dapi/v1/leverage", symbol="BTCUSD_261225", leverage=5)
    seed(client, "BTCUSD_261225", "3", "LONG")
    seed(client, "BTCUSD_261225", "-3", "SHORT")
    client.exchange.clock.freeze_at(delivery)
    state = client.admin("GET", "/state").get_json()["accounts"][0]
    assert state["symbols"] == {} and state["positions"] == []
    store = client.exchange.store
    assert store.margin_type_of(DEMO, "BTCUSD_261225") == "cross"
    assert store.position_of(DEMO, "BTCUSD_261225", "LONG") is None
    assert store.position_of(DEMO, "BTCUSD_261225", "SHORT") is None


# -- the bracket wire format -------------------------------------------------------------------


def test_bracket_ratios_and_cum_always_carry_a_decimal_point(client):
    body = get(client, "/dapi/v2/leverageBracket", symbol="BTCUSD_PERP").get_data(as_text=True)
    assert '"maintMarginRatio":0.004,"cum":0.0}' in body
    assert '"cum":837.93}' in body
    v1 = get(client, "/dapi/v1/leverageBracket", pair="ETHUSD").get_data(as_text=True)
    assert '"maintMarginRatio":0.05,"cum":14.0}' in v1
    assert '"initialLeverage":50,' in v1 and '"bracket":1,' in v1
