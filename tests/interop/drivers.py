"""How each real third-party client is pointed at the mock.

Every driver builds the *unmodified* library client with only its base URL
(and, where the library has no such switch, its URL table) changed, performs
one change-leverage call, and optionally reads the same symbol back through
the client's own position-risk call. The four clients of the set-up sequence
also run a trading bot's start (`set_up`: position mode, margin type,
leverage, then position mode, positions, account and balance read back) and
the two no-change calls (`no_change`). Results are read in the client's own
result shape (dict, pydantic model, ccxt's unified structures) and then
reduced to small plain values so that tests can compare all clients the same
way.

Facts used here (measured on the wire, see docs/behaviour.md#known-differences
and #position-configuration, and checked in the libraries' sources):

* binance-futures-connector 4.2.0: ``CMFutures(key, secret, base_url=...)``;
  RSA via ``private_key=<PEM>``; no Ed25519 (pycryptodome ``RSA.import_key``).
* python-binance 1.0.37: URLs are class attributes ``.format()``-ed in
  ``__init__``; a subclass with the mock's URLs (no ``{}``) is the only way to
  reach localhost. ``Client()`` pings ``/api/v3/ping`` while it is built;
  ``AsyncClient.create()`` pings and syncs its offset from ``/api/v3/time``.
  ``private_key=<PEM>``: longer than 120 characters means RSA, else Ed25519.
* ccxt 4.5.90: every entry of ``urls['api']`` is rewritten to the mock with
  its original path. A PEM passed as ``secret`` selects RSA (> 120 chars) or
  Ed25519. Default options call ``/sapi/v1/capital/config/getall``,
  ``/sapi/v1/margin/allPairs`` and ``/dapi/v1/exchangeInfo`` first.
* ccxt 4.5: ``set_margin_mode`` raises ``MarginModeAlreadySet`` when the
  answer's msg is exactly "No need to change margin type." (option
  ``throwMarginModeAlreadySet``, true by default); ``fetch_balance`` and
  ``fetch_margin_mode`` read /dapi/v1/account and skip asset rows whose
  ``updateTime`` is 0.
* binance-sdk-derivatives-trading-coin-futures 14.1.0:
  ``ConfigurationRestAPI(base_path=...)``; ``private_key=<PEM>`` without
  ``api_secret`` for RSA/Ed25519. Errors carry the *Binance* code in
  ``.status_code``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from contracts.signing import new_pem_pair

HMAC = "hmac"
RSA = "rsa"
ED25519 = "ed25519"
KEY_TYPES = (HMAC, RSA, ED25519)

# Timeouts: generous for a loaded CI machine, short enough to fail fast.
TIMEOUT_S = 10

Call = tuple[str, str]  # (method, path) as recorded in the mock's journal


# --------------------------------------------------------------------------
# credentials


@dataclass(frozen=True)
class Credentials:
    """What a client needs to sign: an API key plus an HMAC secret or a PEM key."""

    key_type: str
    api_key: str
    secret: str | None = None  # HMAC secret
    private_key_pem: str | None = None  # PKCS#8 PEM, for RSA / Ed25519
    public_key_pem: str | None = None  # SubjectPublicKeyInfo PEM, for the mock


@cache
def key_pair(key_type: str) -> tuple[str, str]:
    """A fresh (private PKCS#8 PEM, public SPKI PEM) pair, made once per session."""
    return new_pem_pair(key_type)


# --------------------------------------------------------------------------
# results


@dataclass
class Outcome:
    """The native result of one change-leverage call (plus position, if asked)."""

    result: Any
    leverage: dict[str, Any]  # {"symbol", "leverage", "maxQty"} read from `result`
    position: dict[str, Any] | None = None  # {"symbol", "leverage", "maxQty"} or None


@dataclass
class SetUp:
    """What a client read back after a bot's set-up sequence, as plain values."""

    result: Any  # the native answer of the position-mode change
    hedged: bool  # from the client's position-mode read
    leverage: dict[str, Any]  # {"symbol", "leverage", "maxQty"} of the leverage change
    sides: list[tuple[str, str, str]]  # positionRisk (positionSide, leverage, marginType)
    isolated: bool  # the symbol's margin type as the account view tells it
    wallet: dict[str, Decimal]  # asset -> wallet balance, from the account view
    balance: dict[str, Decimal]  # asset -> balance, from the balance view


def _position_row(rows: list[Any], symbol: str, get: Callable[[Any, str], Any]) -> dict[str, Any]:
    matching = [r for r in rows if get(r, "symbol") == symbol]
    assert len(matching) == 1, f"expected one positionRisk row for {symbol}, got {rows!r}"
    row = matching[0]
    return {
        "symbol": get(row, "symbol"),
        "leverage": get(row, "leverage"),
        "maxQty": get(row, "maxQty"),
    }


def _dict_get(row: Any, name: str) -> Any:
    return row[name]


def _sides(rows: list[dict[str, Any]], symbol: str) -> list[tuple[str, str, str]]:
    return [
        (r["positionSide"], r["leverage"], r["marginType"]) for r in rows if r["symbol"] == symbol
    ]


def _account_isolated(account: dict[str, Any], symbol: str) -> bool:
    flags = {p["isolated"] for p in account["positions"] if p["symbol"] == symbol}
    assert len(flags) == 1, f"expected one margin type for {symbol}, got {flags}"
    return flags.pop()


def _wallets(rows: list[dict[str, Any]], key: str) -> dict[str, Decimal]:
    return {r["asset"]: Decimal(r[key]) for r in rows}


# --------------------------------------------------------------------------
# drivers


@dataclass(frozen=True)
class Driver:
    """One client library (or one way of using it)."""

    id: str
    # Key types the client cannot sign with -> reason (the test is skipped).
    unsupported: dict[str, str] = field(default_factory=dict)
    # Does the client correct its timestamps from the server's clock?
    syncs_time: bool = False
    # Requests one fresh client makes for one change-leverage call.
    wire: tuple[Call, ...] = ()

    # -- to implement ------------------------------------------------------
    def change_leverage(
        self,
        base_url: str,
        creds: Credentials,
        symbol: str,
        leverage: int,
        *,
        with_position: bool = False,
    ) -> Outcome:
        raise NotImplementedError

    def set_up(self, base_url: str, creds: Credentials, symbol: str, leverage: int) -> SetUp:
        """Hedge mode, ISOLATED on `symbol`, `leverage`; then read everything back."""
        raise NotImplementedError

    def no_change(self, base_url: str, creds: Credentials, what: str, symbol: str) -> Any:
        """Ask for what a fresh account already has: `what` is "position_mode" (one-way)
        or "margin_type" (CROSSED on `symbol`)."""
        raise NotImplementedError

    def error_class(self, code: int) -> type[BaseException]:
        """The exception class the client raises for a Binance error code."""
        raise NotImplementedError

    def error_code(self, exc: BaseException) -> int:
        raise NotImplementedError

    def error_message(self, exc: BaseException) -> str:
        raise NotImplementedError

    def skip_reason(self, key_type: str) -> str | None:
        return self.unsupported.get(key_type)


# --- binance-futures-connector -------------------------------------------


@dataclass(frozen=True)
class FuturesConnectorDriver(Driver):
    def _client(self, base_url: str, creds: Credentials) -> Any:
        from binance.cm_futures import CMFutures

        if creds.key_type == HMAC:
            return CMFutures(
                key=creds.api_key, secret=creds.secret, base_url=base_url, timeout=TIMEOUT_S
            )
        return CMFutures(
            key=creds.api_key,
            private_key=creds.private_key_pem,
            base_url=base_url,
            timeout=TIMEOUT_S,
        )

    def change_leverage(self, base_url, creds, symbol, leverage, *, with_position=False):
        client = self._client(base_url, creds)
        try:
            result = client.change_leverage(symbol=symbol, leverage=leverage)
            # Native shape: the parsed JSON dict.
            assert isinstance(result, dict), result
            view = {k: result[k] for k in ("symbol", "leverage", "maxQty")}
            position = None
            if with_position:
                rows = client.get_position_risk(pair=symbol.split("_")[0])
                position = _position_row(rows, symbol, _dict_get)
            return Outcome(result, view, position)
        finally:
            client.session.close()

    def set_up(self, base_url, creds, symbol, leverage):
        client = self._client(base_url, creds)
        try:
            result = client.change_position_mode(dualSidePosition="true")
            client.change_margin_type(symbol=symbol, marginType="ISOLATED")
            changed = client.change_leverage(symbol=symbol, leverage=leverage)
            account = client.account()
            return SetUp(
                result,
                client.get_position_mode()["dualSidePosition"],
                {k: changed[k] for k in ("symbol", "leverage", "maxQty")},
                _sides(client.get_position_risk(pair=symbol.split("_")[0]), symbol),
                _account_isolated(account, symbol),
                _wallets(account["assets"], "walletBalance"),
                _wallets(client.balance(), "balance"),
            )
        finally:
            client.session.close()

    def no_change(self, base_url, creds, what, symbol):
        client = self._client(base_url, creds)
        try:
            if what == "position_mode":
                return client.change_position_mode(dualSidePosition="false")
            return client.change_margin_type(symbol=symbol, marginType="CROSSED")
        finally:
            client.session.close()

    def error_class(self, code):
        from binance.error import ClientError

        return ClientError

    def error_code(self, exc):
        return exc.error_code  # type: ignore[attr-defined]

    def error_message(self, exc):
        return exc.error_message  # type: ignore[attr-defined]


# --- python-binance ------------------------------------------------------


def _python_binance_urls(base_url: str) -> dict[str, str]:
    """Class attributes that replace python-binance's hard-wired hosts.

    No ``{}`` in them, so the ``.format(tld)`` in ``BaseClient.__init__`` is a
    no-op. Websocket URLs are pointed at the mock too, so nothing in the
    client could ever leave loopback (they are not used by these tests).
    """
    ws_base = "ws://" + urlsplit(base_url).netloc
    return {
        "API_URL": base_url + "/api",
        "MARGIN_API_URL": base_url + "/sapi",
        "WEBSITE_URL": base_url,
        "FUTURES_URL": base_url + "/fapi",
        "FUTURES_DATA_URL": base_url + "/futures/data",
        "FUTURES_COIN_URL": base_url + "/dapi",
        "FUTURES_COIN_DATA_URL": base_url + "/futures/data",
        "OPTIONS_URL": base_url + "/eapi",
        "OPTIONS_TESTNET_URL": base_url + "/eapi",
        "PAPI_URL": base_url + "/papi",
        "WS_API_URL": ws_base + "/ws-api/v3",
        "WS_FUTURES_URL": ws_base + "/ws-fapi/v1",
    }


def _python_binance_kwargs(creds: Credentials) -> dict[str, Any]:
    if creds.key_type == HMAC:
        return {"api_key": creds.api_key, "api_secret": creds.secret}
    return {"api_key": creds.api_key, "private_key": creds.private_key_pem}


def _python_binance_view(result: Any) -> dict[str, Any]:
    # Native shape: the parsed JSON dict.
    assert isinstance(result, dict), result
    return {k: result[k] for k in ("symbol", "leverage", "maxQty")}


@dataclass(frozen=True)
class PythonBinanceDriver(Driver):
    """``binance.client.Client`` with its default construction ping."""

    def change_leverage(self, base_url, creds, symbol, leverage, *, with_position=False):
        from binance.client import Client

        cls = type("MockedClient", (Client,), _python_binance_urls(base_url))
        # ping=True is the default: building the client calls GET /api/v3/ping.
        client = cls(**_python_binance_kwargs(creds))
        try:
            result = client.futures_coin_change_leverage(symbol=symbol, leverage=leverage)
            position = None
            if with_position:
                rows = client.futures_coin_position_information(pair=symbol.split("_")[0])
                position = _position_row(rows, symbol, _dict_get)
            return Outcome(result, _python_binance_view(result), position)
        finally:
            client.close_connection()

    def _sync_client(self, base_url: str, creds: Credentials) -> Any:
        from binance.client import Client

        cls = type("MockedClient", (Client,), _python_binance_urls(base_url))
        return cls(**_python_binance_kwargs(creds))

    def set_up(self, base_url, creds, symbol, leverage):
        client = self._sync_client(base_url, creds)
        try:
            result = client.futures_coin_change_position_mode(dualSidePosition="true")
            client.futures_coin_change_margin_type(symbol=symbol, marginType="ISOLATED")
            changed = client.futures_coin_change_leverage(symbol=symbol, leverage=leverage)
            account = client.futures_coin_account()
            return SetUp(
                result,
                client.futures_coin_get_position_mode()["dualSidePosition"],
                _python_binance_view(changed),
                _sides(client.futures_coin_position_information(pair=symbol.split("_")[0]), symbol),
                _account_isolated(account, symbol),
                _wallets(account["assets"], "walletBalance"),
                _wallets(client.futures_coin_account_balance(), "balance"),
            )
        finally:
            client.close_connection()

    def no_change(self, base_url, creds, what, symbol):
        client = self._sync_client(base_url, creds)
        try:
            if what == "position_mode":
                return client.futures_coin_change_position_mode(dualSidePosition="false")
            return client.futures_coin_change_margin_type(symbol=symbol, marginType="CROSSED")
        finally:
            client.close_connection()

    def error_class(self, code):
        from binance.exceptions import BinanceAPIException

        return BinanceAPIException

    def error_code(self, exc):
        return exc.code  # type: ignore[attr-defined]

    def error_message(self, exc):
        return exc.message  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PythonBinanceAsyncDriver(PythonBinanceDriver):
    """``binance.AsyncClient.create()``: pings, then syncs from /api/v3/time."""

    async def _run(self, base_url, creds, symbol, leverage, with_position):
        from binance.async_client import AsyncClient

        cls = type("MockedAsyncClient", (AsyncClient,), _python_binance_urls(base_url))
        client = await cls.create(**_python_binance_kwargs(creds))
        try:
            result = await client.futures_coin_change_leverage(symbol=symbol, leverage=leverage)
            position = None
            if with_position:
                rows = await client.futures_coin_position_information(pair=symbol.split("_")[0])
                position = _position_row(rows, symbol, _dict_get)
            return Outcome(result, _python_binance_view(result), position)
        finally:
            await client.close_connection()

    def change_leverage(self, base_url, creds, symbol, leverage, *, with_position=False):
        return asyncio.run(self._run(base_url, creds, symbol, leverage, with_position))


# --- ccxt ------------------------------------------------------------------


def _ccxt_api_urls(base_url: str) -> dict[str, Any]:
    import ccxt

    def rewrite(value: Any) -> Any:
        if isinstance(value, str):
            return base_url + urlsplit(value).path
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        return value

    return rewrite(ccxt.binancecoinm().urls["api"])


def _ccxt_payload(exc: BaseException) -> dict[str, Any]:
    # ccxt's message is "<exchange id> <raw response body>".
    _, _, body = str(exc).partition(" ")
    return json.loads(body)


@dataclass(frozen=True)
class CcxtDriver(Driver):
    """``ccxt.binancecoinm`` with its default options, plus ``options`` if given."""

    options: dict[str, Any] = field(default_factory=dict)
    # Call ccxt's public exchange.load_time_difference() before anything else.
    load_time_difference_first: bool = False

    def _exchange(self, base_url: str, creds: Credentials) -> Any:
        import ccxt

        config: dict[str, Any] = {
            "apiKey": creds.api_key,
            # A PEM as `secret` makes ccxt sign with RSA / Ed25519.
            "secret": creds.secret if creds.key_type == HMAC else creds.private_key_pem,
            "timeout": TIMEOUT_S * 1000,
            "urls": {"api": _ccxt_api_urls(base_url)},
        }
        if self.options:
            config["options"] = dict(self.options)
        return ccxt.binancecoinm(config)

    def change_leverage(self, base_url, creds, symbol, leverage, *, with_position=False):
        exchange = self._exchange(base_url, creds)
        try:
            if self.load_time_difference_first:
                exchange.load_time_difference()
            # set_leverage loads the markets itself, so the wire order is ccxt's own.
            unified = _ccxt_unified(symbol)
            result = exchange.set_leverage(leverage, unified)
            # Native shape: ccxt returns Binance's raw response dict.
            assert isinstance(result, dict), result
            view = {k: result[k] for k in ("symbol", "leverage", "maxQty")}
            exchange_symbol = exchange.market(unified)["id"]
            assert exchange_symbol == symbol, (exchange_symbol, symbol)
            position = None
            if with_position:
                rows = exchange.dapiPrivateGetPositionRisk({"pair": symbol.split("_")[0]})
                position = _position_row(rows, symbol, _dict_get)
            return Outcome(result, view, position)
        finally:
            exchange.session.close()

    def set_up(self, base_url, creds, symbol, leverage):
        exchange = self._exchange(base_url, creds)
        try:
            unified = _ccxt_unified(symbol)
            exchange.load_markets()
            result = exchange.set_position_mode(True, unified)
            exchange.set_margin_mode("isolated", unified)
            changed = exchange.set_leverage(leverage, unified)
            rows = exchange.dapiPrivateGetPositionRisk({"pair": symbol.split("_")[0]})
            # fetch_balance reads /dapi/v1/account; ccxt keeps only rows it deems initialised.
            totals = exchange.fetch_balance()["total"]
            return SetUp(
                result,
                exchange.fetch_position_mode(unified)["hedged"],
                {k: changed[k] for k in ("symbol", "leverage", "maxQty")},
                _sides(rows, symbol),
                exchange.fetch_margin_mode(unified)["marginMode"] == "isolated",
                {k: Decimal(str(v)) for k, v in totals.items() if v is not None},
                _wallets(exchange.dapiPrivateGetBalance(), "balance"),
            )
        finally:
            exchange.session.close()

    def no_change(self, base_url, creds, what, symbol):
        exchange = self._exchange(base_url, creds)
        try:
            unified = _ccxt_unified(symbol)
            exchange.load_markets()
            if what == "position_mode":
                return exchange.set_position_mode(False, unified)
            return exchange.set_margin_mode("cross", unified)
        finally:
            exchange.session.close()

    def error_class(self, code):
        import ccxt

        # -4046 by its exact text (ccxt 4.5's handle_errors), the others by code. ccxt picks
        # its per-market code table by Binance's host names, so on the mock's URL it uses
        # the common table: -4201 is an ExchangeError here, PermissionDenied on dapi.binance.com.
        return {
            -1021: ccxt.InvalidNonce,
            -4046: ccxt.MarginModeAlreadySet,
            -4059: ccxt.ExchangeError,
            -4201: ccxt.ExchangeError,
        }.get(code, ccxt.BadRequest)

    def error_code(self, exc):
        return _ccxt_payload(exc)["code"]

    def error_message(self, exc):
        return _ccxt_payload(exc)["msg"]


def _ccxt_unified(symbol: str) -> str:
    """BTCUSD_PERP -> BTC/USD:BTC (the perpetuals used by these tests)."""
    pair, _, suffix = symbol.partition("_")
    if suffix != "PERP" or not pair.endswith("USD"):
        raise ValueError(f"no unified ccxt symbol known for {symbol!r}")
    base = pair[: -len("USD")]
    return f"{base}/USD:{base}"


# --- official SDK ----------------------------------------------------------


@contextlib.contextmanager
def _no_sdk_model_warnings() -> Iterator[list[str]]:
    """Fail if the SDK had to relax or drop its response model.

    binance_common logs a warning (and returns a relaxed model or the raw
    payload) when a response does not match the declared types, e.g. a
    numeric ``maxQty``. That would hide a wire-format bug of the mock.
    """
    seen: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            msg = record.getMessage()
            if "did not match the declared types" in msg or "Failed to parse" in msg:
                seen.append(msg)

    handler = _Collect(level=logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield seen
    finally:
        root.removeHandler(handler)
    assert not seen, f"SDK could not parse the mock's response strictly: {seen}"


@dataclass(frozen=True)
class SdkDriver(Driver):
    def _rest_api(self, base_url: str, creds: Credentials) -> Any:
        from binance_common.configuration import ConfigurationRestAPI
        from binance_sdk_derivatives_trading_coin_futures import DerivativesTradingCoinFutures

        auth: dict[str, Any]
        if creds.key_type == HMAC:
            auth = {"api_secret": creds.secret}
        else:
            auth = {"private_key": creds.private_key_pem}
        config = ConfigurationRestAPI(
            api_key=creds.api_key,
            base_path=base_url,
            timeout=TIMEOUT_S * 1000,
            **auth,
        )
        return DerivativesTradingCoinFutures(config_rest_api=config).rest_api

    def change_leverage(self, base_url, creds, symbol, leverage, *, with_position=False):
        from binance_sdk_derivatives_trading_coin_futures.rest_api.models import (
            ChangeInitialLeverageResponse,
        )

        rest_api = self._rest_api(base_url, creds)
        try:
            with _no_sdk_model_warnings():
                response = rest_api.change_initial_leverage(symbol=symbol, leverage=leverage)
                assert response.status == 200
                data = response.data()
                # Native shape: a pydantic model with snake_case attributes.
                assert isinstance(data, ChangeInitialLeverageResponse), data
                view = {"symbol": data.symbol, "leverage": data.leverage, "maxQty": data.max_qty}
                position = None
                if with_position:
                    rows = rest_api.position_information(pair=symbol.split("_")[0]).data()
                    position = _position_row(
                        rows,
                        symbol,
                        lambda row, name: getattr(row, {"maxQty": "max_qty"}.get(name, name)),
                    )
            return Outcome(response, view, position)
        finally:
            # The SDK has no public close(); don't leave keep-alive sockets open.
            rest_api._session.close()

    def set_up(self, base_url, creds, symbol, leverage):
        from binance_sdk_derivatives_trading_coin_futures.rest_api.models import (
            ChangeMarginTypeMarginTypeEnum,
        )

        rest_api = self._rest_api(base_url, creds)
        try:
            with _no_sdk_model_warnings():
                result = rest_api.change_position_mode(dual_side_position="true").data()
                rest_api.change_margin_type(
                    symbol=symbol, margin_type=ChangeMarginTypeMarginTypeEnum.ISOLATED
                ).data()
                changed = rest_api.change_initial_leverage(symbol=symbol, leverage=leverage).data()
                hedged = rest_api.get_current_position_mode().data().dual_side_position
                rows = rest_api.position_information(pair=symbol.split("_")[0]).data()
                account = rest_api.account_information().data()
                balances = rest_api.futures_account_balance().data()
            return SetUp(
                result,
                hedged,
                {"symbol": changed.symbol, "leverage": changed.leverage, "maxQty": changed.max_qty},
                [(r.position_side, r.leverage, r.margin_type) for r in rows if r.symbol == symbol],
                all(p.isolated for p in account.positions if p.symbol == symbol),
                {a.asset: Decimal(a.wallet_balance) for a in account.assets},
                {b.asset: Decimal(b.balance) for b in balances},
            )
        finally:
            rest_api._session.close()

    def no_change(self, base_url, creds, what, symbol):
        from binance_sdk_derivatives_trading_coin_futures.rest_api.models import (
            ChangeMarginTypeMarginTypeEnum,
        )

        rest_api = self._rest_api(base_url, creds)
        try:
            if what == "position_mode":
                return rest_api.change_position_mode(dual_side_position="false")
            return rest_api.change_margin_type(
                symbol=symbol, margin_type=ChangeMarginTypeMarginTypeEnum.CROSSED
            )
        finally:
            rest_api._session.close()

    def error_class(self, code):
        from binance_common.errors import BadRequestError

        return BadRequestError

    def error_code(self, exc):
        # The SDK puts Binance's error code (not the HTTP status) in .status_code.
        return exc.status_code  # type: ignore[attr-defined]

    def error_message(self, exc):
        return exc.error_message  # type: ignore[attr-defined]


# --------------------------------------------------------------------------
# the matrix

LEVERAGE = ("POST", "/dapi/v1/leverage")

FUTURES_CONNECTOR = FuturesConnectorDriver(
    id="binance-futures-connector",
    unsupported={
        ED25519: "binance-futures-connector signs only HMAC and RSA "
        "(it loads every private key with pycryptodome's RSA.import_key)",
    },
    wire=(LEVERAGE,),
)
PYTHON_BINANCE = PythonBinanceDriver(
    id="python-binance",
    wire=(("GET", "/api/v3/ping"), LEVERAGE),
)
PYTHON_BINANCE_ASYNC = PythonBinanceAsyncDriver(
    id="python-binance-async",
    syncs_time=True,
    wire=(("GET", "/api/v3/ping"), ("GET", "/api/v3/time"), LEVERAGE),
)
CCXT_DEFAULT = CcxtDriver(
    id="ccxt",
    wire=(
        ("GET", "/sapi/v1/capital/config/getall"),
        ("GET", "/sapi/v1/margin/allPairs"),
        ("GET", "/dapi/v1/exchangeInfo"),
        LEVERAGE,
    ),
)
# adjustForTimeDifference alone syncs inside fetch_markets, i.e. only *after*
# fetch_currencies has made its two signed /sapi calls with the unsynced clock.
# Against a skewed server (the mock, like Binance, checks their timestamps)
# load_markets therefore fails with InvalidNonce before the sync happens
# (users report exactly this: ccxt/ccxt#16617). Without skew it works.
CCXT_ADJUST_ONLY = CcxtDriver(
    id="ccxt-adjustForTimeDifference-only",
    options={"adjustForTimeDifference": True},
    wire=(
        ("GET", "/sapi/v1/capital/config/getall"),
        ("GET", "/sapi/v1/margin/allPairs"),
        ("GET", "/dapi/v1/exchangeInfo"),
        ("GET", "/dapi/v1/time"),
        LEVERAGE,
    ),
)
# The working recipe: adjustForTimeDifference plus an explicit
# load_time_difference() before the first signed call (both sync from
# /dapi/v1/time; the second sync happens inside load_markets).
CCXT_TIME_SYNC = CcxtDriver(
    id="ccxt-adjustForTimeDifference",
    options={"adjustForTimeDifference": True},
    load_time_difference_first=True,
    syncs_time=True,
    wire=(
        ("GET", "/dapi/v1/time"),
        ("GET", "/sapi/v1/capital/config/getall"),
        ("GET", "/sapi/v1/margin/allPairs"),
        ("GET", "/dapi/v1/exchangeInfo"),
        ("GET", "/dapi/v1/time"),
        LEVERAGE,
    ),
)
SDK = SdkDriver(
    id="binance-sdk-derivatives-trading-coin-futures",
    wire=(LEVERAGE,),
)

# The four clients of the bot set-up sequence (mode, margin type, leverage, read back).
SET_UP_CLIENTS: tuple[Driver, ...] = (FUTURES_CONNECTOR, PYTHON_BINANCE, CCXT_DEFAULT, SDK)

# The clients of the issue, used with their defaults.
CLIENTS: tuple[Driver, ...] = (
    FUTURES_CONNECTOR,
    PYTHON_BINANCE,
    PYTHON_BINANCE_ASYNC,
    CCXT_DEFAULT,
    SDK,
)
# Everything, including the time-synchronising variant of ccxt.
ALL_DRIVERS: tuple[Driver, ...] = (*CLIENTS, CCXT_TIME_SYNC)
# For the wire-order test: every way of using the clients above.
WIRE_DRIVERS: tuple[Driver, ...] = (*ALL_DRIVERS, CCXT_ADJUST_ONLY)
