"""Reference client for Binance COIN-M futures REST (dapi), built on ``requests``.

``DapiClient`` covers every endpoint of SPEC section 2, signs with the
signers of :mod:`contracts.signing`, can keep a server-time offset, puts a
default timeout on every call, and turns every failure into one of the
exceptions below. The whole tree::

    DapiError                         base of everything this client raises
    ├── TransportError                no HTTP answer: refused, reset, dropped (.request)
    │   └── RequestTimeout            connect or read timeout (.request)
    ├── MalformedResponse             a 2xx whose body is not JSON or not the documented
    │                                 shape (.response, .status)
    └── ApiError                      an HTTP error answer (.status, .code, .msg, .headers,
        │                             .response); code is None when the body is not
        │                             Binance's {"code","msg"}
        ├── ClientError               any other 4xx
        │   ├── BadRequest            400, any other code
        │   │   ├── TimestampOutsideWindow   -1021
        │   │   ├── InvalidSignature         -1022
        │   │   ├── IllegalCharacters        -1100
        │   │   ├── TooManyParameters        -1101 (also duplicates)
        │   │   ├── MissingParameter         -1102
        │   │   ├── InvalidParameter         -1130
        │   │   ├── InvalidSymbol            -1121
        │   │   └── InvalidLeverage          -4028
        │   ├── AuthError             401, any other code
        │   │   ├── ApiKeyFormatInvalid      -2014
        │   │   └── ApiKeyRejected           -2015
        │   ├── NotFound              404 and 405 (-5000)
        │   └── RateLimited           429 (.retry_after, seconds or None)
        │       └── IpBanned          418 (.retry_after)
        └── ServerError               5xx

A code-specific class is used only when the HTTP status is the one that code
comes with (400 or 401); otherwise the class follows the status.

Retries, and why:

- 429/418 with ``Retry-After`` <= ``max_retry_after`` are retried after
  sleeping that long, at most ``rate_limit_retries`` times, for every method:
  the exchange rejected the request before doing anything. A signed request
  is rebuilt and re-signed with a fresh ``timestamp`` each time, as Binance
  asks. A longer ``Retry-After`` raises ``RateLimited``/``IpBanned`` at once.
- GET is retried on 5xx and transport errors up to ``get_retries`` times
  (default 2, linear backoff ``retry_backoff`` s): reading twice is harmless.
- POST (any non-GET) is *not* retried on 5xx or transport errors unless
  ``retry_post=True``: the answer is ambiguous, the exchange may already have
  applied the change (Binance documents 503 "status UNKNOWN"), so the caller
  must look at the state (e.g. positionRisk) before trying again.

Not thread-safe: use one client per thread.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Literal, TypeAlias, TypeVar

import requests
from requests.auth import AuthBase
from requests.structures import CaseInsensitiveDict

from contracts.signing import HmacAuth, PrivateKeyInput, auth_from_private_key

__all__ = [
    "ApiError",
    "ApiKeyFormatInvalid",
    "ApiKeyRejected",
    "AuthError",
    "BadRequest",
    "Bracket",
    "ClientError",
    "DapiClient",
    "DapiError",
    "IllegalCharacters",
    "InvalidLeverage",
    "InvalidParameter",
    "InvalidSignature",
    "InvalidSymbol",
    "IpBanned",
    "LeverageChange",
    "MalformedResponse",
    "MissingParameter",
    "NotFound",
    "PairBrackets",
    "PositionRisk",
    "RateLimited",
    "RequestTimeout",
    "ServerError",
    "SymbolBrackets",
    "TimestampOutsideWindow",
    "TooManyParameters",
    "TransportError",
    "error_from_response",
]

ParamsIn: TypeAlias = Literal["query", "body", "split"]
ParamValue: TypeAlias = str | int | Decimal | bool | None
Params: TypeAlias = Mapping[str, ParamValue] | Sequence[tuple[str, ParamValue]]

_T = TypeVar("_T")


# --- errors ----------------------------------------------------------------


class DapiError(Exception):
    """Base of every exception raised by :class:`DapiClient`."""


class TransportError(DapiError):
    """No HTTP answer arrived (connection refused, reset or dropped)."""

    def __init__(self, message: str, request: requests.PreparedRequest | None = None) -> None:
        super().__init__(message)
        self.request = request


class RequestTimeout(TransportError):
    """The connect or read timeout expired."""


class MalformedResponse(DapiError):
    """A 2xx answer whose body is not JSON or not the documented shape."""

    def __init__(self, message: str, response: requests.Response | None = None) -> None:
        super().__init__(message)
        self.response = response
        self.status = response.status_code if response is not None else None


class ApiError(DapiError):
    """An HTTP error answer; ``code``/``msg`` come from Binance's error body."""

    #: HTTP statuses a code-specific subclass belongs to (empty: any).
    statuses: ClassVar[frozenset[int]] = frozenset()

    def __init__(
        self,
        status: int,
        code: int | None,
        msg: str,
        headers: Mapping[str, str] | None = None,
        response: requests.Response | None = None,
    ) -> None:
        super().__init__(f"HTTP {status}, code {code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(headers or {})
        self.response = response


class ClientError(ApiError):
    """A 4xx answer: the request was refused; fix it before sending again."""


class BadRequest(ClientError):
    """HTTP 400."""

    statuses = frozenset({400})


class TimestampOutsideWindow(BadRequest):
    """-1021: the timestamp is too old for recvWindow, or 1000 ms ahead."""


class InvalidSignature(BadRequest):
    """-1022: the signature does not match."""


class IllegalCharacters(BadRequest):
    """-1100: illegal characters in a parameter (lowercase symbols too)."""


class TooManyParameters(BadRequest):
    """-1101: too many parameters, or one sent twice."""


class MissingParameter(BadRequest):
    """-1102: a mandatory parameter was not sent, empty or malformed."""


class InvalidParameter(BadRequest):
    """-1130: an optional parameter's value is not valid."""


class InvalidSymbol(BadRequest):
    """-1121: unknown or delivered symbol, or unknown pair."""


class InvalidLeverage(BadRequest):
    """-4028: leverage outside 1 .. the symbol's maximum."""


class AuthError(ClientError):
    """HTTP 401: the API key was not accepted."""

    statuses = frozenset({401})


class ApiKeyFormatInvalid(AuthError):
    """-2014: the X-MBX-APIKEY header is missing or not of key form."""


class ApiKeyRejected(AuthError):
    """-2015: unknown key, or IP/permissions not allowed."""


class NotFound(ClientError):
    """HTTP 404 or 405 (-5000): no such path, or not with this method."""

    statuses = frozenset({404, 405})


class RateLimited(ClientError):
    """HTTP 429: over the request weight; ``retry_after`` in seconds (or None)."""

    statuses = frozenset({429})

    def __init__(
        self,
        status: int,
        code: int | None,
        msg: str,
        headers: Mapping[str, str] | None = None,
        response: requests.Response | None = None,
    ) -> None:
        super().__init__(status, code, msg, headers, response)
        self.retry_after = _parse_retry_after(self.headers.get("Retry-After"))


class IpBanned(RateLimited):
    """HTTP 418: the IP is banned for ``retry_after`` seconds."""

    statuses = frozenset({418})


class ServerError(ApiError):
    """A 5xx answer: the outcome is unknown (a POST may have been applied)."""


_BY_CODE: dict[int, type[ApiError]] = {
    -1021: TimestampOutsideWindow,
    -1022: InvalidSignature,
    -1100: IllegalCharacters,
    -1101: TooManyParameters,
    -1102: MissingParameter,
    -1130: InvalidParameter,
    -1121: InvalidSymbol,
    -4028: InvalidLeverage,
    -2014: ApiKeyFormatInvalid,
    -2015: ApiKeyRejected,
}
_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: AuthError,
    404: NotFound,
    405: NotFound,
    418: IpBanned,
    429: RateLimited,
}


def error_from_response(response: requests.Response) -> ApiError:
    """The typed exception for a non-2xx response (not raised, returned)."""
    status = response.status_code
    code: int | None = None
    msg = response.text[:500]
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        raw_code, raw_msg = body.get("code"), body.get("msg")
        if isinstance(raw_code, int) and not isinstance(raw_code, bool):
            code = raw_code
        if isinstance(raw_msg, str):
            msg = raw_msg
    cls = _class_for(status, code)
    return cls(status, code, msg, response.headers, response)


def _class_for(status: int, code: int | None) -> type[ApiError]:
    by_code = _BY_CODE.get(code) if code is not None else None
    if by_code is not None and status in by_code.statuses:
        return by_code
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if 400 <= status < 500:
        return ClientError
    if status >= 500:
        return ServerError
    return ApiError


def _parse_retry_after(value: str | None) -> float | None:
    # Binance sends delta-seconds; an HTTP-date or garbage means "unknown".
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 and seconds == seconds else None


# --- typed answers ---------------------------------------------------------


@dataclass(frozen=True)
class LeverageChange:
    """Answer of POST /dapi/v1/leverage."""

    leverage: int
    max_qty: Decimal
    symbol: str


@dataclass(frozen=True)
class Bracket:
    """One notional bracket; quantities in coin (base asset) units."""

    bracket: int
    initial_leverage: int
    qty_cap: Decimal
    qty_floor: Decimal
    maint_margin_ratio: Decimal
    cum: Decimal


@dataclass(frozen=True)
class SymbolBrackets:
    """A row of GET /dapi/v2/leverageBracket."""

    symbol: str
    brackets: tuple[Bracket, ...]
    notional_coef: Decimal | None = None


@dataclass(frozen=True)
class PairBrackets:
    """A row of GET /dapi/v1/leverageBracket."""

    pair: str
    brackets: tuple[Bracket, ...]


@dataclass(frozen=True)
class PositionRisk:
    """A row of GET /dapi/v1/positionRisk (amounts as Decimal)."""

    symbol: str
    position_amt: Decimal
    entry_price: Decimal
    break_even_price: Decimal | None
    mark_price: Decimal
    unrealized_profit: Decimal
    liquidation_price: Decimal
    leverage: int
    max_qty: Decimal
    margin_type: str
    isolated_margin: Decimal
    is_auto_add_margin: bool
    position_side: str
    notional_value: Decimal | None
    isolated_wallet: Decimal | None
    update_time: int


class _ShapeError(ValueError):
    """Raised by the parsers below; turned into MalformedResponse with context."""


_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_PLAIN_INT = re.compile(r"-?[0-9]+")


def _field(row: Mapping[str, Any], key: str) -> Any:
    if key not in row:
        raise _ShapeError(f"missing key {key!r}")
    return row[key]


def _as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _ShapeError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _as_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _ShapeError(f"{what}: expected an array, got {type(value).__name__}")
    return value


def _as_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _ShapeError(f"{what}: expected a string, got {value!r}")
    return value


def _as_int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _ShapeError(f"{what}: expected an integer, got {value!r}")
    return value


def _int_from_str(value: Any, what: str) -> int:
    if not isinstance(value, str) or not _PLAIN_INT.fullmatch(value):
        raise _ShapeError(f"{what}: expected an integer string, got {value!r}")
    return int(value)


def _decimal_from_str(value: Any, what: str) -> Decimal:
    # Decimal() alone would also take "NaN", "1e3", " 1" and "1_0"; the API never sends those.
    if not isinstance(value, str) or not _PLAIN_DECIMAL.fullmatch(value):
        raise _ShapeError(f"{what}: expected a plain decimal string, got {value!r}")
    return Decimal(value)


def _decimal_from_number(value: Any, what: str) -> Decimal:
    # JSON is parsed with parse_float=Decimal for typed answers, so no binary rounding.
    if isinstance(value, Decimal) and value.is_finite():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    raise _ShapeError(f"{what}: expected a JSON number, got {value!r}")


def _bool_from_str(value: Any, what: str) -> bool:
    if value not in ("true", "false"):
        raise _ShapeError(f"{what}: expected 'true' or 'false', got {value!r}")
    return bool(value == "true")


def _parse_bracket(value: Any) -> Bracket:
    row = _as_dict(value, "bracket")
    # The docs spell the floor 'qtylFloor', live clients read 'qtyFloor'; take either.
    if "qtyFloor" in row:
        floor = row["qtyFloor"]
    elif "qtylFloor" in row:
        floor = row["qtylFloor"]
    else:
        raise _ShapeError("bracket: missing 'qtyFloor' (or 'qtylFloor')")
    return Bracket(
        bracket=_as_int(_field(row, "bracket"), "bracket"),
        initial_leverage=_as_int(_field(row, "initialLeverage"), "initialLeverage"),
        qty_cap=_decimal_from_number(_field(row, "qtyCap"), "qtyCap"),
        qty_floor=_decimal_from_number(floor, "qtyFloor"),
        maint_margin_ratio=_decimal_from_number(
            _field(row, "maintMarginRatio"), "maintMarginRatio"
        ),
        cum=_decimal_from_number(_field(row, "cum"), "cum"),
    )


def _parse_brackets(row: Mapping[str, Any]) -> tuple[Bracket, ...]:
    return tuple(_parse_bracket(b) for b in _as_list(_field(row, "brackets"), "brackets"))


def _parse_symbol_brackets(value: Any) -> SymbolBrackets:
    row = _as_dict(value, "leverageBracket row")
    coef = row.get("notionalCoef")
    return SymbolBrackets(
        symbol=_as_str(_field(row, "symbol"), "symbol"),
        brackets=_parse_brackets(row),
        notional_coef=None if coef is None else _decimal_from_number(coef, "notionalCoef"),
    )


def _parse_pair_brackets(value: Any) -> PairBrackets:
    row = _as_dict(value, "leverageBracket row")
    return PairBrackets(pair=_as_str(_field(row, "pair"), "pair"), brackets=_parse_brackets(row))


def _optional_decimal(row: Mapping[str, Any], key: str) -> Decimal | None:
    # Present in live rows and in the SPEC, missing from Binance's own doc example.
    return _decimal_from_str(row[key], key) if key in row else None


def _parse_position(value: Any) -> PositionRisk:
    row = _as_dict(value, "positionRisk row")

    def dec(key: str) -> Decimal:
        return _decimal_from_str(_field(row, key), key)

    return PositionRisk(
        symbol=_as_str(_field(row, "symbol"), "symbol"),
        position_amt=dec("positionAmt"),
        entry_price=dec("entryPrice"),
        break_even_price=_optional_decimal(row, "breakEvenPrice"),
        mark_price=dec("markPrice"),
        unrealized_profit=dec("unRealizedProfit"),
        liquidation_price=dec("liquidationPrice"),
        leverage=_int_from_str(_field(row, "leverage"), "leverage"),
        max_qty=dec("maxQty"),
        margin_type=_as_str(_field(row, "marginType"), "marginType"),
        isolated_margin=dec("isolatedMargin"),
        is_auto_add_margin=_bool_from_str(_field(row, "isAutoAddMargin"), "isAutoAddMargin"),
        position_side=_as_str(_field(row, "positionSide"), "positionSide"),
        notional_value=_optional_decimal(row, "notionalValue"),
        isolated_wallet=_optional_decimal(row, "isolatedWallet"),
        update_time=_as_int(_field(row, "updateTime"), "updateTime"),
    )


def _parse_leverage_change(value: Any) -> LeverageChange:
    row = _as_dict(value, "leverage answer")
    return LeverageChange(
        leverage=_as_int(_field(row, "leverage"), "leverage"),
        max_qty=_decimal_from_str(_field(row, "maxQty"), "maxQty"),
        symbol=_as_str(_field(row, "symbol"), "symbol"),
    )


def _parse_server_time(value: Any) -> int:
    return _as_int(_field(_as_dict(value, "time answer"), "serverTime"), "serverTime")


def _parse_exchange_info(value: Any) -> dict[str, Any]:
    info = _as_dict(value, "exchangeInfo")
    for row in _as_list(_field(info, "symbols"), "symbols"):
        _as_str(_field(_as_dict(row, "symbol row"), "symbol"), "symbol")
    _as_list(_field(info, "rateLimits"), "rateLimits")
    return info


# --- the client --------------------------------------------------------------

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"


def _local_ms() -> int:
    return time.time_ns() // 1_000_000


def _wire_value(value: ParamValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


class DapiClient:
    """A COIN-M futures REST client; see the module docstring for errors and retries.

    Credentials: ``secret`` (HMAC), or ``private_key`` (PEM or key object; RSA
    or Ed25519, read from the key), each with ``api_key``; or a ready ``auth``
    (an :class:`~requests.auth.AuthBase` that signs). ``params_in`` says where
    a non-GET request's parameters go: ``"body"`` (form body, the default,
    which keeps them out of URLs that proxies log), ``"query"``, or
    ``"split"`` (own parameters in the query, recvWindow and timestamp in the
    body, exercising the query+body signature rule).

    ``time_sync=True`` reads ``/dapi/v1/time`` before the first signed call
    and stamps ``timestamp = local ms + offset``; ``sync_time()`` refreshes it.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        secret: str | bytes | None = None,
        private_key: PrivateKeyInput | None = None,
        auth: AuthBase | None = None,
        timeout: float | tuple[float, float] = 10.0,
        recv_window: int | None = None,
        time_sync: bool = False,
        params_in: ParamsIn = "body",
        session: requests.Session | None = None,
        max_retry_after: float = 5.0,
        rate_limit_retries: int = 2,
        get_retries: int = 2,
        retry_post: bool = False,
        retry_backoff: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
        clock_ms: Callable[[], int] = _local_ms,
    ) -> None:
        if sum(x is not None for x in (secret, private_key, auth)) > 1:
            raise ValueError("give at most one of secret, private_key and auth")
        if (secret is not None or private_key is not None) and not api_key:
            raise ValueError("secret and private_key need an api_key")
        if params_in not in ("query", "body", "split"):
            raise ValueError(f"params_in must be 'query', 'body' or 'split', not {params_in!r}")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        if auth is not None:
            self.auth: AuthBase | None = auth
        elif secret is not None:
            self.auth = HmacAuth(api_key or "", secret)
        elif private_key is not None:
            self.auth = auth_from_private_key(api_key or "", private_key)
        else:
            self.auth = None
        self.timeout = timeout
        self.recv_window = recv_window
        self.time_sync = time_sync
        self.params_in: ParamsIn = params_in
        self.max_retry_after = max_retry_after
        self.rate_limit_retries = rate_limit_retries
        self.get_retries = get_retries
        self.retry_post = retry_post
        self.retry_backoff = retry_backoff
        self._sleep = sleep
        self._clock_ms = clock_ms
        self._own_session = session is None
        self.session = session if session is not None else requests.Session()
        #: Added to local time for ``timestamp``; set by :meth:`sync_time`.
        self.time_offset_ms = 0
        self._synced = False
        #: ``X-MBX-USED-WEIGHT-1M`` of the last answer, if it had one.
        self.used_weight: int | None = None

    # context manager / cleanup

    def close(self) -> None:
        """Close the session if this client created it."""
        if self._own_session:
            self.session.close()

    def __enter__(self) -> DapiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # time

    def sync_time(self) -> int:
        """Read server time, store and return the offset (server - local, ms)."""
        before = self._clock_ms()
        server = self.server_time()
        after = self._clock_ms()
        # The server read its clock somewhere in between; the midpoint halves the error.
        self.time_offset_ms = server - (before + after) // 2
        self._synced = True
        return self.time_offset_ms

    def timestamp_ms(self) -> int:
        """The ``timestamp`` a signed request would carry now."""
        return self._clock_ms() + self.time_offset_ms

    # endpoints

    def ping(self) -> None:
        """GET /dapi/v1/ping."""
        self._typed("GET", "/dapi/v1/ping", None, False, lambda v: _as_dict(v, "ping"))

    def server_time(self) -> int:
        """GET /dapi/v1/time -> serverTime in ms."""
        return self._typed("GET", "/dapi/v1/time", None, False, _parse_server_time)

    def exchange_info(self) -> dict[str, Any]:
        """GET /dapi/v1/exchangeInfo, as parsed JSON (shape checked)."""
        response = self._send("GET", "/dapi/v1/exchangeInfo", None, False, None)
        return _checked(response, self._json(response), _parse_exchange_info)

    def change_leverage(self, symbol: str, leverage: int) -> LeverageChange:
        """POST /dapi/v1/leverage (TRADE). Not retried on 5xx/timeouts by default."""
        return self._typed(
            "POST",
            "/dapi/v1/leverage",
            [("symbol", symbol), ("leverage", leverage)],
            True,
            _parse_leverage_change,
        )

    def leverage_brackets(self, symbol: str | None = None) -> list[SymbolBrackets]:
        """GET /dapi/v2/leverageBracket (USER_DATA)."""
        return self._typed(
            "GET",
            "/dapi/v2/leverageBracket",
            [("symbol", symbol)],
            True,
            lambda v: [_parse_symbol_brackets(r) for r in _as_list(v, "leverageBracket")],
        )

    def leverage_brackets_v1(self, pair: str | None = None) -> list[PairBrackets]:
        """GET /dapi/v1/leverageBracket (USER_DATA; Binance calls it not recommended)."""
        return self._typed(
            "GET",
            "/dapi/v1/leverageBracket",
            [("pair", pair)],
            True,
            lambda v: [_parse_pair_brackets(r) for r in _as_list(v, "leverageBracket")],
        )

    def position_risk(
        self, pair: str | None = None, margin_asset: str | None = None
    ) -> list[PositionRisk]:
        """GET /dapi/v1/positionRisk (USER_DATA)."""
        return self._typed(
            "GET",
            "/dapi/v1/positionRisk",
            [("pair", pair), ("marginAsset", margin_asset)],
            True,
            lambda v: [_parse_position(r) for r in _as_list(v, "positionRisk")],
        )

    def spot_ping(self) -> None:
        """GET /api/v3/ping."""
        self._typed("GET", "/api/v3/ping", None, False, lambda v: _as_dict(v, "ping"))

    def spot_time(self) -> int:
        """GET /api/v3/time -> serverTime in ms."""
        return self._typed("GET", "/api/v3/time", None, False, _parse_server_time)

    def request(
        self,
        method: str,
        path: str,
        params: Params | None = None,
        signed: bool = False,
        *,
        params_in: ParamsIn | None = None,
    ) -> Any:
        """Low-level call: JSON of a 2xx answer, or a typed exception.

        ``params`` keep their order; ``None`` values are dropped. A signed
        call gets ``recvWindow`` (if configured) and ``timestamp`` appended
        unless ``params`` already has them.
        """
        response = self._send(method, path, params, signed, params_in)
        return self._json(response)

    # plumbing

    def _typed(
        self,
        method: str,
        path: str,
        params: Params | None,
        signed: bool,
        parse: Callable[[Any], _T],
    ) -> _T:
        response = self._send(method, path, params, signed, None)
        return _checked(response, self._json(response, parse_float=Decimal), parse)

    def _json(self, response: requests.Response, parse_float: Callable[[str], Any] = float) -> Any:
        try:
            return json.loads(response.content, parse_float=parse_float)
        except ValueError as exc:
            raise MalformedResponse(
                f"HTTP {response.status_code} body is not JSON: {response.text[:200]!r}",
                response,
            ) from exc

    def _send(
        self,
        method: str,
        path: str,
        params: Params | None,
        signed: bool,
        params_in: ParamsIn | None,
    ) -> requests.Response:
        method = method.upper()
        if signed and self.auth is None:
            raise ValueError(f"{method} {path} is signed: give secret, private_key or auth")
        if signed and self.time_sync and not self._synced:
            self.sync_time()
        rate_limit_left = self.rate_limit_retries
        ambiguous_left = self.get_retries if method in _SAFE_METHODS or self.retry_post else 0
        attempt = 0
        while True:
            attempt += 1
            # Rebuilt on every attempt: a retried signed request needs a fresh timestamp.
            prepared = self._prepare(method, path, params, signed, params_in)
            try:
                settings = self.session.merge_environment_settings(
                    prepared.url, {}, None, None, None
                )
                response = self.session.send(
                    prepared, timeout=self.timeout, allow_redirects=False, **settings
                )
            except requests.Timeout as exc:
                if ambiguous_left > 0:
                    ambiguous_left -= 1
                    self._sleep(self.retry_backoff * attempt)
                    continue
                raise RequestTimeout(f"{method} {path}: {exc}", prepared) from exc
            except requests.RequestException as exc:
                if ambiguous_left > 0:
                    ambiguous_left -= 1
                    self._sleep(self.retry_backoff * attempt)
                    continue
                raise TransportError(f"{method} {path}: {exc}", prepared) from exc
            self._note_weight(response)
            if 200 <= response.status_code < 300:
                return response
            error = error_from_response(response)
            if (
                isinstance(error, RateLimited)
                and error.retry_after is not None
                and error.retry_after <= self.max_retry_after
                and rate_limit_left > 0
            ):
                rate_limit_left -= 1
                self._sleep(error.retry_after)
                continue
            if isinstance(error, ServerError) and ambiguous_left > 0:
                ambiguous_left -= 1
                self._sleep(self.retry_backoff * attempt)
                continue
            raise error

    def _prepare(
        self,
        method: str,
        path: str,
        params: Params | None,
        signed: bool,
        params_in: ParamsIn | None,
    ) -> requests.PreparedRequest:
        pairs = params.items() if isinstance(params, Mapping) else (params or ())
        own = [(name, _wire_value(value)) for name, value in pairs if value is not None]
        names = {name for name, _ in own}
        stamp: list[tuple[str, str]] = []
        if signed:
            if self.recv_window is not None and "recvWindow" not in names:
                stamp.append(("recvWindow", str(self.recv_window)))
            if "timestamp" not in names:
                stamp.append(("timestamp", str(self.timestamp_ms())))
        placement = "query" if method in _SAFE_METHODS else (params_in or self.params_in)
        if placement == "query":
            query, body = own + stamp, []
        elif placement == "body":
            query, body = [], own + stamp
        else:
            query, body = own, stamp
        request = requests.Request(
            method,
            self.base_url + path,
            params=query,
            data=body or None,
            auth=self.auth if signed else None,
        )
        return self.session.prepare_request(request)

    def _note_weight(self, response: requests.Response) -> None:
        raw = response.headers.get(_WEIGHT_HEADER)
        self.used_weight = int(raw) if raw is not None and raw.isdigit() else None


def _checked(response: requests.Response, value: Any, parse: Callable[[Any], _T]) -> _T:
    try:
        return parse(value)
    except _ShapeError as exc:
        raise MalformedResponse(
            f"HTTP {response.status_code} {response.request.method} {response.url}: {exc}",
            response,
        ) from exc
