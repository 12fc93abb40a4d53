"""What every `verify-server` property works with: the server's market, the wire, the draws.

`Context` holds what the server publishes (symbols, brackets, positions), what
this run changed (to check refusals changed nothing, and to put it back), and
the requests the properties share; `Property` names one statement and its check.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from contracts import strategies as S
from contracts.signing import HmacAuth
from contracts.verify.wire import (
    LEVERAGE_PATH,
    MARGIN_TYPE_PATH,
    POSITION_MODE_PATH,
    Roundtrip,
    Wire,
)

SIGNED_READS = ("positionRisk", "leverageBracket")
#: docs/behaviour.md#position-risk: how a row names the margin type marginType sets.
MARGIN_TYPE_OF_ROW = {"cross": "CROSSED", "isolated": "ISOLATED"}


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


class NotApplicable(Exception):
    """The property cannot be checked on this account (e.g. open orders): a skip, with why."""


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
    change_settings: bool = False  # may change the account's position mode and margin types
    symbols: dict[str, SymbolView] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)  # what each symbol is at now
    original: dict[str, int] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)
    draws: list[str] = field(default_factory=list)
    # Position configuration as last seen, and as the run found it (to put it back).
    mode: bool | None = None
    original_mode: bool | None = None
    margin: dict[str, str] = field(default_factory=dict)  # "ISOLATED" or "CROSSED"
    original_margin: dict[str, str] = field(default_factory=dict)

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

    def position_list(self, pair: str | None = None) -> tuple[list[dict[str, Any]], Roundtrip]:
        """Every positionRisk row (hedge mode: BOTH, LONG and SHORT per symbol)."""
        trip = self.wire.call("GET", "/dapi/v1/positionRisk", [("pair", pair)] if pair else [])
        rows = self.expect_ok(trip, "GET /dapi/v1/positionRisk")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise Violation("positionRisk did not answer a list of rows", [trip])
        return rows, trip

    def read_mode(self) -> tuple[bool, Roundtrip]:
        """GET positionSide/dual: True in hedge mode; the first read is what gets put back."""
        trip = self.wire.call("GET", POSITION_MODE_PATH)
        body = self.expect_ok(trip, f"GET {POSITION_MODE_PATH}")
        dual = body.get("dualSidePosition") if isinstance(body, dict) else None
        if not isinstance(dual, bool):
            raise Violation("dualSidePosition is not a JSON boolean", [trip])
        # What this run set wins over a read: a server that reads back wrongly must not stop
        # the run from putting back what it changed.
        if self.original_mode is None:
            self.mode = self.original_mode = dual
        return dual, trip

    def read_margin_types(self, pair: str | None = None) -> tuple[dict[str, str], Roundtrip]:
        """Each symbol's margin type as positionRisk shows it ("ISOLATED" or "CROSSED")."""
        rows, trip = self.position_list(pair)
        found: dict[str, set[str]] = {}
        for row in rows:
            shown = MARGIN_TYPE_OF_ROW.get(str(row.get("marginType")))
            if shown is None:
                raise Violation(
                    f"marginType {row.get('marginType')!r} is not cross or isolated", [trip]
                )
            found.setdefault(str(row.get("symbol")), set()).add(shown)
        types = {}
        for symbol, shown_types in found.items():
            if len(shown_types) > 1:
                # docs/behaviour.md#margin-type: one margin type covers both sides of a symbol.
                raise Violation(f"{symbol}'s rows show different margin types", [trip])
            (types[symbol],) = shown_types
            if symbol not in self.original_margin:  # as in read_mode: what was set wins
                self.margin[symbol] = self.original_margin[symbol] = types[symbol]
        return types, trip

    def change_mode(self, dual: bool, placement: S.Placement = "body") -> Roundtrip:
        value = "true" if dual else "false"
        trip = self.wire.call("POST", POSITION_MODE_PATH, [("dualSidePosition", value)], placement)
        if trip.status == 200:
            self.mode = dual
        return trip

    def change_margin_type(
        self, symbol: str, margin_type: str, placement: S.Placement = "body"
    ) -> Roundtrip:
        trip = self.wire.call(
            "POST", MARGIN_TYPE_PATH, [("symbol", symbol), ("marginType", margin_type)], placement
        )
        if trip.status == 200:
            self.margin[symbol] = margin_type
        return trip

    def not_blocked_by_orders(self, trip: Roundtrip, rule: str, what: str) -> None:
        """docs/behaviour.md#position-configuration: open orders (-4047/-4067) block a change on
        a real account; the mock has no orders, so the property cannot be checked there."""
        if trip.code in (-4047, -4067):
            raise NotApplicable(
                f"the server answered {trip.code}: the account has open orders, so {what} "
                f"cannot change (rule {rule}); cancel them to check this"
            )

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

    @contextmanager
    def scratch_account(self, **setup: Any) -> Iterator[tuple[Any, Wire]]:
        """A new HMAC account on the mock (its /__admin), removed afterwards: (admin, wire)."""
        admin = self.admin()
        api_key = "verify" + secrets.token_hex(8)
        secret = secrets.token_hex(32)
        admin.accounts.add(api_key, secret=secret, **setup)
        run = self.wire
        wire = Wire(
            run.base_url,
            api_key,
            HmacAuth(api_key, secret),
            timeout=run.timeout,
            pacing=run.pacing,
            sleep=run.sleep,
            on_wait=run.on_wait,
        )
        wire.offset_ms, wire.weight_limit = run.offset_ms, run.weight_limit
        wire.trips = self.wire.trips  # the run's record shows these requests too
        try:
            yield admin, wire
        finally:
            wire.close()
            admin.accounts.remove(api_key)
            admin.close()


Draw = Callable[[st.SearchStrategy[Any], str], Any]


@dataclass(frozen=True)
class Property:
    """One statement about the server, checked on `examples` drawn cases (or once)."""

    name: str
    rule: str  # the section of docs/behaviour.md it checks
    statement: str  # the rule in a sentence, for users who only have the installed kit
    check: Callable[[Context, Draw], None]
    mock_rules: bool = False
    changes_settings: bool = False  # changes position mode or margin type: needs the flag
    needs_symbols: bool = True
    once: bool = False
    before: Callable[[Context], None] | None = None
    after: Callable[[Context], None] | None = None

    @property
    def reason(self) -> str:
        """The rule this property checks, named and said in a sentence."""
        return f"rule {self.rule}: {self.statement}"


def draw_symbol(ctx: Context, draw: Draw) -> SymbolView:
    return ctx.symbols[draw(st.sampled_from(ctx.free), "symbol")]


def draw_new_leverage(ctx: Context, view: SymbolView, draw: Draw) -> int:
    """A valid leverage other than the current one, so that a change would show.

    Drawn as a position among the other leverages, never filtered on the
    current one: the draws of an example then depend only on the seed, not on
    the leverage earlier examples left (hypothesis replays choice sequences and
    stops on "inconsistent data generation" when they draw differently).
    """
    if view.max_leverage < 2:
        return 1
    current = ctx.leverage.get(view.name)
    position = int(draw(st.integers(1, view.max_leverage - 1), "leverage"))
    return position + 1 if current is not None and position >= current else position


def draw_signed_target(ctx: Context, draw: Draw) -> tuple[str, str, list[tuple[str, str]], str]:
    """(method, path, params, placement) of a signed request that would otherwise succeed."""
    view = draw_symbol(ctx, draw)
    endpoint = draw(st.sampled_from(("leverage", *SIGNED_READS)), "endpoint")
    if endpoint == "leverage":
        ctx.touched.add(view.name)
        params = [("symbol", view.name), ("leverage", str(draw_new_leverage(ctx, view, draw)))]
        return "POST", LEVERAGE_PATH, params, draw(S.placements(), "placement")
    if endpoint == "positionRisk":
        return "GET", "/dapi/v1/positionRisk", [("pair", view.pair)], "query"
    return "GET", "/dapi/v2/leverageBracket", [("symbol", view.name)], "query"


def sync_time(ctx: Context) -> None:
    ctx.wire.sync_time()


def state_unchanged(ctx: Context) -> None:
    ctx.check_leverage_unchanged(sorted(ctx.touched), "every change in this property was refused")
