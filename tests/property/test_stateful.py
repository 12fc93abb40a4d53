"""The reference client drives the live mock through random leverage changes, position set-up
(mode, margin type, positions per side, balances, leverage caps), clock moves and reads.

A model written from the rules alone (their bracket tables, the delivery
calendar, the order of checks, docs/behaviour.md#position-configuration)
predicts every answer: success with the exact maxQty, or the exact HTTP
status and Binance code; and after every step, every read shows the model.
"""

from __future__ import annotations

import calendar
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from contracts import strategies as S
from contracts.client import ApiError, DapiClient
from mockserver.config import DEMO_API_KEY, DEMO_SECRET, Config
from mockserver.harness import AdminRefused, DapiMock, MockServer, format_errors
from tests.published_tables import PUBLISHED_TABLES, Cell, published_table

STEPS = {"ci": 40, "dev": 100}.get(os.environ.get("HYPOTHESIS_PROFILE", "ci"), 20)

CONTRACT_SIZE = {"BTCUSD": Decimal(100), "ETHUSD": Decimal(10)}
MARK_PRICE = {"BTCUSD": Decimal(100000), "ETHUSD": Decimal(3500)}
DEFAULT_LEVERAGE = 20
START_MS = (1_577_836_800_000, 2_082_758_400_000)  # 2020-01-01 .. 2036-01-01
DAY_MS = 86_400_000
#: docs/behaviour.md#position-risk: the rows each position mode shows per symbol.
SIDES = {False: ("BOTH",), True: ("BOTH", "LONG", "SHORT")}
#: docs/behaviour.md#leverage-cap: the code each cap rule answers.
CAP_CODES = {"country": -4201, "new_account": -4200, "kyc": -4194, "position_limit": -4202}
#: marginType's values, as positionRisk names them.
MARGIN_NAMES = {"ISOLATED": "isolated", "CROSSED": "cross"}
#: docs/behaviour.md#balance: the demo account's start (our choice).
DEMO_BALANCES = {"BTC": Decimal(1), "ETH": Decimal(10)}


TABLES = {name: published_table(text) for name, text in PUBLISHED_TABLES.items()}


def max_qty(table: tuple[Cell, ...], leverage: int) -> Decimal:
    return [c for c in table if c.initial_leverage >= leverage][-1].qty_cap


def delivery_ms(year: int, month: int) -> int:
    last = datetime(year, month, calendar.monthrange(year, month)[1], 8, tzinfo=UTC)
    while last.weekday() != calendar.FRIDAY:
        last -= timedelta(days=1)
    return int(last.timestamp() * 1000)


def current_and_next_delivery(now_ms: int) -> tuple[int, int]:
    year = datetime.fromtimestamp(now_ms / 1000, UTC).year
    times = sorted(delivery_ms(y, m) for y in (year, year + 1) for m in (3, 6, 9, 12))
    later = [t for t in times if t > now_ms]
    return later[0], later[1]


def listed_tables(now_ms: int) -> dict[str, tuple[Cell, ...]]:
    """docs/behaviour.md#symbol-data: both perpetuals, and the current and next quarter of
    each pair."""
    listed = {"BTCUSD_PERP": TABLES["BTCUSD_PERP"], "ETHUSD_PERP": TABLES["ETHUSD_PERP"]}
    for delivery in current_and_next_delivery(now_ms):
        day = datetime.fromtimestamp(delivery / 1000, UTC).strftime("%y%m%d")
        for pair in ("BTCUSD", "ETHUSD"):
            listed[f"{pair}_{day}"] = TABLES[f"{pair} quarterly"]
    return listed


def pair_of(symbol: str) -> str:
    return symbol.split("_")[0]


@dataclass(frozen=True)
class ModelPosition:
    """A position as the model expects the mock to hold it (one side of a symbol)."""

    amount: Decimal  # contracts; LONG positive, SHORT negative, BOTH either
    mark_price: Decimal


class LeverageMachine(RuleBasedStateMachine):
    """The model: per listed symbol its leverage, margin type and positions per side; the
    account's position mode, cap and balances; and the frozen mock clock."""

    server: MockServer

    def __init__(self) -> None:
        super().__init__()
        self.mock: DapiMock = self.server.handle()
        self.mock.reset()
        self.now = 0
        self.client_ms = 0
        self.leverage: dict[str, int] = {}
        self.margin: dict[str, str] = {}  # "cross" (the start) or "isolated"
        self.positions: dict[tuple[str, str], ModelPosition] = {}  # (symbol, side)
        self.hedge = False
        self.cap: tuple[str, int] | None = None  # (rule, max_leverage)
        self.balances = dict(DEMO_BALANCES)
        self.balance_set_at: dict[str, int] = {}
        self.delisted: list[str] = []
        self.clients = {
            "owner": self._client(DEMO_API_KEY, DEMO_SECRET),
            "wrong secret": self._client(DEMO_API_KEY, "not-the-demo-secret"),
            "unknown key": self._client("stateUnknownKey", DEMO_SECRET),
            "malformed key": self._client("not a key", DEMO_SECRET),
        }

    def _client(self, api_key: str, secret: str) -> DapiClient:
        return DapiClient(
            self.mock.url,
            api_key,
            secret=secret,
            clock_ms=lambda: self.client_ms,
            get_retries=0,
            rate_limit_retries=0,
        )

    def teardown(self) -> None:
        for client in self.clients.values():
            client.close()
        self.mock.close()

    @property
    def listed(self) -> dict[str, tuple[Cell, ...]]:
        return listed_tables(self.now)

    def start_leverage(self, table: tuple[Cell, ...]) -> int:
        """docs/behaviour.md#position-configuration: 20, or less where the table or cap says."""
        limits = [DEFAULT_LEVERAGE, table[0].initial_leverage]
        return min(limits + ([self.cap[1]] if self.cap else []))

    def leverage_of(self, symbol: str) -> int:
        return self.leverage.get(symbol) or self.start_leverage(self.listed[symbol])

    def open_sides(self, symbol: str) -> list[ModelPosition]:
        return [p for (s, _), p in self.positions.items() if s == symbol]

    def owner_call(self, call: Any) -> tuple[Any, ...]:
        """("ok", result) or ("error", status, code) of the owner's call, in the window."""
        self.client_ms = self.now
        try:
            return ("ok", call(self.clients["owner"]))
        except ApiError as exc:
            return ("error", exc.status, exc.code)

    # rules

    @initialize(
        start=st.integers(*START_MS), cap=st.one_of(st.none(), st.none(), S.leverage_caps())
    )
    def freeze_the_clock(self, start: int, cap: tuple[str, int] | None) -> None:
        self.now = start
        self.mock.clock.freeze(start)
        if cap is not None:
            self.cap_the_account(cap)

    @rule(cap=S.leverage_caps())
    def cap_the_account(self, cap: tuple[str, int]) -> None:
        """docs/behaviour.md#leverage-cap: a new cap; leverages already set stay as they are."""
        rule_name, max_leverage = cap
        self.mock.accounts.add(
            DEMO_API_KEY, DEMO_SECRET, max_leverage=max_leverage, max_leverage_rule=rule_name
        )
        self.cap = cap

    @rule(data=st.data())
    def move_the_clock(self, data: st.DataObject) -> None:
        delivery, _ = current_and_next_delivery(self.now)
        step = data.draw(
            st.one_of(
                st.integers(0, 120_000),
                st.integers(0, 200 * DAY_MS),
                st.integers(-2, 2).map(lambda d: max(0, delivery - self.now + d)),
            ),
            label="advance ms",
        )
        before = set(self.listed)
        self.mock.clock.advance(step)
        self.now += step
        gone = before - set(self.listed)
        self.delisted = sorted(gone | set(self.delisted))[-6:]
        self.leverage = {s: v for s, v in self.leverage.items() if s not in gone}
        self.margin = {s: v for s, v in self.margin.items() if s not in gone}
        self.positions = {k: p for k, p in self.positions.items() if k[0] not in gone}

    @rule(data=st.data())
    def seed_a_position(self, data: st.DataObject) -> None:
        symbol = data.draw(st.sampled_from(sorted(self.listed)), label="symbol")
        # The side the mode takes, twice as often as the one it refuses.
        fits, refused = (("LONG", "SHORT"), "BOTH") if self.hedge else (("BOTH",), "LONG")
        side = data.draw(st.sampled_from((*fits, *fits, refused)), label="side")
        low, high = {"LONG": (0, 200_000), "SHORT": (-200_000, 0)}.get(side, (-200_000, 200_000))
        amount = data.draw(st.integers(low, high), label="contracts")
        margin_type = data.draw(st.sampled_from((None, "cross", "isolated")), label="margin")
        mark = data.draw(st.one_of(st.none(), st.integers(500, 200_000)), label="mark")

        def seed() -> None:
            price = None if mark is None else str(mark)
            self.mock.positions.seed(symbol, amount, margin_type, price, position_side=side)

        if side == refused:
            with pytest.raises(AdminRefused, match="hedge mode"):
                seed()
            return
        seed()
        if margin_type is not None:
            self.margin[symbol] = margin_type
        price = MARK_PRICE[pair_of(symbol)] if mark is None else Decimal(mark)
        if amount == 0:
            self.positions.pop((symbol, side), None)
        else:
            self.positions[(symbol, side)] = ModelPosition(Decimal(amount), price)

    @rule(dual=st.booleans())
    def arrange_the_position_mode(self, dual: bool) -> None:
        """/__admin/position_mode: no -4059; refused while positions would be stranded."""
        if dual != self.hedge and self.positions:
            with pytest.raises(AdminRefused, match="open positions"):
                self.mock.set_position_mode(dual)
            return
        self.mock.set_position_mode(dual)
        self.hedge = dual

    @rule(data=st.data())
    def arrange_a_margin_type(self, data: st.DataObject) -> None:
        """/__admin/margin_type: neither -4046 nor -4048."""
        symbol = data.draw(st.sampled_from(sorted(self.listed)), label="symbol")
        value = data.draw(st.sampled_from(S.MARGIN_TYPES), label="marginType")
        self.mock.set_margin_type(symbol, value)
        self.margin[symbol] = MARGIN_NAMES[value]

    @rule(
        asset=st.sampled_from(sorted(DEMO_BALANCES)),
        units=st.integers(0, 10**17),  # 0 .. 10^9 with 8 decimals
    )
    def arrange_a_balance(self, asset: str, units: int) -> None:
        wallet = Decimal(units).scaleb(-8)
        self.mock.balances.set(asset, format(wallet, "f"))
        self.balances[asset] = wallet
        self.balance_set_at[asset] = self.now

    @rule(data=st.data())
    def change_margin_type(self, data: st.DataObject) -> None:
        listed = self.listed
        held = sorted({s for s, _ in self.positions}) or sorted(listed)
        symbol = data.draw(
            st.one_of(
                st.sampled_from(held),
                st.sampled_from(sorted(listed)),
                st.sampled_from(held),
                st.sampled_from(self.delisted or ["BTCUSD_200327"]),
                S.unlisted_symbols(sorted(listed)),
            ),
            label="symbol",
        )
        valid = st.sampled_from(S.MARGIN_TYPES)
        value = data.draw(st.one_of(valid, valid, S.bad_margin_types()), label="marginType")
        expected = self.expected_margin_type_change(symbol, value)
        got = self.owner_call(lambda c: c.change_margin_type(symbol, value))
        event("marginType: " + ("ok" if got[0] == "ok" else f"{got[1]} {got[2]}"))
        assert got == expected, f"{symbol} to {value!r}"
        if got[0] == "ok":
            self.margin[symbol] = MARGIN_NAMES[value]

    def expected_margin_type_change(self, symbol: str, value: str) -> tuple[Any, ...]:
        """docs/behaviour.md#order-of-checks: -1121, -1130, -4046, -4048."""
        if symbol not in self.listed:
            return ("error", 400, -1121)
        if value not in MARGIN_NAMES:
            return ("error", 400, -1130)
        if MARGIN_NAMES[value] == self.margin.get(symbol, "cross"):
            return ("error", 400, -4046)
        if self.open_sides(symbol):
            return ("error", 400, -4048)
        return ("ok", None)

    @rule(data=st.data())
    def change_position_mode(self, data: st.DataObject) -> None:
        value = data.draw(
            st.one_of(
                st.booleans(),
                st.sampled_from(("true", "false", "TRUE", "False", "tRuE")),
                S.bad_position_modes(),
            ),
            label="dualSidePosition",
        )
        if isinstance(value, bool):
            got = self.owner_call(lambda c: c.change_position_mode(value))
            wanted: bool | None = value
        else:
            got = self.owner_call(
                lambda c: c.request(
                    "POST", "/dapi/v1/positionSide/dual", [("dualSidePosition", value)], True
                )
            )
            wanted = {"true": True, "false": False}.get(value.lower())
        if wanted is None:
            expected: tuple[Any, ...] = ("error", 400, -1130)
        elif wanted == self.hedge:
            expected = ("error", 400, -4059)
        elif self.positions:
            expected = ("error", 400, -4068)
        else:
            expected = ("ok",)
        event("positionSide/dual: " + ("ok" if got[0] == "ok" else f"{got[1]} {got[2]}"))
        assert (got[:1] if got[0] == "ok" else got) == expected, f"{value!r}"
        if got[0] == "ok":
            self.hedge = bool(wanted)

    @rule(data=st.data())
    def change_leverage(self, data: st.DataObject) -> None:
        listed = self.listed
        known = st.sampled_from(sorted(listed))
        # Symbols with a seeded position, where -2027 and -4150 live.
        held_symbols = sorted({s for s, _ in self.positions})
        held = st.sampled_from(held_symbols) if held_symbols else known
        symbol = data.draw(
            st.one_of(
                known,
                held,
                held,
                st.sampled_from(self.delisted or ["BTCUSD_200327"]),
                S.unlisted_symbols(sorted(listed)),
                S.illegal_symbols().filter(lambda s: "\x00" not in s),
            ),
            label="symbol",
        )
        top = listed[symbol][0].initial_leverage if symbol in listed else 125
        leverage = data.draw(
            st.one_of(
                S.leverages_within(top),
                S.leverages_within(top),
                st.integers(-3, 130),
                S.leverages_above(top, S.INT64_MAX),
                S.leverages_below_one(),
            ),
            label="leverage",
        )
        recv_window = data.draw(st.one_of(st.none(), st.integers(0, 70_000)), label="recvWindow")
        window = S.DEFAULT_RECV_WINDOW_MS if recv_window is None else recv_window
        skew = data.draw(
            st.one_of(st.integers(-window, S.AHEAD_TOLERANCE_MS - 1), S.timestamp_skews(window)),
            label="client clock - server clock",
        )
        who = data.draw(
            st.sampled_from(
                ("owner", "owner", "owner", "wrong secret", "unknown key", "malformed key")
            ),
            label="caller",
        )
        client = self.clients[who]
        client.recv_window = recv_window
        client.params_in = data.draw(S.placements(), label="placement")
        expected = self.expected_change(symbol, leverage, window, skew, who)
        self.client_ms = self.now + skew
        try:
            answer = client.change_leverage(symbol, leverage)
            got: tuple[Any, ...] = ("ok", answer.symbol, answer.leverage, answer.max_qty)
        except ApiError as exc:
            got = ("error", exc.status, exc.code)
        event("change: " + ("ok" if got[0] == "ok" else f"{got[1]} {got[2]}"))
        assert got == expected, f"{symbol} at {leverage}x by {who}, skew {skew} ms"
        if got[0] == "ok":
            self.leverage[symbol] = leverage

    @rule(data=st.data())
    def change_leverage_as_a_bot_does(self, data: st.DataObject) -> None:
        """The owner, in the window, on a listed symbol: where caps, -2027 and -4150 live."""
        listed = self.listed
        held_symbols = sorted({s for s, _ in self.positions})
        symbol = data.draw(
            st.sampled_from(held_symbols or sorted(listed)) | st.sampled_from(sorted(listed)),
            label="symbol",
        )
        leverage = data.draw(S.leverages_within(listed[symbol][0].initial_leverage), "leverage")
        client = self.clients["owner"]
        client.recv_window = None
        client.params_in = data.draw(S.placements(), label="placement")
        expected = self.expected_change(symbol, leverage, S.DEFAULT_RECV_WINDOW_MS, 0, "owner")
        got = self.owner_call(lambda c: c.change_leverage(symbol, leverage))
        event("bot change: " + ("ok" if got[0] == "ok" else f"{got[1]} {got[2]}"))
        if got[0] == "ok":
            got = ("ok", got[1].symbol, got[1].leverage, got[1].max_qty)
            self.leverage[symbol] = leverage
        assert got == expected, f"{symbol} at {leverage}x"

    def expected_change(
        self, symbol: str, leverage: int, window: int, skew: int, who: str
    ) -> tuple[Any, ...]:
        """docs/behaviour.md#order-of-checks: the first failure answers."""
        if not S.SYMBOL_FORM.fullmatch(symbol):
            return ("error", 400, -1100)
        if who == "malformed key":
            return ("error", 401, -2014)
        if who == "unknown key":
            return ("error", 401, -2015)
        if skew >= S.AHEAD_TOLERANCE_MS or -skew > window:
            return ("error", 400, -1021)
        if who == "wrong secret":
            return ("error", 400, -1022)
        table = self.listed.get(symbol)
        if table is None:
            return ("error", 400, -1121)
        if not 1 <= leverage <= table[0].initial_leverage:
            return ("error", 400, -4028)
        if self.cap is not None and leverage > self.cap[1]:
            return ("error", 400, CAP_CODES[self.cap[0]])
        cap = max_qty(table, leverage)
        current = self.leverage_of(symbol)
        open_sides = self.open_sides(symbol)
        if open_sides:
            # Hedge mode: LONG and SHORT count together against maxQty.
            size = sum(
                (abs(p.amount) * CONTRACT_SIZE[pair_of(symbol)] / p.mark_price for p in open_sides),
                Decimal(0),
            )
            if leverage > current and size > cap:
                return ("error", 400, -2027)
            if leverage < current and self.margin.get(symbol) == "isolated":
                return ("error", 400, -4150)
        return ("ok", symbol, leverage, cap)

    @rule(pair=st.sampled_from((None, "BTCUSD", "ETHUSD")))
    def read_position_risk(self, pair: str | None) -> None:
        self.client_ms = self.now
        rows = self.clients["owner"].position_risk(pair=pair)
        listed = self.listed
        expected = {
            (s, side)
            for s in listed
            for side in SIDES[self.hedge]
            if pair is None or pair_of(s) == pair
        }
        assert sorted((r.symbol, r.position_side) for r in rows) == sorted(expected)
        for row in rows:
            leverage = self.leverage_of(row.symbol)
            position = self.positions.get((row.symbol, row.position_side))
            assert row.leverage == leverage, row
            assert row.max_qty == max_qty(listed[row.symbol], leverage), row
            assert row.position_amt == (position.amount if position else 0), row
            assert row.margin_type == self.margin.get(row.symbol, "cross"), row
            assert row.mark_price == (position.mark_price if position else 0), row

    @rule()
    def read_position_mode(self) -> None:
        self.client_ms = self.now
        assert self.clients["owner"].position_mode() is self.hedge

    @rule()
    def read_account(self) -> None:
        self.client_ms = self.now
        account = self.clients["owner"].account()
        assert {a.asset: a.wallet_balance for a in account.assets} == self.balances
        for asset in account.assets:
            if asset.asset in self.balance_set_at:
                assert asset.update_time == self.balance_set_at[asset.asset], asset
        listed = self.listed
        rows = sorted(
            (p.symbol, p.position_side, p.position_amt, p.leverage, p.isolated, p.max_qty)
            for p in account.positions
        )
        expected = []
        for symbol, table in listed.items():
            leverage = self.leverage_of(symbol)
            for side in SIDES[self.hedge]:
                position = self.positions.get((symbol, side))
                amount = position.amount if position else Decimal(0)
                isolated = self.margin.get(symbol) == "isolated"
                expected.append(
                    (symbol, side, amount, leverage, isolated, max_qty(table, leverage))
                )
        assert rows == sorted(expected)

    @rule()
    def read_balance(self) -> None:
        self.client_ms = self.now
        rows = self.clients["owner"].balance()
        assert {r.asset: r.balance for r in rows} == self.balances
        assert len({r.account_alias for r in rows}) == 1
        for row in rows:
            if row.asset in self.balance_set_at:
                assert row.update_time == self.balance_set_at[row.asset], row

    @rule(data=st.data())
    def read_symbol_brackets(self, data: st.DataObject) -> None:
        listed = self.listed
        symbol = data.draw(
            st.one_of(
                st.none(), st.sampled_from(sorted(listed)), S.unlisted_symbols(sorted(listed))
            ),
            label="symbol",
        )
        self.client_ms = self.now
        if symbol is not None and symbol not in listed:
            with pytest.raises(ApiError) as refused:
                self.clients["owner"].leverage_brackets(symbol)
            assert (refused.value.status, refused.value.code) == (400, -1121)
            return
        rows = self.clients["owner"].leverage_brackets(symbol)
        assert sorted(r.symbol for r in rows) == ([symbol] if symbol else sorted(listed))
        for row in rows:
            assert _cells(row.brackets) == listed[row.symbol]

    @rule(pair=st.sampled_from(("BTCUSD", "ETHUSD")))
    def read_pair_brackets(self, pair: str) -> None:
        self.client_ms = self.now
        (row,) = self.clients["owner"].leverage_brackets_v1(pair)
        assert row.pair == pair
        assert _cells(row.brackets) == TABLES[f"{pair} quarterly"]


def _cells(brackets: Any) -> tuple[Cell, ...]:
    return tuple(
        Cell(b.initial_leverage, b.qty_floor, b.qty_cap, b.maint_margin_ratio, b.cum)
        for b in brackets
    )


@pytest.fixture(scope="module")
def exchange() -> Iterator[MockServer]:
    # No weight limit: the model has no rate-limit state (docs/behaviour.md#rate-limits is
    # tested on its own).
    with MockServer(Config(port=0, weight_per_minute=0)) as server:
        yield server
        assert server.error_count == 0, format_errors(server.errors_since(0))


def test_the_mock_answers_what_the_model_predicts(exchange: MockServer) -> None:
    class OnThisServer(LeverageMachine):
        server = exchange

    run_state_machine_as_test(
        OnThisServer,
        settings=settings(
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_the_model_reads_the_spec_calendar() -> None:
    """Anchors for the model's own calendar (2026: Mar 27, Jun 26, Sep 25, Dec 25)."""
    assert [
        datetime.fromtimestamp(delivery_ms(2026, m) / 1000, UTC).day for m in (3, 6, 9, 12)
    ] == [
        27,
        26,
        25,
        25,
    ]
    just_before = delivery_ms(2026, 6) - 1
    assert sorted(listed_tables(just_before)) == [
        "BTCUSD_260626",
        "BTCUSD_260925",
        "BTCUSD_PERP",
        "ETHUSD_260626",
        "ETHUSD_260925",
        "ETHUSD_PERP",
    ]
    assert "BTCUSD_260626" not in listed_tables(delivery_ms(2026, 6))


def test_the_published_tables_hold_the_cum_rule() -> None:
    """docs/behaviour.md#brackets: cum_1 = 0; cum_i = cum_(i-1) + floor_i x (mmr_i - mmr_(i-1))."""
    for table in TABLES.values():
        assert table[0].cum == 0
        for previous, cell in itertools.pairwise(table):
            step = cell.qty_floor * (cell.maint_margin_ratio - previous.maint_margin_ratio)
            assert cell.cum == previous.cum + step
