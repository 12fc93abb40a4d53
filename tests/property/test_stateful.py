"""The reference client drives the live mock through random leverage changes, clock moves and reads.

A model written from SPEC alone (its bracket tables, its delivery calendar,
its order of checks) predicts every answer: success with the exact maxQty,
or the exact HTTP status and Binance code.
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
from mockserver.harness import DapiMock, MockServer, format_errors
from tests.published_tables import PUBLISHED_TABLES, Cell, published_table

STEPS = {"ci": 20, "dev": 60}.get(os.environ.get("HYPOTHESIS_PROFILE", "ci"), 20)

CONTRACT_SIZE = {"BTCUSD": Decimal(100), "ETHUSD": Decimal(10)}
MARK_PRICE = {"BTCUSD": Decimal(100000), "ETHUSD": Decimal(3500)}
DEFAULT_LEVERAGE = 20
START_MS = (1_577_836_800_000, 2_082_758_400_000)  # 2020-01-01 .. 2036-01-01
DAY_MS = 86_400_000


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
    """SPEC 2.2: both perpetuals, and the current and next quarter of each pair."""
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
    """A position as the model expects the mock to hold it."""

    amount: Decimal  # contracts
    margin_type: str
    mark_price: Decimal


class LeverageMachine(RuleBasedStateMachine):
    """The model: leverage and positions per listed symbol, and the frozen mock clock."""

    server: MockServer

    def __init__(self) -> None:
        super().__init__()
        self.mock: DapiMock = self.server.handle()
        self.mock.reset()
        self.now = 0
        self.client_ms = 0
        self.leverage: dict[str, int] = {}
        self.positions: dict[str, ModelPosition] = {}
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

    # rules

    @initialize(start=st.integers(*START_MS))
    def freeze_the_clock(self, start: int) -> None:
        self.now = start
        self.mock.clock.freeze(start)

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
        self.positions = {s: p for s, p in self.positions.items() if s not in gone}

    @rule(data=st.data())
    def seed_a_position(self, data: st.DataObject) -> None:
        symbol = data.draw(st.sampled_from(sorted(self.listed)), label="symbol")
        amount = data.draw(st.integers(-200_000, 200_000), label="contracts")
        margin_type = data.draw(st.sampled_from(("cross", "isolated")), label="margin")
        mark = data.draw(st.one_of(st.none(), st.integers(500, 200_000)), label="mark")
        self.mock.positions.seed(
            symbol, amount, margin_type, mark_price=None if mark is None else str(mark)
        )
        price = MARK_PRICE[pair_of(symbol)] if mark is None else Decimal(mark)
        self.positions[symbol] = ModelPosition(Decimal(amount), margin_type, price)

    @rule(data=st.data())
    def change_leverage(self, data: st.DataObject) -> None:
        listed = self.listed
        known = st.sampled_from(sorted(listed))
        # Symbols with a seeded position, where -2027 and -4150 live.
        held = st.sampled_from(sorted(self.positions)) if self.positions else known
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

    def expected_change(
        self, symbol: str, leverage: int, window: int, skew: int, who: str
    ) -> tuple[Any, ...]:
        """SPEC 1.3's order of checks, first failure answers."""
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
        cap = max_qty(table, leverage)
        current = self.leverage.get(symbol, DEFAULT_LEVERAGE)
        position = self.positions.get(symbol)
        if position is not None and position.amount != 0:
            size = abs(position.amount) * CONTRACT_SIZE[pair_of(symbol)] / position.mark_price
            if leverage > current and size > cap:
                return ("error", 400, -2027)
            if leverage < current and position.margin_type == "isolated":
                return ("error", 400, -4150)
        return ("ok", symbol, leverage, cap)

    @rule(pair=st.sampled_from((None, "BTCUSD", "ETHUSD")))
    def read_position_risk(self, pair: str | None) -> None:
        self.client_ms = self.now
        rows = self.clients["owner"].position_risk(pair=pair)
        listed = self.listed
        expected = {s for s in listed if pair is None or pair_of(s) == pair}
        assert {r.symbol for r in rows} == expected
        for row in rows:
            leverage = self.leverage.get(row.symbol, DEFAULT_LEVERAGE)
            position = self.positions.get(row.symbol)
            assert row.leverage == leverage, row
            assert row.max_qty == max_qty(listed[row.symbol], leverage), row
            assert row.position_amt == (position.amount if position else 0), row
            assert row.margin_type == (position.margin_type if position else "cross"), row

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
    # No weight limit: the model has no rate-limit state (SPEC 1.4 is tested on its own).
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


def test_the_spec_tables_hold_the_cum_rule() -> None:
    """SPEC 2.2: cum_1 = 0; cum_i = cum_(i-1) + floor_i x (mmr_i - mmr_(i-1))."""
    for table in TABLES.values():
        assert table[0].cum == 0
        for previous, cell in itertools.pairwise(table):
            step = cell.qty_floor * (cell.maint_margin_ratio - previous.maint_margin_ratio)
            assert cell.cum == previous.cum + step
