"""The exchange: every Binance endpoint, and the order in which a request is checked
(docs/behaviour.md#order-of-checks).

`Exchange.handle` takes a plain `Call` (raw bytes and strings, no Flask) and
returns an `Answer`, so the whole request path is testable without HTTP and
any WSGI layer can serve it. `Exchange._answer` reads as the order of checks,
top to bottom: the first failure answers.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mockserver import account_views, errors, params, security
from mockserver.clock import Clock
from mockserver.config import AccountConfig, Config
from mockserver.errors import ExchangeError
from mockserver.faults import FaultBook, FaultRule
from mockserver.holds import HoldEnd, Holds
from mockserver.journal import BODY_LIMIT, QUERY_LIMIT, Journal
from mockserver.market import Listing, Market, Symbol, plain_decimal
from mockserver.ratelimit import RateLimiter
from mockserver.security import Account
from mockserver.state import AccountSetup, Position, Store, leverage_cap

log = logging.getLogger("mockserver")

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
SIGNED_PARAMS = frozenset({"timestamp", "recvWindow", "signature"})
ORDERS_PER_MINUTE = 1200
LIVE_WEIGHT_PER_MINUTE = 2400
# Real clients send well under 1 KiB of headers; 16 KiB is Node.js's default cap (our choice).
MAX_HEADER_BYTES = 16 * 1024


def never_gone() -> bool:
    """For servers that cannot tell when a client leaves: it never has."""
    return False


@dataclass(frozen=True)
class Call:
    """One HTTP request as the exchange sees it. `body` is None when it was over the limit."""

    method: str
    path: str
    query: bytes
    body: bytes | None
    api_key: str | None
    client_ip: str
    header_bytes: int = 0  # names and values of all request headers
    client_gone: Callable[[], bool] = never_gone  # has the client closed its connection?


# json.dumps with any option builds a new encoder per call: a fifth of the app's time here.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


@dataclass
class Answer:
    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)
    code: int | None = None
    reason: str | None = None
    fault: int | None = None
    drop: bool = False
    truncate: bool = False
    journal_ticket: tuple[int, int] | None = None  # see Journal.reserve; set by a handler run
    journaled: bool = True  # False: a request a reset dropped leaves no trace

    @classmethod
    def of_error(cls, exc: ExchangeError, headers: dict[str, str] | None = None) -> Answer:
        payload = {"code": exc.code, "msg": exc.msg}
        return cls(exc.status, payload, {**exc.headers, **(headers or {})}, exc.code, exc.reason)

    @classmethod
    def dropped(cls, reason: str, fault: int | None = None, journaled: bool = True) -> Answer:
        return cls(0, None, reason=reason, fault=fault, drop=True, journaled=journaled)

    def body(self) -> bytes:
        data = _COMPACT_JSON.encode(self.payload).encode()
        return data[: len(data) // 2] if self.truncate else data


@dataclass(frozen=True)
class Request:
    """What an endpoint handler gets once every generic check has passed."""

    params: params.Params
    account: Account | None
    now_ms: int
    listing: Listing


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Callable[[Exchange, Request], Any]
    signed: bool = False
    weight: Callable[[params.Params | None], int] = lambda _: 1
    mandatory: tuple[tuple[str, str], ...] = ()  # (name, "STRING" | "INT"), documented order
    optional: frozenset[str] = frozenset()
    takes_symbol: bool = False

    @property
    def known_params(self) -> frozenset[str]:
        names = {name for name, _ in self.mandatory} | self.optional
        return frozenset(names | SIGNED_PARAMS if self.signed else names)


class Exchange:
    """All state and rules of one fake exchange; thread-safe."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.clock = Clock(config.clock_offset_ms)
        self.market = Market.load(config.symbols_file, config.bracket_floor_field)
        accounts = config.all_accounts()
        self.store = Store(
            [account_from_config(a) for a in accounts],
            {a.api_key: setup_from_config(a) for a in accounts},
            self.market.margin_assets,
            self.clock.now_ms(),
        )
        self.limiter = RateLimiter(config.weight_per_minute, config.ban_seconds)
        self.journal = Journal(config.journal_size)
        self.faults = FaultBook()
        self.holds = Holds()
        # Held by every handler run and by reset, so a reset never lands inside a change.
        self._handler_lock = threading.Lock()
        # Bugs, for the pytest plugin: the latest kept, all counted, so memory stays bounded.
        self.unexpected_errors: deque[BaseException] = deque(maxlen=100)
        self.unexpected_error_count = 0

    def unexpected(self, exc: BaseException, method: str, path: str) -> Answer:
        """A bug: logged with its traceback, kept for the pytest plugin, answered 500 -1000."""
        log.error("unexpected error on %s %s", method, path, exc_info=exc)
        self.unexpected_errors.append(exc)
        self.unexpected_error_count += 1
        return Answer.of_error(errors.unknown_error(f"{type(exc).__name__}: {exc}"))

    def weight_header(self, client_ip: str) -> dict[str, str]:
        return {WEIGHT_HEADER: str(self.limiter.used(client_ip, self.clock.now_ms()))}

    def reset(self) -> None:
        """Back to the start-up state (docs/behaviour.md#control-plane), atomically: no
        handler runs meanwhile, and requests a delay holds are dropped."""
        self.holds.drop_all()
        with self._handler_lock:
            self.clock.reset()  # first: configured balances count as set at the reset's time
            self.store.reset(self.clock.now_ms())
            self.limiter.reset()
            self.journal.clear()
            self.faults.clear()

    # -- the request path --------------------------------------------------------------

    def handle(self, call: Call, endpoint: Endpoint | None, route_status: int = 200) -> Answer:
        """Answer one request; `endpoint` is None for an unknown path or wrong method."""
        resets_seen = self.holds.resets
        fault = self.faults.pick(call.method, call.path, call.api_key) if endpoint else None
        try:
            answer = self._answer(call, endpoint, route_status, fault, resets_seen)
        except Exception as exc:  # a bug: answered like Binance, logged in full, kept
            answer = self.unexpected(exc, call.method, call.path)
        if fault is not None:
            answer = self._apply_late_fault(fault, answer)
        now_ms = self.clock.now_ms()
        if WEIGHT_HEADER not in answer.headers:
            answer.headers[WEIGHT_HEADER] = str(self.limiter.used(call.client_ip, now_ms))
        if answer.journaled:
            self.journal.record(
                {
                    "time_ms": now_ms,
                    "method": call.method,
                    "path": call.path,
                    "query": call.query[:QUERY_LIMIT].decode("utf-8", "replace"),
                    "body": (call.body or b"")[:BODY_LIMIT].decode("utf-8", "replace"),
                    "api_key": call.api_key,
                    "status": None if answer.drop else answer.status,
                    "code": answer.code,
                    "fault": answer.fault,
                    "reason": answer.reason,
                },
                answer.journal_ticket,
            )
        return answer

    def _answer(
        self,
        call: Call,
        endpoint: Endpoint | None,
        route_status: int,
        fault: FaultRule | None,
        resets_seen: int,
    ) -> Answer:
        """The order of checks (docs/behaviour.md#order-of-checks), top to bottom."""
        if endpoint is None:
            return Answer.of_error(errors.route_invalid(call.path, call.method, route_status))
        early = self._early_fault(fault, call, resets_seen) if fault is not None else None
        if early is not None:
            if early.journaled:  # a request a reset dropped leaves no trace, not even weight
                self.limiter.charge(call.client_ip, endpoint.weight(None), self.clock.now_ms())
            return early
        try:
            self._check_size(call)
            sent = params.parse(
                call.query, call.body or b"", self.config.max_params, endpoint.takes_symbol
            )
        except ExchangeError as exc:
            self.limiter.charge(call.client_ip, endpoint.weight(None), self.clock.now_ms())
            return Answer.of_error(exc)
        now_ms = self.clock.now_ms()
        try:
            used = self.limiter.admit(call.client_ip, endpoint.weight(sent), now_ms)
        except ExchangeError as exc:
            return Answer.of_error(exc)
        weight = {WEIGHT_HEADER: str(used)}
        try:
            account = self._authenticate(endpoint, call, sent, now_ms)
            self._check_mandatory(endpoint, sent)
            self._check_strict(endpoint, sent)
            payload, ticket = self._run_handler(endpoint, sent, account, now_ms)
        except ExchangeError as exc:
            return Answer.of_error(exc, weight)
        return Answer(200, payload, weight, journal_ticket=ticket)

    def _check_size(self, call: Call) -> None:
        if call.header_bytes > MAX_HEADER_BYTES:
            raise errors.too_many_params(
                431, f"{call.header_bytes} bytes of headers, over {MAX_HEADER_BYTES}"
            )
        if call.body is None:
            raise errors.too_many_params(
                413, f"body is over max_body_bytes ({self.config.max_body_bytes})"
            )

    def _authenticate(
        self, endpoint: Endpoint, call: Call, sent: params.Params, now_ms: int
    ) -> Account | None:
        """API key, timestamp, signature present, recvWindow, timing, signature (SIGNED only)."""
        if not endpoint.signed:
            return None
        return security.authenticate(
            call.api_key, sent, self.store.accounts, now_ms, self.config.recv_window_max
        )

    @staticmethod
    def _check_mandatory(endpoint: Endpoint, sent: params.Params) -> None:
        for name, kind in endpoint.mandatory:
            value = sent.get(name)
            if not value:
                raise errors.mandatory_param(name, f"{name} not sent or empty")
            if kind == "INT" and params.parse_long(value) is None:
                raise errors.mandatory_param(name, f"{name} {value!r} is not an integer")

    def _check_strict(self, endpoint: Endpoint, sent: params.Params) -> None:
        if not self.config.strict_params:
            return
        unknown = sorted(set(sent.values) - endpoint.known_params)
        if unknown:
            total = len(sent.values)
            raise errors.params_not_read(total - len(unknown), total, unknown)

    def _run_handler(
        self, endpoint: Endpoint, sent: params.Params, account: Account | None, now_ms: int
    ) -> tuple[Any, tuple[int, int]]:
        """The endpoint's own rules (symbol, ranges, caps, positions), under the handler lock;
        returns its payload and the journal ticket that keeps ids in the order handlers ran."""
        with self._handler_lock:
            listing = self.market.listing(now_ms)
            self.store.forget_delisted(listing)
            payload = endpoint.handler(self, Request(sent, account, now_ms, listing))
            return payload, self.journal.reserve()

    # -- faults (docs/behaviour.md#faults) -----------------------------------------------

    def _early_fault(self, fault: FaultRule, call: Call, resets_seen: int) -> Answer | None:
        """Faults that act before validation: error, rate_limit, drop, and a delay's hold.
        None: the request goes on to be answered normally."""
        action = fault.action
        kind = action["type"]
        why = f"fault rule {fault.id}: {kind}"
        if kind == "delay":
            end = self.holds.hold(action["ms"] / 1000, call.client_gone, resets_seen)
            if end is HoldEnd.RESET:
                return Answer.dropped(f"{why}: dropped by a reset", fault.id, journaled=False)
            if end is HoldEnd.CLIENT_GONE:
                return Answer.dropped(f"{why}: the client closed the connection", fault.id)
            return None
        if kind == "error":
            exc = ExchangeError(action["status"], action["code"], action["msg"], why)
            return Answer.of_error(exc)
        if kind == "rate_limit":
            retry = action["retry_after"]
            if action["status"] == 429:
                exc = errors.too_many_requests(
                    call.client_ip, self.limiter.limit or LIVE_WEIGHT_PER_MINUTE, retry, why
                )
            else:
                exc = errors.ip_banned(
                    call.client_ip, self.clock.now_ms() + retry * 1000, retry, why
                )
            return Answer.of_error(exc, {"Retry-After": str(retry)})
        if kind == "drop":
            return Answer.dropped(why, fault.id)
        return None  # apply_then_error and malformed act on the normal answer

    @staticmethod
    def _apply_late_fault(fault: FaultRule, answer: Answer) -> Answer:
        answer.fault = fault.id
        action = fault.action
        if action["type"] == "apply_then_error" and answer.status == 200:
            return Answer(
                action["status"],
                {"code": action["code"], "msg": action["msg"]},
                answer.headers,
                action["code"],
                f"fault rule {fault.id}: applied, then answered an error",
                fault.id,
                journal_ticket=answer.journal_ticket,
            )
        if action["type"] == "malformed":
            answer.status = 200
            answer.truncate = True
            answer.reason = f"fault rule {fault.id}: body cut in half"
        return answer

    # -- views of state ----------------------------------------------------------------

    def listing_now(self) -> Listing:
        """The symbols listed at the mock clock's now; a delivered symbol's state goes first,
        so that the control plane never meets it (docs/behaviour.md#quarterly-delivery)."""
        listing = self.market.listing(self.clock.now_ms())
        self.store.forget_delisted(listing)
        return listing

    def state_view(self) -> dict[str, Any]:
        """What GET /__admin/state shows: clock, accounts' trading state, fault rules."""
        now_ms = self.clock.now_ms()
        listing = self.market.listing(now_ms)
        self.store.forget_delisted(listing)
        return {
            "clock": self.clock.state.as_dict(now_ms),
            "accounts": [
                account_views.account_state(self.store, a, listing)
                for a in self.store.accounts.values()
            ],
            "faults": self.faults.rules(),
        }

    def listed_symbol(self, name: str) -> Symbol:
        """A symbol listed now (the control plane's arrangements); KeyError when not."""
        return self.listing_now().symbols[name]

    def seed_position(
        self,
        api_key: str,
        symbol_name: str,
        amount: Decimal,
        margin_type: str | None,
        mark_price: Decimal | None,
        side: str = "BOTH",
    ) -> None:
        """Open a position for a test (SetupError when the side does not suit the mode)."""
        symbol = self.listed_symbol(symbol_name)
        price = symbol.contract.mark_price if mark_price is None else mark_price
        self.store.seed_position(
            api_key, symbol_name, side, Position(amount, price, self.clock.now_ms()), margin_type
        )


def account_from_config(account: AccountConfig) -> Account:
    if account.secret:
        return security.hmac_account(account.api_key, account.secret)
    return security.public_key_account(account.api_key, account.public_key)


def setup_from_config(account: AccountConfig) -> AccountSetup:
    return AccountSetup(
        dual_side_position=account.dual_side_position,
        cap=leverage_cap(account.max_leverage, account.max_leverage_rule),
        balances=account.balances,
    )


# -- endpoint handlers (docs/behaviour.md#endpoints) -----------------------------------------------


def _symbol_named(request: Request, name: str) -> Symbol:
    symbol = request.listing.symbols.get(name)
    if symbol is None:
        raise errors.invalid_symbol(
            f"symbol {name!r} is not listed now (listed: {', '.join(request.listing.symbols)})"
        )
    return symbol


def change_leverage(exchange: Exchange, request: Request) -> dict[str, Any]:
    assert request.account is not None
    symbol = _symbol_named(request, request.params.values["symbol"])
    leverage = params.parse_long(request.params.values["leverage"])
    assert leverage is not None
    max_qty = exchange.store.change_leverage(request.account.api_key, symbol, leverage)
    return {"leverage": leverage, "maxQty": plain_decimal(max_qty), "symbol": symbol.name}


def ping(exchange: Exchange, request: Request) -> dict[str, Any]:
    return {}


def server_time(exchange: Exchange, request: Request) -> dict[str, Any]:
    return {"serverTime": request.now_ms}


def exchange_info(exchange: Exchange, request: Request) -> dict[str, Any]:
    return {
        "timezone": "UTC",
        "serverTime": request.now_ms,
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": exchange.config.weight_per_minute or LIVE_WEIGHT_PER_MINUTE,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": ORDERS_PER_MINUTE,
            },
        ],
        "exchangeFilters": [],
        "symbols": [Market.exchange_info_row(s) for s in request.listing.symbols.values()],
    }


def _optional(request: Request, name: str) -> str | None:
    return request.params.get(name) or None  # an empty value reads as not sent


def leverage_brackets_v2(exchange: Exchange, request: Request) -> list[dict[str, Any]]:
    name = _optional(request, "symbol")
    symbols = [_symbol_named(request, name)] if name else request.listing.symbols.values()
    return [{"symbol": s.name, "brackets": exchange.market.brackets_json(s)} for s in symbols]


def leverage_brackets_v1(exchange: Exchange, request: Request) -> list[dict[str, Any]]:
    pair = _optional(request, "pair")
    pairs = request.listing.pairs
    if pair is not None and pair not in pairs:
        raise errors.invalid_symbol(f"pair {pair!r} is not listed (listed: {', '.join(pairs)})")
    rows = []
    for name in [pair] if pair else pairs:
        # v1 answers with the pair's current-quarter table when it has one, as Binance does.
        by_type = {s.contract_type: s for s in pairs[name]}
        symbol = by_type.get("CURRENT_QUARTER") or by_type.get("PERPETUAL") or pairs[name][0]
        rows.append({"pair": name, "brackets": exchange.market.brackets_json(symbol)})
    return rows


def position_risk(exchange: Exchange, request: Request) -> list[dict[str, Any]]:
    assert request.account is not None
    pair, margin_asset = _optional(request, "pair"), _optional(request, "marginAsset")
    symbols = [
        s
        for s in request.listing.symbols.values()
        if (pair is None or s.pair == pair)
        and (margin_asset is None or s.contract.margin_asset == margin_asset)
    ]
    return account_views.position_risk_rows(exchange.store, request.account.api_key, symbols)


# docs/behaviour.md#margin-type: the exact uppercase names only (our choice), else -1130.
MARGIN_TYPE_PARAM = {"ISOLATED": "isolated", "CROSSED": "cross"}


def _success() -> dict[str, Any]:
    return {"code": 200, "msg": "success"}


def change_margin_type(exchange: Exchange, request: Request) -> dict[str, Any]:
    assert request.account is not None
    symbol = _symbol_named(request, request.params.values["symbol"])
    value = request.params.values["marginType"]
    margin_type = MARGIN_TYPE_PARAM.get(value)
    if margin_type is None:
        raise errors.invalid_param("marginType", f"marginType {value!r} is not ISOLATED or CROSSED")
    exchange.store.change_margin_type(request.account.api_key, symbol.name, margin_type)
    return _success()


def change_position_mode(exchange: Exchange, request: Request) -> dict[str, Any]:
    assert request.account is not None
    value = request.params.values["dualSidePosition"]
    # docs/behaviour.md#position-mode: "true"/"false" in any case (our choice), else -1130.
    dual_side_position = {"true": True, "false": False}.get(value.lower())
    if dual_side_position is None:
        raise errors.invalid_param(
            "dualSidePosition", f"dualSidePosition {value!r} is not true or false"
        )
    exchange.store.change_position_mode(request.account.api_key, dual_side_position)
    return _success()


def position_mode(exchange: Exchange, request: Request) -> dict[str, Any]:
    assert request.account is not None
    return {"dualSidePosition": exchange.store.dual_side_position(request.account.api_key)}


def account_information(exchange: Exchange, request: Request) -> dict[str, Any]:
    assert request.account is not None
    return account_views.account_information(
        exchange.store, request.account.api_key, request.listing
    )


def account_balance(exchange: Exchange, request: Request) -> list[dict[str, Any]]:
    assert request.account is not None
    return account_views.balance_rows(exchange.store, request.account.api_key, request.listing)


def empty_list(exchange: Exchange, request: Request) -> list[Any]:
    return []


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        "/dapi/v1/leverage",
        change_leverage,
        signed=True,
        mandatory=(("symbol", "STRING"), ("leverage", "INT")),
        takes_symbol=True,
    ),
    Endpoint("GET", "/dapi/v1/ping", ping),
    Endpoint("GET", "/dapi/v1/time", server_time),
    Endpoint("GET", "/dapi/v1/exchangeInfo", exchange_info),
    Endpoint(
        "GET",
        "/dapi/v2/leverageBracket",
        leverage_brackets_v2,
        signed=True,
        weight=lambda p: 1 if p is not None and p.get("symbol") else 2,
        optional=frozenset({"symbol"}),
        takes_symbol=True,
    ),
    Endpoint(
        "GET",
        "/dapi/v1/leverageBracket",
        leverage_brackets_v1,
        signed=True,
        optional=frozenset({"pair"}),
    ),
    Endpoint(
        "GET",
        "/dapi/v1/positionRisk",
        position_risk,
        signed=True,
        optional=frozenset({"pair", "marginAsset"}),
    ),
    Endpoint(
        "POST",
        "/dapi/v1/marginType",
        change_margin_type,
        signed=True,
        mandatory=(("symbol", "STRING"), ("marginType", "STRING")),
        takes_symbol=True,
    ),
    Endpoint(
        "POST",
        "/dapi/v1/positionSide/dual",
        change_position_mode,
        signed=True,
        mandatory=(("dualSidePosition", "STRING"),),
    ),
    Endpoint("GET", "/dapi/v1/positionSide/dual", position_mode, signed=True, weight=lambda _: 30),
    Endpoint("GET", "/dapi/v1/account", account_information, signed=True, weight=lambda _: 5),
    Endpoint("GET", "/dapi/v1/balance", account_balance, signed=True),
    Endpoint("GET", "/api/v3/ping", ping),
    Endpoint("GET", "/api/v3/time", server_time),
    Endpoint("GET", "/sapi/v1/capital/config/getall", empty_list, signed=True),
    Endpoint("GET", "/sapi/v1/margin/allPairs", empty_list, signed=True),
)
