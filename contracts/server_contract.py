"""Properties any server of the dapi contract must hold, and `dapi-contract verify-server`.

Portable properties use only Binance's routes, so they hold for Binance itself
(testnet included): few requests by default, the server's weight header and
`Retry-After` respected, leverage put back as it was at the end. Properties
resting on SPEC's *(our choice)* rules run only with ``mock_rules=True`` and
may use the mock's /__admin control plane.
"""

from __future__ import annotations

import itertools
import json
import random
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, TextIO
from urllib.parse import quote, unquote

import requests
import yaml
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from contracts import strategies as S
from contracts.reporting import Progress, Report, Verdict
from contracts.signing import API_KEY_HEADER, HmacAuth, SigningAuth, auth_from_private_key

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
LIVE_WEIGHT_PER_MINUTE = 2400
#: Share of the server's weight limit this runner uses before it waits for the next minute.
WEIGHT_BUDGET = 0.5
#: Requests one example of a property makes at most (the pacing reserves room for them).
EXAMPLE_REQUESTS = 6
SIGNED_READS = ("positionRisk", "leverageBracket")
LEVERAGE_PATH = "/dapi/v1/leverage"
STALE_MSG = "Timestamp for this request is outside of the recvWindow."
AHEAD_MSG = "Timestamp for this request was 1000ms ahead of the server's time."
DUPLICATE_MSG = "Duplicate values for a parameter detected."


# --- the wire ------------------------------------------------------------------------


@dataclass
class Roundtrip:
    """One request as sent (raw query and body) and the answer to it."""

    method: str
    path: str
    query: str
    body: str
    status: int | None
    text: str
    seconds: float
    response: requests.Response | None = field(default=None, repr=False)
    contract_problem: str | None = None

    @property
    def payload(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @property
    def code(self) -> int | None:
        payload = self.payload
        if isinstance(payload, dict) and isinstance(payload.get("code"), int):
            return int(payload["code"])
        return None

    def line(self) -> str:
        sent = self.path + (f"?{self.query}" if self.query else "")
        if self.body:
            sent += f"  body: {self.body}"
        answer = self.text if len(self.text) <= 300 else self.text[:297] + "..."
        return f"{self.method} {sent}\n      -> {self.status} {answer}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "body": self.body,
            "status": self.status,
            "answer": self.text[:2000],
        }


class WireAbort(RuntimeError):
    """The server cannot be used any more in this run (banned, unreachable)."""


class Wire:
    """Builds, signs and sends raw requests; paces itself by the server's weight header."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        signer: SigningAuth,
        *,
        timeout: float = 10.0,
        max_retry_after: float = 130.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.signer = signer
        self.timeout = timeout
        self.max_retry_after = max_retry_after
        self.sleep = sleep
        self.session = requests.Session()
        self.weight_limit = LIVE_WEIGHT_PER_MINUTE
        self.used_weight: int | None = None
        self.offset_ms = 0
        self.trips: list[Roundtrip] = []

    def close(self) -> None:
        self.session.close()

    # time

    def now_ms(self) -> int:
        """Server time as this runner estimates it."""
        return time.time_ns() // 1_000_000 + self.offset_ms

    def sync_time(self) -> Roundtrip:
        before = time.time_ns() // 1_000_000
        trip = self.send("GET", "/dapi/v1/time")
        after = time.time_ns() // 1_000_000
        payload = trip.payload
        if trip.status == 200 and isinstance(payload, dict) and "serverTime" in payload:
            self.offset_ms = int(payload["serverTime"]) - (before + after) // 2
        return trip

    # building

    def stamped(
        self,
        params: Sequence[tuple[str, str]],
        *,
        timestamp: int | None = None,
        recv_window: int | None = None,
    ) -> list[tuple[str, str]]:
        """`params` followed by recvWindow (if given) and timestamp (server time by default)."""
        pairs = list(params)
        if recv_window is not None:
            pairs.append(("recvWindow", str(recv_window)))
        pairs.append(("timestamp", str(self.now_ms() if timestamp is None else timestamp)))
        return pairs

    def signature_for(self, payload: bytes, signer: SigningAuth | None = None) -> str:
        return (signer or self.signer).signature(payload)

    @staticmethod
    def with_signature(query: str, body: str, signature: str) -> tuple[str, str]:
        """Append `signature` as the last element of the body if there is one, else of the query."""
        element = f"signature={signature}"
        if body:
            return query, f"{body}&{element}"
        return (f"{query}&{element}" if query else element), body

    def sign(self, query: str, body: str, signer: SigningAuth | None = None) -> tuple[str, str]:
        payload = (query + body).encode("utf-8")
        return self.with_signature(query, body, self.signature_for(payload, signer))

    def signed_parts(
        self,
        params: Sequence[tuple[str, str]],
        placement: S.Placement = "query",
        *,
        timestamp: int | None = None,
        recv_window: int | None = None,
    ) -> tuple[str, str]:
        pairs = self.stamped(params, timestamp=timestamp, recv_window=recv_window)
        in_query, in_body = S.split_params(pairs, placement)
        return self.sign(S.form(in_query), S.form(in_body))

    # sending

    def call(
        self,
        method: str,
        path: str,
        params: Sequence[tuple[str, str]] = (),
        placement: S.Placement = "query",
        *,
        timestamp: int | None = None,
        recv_window: int | None = None,
    ) -> Roundtrip:
        """A correctly signed request (signed again, freshly, if it has to be resent)."""

        def build() -> tuple[str, str]:
            return self.signed_parts(
                params, placement, timestamp=timestamp, recv_window=recv_window
            )

        return self.send(method, path, *build(), rebuild=build if timestamp is None else None)

    def send(
        self,
        method: str,
        path: str,
        query: str = "",
        body: str = "",
        *,
        api_key: str | None = "",
        rebuild: Callable[[], tuple[str, str]] | None = None,
    ) -> Roundtrip:
        """Send raw parts; `api_key` "" means this runner's key, None means no key header.

        A 429/418 is waited out (Retry-After, up to `max_retry_after`) and the
        request sent again, rebuilt by `rebuild` when its timestamp would be
        stale by then; raw parts without `rebuild` are only resent unsigned
        ones. Otherwise the run stops (WireAbort) rather than risk a ban.
        """
        for _ in range(3):
            if self.pace() and rebuild is not None:
                query, body = rebuild()
            trip = self._send_once(method, path, query, body, api_key)
            if trip.status not in (418, 429):
                return trip
            retry_after = _retry_after(trip)
            signed = "signature=" in query + body
            if (
                retry_after is None
                or retry_after > self.max_retry_after
                or (signed and rebuild is None)
            ):
                raise WireAbort(
                    f"{path}: rate limited ({trip.status}, Retry-After {retry_after}); "
                    "stopped so that the IP is not banned: run again later"
                )
            self.sleep(retry_after + 0.5)
            self.used_weight = None
            if path != "/dapi/v1/time":
                self.sync_time()
            if rebuild is not None:
                query, body = rebuild()
        raise WireAbort(f"{path}: still rate limited after waiting twice")

    def _send_once(
        self, method: str, path: str, query: str, body: str, api_key: str | None
    ) -> Roundtrip:
        headers = {}
        key = self.api_key if api_key == "" else api_key
        if key is not None:
            headers[API_KEY_HEADER] = key
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        url = self.base_url + path + (f"?{query}" if query else "")
        started = time.perf_counter()
        try:
            response = self.session.request(
                method,
                url,
                data=body.encode("utf-8") if body else None,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            trip = Roundtrip(method, path, query, body, None, f"<no answer: {exc}>", 0.0)
            trip.seconds = time.perf_counter() - started
            self.trips.append(trip)
            return trip
        trip = Roundtrip(
            method,
            path,
            query,
            body,
            response.status_code,
            response.text,
            time.perf_counter() - started,
            response,
        )
        trip.contract_problem = contract_problem(response)
        raw = response.headers.get(WEIGHT_HEADER)
        self.used_weight = int(raw) if raw is not None and raw.isdigit() else None
        self.trips.append(trip)
        return trip

    def pace(self, reserve: int = 0) -> bool:
        """Wait for the next weight window if `reserve` more requests would pass the budget."""
        budget = max(10, int(self.weight_limit * WEIGHT_BUDGET))
        if self.used_weight is None or self.used_weight + reserve < budget:
            return False
        wait_ms = 60_000 - self.now_ms() % 60_000 + 250
        self.sleep(wait_ms / 1000)
        self.used_weight = None
        self.sync_time()  # a minute later, the clocks may have drifted
        return True


def _retry_after(trip: Roundtrip) -> float | None:
    if trip.response is None:
        return None
    raw = trip.response.headers.get("Retry-After")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


# --- the contract document ---------------------------------------------------------


@cache
def _openapi() -> Any:
    from openapi_core import OpenAPI

    text = resources.files("mockserver").joinpath("data/openapi.yaml").read_text("utf-8")
    return OpenAPI.from_dict(yaml.safe_load(text))


def contract_problem(response: requests.Response) -> str | None:
    """Why `response` does not conform to openapi.yaml, or None when it does."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
    from openapi_core.exceptions import OpenAPIError
    from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound

    try:
        _openapi().validate_response(
            RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response)
        )
    except (PathNotFound, OperationNotFound):
        return None
    except OpenAPIError as exc:
        details = "; ".join(str(e) for e in getattr(exc.__cause__, "schema_errors", ()) or ())
        return f"{exc}{' (' + details + ')' if details else ''}"
    return None


# --- what the server publishes ------------------------------------------------------


@dataclass(frozen=True)
class PublishedBracket:
    number: int
    initial_leverage: int
    qty_cap: Decimal


@dataclass
class SymbolView:
    """A listed symbol as the server itself describes it."""

    name: str
    pair: str
    brackets: tuple[PublishedBracket, ...]
    position_amt: Decimal = Decimal(0)

    @property
    def max_leverage(self) -> int:
        return max(b.initial_leverage for b in self.brackets)

    def max_qty_for(self, leverage: int) -> Decimal | None:
        """qtyCap of the highest-numbered bracket whose initialLeverage >= leverage."""
        fitting = [b for b in self.brackets if b.initial_leverage >= leverage]
        return max(fitting, key=lambda b: b.number).qty_cap if fitting else None


class Violation(AssertionError):
    """A property does not hold; carries the requests that show it."""

    def __init__(self, message: str, trips: Sequence[Roundtrip] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.trips = list(trips)


@dataclass
class Context:
    """What the properties share: the wire, the server's own market data, what was changed."""

    wire: Wire
    mock_rules: bool
    admin_token: str = ""
    symbols: dict[str, SymbolView] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)  # what each symbol is at now
    original: dict[str, int] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)
    draws: list[str] = field(default_factory=list)

    @property
    def free(self) -> list[str]:
        """Symbols without an open position: changing their leverage has no other effect."""
        return sorted(n for n, s in self.symbols.items() if s.position_amt == 0)

    # expectations

    def expect_ok(self, trip: Roundtrip, what: str) -> Any:
        if trip.status != 200:
            raise Violation(f"{what}: expected 200, got {trip.status}", [trip])
        self.expect_conformance(trip)
        return trip.payload

    def expect_error(
        self, trip: Roundtrip, status: int, code: int, what: str, msg: str | None = None
    ) -> None:
        if (trip.status, trip.code) != (status, code):
            raise Violation(
                f"{what}: expected {status} {code}, got {trip.status} {trip.code}", [trip]
            )
        payload = trip.payload
        if msg is not None and (not isinstance(payload, dict) or payload.get("msg") != msg):
            raise Violation(f"{what}: expected msg {msg!r}", [trip])
        self.expect_conformance(trip)

    @staticmethod
    def expect_conformance(trip: Roundtrip) -> None:
        if trip.contract_problem:
            raise Violation(
                f"answer does not conform to openapi.yaml: {trip.contract_problem}", [trip]
            )

    # requests the properties make

    def change_leverage(
        self,
        symbol: str,
        leverage: int | str,
        placement: S.Placement = "body",
        *,
        order: Sequence[str] = ("symbol", "leverage"),
        timestamp: int | None = None,
        recv_window: int | None = None,
        extra: Sequence[tuple[str, str]] = (),
    ) -> Roundtrip:
        values = {"symbol": symbol, "leverage": str(leverage)}
        params = [(name, values[name]) for name in order] + list(extra)
        self.touched.add(symbol)
        trip = self.wire.call(
            "POST", LEVERAGE_PATH, params, placement, timestamp=timestamp, recv_window=recv_window
        )
        self.note_answer(trip)
        return trip

    def note_answer(self, trip: Roundtrip) -> None:
        """Keep track of the leverage a successful change set."""
        payload = trip.payload
        if (
            trip.path == LEVERAGE_PATH
            and trip.status == 200
            and isinstance(payload, dict)
            and isinstance(payload.get("symbol"), str)
            and isinstance(payload.get("leverage"), int)
        ):
            self.leverage[payload["symbol"]] = payload["leverage"]

    def position_rows(self, pair: str | None = None) -> tuple[dict[str, dict[str, Any]], Roundtrip]:
        trip = self.wire.call("GET", "/dapi/v1/positionRisk", [("pair", pair)] if pair else [])
        rows = self.expect_ok(trip, "GET /dapi/v1/positionRisk")
        if not isinstance(rows, list):
            raise Violation("positionRisk did not answer a list", [trip])
        return {str(r.get("symbol")): r for r in rows if isinstance(r, dict)}, trip

    def check_leverage_unchanged(self, symbols: Sequence[str], because: str) -> None:
        """positionRisk still shows what this run last set: rejected requests changed nothing."""
        known = [s for s in symbols if s in self.leverage]
        if not known:
            return
        rows, trip = self.position_rows()
        for symbol in known:
            shown = rows.get(symbol, {}).get("leverage")
            if shown != str(self.leverage[symbol]):
                raise Violation(
                    f"{because}, yet {symbol}'s leverage is now {shown} "
                    f"(it was {self.leverage[symbol]})",
                    [trip],
                )

    def admin(self) -> Any:
        from mockserver.harness import DapiMock

        return DapiMock(self.wire.base_url, "", "", self.admin_token)


Draw = Callable[[st.SearchStrategy[Any], str], Any]


@dataclass(frozen=True)
class Property:
    """One statement about the server, checked on `examples` drawn cases (or once)."""

    name: str
    statement: str
    check: Callable[[Context, Draw], None]
    mock_rules: bool = False
    needs_symbols: bool = True
    once: bool = False
    before: Callable[[Context], None] | None = None
    after: Callable[[Context], None] | None = None


# --- portable properties ----------------------------------------------------------------


def _draw_symbol(ctx: Context, draw: Draw) -> SymbolView:
    return ctx.symbols[draw(st.sampled_from(ctx.free), "symbol")]


def _draw_new_leverage(ctx: Context, view: SymbolView, draw: Draw) -> int:
    """A valid leverage other than the current one, so that a change would show."""
    current = ctx.leverage.get(view.name)
    choices = st.integers(1, view.max_leverage)
    if view.max_leverage > 1 and current is not None:
        choices = choices.filter(lambda lev: lev != current)
    return int(draw(choices, "leverage"))


def check_valid_requests_succeed(ctx: Context, draw: Draw) -> None:
    view = _draw_symbol(ctx, draw)
    leverage = draw(S.leverages_within(view.max_leverage), "leverage")
    placement = draw(S.placements(), "placement")
    recv_window = draw(S.recv_windows(), "recvWindow")
    order = draw(st.permutations(["symbol", "leverage"]), "order")
    trip = ctx.change_leverage(view.name, leverage, placement, order=order, recv_window=recv_window)
    body = ctx.expect_ok(trip, "a valid, signed leverage change")
    if body.get("symbol") != view.name or body.get("leverage") != leverage:
        raise Violation(f"answered another change than {view.name} at {leverage}x", [trip])
    read = draw(st.sampled_from(("positionRisk", "v2 brackets", "v1 brackets", "time")), "read")
    if read == "positionRisk":
        rows, row_trip = ctx.position_rows(view.pair)
        if rows.get(view.name, {}).get("leverage") != str(leverage):
            raise Violation(f"positionRisk does not show {view.name} at {leverage}x", [row_trip])
    elif read == "v2 brackets":
        trip = ctx.wire.call("GET", "/dapi/v2/leverageBracket", [("symbol", view.name)])
        ctx.expect_ok(trip, "GET /dapi/v2/leverageBracket?symbol")
    elif read == "v1 brackets":
        trip = ctx.wire.call("GET", "/dapi/v1/leverageBracket", [("pair", view.pair)])
        ctx.expect_ok(trip, "GET /dapi/v1/leverageBracket?pair")
    else:
        ctx.expect_ok(ctx.wire.send("GET", "/dapi/v1/time"), "GET /dapi/v1/time")


def check_bracket_tables_are_monotone(ctx: Context) -> None:
    """The published tables themselves: initialLeverage falls and qtyCap rises with the bracket."""
    for view in ctx.symbols.values():
        ordered = sorted(view.brackets, key=lambda b: b.number)
        for lower, upper in itertools.pairwise(ordered):
            if not (
                upper.initial_leverage < lower.initial_leverage and upper.qty_cap > lower.qty_cap
            ):
                raise Violation(
                    f"{view.name}'s published brackets {lower.number} and {upper.number} do not "
                    f"trade leverage for size (initialLeverage {lower.initial_leverage} -> "
                    f"{upper.initial_leverage}, qtyCap {lower.qty_cap} -> {upper.qty_cap})"
                )


def check_max_qty_follows_brackets(ctx: Context, draw: Draw) -> None:
    view = _draw_symbol(ctx, draw)
    if view.max_leverage < 2:
        return
    low, high = draw(S.leverage_pairs(view.max_leverage), "leverages")
    trips = []
    answered: dict[int, Decimal] = {}
    for leverage in (low, high):
        trip = ctx.change_leverage(view.name, leverage, draw(S.placements(), "placement"))
        trips.append(trip)
        body = ctx.expect_ok(trip, f"change {view.name} to {leverage}x")
        expected = view.max_qty_for(leverage)
        got = Decimal(str(body.get("maxQty")))
        if got != expected:
            raise Violation(
                f"maxQty at {leverage}x is {got}; the server's own brackets for {view.name} "
                f"say {expected} (qtyCap of the highest-numbered bracket with "
                f"initialLeverage >= {leverage})",
                [trip],
            )
        answered[leverage] = got
    if answered[high] > answered[low]:
        raise Violation(
            f"maxQty grew with leverage: {answered[low]} at {low}x, {answered[high]} at {high}x",
            trips,
        )


def _tampered_parts(ctx: Context, params: list[tuple[str, str]], placement: str, draw: Draw):
    """Request parts whose signature is wrong in a drawn way; (query, body, how)."""
    wire = ctx.wire
    stamped = wire.stamped(params)
    in_query, in_body = S.split_params(stamped, placement)
    query, body = S.form(in_query), S.form(in_body)
    payload = (query + body).encode()
    tamper = draw(S.signature_tampers(), "tamper")
    if tamper == "reordered" and len(stamped) < 2:
        tamper = "other_payload"
    if tamper == "flipped":
        good = unquote(wire.signature_for(payload))
        # Never the last 4 characters: base64 padding bits would leave the bytes unchanged.
        index = draw(st.integers(0, max(0, len(good) - 5)), "flip at")
        alphabet = (
            "0123456789abcdef"
            if isinstance(wire.signer, HmacAuth)
            else "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        )
        others = [c for c in alphabet if c != good[index].lower() and c != good[index]]
        bad = good[:index] + draw(st.sampled_from(others), "flip to") + good[index + 1 :]
        signature = quote(bad, safe="")
    elif tamper == "other_key":
        signature = wire.signature_for(payload, _stranger_signer(wire.signer))
    elif tamper == "other_payload":
        signature = wire.signature_for(payload + b"0")
    elif tamper == "reordered":
        other_order = S.form(sorted(stamped, reverse=stamped == sorted(stamped)))
        signature = wire.signature_for(other_order.encode())
    else:  # truncated
        signature = quote(unquote(wire.signature_for(payload))[:-1], safe="")
    query, body = wire.with_signature(query, body, signature)
    return query, body, tamper


@cache
def _stranger_signer_of_type(kind: str) -> SigningAuth:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if kind == "HmacAuth":
        return HmacAuth("stranger", secrets.token_hex(32))
    if kind == "RsaAuth":
        return auth_from_private_key("stranger", rsa.generate_private_key(65537, 2048))
    return auth_from_private_key("stranger", ed25519.Ed25519PrivateKey.generate())


def _stranger_signer(signer: SigningAuth) -> SigningAuth:
    """A signer of the same kind with a key the server does not know."""
    return _stranger_signer_of_type(type(signer).__name__)


def _draw_signed_target(ctx: Context, draw: Draw) -> tuple[str, str, list[tuple[str, str]], str]:
    """(method, path, params, placement) of a signed request that would otherwise succeed."""
    view = _draw_symbol(ctx, draw)
    endpoint = draw(st.sampled_from(("leverage", *SIGNED_READS)), "endpoint")
    if endpoint == "leverage":
        ctx.touched.add(view.name)
        params = [("symbol", view.name), ("leverage", str(_draw_new_leverage(ctx, view, draw)))]
        return "POST", LEVERAGE_PATH, params, draw(S.placements(), "placement")
    if endpoint == "positionRisk":
        return "GET", "/dapi/v1/positionRisk", [("pair", view.pair)], "query"
    return "GET", "/dapi/v2/leverageBracket", [("symbol", view.name)], "query"


def check_wrong_signature_is_1022(ctx: Context, draw: Draw) -> None:
    method, path, params, placement = _draw_signed_target(ctx, draw)
    query, body, tamper = _tampered_parts(ctx, params, placement, draw)
    trip = ctx.wire.send(method, path, query, body)
    ctx.note_answer(trip)
    ctx.expect_error(trip, 400, -1022, f"{method} {path} with a {tamper} signature")


def check_bad_timestamp_is_1021(ctx: Context, draw: Draw) -> None:
    method, path, params, placement = _draw_signed_target(ctx, draw)
    recv_window = draw(S.recv_windows(), "recvWindow")
    window = S.DEFAULT_RECV_WINDOW_MS if recv_window is None else recv_window
    if draw(st.sampled_from(("stale", "ahead")), "timestamp") == "stale":
        timestamp = ctx.wire.now_ms() - draw(S.stale_ages(window), "age ms")
        msg = STALE_MSG
    else:
        timestamp = ctx.wire.now_ms() + draw(S.ahead_leads(), "lead ms")
        msg = AHEAD_MSG
    trip = ctx.wire.call(
        method, path, params, placement, timestamp=timestamp, recv_window=recv_window
    )
    ctx.note_answer(trip)
    ctx.expect_error(trip, 400, -1021, f"{method} {path} with timestamp {timestamp}", msg)


def check_out_of_range_leverage_is_4028(ctx: Context, draw: Draw) -> None:
    view = _draw_symbol(ctx, draw)
    # Against an unknown server stay near the range: huge numbers are a parsing question.
    limit = S.INT64_MAX if ctx.mock_rules else view.max_leverage + 1000
    leverage = draw(S.leverages_above(view.max_leverage, limit), "leverage")
    trip = ctx.change_leverage(view.name, leverage, draw(S.placements(), "placement"))
    msg = f"Leverage {leverage} is not valid" if ctx.mock_rules else None
    ctx.expect_error(trip, 400, -4028, f"{view.name} at {leverage}x (max {view.max_leverage})", msg)


def check_repeating_a_change_is_harmless(ctx: Context, draw: Draw) -> None:
    view = _draw_symbol(ctx, draw)
    leverage = draw(S.leverages_within(view.max_leverage), "leverage")
    first = ctx.change_leverage(view.name, leverage, draw(S.placements(), "placement"))
    body = ctx.expect_ok(first, f"change {view.name} to {leverage}x")
    again = ctx.change_leverage(view.name, leverage, draw(S.placements(), "placement again"))
    if again.status == 200:
        if again.payload != body:
            raise Violation("the repeated change answered another body", [first, again])
    elif again.status is None or not 400 <= again.status < 500 or again.code is None:
        raise Violation(
            "the repeated change got neither 200 nor a Binance 4xx error", [first, again]
        )
    ctx.expect_conformance(again)
    rows, row_trip = ctx.position_rows(view.pair)
    row = rows.get(view.name, {})
    if row.get("leverage") != str(leverage) or row.get("maxQty") != body.get("maxQty"):
        raise Violation(
            f"after repeating {leverage}x, positionRisk shows {view.name} at "
            f"{row.get('leverage')}x with maxQty {row.get('maxQty')}",
            [first, again, row_trip],
        )


def _sync_time(ctx: Context) -> None:
    ctx.wire.sync_time()


def _state_unchanged(ctx: Context) -> None:
    ctx.check_leverage_unchanged(sorted(ctx.touched), "every change in this property was refused")


# --- properties resting on SPEC's (our choice) rules -------------------------------------


def check_leverage_below_one_is_4028(ctx: Context, draw: Draw) -> None:
    view = _draw_symbol(ctx, draw)
    leverage = draw(S.leverages_below_one(), "leverage")
    trip = ctx.change_leverage(view.name, leverage, draw(S.placements(), "placement"))
    ctx.expect_error(
        trip, 400, -4028, f"{view.name} at {leverage}x", f"Leverage {leverage} is not valid"
    )


def check_duplicates_are_1101(ctx: Context, draw: Draw) -> None:
    view = _draw_symbol(ctx, draw)
    leverage = _draw_new_leverage(ctx, view, draw)
    placement = draw(st.sampled_from(("query", "body")), "placement")
    name = draw(st.sampled_from(("symbol", "leverage", "timestamp", "recvWindow")), "twice")
    pairs = ctx.wire.stamped([("symbol", view.name), ("leverage", str(leverage))], recv_window=5000)
    value = dict(pairs)[name]
    pairs.insert(draw(st.integers(0, len(pairs)), "at"), (name, value))
    ctx.touched.add(view.name)
    in_query, in_body = S.split_params(pairs, placement)
    query, body = ctx.wire.sign(S.form(in_query), S.form(in_body))
    trip = ctx.wire.send("POST", LEVERAGE_PATH, query, body)
    ctx.note_answer(trip)
    ctx.expect_error(trip, 400, -1101, f"{name} sent twice in the {placement}", DUPLICATE_MSG)


def check_fresh_account_starts_at_20(ctx: Context, draw: Draw) -> None:
    admin = ctx.admin()
    api_key = "verify" + secrets.token_hex(8)
    secret = secrets.token_hex(32)
    admin.accounts.add(api_key, secret=secret)
    fresh = Wire(ctx.wire.base_url, api_key, HmacAuth(api_key, secret), timeout=ctx.wire.timeout)
    fresh.offset_ms = ctx.wire.offset_ms
    try:
        trip = fresh.call("GET", "/dapi/v1/positionRisk")
        ctx.wire.trips.append(trip)
        rows = ctx.expect_ok(trip, "positionRisk of a fresh account")
        for row in rows:
            view = ctx.symbols.get(row.get("symbol"))
            expected = view.max_qty_for(20) if view else None
            if row.get("leverage") != "20" or (
                expected is not None and Decimal(row.get("maxQty")) != expected
            ):
                raise Violation(
                    f"a fresh account shows {row.get('symbol')} at {row.get('leverage')}x with "
                    f"maxQty {row.get('maxQty')} (expected 20x, {expected})",
                    [trip],
                )
    finally:
        fresh.close()
        admin.accounts.remove(api_key)
        admin.close()


def check_same_leverage_again_succeeds(ctx: Context, draw: Draw) -> None:
    view = _draw_symbol(ctx, draw)
    leverage = draw(S.leverages_within(view.max_leverage), "leverage")
    first = ctx.change_leverage(view.name, leverage, draw(S.placements(), "placement"))
    ctx.expect_ok(first, f"change {view.name} to {leverage}x")
    again = ctx.change_leverage(view.name, leverage, draw(S.placements(), "placement again"))
    ctx.expect_ok(again, f"change {view.name} to {leverage}x again")
    if again.payload != first.payload:
        raise Violation("setting the same leverage again answered another body", [first, again])


def check_unknown_parameters_are_ignored(ctx: Context, draw: Draw) -> None:
    view = _draw_symbol(ctx, draw)
    leverage = draw(S.leverages_within(view.max_leverage), "leverage")
    known = ("symbol", "leverage", "recvWindow", "timestamp")
    extra = (
        draw(S.unknown_parameter_names(known), "unknown name"),
        draw(S.parameter_values(), "unknown value"),
    )
    trip = ctx.change_leverage(
        view.name, leverage, draw(S.placements(), "placement"), extra=[extra]
    )
    body = ctx.expect_ok(trip, f"a change with the unknown parameter {extra[0]}")
    if body.get("leverage") != leverage:
        raise Violation("the change did not apply", [trip])


def check_recv_window_has_no_cap(ctx: Context, draw: Draw) -> None:
    view = _draw_symbol(ctx, draw)
    leverage = draw(S.leverages_within(view.max_leverage), "leverage")
    recv_window = draw(st.integers(S.CLIENT_RECV_WINDOW_MAX_MS + 1, 2**62), "recvWindow")
    age = draw(st.integers(0, recv_window - S.TIMING_MARGIN_MS), "age ms")
    trip = ctx.change_leverage(
        view.name,
        leverage,
        draw(S.placements(), "placement"),
        recv_window=recv_window,
        timestamp=ctx.wire.now_ms() - age,
    )
    ctx.expect_ok(trip, f"recvWindow {recv_window} with a timestamp {age} ms old")


def check_malformed_integers_are_1102(ctx: Context, draw: Draw) -> None:
    view = _draw_symbol(ctx, draw)
    leverage = _draw_new_leverage(ctx, view, draw)
    form = draw(st.sampled_from(("malformed", "leading zeros")), "form")
    if form == "leading zeros":
        text = draw(S.leading_zero_texts(leverage), "leverage text")
        trip = ctx.change_leverage(view.name, text, draw(S.placements(), "placement"))
        body = ctx.expect_ok(trip, f"leverage {text!r} (leading zeros are allowed)")
        if body.get("leverage") != leverage:
            raise Violation(f"leverage {text!r} was read as {body.get('leverage')}", [trip])
        return
    text = draw(S.malformed_integer_texts(leverage), "leverage text")
    trip = ctx.change_leverage(view.name, text, draw(S.placements(), "placement"))
    ctx.expect_error(
        trip,
        400,
        -1102,
        f"leverage {text!r}",
        "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed.",
    )


def check_timing_window_is_exact(ctx: Context, draw: Draw) -> None:
    view = _draw_symbol(ctx, draw)
    admin = ctx.admin()
    clock = admin.clock.state()
    now = ctx.wire.now_ms()
    admin.clock.freeze(now)
    try:
        recv_window = draw(st.integers(0, S.CLIENT_RECV_WINDOW_MAX_MS), "recvWindow")
        cases = [
            (now + S.AHEAD_TOLERANCE_MS - 1, True),
            (now + S.AHEAD_TOLERANCE_MS, False),
            (now - recv_window, True),
            (now - recv_window - 1, False),
        ]
        for timestamp, accepted in cases:
            trip = ctx.wire.call(
                "GET",
                "/dapi/v2/leverageBracket",
                [("symbol", view.name)],
                timestamp=timestamp,
                recv_window=recv_window,
            )
            what = f"timestamp {timestamp - now:+d} ms from server time, recvWindow {recv_window}"
            if accepted:
                ctx.expect_ok(trip, what)
            else:
                ctx.expect_error(trip, 400, -1021, what)
    finally:
        if clock["frozen"]:
            admin.clock.freeze(clock["frozen_at_ms"])
        else:
            admin.clock.offset(clock["offset_ms"])
        admin.close()


def check_misplaced_signature_is_1022(ctx: Context, draw: Draw) -> None:
    method, path, params, placement = _draw_signed_target(ctx, draw)
    in_query, in_body = S.split_params(ctx.wire.stamped(params), placement)
    query, body = S.form(in_query), S.form(in_body)
    signature = ctx.wire.signature_for((query + body).encode())
    where = "body" if body else "query"
    pairs = in_body if body else in_query
    # The right signature, but not as the last element of its part.
    moved = S.form([("signature", unquote(signature)), *pairs])
    if where == "body":
        body = moved
    else:
        query = moved
    trip = ctx.wire.send(method, path, query, body)
    ctx.note_answer(trip)
    ctx.expect_error(trip, 400, -1022, f"{method} {path} with the signature not last")


PROPERTIES: tuple[Property, ...] = (
    Property(
        "valid_signed_requests_succeed",
        "valid signed requests succeed, and every answer is schema-valid",
        check_valid_requests_succeed,
    ),
    Property(
        "max_qty_follows_published_brackets",
        "maxQty is the qtyCap the server's own brackets give, and never grows with leverage",
        check_max_qty_follows_brackets,
        before=check_bracket_tables_are_monotone,
    ),
    Property(
        "wrong_signature_is_1022",
        "a wrong signature is always 400 -1022, and changes nothing",
        check_wrong_signature_is_1022,
        after=_state_unchanged,
    ),
    Property(
        "stale_or_future_timestamp_is_1021",
        "a stale or future timestamp is always 400 -1021, and changes nothing",
        check_bad_timestamp_is_1021,
        before=_sync_time,
        after=_state_unchanged,
    ),
    Property(
        "out_of_range_leverage_is_4028",
        "leverage above the symbol's maximum is always 400 -4028, and changes nothing",
        check_out_of_range_leverage_is_4028,
        after=_state_unchanged,
    ),
    Property(
        "repeating_a_change_is_harmless",
        "repeating a change leaves the leverage and maxQty of the first",
        check_repeating_a_change_is_harmless,
    ),
    Property(
        "leverage_below_one_is_4028",
        "leverage 0 or below is 400 -4028 'Leverage N is not valid' (our choice)",
        check_leverage_below_one_is_4028,
        mock_rules=True,
        after=_state_unchanged,
    ),
    Property(
        "duplicate_parameters_are_1101",
        "a parameter twice in the query or the body is 400 -1101 (our choice)",
        check_duplicates_are_1101,
        mock_rules=True,
        after=_state_unchanged,
    ),
    Property(
        "fresh_account_starts_at_20",
        "a fresh account shows every symbol at 20x (our choice)",
        check_fresh_account_starts_at_20,
        mock_rules=True,
        once=True,
    ),
    Property(
        "same_leverage_again_succeeds",
        "setting the current leverage again is 200 with the same body (our choice)",
        check_same_leverage_again_succeeds,
        mock_rules=True,
    ),
    Property(
        "unknown_parameters_are_ignored",
        "an unknown parameter is ignored (strict_params off, our choice)",
        check_unknown_parameters_are_ignored,
        mock_rules=True,
    ),
    Property(
        "recv_window_has_no_cap",
        "recvWindow above 60000 is honoured (no cap by default, our choice)",
        check_recv_window_has_no_cap,
        mock_rules=True,
        before=_sync_time,
    ),
    Property(
        "malformed_integers_are_1102",
        "an INT that is not ASCII -?[0-9]+ is -1102; leading zeros are fine (our choice)",
        check_malformed_integers_are_1102,
        mock_rules=True,
        after=_state_unchanged,
    ),
    Property(
        "timing_window_is_exact",
        "timestamp < serverTime + 1000 and serverTime - timestamp <= recvWindow, to the ms",
        check_timing_window_is_exact,
        mock_rules=True,
        before=_sync_time,
    ),
    Property(
        "misplaced_signature_is_1022",
        "a right signature that is not the last element is 400 -1022",
        check_misplaced_signature_is_1022,
        mock_rules=True,
        after=_state_unchanged,
    ),
)
PROPERTY_NAMES = tuple(p.name for p in PROPERTIES)


# --- the runner -------------------------------------------------------------------------


def discover(ctx: Context) -> list[Roundtrip]:
    """Read what the server publishes: weight limit, symbols, brackets, positions, leverage."""
    wire = ctx.wire
    trips = [wire.sync_time()]
    ctx.expect_ok(trips[-1], "GET /dapi/v1/time")
    trips.append(wire.send("GET", "/dapi/v1/exchangeInfo"))
    info = ctx.expect_ok(trips[-1], "GET /dapi/v1/exchangeInfo")
    for limit in info.get("rateLimits", []):
        if limit.get("rateLimitType") == "REQUEST_WEIGHT" and limit.get("interval") == "MINUTE":
            wire.weight_limit = int(limit.get("limit") or LIVE_WEIGHT_PER_MINUTE)
    trading = {
        row["symbol"]: row.get("pair", "")
        for row in info.get("symbols", [])
        if row.get("contractStatus") == "TRADING"
    }
    trips.append(wire.call("GET", "/dapi/v2/leverageBracket"))
    tables = ctx.expect_ok(trips[-1], "GET /dapi/v2/leverageBracket")
    for row in tables:
        name = row.get("symbol")
        if name not in trading:
            continue
        brackets = tuple(
            PublishedBracket(
                int(b["bracket"]), int(b["initialLeverage"]), Decimal(str(b["qtyCap"]))
            )
            for b in row.get("brackets", [])
        )
        if brackets:
            ctx.symbols[name] = SymbolView(name, trading[name], brackets)
    rows, trip = ctx.position_rows()
    trips.append(trip)
    for name, row in rows.items():
        view = ctx.symbols.get(name)
        if view is None:
            continue
        view.position_amt = Decimal(str(row.get("positionAmt", "0")))
        if str(row.get("leverage", "")).isdigit():
            ctx.leverage[name] = ctx.original[name] = int(row["leverage"])
    if not ctx.symbols:
        raise Violation("the server lists no TRADING symbol with brackets", trips)
    return trips


def _run_examples(prop: Property, ctx: Context, examples: int, seed: int) -> None:
    failures: list[Violation] = []

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
        print_blob=False,
    )
    @given(st.data())
    def one_example(data: st.DataObject) -> None:
        ctx.draws = []
        ctx.wire.pace(reserve=EXAMPLE_REQUESTS)  # never wait between building and sending

        def draw(strategy: st.SearchStrategy[Any], label: str) -> Any:
            value = data.draw(strategy, label=label)
            ctx.draws.append(f"{label}={value!r}")
            return value

        try:
            prop.check(ctx, draw)
        except Violation as exc:
            exc.message += f"  [example: {', '.join(ctx.draws)}]"
            failures.append(exc)
            raise

    try:
        hypothesis_seed(seed)(one_example)()
    except BaseException:
        if failures:
            raise failures[-1] from None
        raise


def run_property(prop: Property, ctx: Context, examples: int, seed: int) -> Verdict:
    started = time.perf_counter()
    first_trip = len(ctx.wire.trips)
    ctx.touched = set()

    def verdict(outcome: Any, summary: str, details: Sequence[str] = ()) -> Verdict:
        used = ctx.wire.trips[first_trip:]
        return Verdict(
            prop.name,
            outcome,
            summary,
            list(details),
            time.perf_counter() - started,
            {"statement": prop.statement, "requests": len(used), "mock_rules": prop.mock_rules},
        )

    if prop.mock_rules and not ctx.mock_rules:
        return verdict("skip", "rests on SPEC's (our choice) rules: run with --mock-rules")
    if prop.needs_symbols and not ctx.free:
        return verdict("skip", "no listed symbol without an open position to change")
    try:
        if prop.before is not None:
            prop.before(ctx)
        if prop.once:
            prop.check(ctx, lambda strategy, label: _example_of(strategy, seed))
        else:
            _run_examples(prop, ctx, examples, seed)
        if prop.after is not None:
            prop.after(ctx)
    except Violation as exc:
        lines = [line for trip in exc.trips for line in trip.line().splitlines()]
        return verdict("fail", exc.message, lines)
    except WireAbort as exc:
        return verdict("error", str(exc))
    except Exception as exc:
        return verdict("error", f"{type(exc).__name__}: {exc}")
    used = len(ctx.wire.trips) - first_trip
    return verdict("pass", f"{prop.statement} [{used} requests]")


def _example_of(strategy: st.SearchStrategy[Any], seed: int) -> Any:
    """One value of `strategy` for a property checked once (deterministic per seed)."""
    found: list[Any] = []

    @settings(max_examples=1, database=None, phases=(Phase.generate,), verbosity=Verbosity.quiet)
    @given(strategy)
    def take(value: Any) -> None:
        found.append(value)

    hypothesis_seed(seed)(take)()
    return found[0]


def verify_server(
    base_url: str,
    api_key: str,
    *,
    secret: str | None = None,
    private_key: str | bytes | None = None,
    examples: int = 5,
    seed: int | None = None,
    mock_rules: bool = False,
    admin_token: str = "",
    timeout: float = 10.0,
    properties: Sequence[str] | None = None,
    progress: TextIO | None = sys.stdout,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Check every property against the server at `base_url`; the report says which held."""
    if (secret is None) == (private_key is None):
        raise ValueError("give exactly one of secret and private_key")
    signer: SigningAuth = (
        HmacAuth(api_key, secret)
        if secret is not None
        else auth_from_private_key(api_key, private_key or b"")
    )
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    chosen = [p for p in PROPERTIES if properties is None or p.name in properties]
    unknown = set(properties or ()) - set(PROPERTY_NAMES)
    if unknown:
        raise ValueError(f"unknown properties: {', '.join(sorted(unknown))}")
    report = Report(
        "verify-server",
        base_url,
        seed,
        {"examples": examples, "mock_rules": mock_rules, "key_type": type(signer).__name__},
    )
    wire = Wire(base_url, api_key, signer, timeout=timeout, sleep=sleep)
    ctx = Context(wire, mock_rules, admin_token)
    show = Progress(len(chosen) + 1, progress)
    started = time.perf_counter()
    try:
        if progress is not None:
            print(
                f"verify-server {base_url}: {len(chosen)} properties, {examples} examples each, "
                f"seed {seed}{', mock rules' if mock_rules else ''}",
                file=progress,
                flush=True,
            )
        discovery = _discovery_verdict(ctx)
        report.verdicts.append(discovery)
        show(discovery)
        for prop in chosen:
            if discovery.outcome == "pass":
                verdict = run_property(prop, ctx, examples, seed)
            else:
                verdict = Verdict(prop.name, "skip", "the server's market data could not be read")
            report.verdicts.append(verdict)
            show(verdict)
        report.settings["restored"] = _restore(ctx)
        report.settings["requests"] = len(wire.trips)
    finally:
        wire.close()
        report.seconds = time.perf_counter() - started
    return report


def _discovery_verdict(ctx: Context) -> Verdict:
    started = time.perf_counter()
    name = "server_publishes_its_market"
    try:
        trips = discover(ctx)
    except Violation as exc:
        lines = [line for trip in exc.trips for line in trip.line().splitlines()]
        return Verdict(name, "fail", exc.message, lines, time.perf_counter() - started)
    except (WireAbort, requests.RequestException, KeyError, TypeError, ValueError) as exc:
        return Verdict(name, "error", f"{type(exc).__name__}: {exc}", [], 0.0)
    return Verdict(
        name,
        "pass",
        f"time, exchangeInfo, v2 leverageBracket and positionRisk answer schema-valid bodies; "
        f"{len(ctx.symbols)} symbols, {len(ctx.free)} without a position",
        seconds=time.perf_counter() - started,
        data={"requests": len(trips), "symbols": sorted(ctx.symbols)},
    )


def _restore(ctx: Context) -> list[str]:
    """Put back the leverage each changed symbol had before the run (best effort)."""
    restored = []
    for symbol, original in sorted(ctx.original.items()):
        if ctx.leverage.get(symbol) == original:
            continue
        try:
            trip = ctx.wire.call(
                "POST", LEVERAGE_PATH, [("symbol", symbol), ("leverage", str(original))], "body"
            )
        except WireAbort:
            break
        if trip.status == 200:
            ctx.leverage[symbol] = original
            restored.append(f"{symbol}={original}")
    return restored
