"""The reference client against the live mock (the `dapi_mock` pytest fixture)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from contracts.client import (
    ApiError,
    ApiKeyFormatInvalid,
    ApiKeyRejected,
    DapiClient,
    IllegalCharacters,
    InvalidLeverage,
    InvalidParameter,
    InvalidSignature,
    InvalidSymbol,
    LeverageCapExceeded,
    MissingParameter,
    NoChangeNeeded,
    NotFound,
    PositionExists,
    RateLimited,
    ServerError,
    TimestampOutsideWindow,
)
from contracts.signing import HmacAuth, new_pem_pair
from tests.helpers import COINM_SECRET, SPOT_KEY, SPOT_SECRET

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a fixed point for the frozen mock clock

STALE_MSG = "Timestamp for this request is outside of the recvWindow."
AHEAD_MSG = "Timestamp for this request was 1000ms ahead of the server's time."
SYMBOL_RANGE_MSG = (
    "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'."
)


@pytest.fixture
def connect(dapi_mock: Any) -> Iterator[Callable[..., DapiClient]]:
    """Clients on the mock's demo HMAC account unless told otherwise, closed afterwards."""
    clients: list[DapiClient] = []

    def build(**kwargs: Any) -> DapiClient:
        kwargs.setdefault("api_key", dapi_mock.api_key)
        if not {"secret", "private_key", "auth"} & kwargs.keys():
            kwargs["secret"] = dapi_mock.secret
        kwargs.setdefault("get_retries", 0)
        client = DapiClient(dapi_mock.url, **kwargs)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def frozen(dapi_mock: Any) -> int:
    dapi_mock.clock.freeze(NOW)
    return NOW


def _at(ms: int) -> Callable[[], int]:
    return lambda: ms


def _assert_error(error: ApiError, cls: type[ApiError], status: int, code: int, msg: str) -> None:
    assert type(error) is cls
    assert (error.status, error.code, error.msg) == (status, code, msg)
    assert error.headers["Content-Type"].startswith("application/json")


# --- every endpoint --------------------------------------------------------------


def test_public_endpoints(connect: Callable[..., DapiClient], frozen: int) -> None:
    client = connect()

    client.ping()
    client.spot_ping()
    assert client.server_time() == frozen
    assert client.spot_time() == frozen
    assert client.used_weight is not None and client.used_weight >= 1


def test_exchange_info_lists_the_shipped_symbols(connect: Callable[..., DapiClient]) -> None:
    info = connect().exchange_info()

    symbols = {row["symbol"]: row for row in info["symbols"]}
    assert {"BTCUSD_PERP", "ETHUSD_PERP"} <= symbols.keys()
    assert len(symbols) == 6
    assert symbols["BTCUSD_PERP"]["contractSize"] == 100
    assert info["timezone"] == "UTC"


@pytest.mark.parametrize("params_in", ["body", "query", "split"])
@pytest.mark.parametrize(
    ("symbol", "leverage", "max_qty"),
    [
        ("BTCUSD_PERP", 125, "5"),
        ("BTCUSD_PERP", 20, "150"),
        ("BTCUSD_PERP", 1, "3500"),
        ("ETHUSD_PERP", 100, "15"),
        ("ETHUSD_PERP", 75, "100"),
    ],
)
def test_change_leverage(
    connect: Callable[..., DapiClient], params_in: str, symbol: str, leverage: int, max_qty: str
) -> None:
    change = connect(params_in=params_in, recv_window=5000).change_leverage(symbol, leverage)

    assert (change.symbol, change.leverage, change.max_qty) == (symbol, leverage, Decimal(max_qty))


def test_position_risk_reports_the_new_leverage(connect: Callable[..., DapiClient]) -> None:
    client = connect()
    client.change_leverage("BTCUSD_PERP", 50)

    rows = {row.symbol: row for row in client.position_risk()}

    assert len(rows) == 6
    btc = rows["BTCUSD_PERP"]
    assert (btc.leverage, btc.max_qty, btc.position_amt) == (50, Decimal(25), Decimal(0))
    assert (btc.margin_type, btc.position_side, btc.is_auto_add_margin) == ("cross", "BOTH", False)
    assert rows["ETHUSD_PERP"].leverage == 20  # a fresh account starts at 20


def test_position_risk_filters(connect: Callable[..., DapiClient]) -> None:
    client = connect()

    by_pair = client.position_risk(pair="ETHUSD")
    by_asset = client.position_risk(margin_asset="BTC")

    assert len(by_pair) == 3 and all(row.symbol.startswith("ETHUSD_") for row in by_pair)
    assert len(by_asset) == 3 and all(row.symbol.startswith("BTCUSD_") for row in by_asset)


def test_leverage_brackets_v2(connect: Callable[..., DapiClient]) -> None:
    client = connect()

    everything = client.leverage_brackets()
    (btc,) = client.leverage_brackets("BTCUSD_PERP")

    assert len(everything) == 6
    assert btc.symbol == "BTCUSD_PERP"
    assert len(btc.brackets) == 10
    first, last = btc.brackets[0], btc.brackets[-1]
    assert (first.bracket, first.initial_leverage, first.qty_floor, first.qty_cap) == (
        1,
        125,
        Decimal(0),
        Decimal(5),
    )
    assert first.maint_margin_ratio == Decimal("0.004")
    assert (last.initial_leverage, last.qty_cap, last.cum) == (1, Decimal(3500), Decimal("837.93"))
    # docs/behaviour.md#brackets: cum_i = cum_{i-1} + floor_i * (mmr_i - mmr_{i-1}), exactly,
    # in Decimal.
    for before, after in zip(btc.brackets, btc.brackets[1:], strict=False):
        expected = before.cum + after.qty_floor * (
            after.maint_margin_ratio - before.maint_margin_ratio
        )
        assert after.cum == expected


def test_leverage_brackets_v1_gives_the_quarterly_table(connect: Callable[..., DapiClient]) -> None:
    (btc,) = connect().leverage_brackets_v1("BTCUSD")

    assert btc.pair == "BTCUSD"
    assert btc.brackets[0].initial_leverage == 50
    assert btc.brackets[0].qty_cap == Decimal(10)


def test_generic_request_reaches_sapi(connect: Callable[..., DapiClient]) -> None:
    client = connect()

    assert client.request("GET", "/sapi/v1/capital/config/getall", signed=True) == []
    assert client.request("GET", "/sapi/v1/margin/allPairs", signed=True) == []


# --- signing schemes ---------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["rsa", "ed25519"])
def test_rsa_and_ed25519_accounts(
    dapi_mock: Any, connect: Callable[..., DapiClient], scheme: str
) -> None:
    private_pem, public_pem = new_pem_pair(scheme)
    dapi_mock.accounts.add("asymmetrickey1", public_key=public_pem)

    for params_in in ("body", "query", "split"):
        client = connect(api_key="asymmetrickey1", private_key=private_pem, params_in=params_in)
        assert client.change_leverage("ETHUSD_PERP", 10).max_qty == Decimal(5000)
        assert client.position_risk(pair="ETHUSD")[0].leverage == 10


def test_a_different_private_key_is_an_invalid_signature(
    dapi_mock: Any, connect: Callable[..., DapiClient]
) -> None:
    _, public_pem = new_pem_pair("ed25519")
    other_private, _ = new_pem_pair("ed25519")
    dapi_mock.accounts.add("edkey2", public_key=public_pem)

    with pytest.raises(ApiError) as caught:
        connect(api_key="edkey2", private_key=other_private).change_leverage("BTCUSD_PERP", 20)

    _assert_error(
        caught.value, InvalidSignature, 400, -1022, "Signature for this request is not valid."
    )


@pytest.mark.parametrize("params_in", ["query", "split"])
def test_coinm_spec_vectors_are_accepted(
    dapi_mock: Any, connect: Callable[..., DapiClient], params_in: str
) -> None:
    dapi_mock.clock.freeze(1591702613943)
    dapi_mock.accounts.add("coinmdocs", secret=COINM_SECRET)
    client = connect(
        api_key="coinmdocs",
        secret=COINM_SECRET,
        recv_window=5000,
        params_in=params_in,
        clock_ms=_at(1591702613943),
    )

    change = client.change_leverage("BTCUSD_PERP", 20)

    assert (change.leverage, change.max_qty, change.symbol) == (20, Decimal(150), "BTCUSD_PERP")


@pytest.mark.parametrize(
    ("query", "body"),
    [
        (
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
            "&recvWindow=5000&timestamp=1499827319559",
            "",
        ),
        (
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC",
            "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559",
        ),
    ],
)
def test_spot_spec_vectors_pass_the_signature_and_stop_at_1102(
    dapi_mock: Any, query: str, body: str
) -> None:
    dapi_mock.clock.freeze(1499827319559)
    dapi_mock.accounts.add(SPOT_KEY, secret=SPOT_SECRET)

    response = requests.post(
        f"{dapi_mock.url}/dapi/v1/leverage?{query}",
        data=body or None,
        headers={"Content-Type": "application/x-www-form-urlencoded"} if body else {},
        auth=HmacAuth(SPOT_KEY, SPOT_SECRET),
        timeout=10,
    )

    assert response.status_code == 400
    assert response.json() == {
        "code": -1102,
        "msg": "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed.",
    }


# --- time --------------------------------------------------------------------------


def test_time_sync_absorbs_a_skewed_clock(
    dapi_mock: Any, connect: Callable[..., DapiClient]
) -> None:
    dapi_mock.clock.offset(30_000)

    with pytest.raises(TimestampOutsideWindow):
        connect().change_leverage("BTCUSD_PERP", 20)
    synced = connect(time_sync=True)
    assert synced.change_leverage("BTCUSD_PERP", 20).leverage == 20
    assert 29_000 < synced.time_offset_ms < 31_000


@pytest.mark.parametrize("local_ms", [NOW - 5000, NOW, NOW + 999])
def test_timestamps_inside_the_window_are_accepted(
    connect: Callable[..., DapiClient], frozen: int, local_ms: int
) -> None:
    assert connect(clock_ms=_at(local_ms)).change_leverage("BTCUSD_PERP", 20).leverage == 20


def test_stale_timestamp_is_rejected_with_1021(
    connect: Callable[..., DapiClient], frozen: int
) -> None:
    with pytest.raises(ApiError) as caught:
        connect(clock_ms=_at(frozen - 5001)).change_leverage("BTCUSD_PERP", 20)

    _assert_error(caught.value, TimestampOutsideWindow, 400, -1021, STALE_MSG)


def test_timestamp_1000ms_ahead_is_rejected_with_1021(
    connect: Callable[..., DapiClient], frozen: int
) -> None:
    with pytest.raises(ApiError) as caught:
        connect(clock_ms=_at(frozen + 1000)).change_leverage("BTCUSD_PERP", 20)

    _assert_error(caught.value, TimestampOutsideWindow, 400, -1021, AHEAD_MSG)


def test_a_wider_recv_window_accepts_an_older_timestamp(
    connect: Callable[..., DapiClient], frozen: int
) -> None:
    client = connect(clock_ms=_at(frozen - 9000), recv_window=10_000)

    assert client.change_leverage("BTCUSD_PERP", 20).leverage == 20


# --- error rows ----------------------------------------------------------------------


def test_wrong_secret_is_rejected_with_1022(connect: Callable[..., DapiClient]) -> None:
    with pytest.raises(ApiError) as caught:
        connect(secret="notthesecret").change_leverage("BTCUSD_PERP", 20)

    _assert_error(
        caught.value, InvalidSignature, 400, -1022, "Signature for this request is not valid."
    )


@pytest.mark.parametrize("api_key", ["bad-key!", "a" * 65, "key with space"])
def test_key_not_of_key_form_is_rejected_with_2014(
    connect: Callable[..., DapiClient], api_key: str
) -> None:
    with pytest.raises(ApiError) as caught:
        connect(api_key=api_key).change_leverage("BTCUSD_PERP", 20)

    _assert_error(caught.value, ApiKeyFormatInvalid, 401, -2014, "API-key format invalid.")


def test_unknown_key_is_rejected_with_2015(connect: Callable[..., DapiClient]) -> None:
    with pytest.raises(ApiError) as caught:
        connect(api_key="nosuchkey123").position_risk()

    _assert_error(
        caught.value, ApiKeyRejected, 401, -2015, "Invalid API-key, IP, or permissions for action"
    )


def test_removed_account_is_rejected_with_2015(
    dapi_mock: Any, connect: Callable[..., DapiClient]
) -> None:
    dapi_mock.accounts.add("shortlived", secret="s3cret")
    client = connect(api_key="shortlived", secret="s3cret")
    client.change_leverage("BTCUSD_PERP", 20)
    dapi_mock.accounts.remove("shortlived")

    with pytest.raises(ApiKeyRejected):
        client.change_leverage("BTCUSD_PERP", 20)


def test_missing_leverage_is_rejected_with_1102(connect: Callable[..., DapiClient]) -> None:
    with pytest.raises(ApiError) as caught:
        connect().request("POST", "/dapi/v1/leverage", {"symbol": "BTCUSD_PERP"}, signed=True)

    _assert_error(
        caught.value,
        MissingParameter,
        400,
        -1102,
        "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed.",
    )


def test_unknown_symbol_is_rejected_with_1121(connect: Callable[..., DapiClient]) -> None:
    with pytest.raises(ApiError) as caught:
        connect().change_leverage("XRPUSD_PERP", 20)

    _assert_error(caught.value, InvalidSymbol, 400, -1121, "Invalid symbol.")


def test_unknown_pair_is_rejected_with_1121(connect: Callable[..., DapiClient]) -> None:
    with pytest.raises(InvalidSymbol):
        connect().leverage_brackets_v1("XRPUSD")


@pytest.mark.parametrize("leverage", [101, 0])
def test_leverage_out_of_range_is_rejected_with_4028(
    connect: Callable[..., DapiClient], leverage: int
) -> None:
    with pytest.raises(ApiError) as caught:
        connect().change_leverage("ETHUSD_PERP", leverage)

    _assert_error(caught.value, InvalidLeverage, 400, -4028, f"Leverage {leverage} is not valid")


def test_lowercase_symbol_is_rejected_with_1100(connect: Callable[..., DapiClient]) -> None:
    with pytest.raises(ApiError) as caught:
        connect().change_leverage("btcusd_perp", 20)

    _assert_error(caught.value, IllegalCharacters, 400, -1100, SYMBOL_RANGE_MSG)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/dapi/v1/nope", 404),
        ("POST", "/dapi/v9/leverage", 404),
        ("GET", "/dapi/v1/leverage", 405),
    ],
)
def test_unknown_path_or_method_is_5000(
    connect: Callable[..., DapiClient], method: str, path: str, status: int
) -> None:
    with pytest.raises(ApiError) as caught:
        connect().request(method, path)

    _assert_error(caught.value, NotFound, status, -5000, f"Path {path}, Method {method} is invalid")


# --- faults: retries as the module docstring promises ---------------------------------


def _journal(dapi_mock: Any, path: str) -> list[dict[str, Any]]:
    return [entry for entry in dapi_mock.requests() if entry["path"] == path]


def test_429_is_retried_after_retry_after_with_a_fresh_signature(
    dapi_mock: Any, connect: Callable[..., DapiClient]
) -> None:
    dapi_mock.faults.add(
        {
            "match": {"method": "POST", "path": "/dapi/v1/leverage"},
            "action": {"type": "rate_limit", "status": 429, "retry_after": 2},
            "times": 1,
        }
    )
    dapi_mock.clock.freeze(NOW)
    local = [NOW]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        # Sleeping moves both clocks, so the retry is stamped (and judged) later.
        sleeps.append(seconds)
        local[0] += int(seconds * 1000)
        dapi_mock.clock.advance(int(seconds * 1000))

    client = connect(sleep=sleep, clock_ms=lambda: local[0], params_in="query")

    assert client.change_leverage("BTCUSD_PERP", 20).leverage == 20

    assert sleeps == [2.0]
    first, second = _journal(dapi_mock, "/dapi/v1/leverage")
    assert (first["status"], second["status"]) == (429, 200)
    assert f"timestamp={NOW}&" in first["query"]
    assert f"timestamp={NOW + 2000}&" in second["query"]


def test_long_retry_after_raises_rate_limited(
    dapi_mock: Any, connect: Callable[..., DapiClient]
) -> None:
    dapi_mock.faults.add(
        {
            "match": {"method": "GET", "path": "/dapi/v1/time"},
            "action": {"type": "rate_limit", "status": 429, "retry_after": 60},
            "times": 1,
        }
    )
    sleeps: list[float] = []

    with pytest.raises(RateLimited) as caught:
        connect(sleep=sleeps.append).server_time()

    assert (caught.value.status, caught.value.retry_after) == (429, 60.0)
    assert sleeps == []


def test_post_503_is_not_retried(dapi_mock: Any, connect: Callable[..., DapiClient]) -> None:
    dapi_mock.faults.add(
        {
            "match": {"method": "POST", "path": "/dapi/v1/leverage"},
            "action": {
                "type": "apply_then_error",
                "status": 503,
                "code": -1001,
                "msg": "Internal error; unable to process your request. Please try again.",
            },
            "times": 1,
        }
    )
    client = connect()

    with pytest.raises(ServerError) as caught:
        client.change_leverage("BTCUSD_PERP", 50)

    assert (caught.value.status, caught.value.code) == (503, -1001)
    assert len(_journal(dapi_mock, "/dapi/v1/leverage")) == 1
    # The ambiguous answer hid a change that was applied: why POSTs are not retried.
    btc = next(r for r in client.position_risk() if r.symbol == "BTCUSD_PERP")
    assert btc.leverage == 50


def test_get_is_retried_on_a_dropped_connection(
    dapi_mock: Any, connect: Callable[..., DapiClient]
) -> None:
    dapi_mock.faults.add(
        {
            "match": {"method": "GET", "path": "/dapi/v1/time"},
            "action": {"type": "drop"},
            "times": 1,
        }
    )
    client = connect(get_retries=1, sleep=lambda _s: None)

    assert client.server_time() > 0
    assert len(_journal(dapi_mock, "/dapi/v1/time")) == 2


# --- the set-up sequence (docs/behaviour.md#position-configuration) ---------------------------


def test_a_bots_set_up_sequence_reads_back_every_change(connect: Callable[..., DapiClient]) -> None:
    client = connect()
    assert client.position_mode() is False  # one-way at the start

    client.change_position_mode(True)
    client.change_margin_type("ETHUSD_PERP", "ISOLATED")
    client.change_leverage("ETHUSD_PERP", 10)

    assert client.position_mode() is True
    eth = [r for r in client.position_risk(pair="ETHUSD") if r.symbol == "ETHUSD_PERP"]
    # Hedge mode: BOTH, LONG and SHORT, one margin type and leverage for the symbol.
    assert [(r.position_side, r.margin_type, r.leverage) for r in eth] == [
        ("BOTH", "isolated", 10),
        ("LONG", "isolated", 10),
        ("SHORT", "isolated", 10),
    ]
    rows = [p for p in client.account().positions if p.symbol == "ETHUSD_PERP"]
    assert [(p.position_side, p.isolated, p.leverage) for p in rows] == [
        ("BOTH", True, 10),
        ("LONG", True, 10),
        ("SHORT", True, 10),
    ]


def test_asking_again_is_a_typed_no_change_with_binances_text(
    connect: Callable[..., DapiClient],
) -> None:
    client = connect()
    client.change_margin_type("BTCUSD_PERP", "ISOLATED")

    with pytest.raises(ApiError) as margin:
        client.change_margin_type("BTCUSD_PERP", "ISOLATED")
    with pytest.raises(ApiError) as mode:
        client.change_position_mode(False)

    # ccxt raises MarginModeAlreadySet only on this exact text (docs/behaviour.md#margin-type).
    _assert_error(margin.value, NoChangeNeeded, 400, -4046, "No need to change margin type.")
    _assert_error(mode.value, NoChangeNeeded, 400, -4059, "No need to change position side.")


def test_an_open_position_blocks_both_changes(
    dapi_mock: Any, connect: Callable[..., DapiClient]
) -> None:
    dapi_mock.positions.seed("BTCUSD_PERP", 5)
    client = connect()

    with pytest.raises(ApiError) as margin:
        client.change_margin_type("BTCUSD_PERP", "ISOLATED")
    with pytest.raises(ApiError) as mode:
        client.change_position_mode(True)

    _assert_error(
        margin.value,
        PositionExists,
        400,
        -4048,
        "Margin type cannot be changed if there exists position.",
    )
    _assert_error(
        mode.value,
        PositionExists,
        400,
        -4068,
        "Position side cannot be changed if there exists position.",
    )
    client.change_margin_type("ETHUSD_PERP", "ISOLATED")  # another symbol is free
    assert client.position_mode() is False


def test_a_margin_type_not_in_the_enum_is_1130(connect: Callable[..., DapiClient]) -> None:
    with pytest.raises(ApiError) as caught:
        connect().change_margin_type("BTCUSD_PERP", "isolated")  # type: ignore[arg-type]

    _assert_error(
        caught.value,
        InvalidParameter,
        400,
        -1130,
        "Data sent for parameter 'marginType' is not valid.",
    )


def test_account_and_balance_show_the_wallet_as_set(
    dapi_mock: Any, connect: Callable[..., DapiClient], frozen: int
) -> None:
    dapi_mock.balances.set("BTC", "2.5")
    client = connect(clock_ms=_at(frozen))

    account = client.account()
    balance = {row.asset: row for row in client.balance()}

    btc, eth = account.asset("BTC"), account.asset("ETH")
    assert btc is not None and eth is not None
    assert (btc.wallet_balance, btc.available_balance, btc.update_time) == (
        Decimal("2.5"),
        Decimal("2.5"),
        frozen,
    )
    assert eth.wallet_balance == Decimal(10)  # the demo account's start
    assert sorted(balance) == ["BTC", "ETH"]
    assert (balance["BTC"].balance, balance["BTC"].update_time) == (Decimal("2.5"), frozen)
    assert len({row.account_alias for row in balance.values()}) == 1
    assert {p.symbol for p in account.positions} == {r.symbol for r in client.position_risk()}


@pytest.mark.parametrize(
    ("rule", "cap", "code"),
    [
        ("country", 10, -4201),
        ("kyc", 20, -4194),
        ("new_account", 20, -4200),
        ("position_limit", 20, -4202),
    ],
)
def test_leverage_over_the_accounts_cap_is_a_typed_error_naming_the_cap(
    dapi_mock: Any, connect: Callable[..., DapiClient], rule: str, cap: int, code: int
) -> None:
    dapi_mock.accounts.add("capped", secret="s3cret", max_leverage=cap, max_leverage_rule=rule)
    client = connect(api_key="capped", secret="s3cret")

    assert client.change_leverage("BTCUSD_PERP", cap).leverage == cap
    with pytest.raises(LeverageCapExceeded) as caught:
        client.change_leverage("BTCUSD_PERP", cap + 1)

    assert (caught.value.status, caught.value.code, caught.value.max_leverage) == (400, code, cap)
