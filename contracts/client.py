"""Reference client for Binance COIN-M futures REST (dapi), built on ``requests``.

``DapiClient`` covers every endpoint (docs/behaviour.md#endpoints), signs with the
signers of :mod:`contracts.signing`, can keep a server-time offset, puts a
default timeout on every call, and turns every failure into one of the
exceptions of :mod:`contracts.errors`.

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
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal, TypeAlias, TypeVar

import requests
from requests.auth import AuthBase

from contracts.answers import (
    AccountAsset,
    AccountInfo,
    AccountPosition,
    BalanceRow,
    LeverageBracket,
    LeverageChange,
    PairBrackets,
    PositionRisk,
    ShapeError,
    SymbolBrackets,
    as_dict,
    as_list,
    parse_account,
    parse_acknowledgement,
    parse_balance_row,
    parse_exchange_info,
    parse_leverage_change,
    parse_pair_brackets,
    parse_position,
    parse_position_mode,
    parse_server_time,
    parse_symbol_brackets,
)
from contracts.errors import (
    ApiError,
    ApiKeyFormatInvalid,
    ApiKeyRejected,
    AuthError,
    BadRequest,
    ClientError,
    DapiError,
    IllegalCharacters,
    InvalidLeverage,
    InvalidParameter,
    InvalidSignature,
    InvalidSymbol,
    IpBanned,
    LeverageCapExceeded,
    MalformedResponse,
    MissingParameter,
    NoChangeNeeded,
    NotFound,
    OpenOrdersExist,
    PositionExists,
    RateLimited,
    RequestTimeout,
    ServerError,
    TimestampOutsideWindow,
    TooManyParameters,
    TransportError,
    error_from_response,
)
from contracts.signing import HmacAuth, PrivateKeyInput, auth_from_private_key

# The errors and answers are importable from here too: the client raises and returns them.
__all__ = [
    "AccountAsset",
    "AccountInfo",
    "AccountPosition",
    "ApiError",
    "ApiKeyFormatInvalid",
    "ApiKeyRejected",
    "AuthError",
    "BadRequest",
    "BalanceRow",
    "ClientError",
    "DapiClient",
    "DapiError",
    "IllegalCharacters",
    "InvalidLeverage",
    "InvalidParameter",
    "InvalidSignature",
    "InvalidSymbol",
    "IpBanned",
    "LeverageBracket",
    "LeverageCapExceeded",
    "LeverageChange",
    "MalformedResponse",
    "MarginType",
    "MissingParameter",
    "NoChangeNeeded",
    "NotFound",
    "OpenOrdersExist",
    "PairBrackets",
    "PositionExists",
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
MarginType: TypeAlias = Literal["ISOLATED", "CROSSED"]
ParamValue: TypeAlias = str | int | Decimal | bool | None
Params: TypeAlias = Mapping[str, ParamValue] | Sequence[tuple[str, ParamValue]]

_T = TypeVar("_T")


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
        self._typed("GET", "/dapi/v1/ping", None, False, lambda v: as_dict(v, "ping"))

    def server_time(self) -> int:
        """GET /dapi/v1/time -> serverTime in ms."""
        return self._typed("GET", "/dapi/v1/time", None, False, parse_server_time)

    def exchange_info(self) -> dict[str, Any]:
        """GET /dapi/v1/exchangeInfo, as parsed JSON (shape checked)."""
        response = self._send("GET", "/dapi/v1/exchangeInfo", None, False, None)
        return _checked(response, self._json(response), parse_exchange_info)

    def change_leverage(self, symbol: str, leverage: int) -> LeverageChange:
        """POST /dapi/v1/leverage (TRADE). Not retried on 5xx/timeouts by default."""
        return self._typed(
            "POST",
            "/dapi/v1/leverage",
            [("symbol", symbol), ("leverage", leverage)],
            True,
            parse_leverage_change,
        )

    def leverage_brackets(self, symbol: str | None = None) -> list[SymbolBrackets]:
        """GET /dapi/v2/leverageBracket (USER_DATA)."""
        return self._typed(
            "GET",
            "/dapi/v2/leverageBracket",
            [("symbol", symbol)],
            True,
            lambda v: [parse_symbol_brackets(r) for r in as_list(v, "leverageBracket")],
        )

    def leverage_brackets_v1(self, pair: str | None = None) -> list[PairBrackets]:
        """GET /dapi/v1/leverageBracket (USER_DATA; Binance calls it not recommended)."""
        return self._typed(
            "GET",
            "/dapi/v1/leverageBracket",
            [("pair", pair)],
            True,
            lambda v: [parse_pair_brackets(r) for r in as_list(v, "leverageBracket")],
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
            lambda v: [parse_position(r) for r in as_list(v, "positionRisk")],
        )

    def change_margin_type(self, symbol: str, margin_type: MarginType) -> None:
        """POST /dapi/v1/marginType (TRADE): "ISOLATED" or "CROSSED" for `symbol`.

        Raises NoChangeNeeded (-4046) when the symbol already has that margin type, and
        PositionExists (-4048) or OpenOrdersExist (-4047) when it cannot change now. The
        value is sent as given, so a server's answer to another one can be seen too.
        """
        self._typed(
            "POST",
            "/dapi/v1/marginType",
            [("symbol", symbol), ("marginType", margin_type)],
            True,
            parse_acknowledgement,
        )

    def change_position_mode(self, dual_side_position: bool) -> None:
        """POST /dapi/v1/positionSide/dual (TRADE): hedge mode (True) or one-way (False).

        Raises NoChangeNeeded (-4059) when the account is already in that mode, and
        PositionExists (-4068) or OpenOrdersExist (-4067) when it cannot change now.
        """
        self._typed(
            "POST",
            "/dapi/v1/positionSide/dual",
            [("dualSidePosition", dual_side_position)],
            True,
            parse_acknowledgement,
        )

    def position_mode(self) -> bool:
        """GET /dapi/v1/positionSide/dual (USER_DATA, weight 30): True in hedge mode."""
        return self._typed("GET", "/dapi/v1/positionSide/dual", None, True, parse_position_mode)

    def account(self) -> AccountInfo:
        """GET /dapi/v1/account (USER_DATA, weight 5): balances per asset, position rows."""
        return self._typed("GET", "/dapi/v1/account", None, True, parse_account)

    def balance(self) -> list[BalanceRow]:
        """GET /dapi/v1/balance (USER_DATA): one row per margin asset."""
        return self._typed(
            "GET",
            "/dapi/v1/balance",
            None,
            True,
            lambda v: [parse_balance_row(r) for r in as_list(v, "balance")],
        )

    def spot_ping(self) -> None:
        """GET /api/v3/ping."""
        self._typed("GET", "/api/v3/ping", None, False, lambda v: as_dict(v, "ping"))

    def spot_time(self) -> int:
        """GET /api/v3/time -> serverTime in ms."""
        return self._typed("GET", "/api/v3/time", None, False, parse_server_time)

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
    except ShapeError as exc:
        raise MalformedResponse(
            f"HTTP {response.status_code} {response.request.method} {response.url}: {exc}",
            response,
        ) from exc
