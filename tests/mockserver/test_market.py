"""market: shipped bracket tables, the maxQty rule, quarterly naming, symbols_file validation."""

from __future__ import annotations

import calendar
import copy
import itertools
import json
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from mockserver.market import (
    Bracket,
    Market,
    MarketDataError,
    delivery_ms,
    parse_contracts,
    plain_decimal,
)
from tests.published_tables import PUBLISHED_TABLES, published_table

FROZEN_MS = 1591702613943  # 2020-06-09


def table_name(contract: Any) -> str:
    return contract.symbol or f"{contract.pair} quarterly"


def utc_ms(*moment: int) -> int:
    return int(datetime(*moment, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def market() -> Market:
    return Market.load()


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    text = resources.files("mockserver").joinpath("data/coinm_symbols.json").read_text()
    return json.loads(text)


def shipped_tables() -> dict[str, tuple[Bracket, ...]]:
    return {table_name(c): c.brackets for c in Market.load().contracts}


TABLES = shipped_tables()


# -- the shipped tables -------------------------------------------------------------------


def test_shipped_file_has_exactly_the_spec_symbol_tables() -> None:
    assert sorted(TABLES) == sorted(PUBLISHED_TABLES)


@pytest.mark.parametrize("name", sorted(PUBLISHED_TABLES))
def test_shipped_table_equals_spec_2_2(name: str) -> None:
    shipped = [
        (b.initial_leverage, b.qty_floor, b.qty_cap, b.maint_margin_ratio, b.cum)
        for b in TABLES[name]
    ]
    assert shipped == list(published_table(PUBLISHED_TABLES[name]))


@pytest.mark.parametrize("name", sorted(TABLES))
def test_cum_column_follows_the_maintenance_amount_formula_exactly(name: str) -> None:
    brackets = TABLES[name]
    assert brackets[0].cum == 0
    for previous, bracket in itertools.pairwise(brackets):
        expected = previous.cum + bracket.qty_floor * (
            bracket.maint_margin_ratio - previous.maint_margin_ratio
        )
        assert bracket.cum == expected, f"{name} bracket {bracket.number}"


@pytest.mark.parametrize("name", sorted(TABLES))
def test_floors_chain_from_zero_to_the_previous_cap(name: str) -> None:
    brackets = TABLES[name]
    assert brackets[0].qty_floor == 0
    for previous, bracket in itertools.pairwise(brackets):
        assert bracket.qty_floor == previous.qty_cap
        assert bracket.qty_cap > bracket.qty_floor


@pytest.mark.parametrize("name", sorted(TABLES))
def test_initial_leverage_strictly_falls_and_ends_at_one(name: str) -> None:
    leverages = [b.initial_leverage for b in TABLES[name]]
    assert all(a > b for a, b in itertools.pairwise(leverages))
    assert leverages[-1] == 1
    assert [b.number for b in TABLES[name]] == list(range(1, len(leverages) + 1))


@pytest.mark.parametrize("name", sorted(TABLES))
def test_maint_margin_ratio_rises(name: str) -> None:
    ratios = [b.maint_margin_ratio for b in TABLES[name]]
    assert all(a < b for a, b in itertools.pairwise(ratios))


def test_contract_size_and_mark_price_are_spec_values(market: Market) -> None:
    by_pair = {(c.pair, c.contract_type): c for c in market.contracts}
    for kind in ("PERPETUAL", "QUARTERLY"):
        assert by_pair[("BTCUSD", kind)].contract_size == 100
        assert by_pair[("ETHUSD", kind)].contract_size == 10
        assert by_pair[("BTCUSD", kind)].mark_price == 100000
        assert by_pair[("ETHUSD", kind)].mark_price == 3500


# -- maxQty ---------------------------------------------------------------------------------

BTC_PERP_MAX_QTY = [
    (125, "5"), (101, "5"), (100, "10"), (51, "10"), (50, "25"), (21, "25"),
    (20, "150"), (11, "150"), (10, "400"), (6, "400"), (5, "950"), (4, "1200"),
    (3, "1600"), (2, "2400"), (1, "3500"),
]  # fmt: skip
ETH_PERP_MAX_QTY = [
    (100, "15"), (76, "15"), (75, "100"), (51, "100"), (50, "400"), (21, "400"),
    (20, "1500"), (11, "1500"), (10, "5000"), (6, "5000"), (5, "14000"), (4, "18000"),
    (3, "24000"), (2, "36000"), (1, "55000"),
]  # fmt: skip
BTC_QUARTER_MAX_QTY = [
    (50, "10"), (21, "10"), (20, "50"), (11, "50"), (10, "100"), (6, "100"), (5, "200"),
    (4, "400"), (3, "800"), (2, "1500"), (1, "5000"),
]  # fmt: skip
ETH_QUARTER_MAX_QTY = [
    (50, "100"), (21, "100"), (20, "500"), (11, "500"), (10, "1000"), (6, "1000"),
    (5, "2000"), (4, "3000"), (3, "5000"), (2, "10000"), (1, "50000"),
]  # fmt: skip


@pytest.mark.parametrize(("leverage", "max_qty"), BTC_PERP_MAX_QTY)
def test_btcusd_perp_max_qty_at_each_bracket_edge(
    market: Market, leverage: int, max_qty: str
) -> None:
    symbol = market.listing(FROZEN_MS).symbols["BTCUSD_PERP"]
    assert plain_decimal(symbol.max_qty_for(leverage)) == max_qty


@pytest.mark.parametrize(("leverage", "max_qty"), ETH_PERP_MAX_QTY)
def test_ethusd_perp_max_qty_at_each_bracket_edge(
    market: Market, leverage: int, max_qty: str
) -> None:
    symbol = market.listing(FROZEN_MS).symbols["ETHUSD_PERP"]
    assert plain_decimal(symbol.max_qty_for(leverage)) == max_qty


@pytest.mark.parametrize(
    ("pair", "leverage", "max_qty"),
    [("BTCUSD", *row) for row in BTC_QUARTER_MAX_QTY]
    + [("ETHUSD", *row) for row in ETH_QUARTER_MAX_QTY],
)
def test_quarterly_max_qty_at_each_bracket_edge(
    market: Market, pair: str, leverage: int, max_qty: str
) -> None:
    for symbol in market.listing(FROZEN_MS).pairs[pair]:
        if symbol.contract_type != "PERPETUAL":
            assert plain_decimal(symbol.max_qty_for(leverage)) == max_qty


@pytest.mark.parametrize(
    ("name", "max_leverage"),
    [("BTCUSD_PERP", 125), ("ETHUSD_PERP", 100), ("BTCUSD_200925", 50), ("ETHUSD_200626", 50)],
)
def test_max_leverage_is_bracket_one_initial_leverage(
    market: Market, name: str, max_leverage: int
) -> None:
    assert market.listing(FROZEN_MS).symbols[name].max_leverage == max_leverage


def test_max_qty_above_the_table_raises(market: Market) -> None:
    with pytest.raises(ValueError):
        market.listing(FROZEN_MS).symbols["BTCUSD_PERP"].max_qty_for(126)


# -- plain_decimal --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("5", "5"),
        ("0.5", "0.5"),
        ("150", "150"),
        ("150.000", "150"),
        ("1E+2", "100"),
        ("3.5E+3", "3500"),
        ("1E-7", "0.0000001"),
        ("0.00010", "0.0001"),
        ("0", "0"),
        ("0.000", "0"),
        ("0E-8", "0"),
        ("-0.50", "-0.5"),
        ("55000", "55000"),
    ],
)
def test_plain_decimal_has_no_exponent_and_no_trailing_zeros(value: str, text: str) -> None:
    assert plain_decimal(Decimal(value)) == text


# -- quarterly naming -----------------------------------------------------------------------


def test_delivery_is_the_last_friday_at_0800_utc() -> None:
    assert delivery_ms(2026, 12) == utc_ms(2026, 12, 25, 8)
    assert delivery_ms(2027, 3) == utc_ms(2027, 3, 26, 8)
    assert delivery_ms(2020, 6) == utc_ms(2020, 6, 26, 8)


@pytest.mark.parametrize("year", range(2019, 2036))
@pytest.mark.parametrize("month", [3, 6, 9, 12])
def test_delivery_falls_on_a_friday_in_the_months_last_week(year: int, month: int) -> None:
    moment = datetime.fromtimestamp(delivery_ms(year, month) / 1000, UTC)
    last_day = calendar.monthrange(year, month)[1]
    assert (moment.year, moment.month) == (year, month)
    assert moment.weekday() == calendar.FRIDAY
    assert last_day - 7 < moment.day <= last_day
    assert (moment.hour, moment.minute, moment.second) == (8, 0, 0)


def quarterlies(market: Market, now_ms: int) -> dict[str, tuple[str, int]]:
    return {
        s.name: (s.contract_type, s.delivery_date)
        for s in market.listing(now_ms).symbols.values()
        if s.contract_type != "PERPETUAL"
    }


def test_listing_names_current_and_next_quarter_after_their_delivery(market: Market) -> None:
    december, march = utc_ms(2026, 12, 25, 8), utc_ms(2027, 3, 26, 8)
    assert quarterlies(market, utc_ms(2026, 11, 27)) == {
        "BTCUSD_261225": ("CURRENT_QUARTER", december),
        "BTCUSD_270326": ("NEXT_QUARTER", march),
        "ETHUSD_261225": ("CURRENT_QUARTER", december),
        "ETHUSD_270326": ("NEXT_QUARTER", march),
    }


def test_one_ms_before_delivery_the_quarter_is_still_current(market: Market) -> None:
    listed = quarterlies(market, utc_ms(2026, 12, 25, 8) - 1)
    assert listed["BTCUSD_261225"][0] == "CURRENT_QUARTER"
    assert listed["BTCUSD_270326"][0] == "NEXT_QUARTER"


def test_at_delivery_the_quarter_is_gone_and_next_becomes_current(market: Market) -> None:
    listed = quarterlies(market, utc_ms(2026, 12, 25, 8))
    assert "BTCUSD_261225" not in listed
    assert listed == {
        "BTCUSD_270326": ("CURRENT_QUARTER", utc_ms(2027, 3, 26, 8)),
        "BTCUSD_270625": ("NEXT_QUARTER", utc_ms(2027, 6, 25, 8)),
        "ETHUSD_270326": ("CURRENT_QUARTER", utc_ms(2027, 3, 26, 8)),
        "ETHUSD_270625": ("NEXT_QUARTER", utc_ms(2027, 6, 25, 8)),
    }


def test_listing_across_new_year_after_december_delivery(market: Market) -> None:
    assert sorted(quarterlies(market, utc_ms(2026, 12, 31, 23))) == sorted(
        quarterlies(market, utc_ms(2027, 1, 1))
    )
    assert "BTCUSD_270326" in quarterlies(market, utc_ms(2027, 1, 1))


def test_listing_follows_the_clock_backwards(market: Market) -> None:
    later = market.listing(utc_ms(2026, 12, 25, 8))
    earlier = market.listing(utc_ms(2026, 12, 25, 8) - 1)
    assert "BTCUSD_261225" not in later.symbols
    assert "BTCUSD_261225" in earlier.symbols


def test_listing_is_valid_between_the_previous_and_current_delivery(market: Market) -> None:
    listing = market.listing(utc_ms(2026, 11, 27))
    assert (listing.from_ms, listing.until_ms) == (utc_ms(2026, 9, 25, 8), utc_ms(2026, 12, 25, 8))


def test_listing_contract_types_and_pairs(market: Market) -> None:
    listing = market.listing(FROZEN_MS)
    types = {name: s.contract_type for name, s in listing.symbols.items()}
    assert types == {
        "BTCUSD_PERP": "PERPETUAL",
        "ETHUSD_PERP": "PERPETUAL",
        "BTCUSD_200626": "CURRENT_QUARTER",
        "BTCUSD_200925": "NEXT_QUARTER",
        "ETHUSD_200626": "CURRENT_QUARTER",
        "ETHUSD_200925": "NEXT_QUARTER",
    }
    assert sorted(s.name for s in listing.pairs["BTCUSD"]) == [
        "BTCUSD_200626",
        "BTCUSD_200925",
        "BTCUSD_PERP",
    ]


def test_perpetual_row_carries_spec_2_3_values(market: Market) -> None:
    row = Market.exchange_info_row(market.listing(FROZEN_MS).symbols["BTCUSD_PERP"])
    assert {k: row[k] for k in ("symbol", "pair", "contractType", "contractStatus")} == {
        "symbol": "BTCUSD_PERP",
        "pair": "BTCUSD",
        "contractType": "PERPETUAL",
        "contractStatus": "TRADING",
    }
    assert row["deliveryDate"] == 4133404800000
    assert row["onboardDate"] == 1597042800000
    assert row["contractSize"] == 100 and isinstance(row["contractSize"], int)
    assert row["marginAsset"] == "BTC"
    assert row["maintMarginPercent"] == "2.5000"
    assert row["underlyingSubType"] == ["PoW"]
    assert row["timeInForce"] == ["GTC", "IOC", "FOK", "GTX"]
    assert [f["filterType"] for f in row["filters"]] == [
        "PRICE_FILTER",
        "LOT_SIZE",
        "MARKET_LOT_SIZE",
        "MAX_NUM_ORDERS",
        "MAX_NUM_ALGO_ORDERS",
        "PERCENT_PRICE",
    ]


# -- bracket_floor_field --------------------------------------------------------------------


HEAD_KEYS = ["bracket", "initialLeverage", "qtyCap"]
TAIL_KEYS = ["maintMarginRatio", "cum"]


@pytest.mark.parametrize(
    ("floor_field", "floor_keys"),
    [("qtyFloor", ["qtyFloor"]), ("qtylFloor", ["qtylFloor"]), ("both", ["qtyFloor", "qtylFloor"])],
)
def test_bracket_floor_field_chooses_the_floor_keys(
    floor_field: str, floor_keys: list[str]
) -> None:
    market = Market.load(floor_field=floor_field)
    rows = market.brackets_json(market.listing(FROZEN_MS).symbols["BTCUSD_PERP"])
    assert all(list(row) == HEAD_KEYS + floor_keys + TAIL_KEYS for row in rows)


def test_brackets_json_renders_json_numbers() -> None:
    market = Market.load(floor_field="both")
    rows = market.brackets_json(market.listing(FROZEN_MS).symbols["BTCUSD_PERP"])
    assert rows[0] == {
        "bracket": 1,
        "initialLeverage": 125,
        "qtyCap": 5,
        "qtyFloor": 0,
        "qtylFloor": 0,
        "maintMarginRatio": 0.004,
        "cum": 0,
    }
    assert rows[3]["cum"] == 0.43
    assert json.dumps(rows[9]) == (
        '{"bracket": 10, "initialLeverage": 1, "qtyCap": 3500, "qtyFloor": 2400, '
        '"qtylFloor": 2400, "maintMarginRatio": 0.5, "cum": 837.93}'
    )


def test_unknown_bracket_floor_field_is_refused() -> None:
    with pytest.raises(MarketDataError, match="bracket_floor_field"):
        Market.load(floor_field="qtyfloor")


# -- symbols_file validation ----------------------------------------------------------------


def write(tmp_path: Path, data: Any) -> str:
    path = tmp_path / "symbols.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def load_error(tmp_path: Path, data: Any) -> str:
    path = write(tmp_path, data)
    with pytest.raises(MarketDataError) as caught:
        Market.load(path)
    message = str(caught.value)
    assert path in message  # every message names the file
    return message


def extra_perpetual(shipped: dict[str, Any]) -> dict[str, Any]:
    entry = copy.deepcopy(shipped["contracts"][0])
    entry.update(symbol="XRPUSD_PERP", pair="XRPUSD")
    return entry


def test_symbols_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    assert "not JSON" in load_error(tmp_path, "{not json")


def test_symbols_file_without_contracts_is_refused(tmp_path: Path) -> None:
    assert "'contracts'" in load_error(tmp_path, {"symbols": []})


def test_missing_symbols_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MarketDataError, match=r"nope\.json"):
        Market.load(str(tmp_path / "nope.json"))


def test_symbols_file_entry_without_brackets_is_refused(
    tmp_path: Path, shipped: dict[str, Any]
) -> None:
    data = copy.deepcopy(shipped)
    del data["contracts"][1]["brackets"]
    message = load_error(tmp_path, data)
    assert "contracts[1]" in message
    assert "'brackets' must be a non-empty list" in message


def test_symbols_file_with_leverage_above_125_is_refused(
    tmp_path: Path, shipped: dict[str, Any]
) -> None:
    data = copy.deepcopy(shipped)
    data["contracts"][0]["brackets"][0]["initialLeverage"] = 150
    message = load_error(tmp_path, data)
    assert "BTCUSD_PERP" in message
    assert "bracket 1" in message
    assert "initialLeverage 150 is outside 1..125" in message


def test_symbols_file_with_floors_not_chaining_is_refused(
    tmp_path: Path, shipped: dict[str, Any]
) -> None:
    data = copy.deepcopy(shipped)
    data["contracts"][1]["brackets"][2]["qtyFloor"] = 99
    message = load_error(tmp_path, data)
    assert "ETHUSD_PERP" in message
    assert "bracket 3" in message
    assert "qtyFloor must equal the previous bracket's qtyCap" in message


def test_symbols_file_with_nonzero_first_floor_is_refused(
    tmp_path: Path, shipped: dict[str, Any]
) -> None:
    data = copy.deepcopy(shipped)
    data["contracts"][0]["brackets"][0]["qtyFloor"] = 1
    assert "first bracket's qtyFloor must be 0" in load_error(tmp_path, data)


def test_symbols_file_with_rising_leverage_is_refused(
    tmp_path: Path, shipped: dict[str, Any]
) -> None:
    data = copy.deepcopy(shipped)
    data["contracts"][0]["brackets"][1]["initialLeverage"] = 125
    assert "initialLeverage must fall" in load_error(tmp_path, data)


def test_symbols_file_with_a_duplicate_symbol_is_refused(
    tmp_path: Path, shipped: dict[str, Any]
) -> None:
    data = copy.deepcopy(shipped)
    data["contracts"].append(copy.deepcopy(data["contracts"][0]))
    assert "listed twice: BTCUSD_PERP" in load_error(tmp_path, data)


def test_symbols_file_with_a_duplicate_quarterly_pair_is_refused(
    tmp_path: Path, shipped: dict[str, Any]
) -> None:
    data = copy.deepcopy(shipped)
    data["contracts"].append(copy.deepcopy(data["contracts"][2]))
    assert "listed twice: BTCUSD quarterly" in load_error(tmp_path, data)


@pytest.mark.parametrize("name", ["btcusd_perp", "BTC USD", "ABCDEFGHIJ0123456789X"])
def test_symbols_file_with_a_bad_symbol_name_is_refused(
    tmp_path: Path, shipped: dict[str, Any], name: str
) -> None:
    data = copy.deepcopy(shipped)
    data["contracts"][0]["symbol"] = name
    assert "does not match ^[A-Z0-9-_.]{1,20}$" in load_error(tmp_path, data)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("contractType", "FUTURE", "contractType must be PERPETUAL or QUARTERLY"),
        ("markPrice", "0", "'markPrice' must be a number from 0.00000001 to 1000000000"),
        ("markPrice", "abc", "'markPrice' is not a number"),
        ("contractSize", None, "'contractSize' is missing"),
        ("deliveryDate", "soon", "'deliveryDate' is missing or not a int"),
        # docs/behaviour.md#symbol-data: every number is range-checked at load
        ("contractSize", "1e5000", "'contractSize' must be a number from 0.00000001 to 100"),
        ("contractSize", 0, "'contractSize' must be a number from 0.00000001 to 100"),
        ("markPrice", "1e120000000", "'markPrice' must be a number from"),
        ("markPrice", "NaN", "'markPrice' must be a number from"),
        ("deliveryDate", 10**20, "'deliveryDate' must be ms from 0 to 253402300799999"),
        ("onboardDate", -1, "'onboardDate' must be ms from 0"),
    ],
)
def test_symbols_file_with_a_bad_field_names_the_field(
    tmp_path: Path, shipped: dict[str, Any], key: str, value: Any, expected: str
) -> None:
    data = copy.deepcopy(shipped)
    data["contracts"][0][key] = value
    assert expected in load_error(tmp_path, data)


def test_valid_custom_file_with_an_extra_perpetual_lists_it(
    tmp_path: Path, shipped: dict[str, Any]
) -> None:
    data = copy.deepcopy(shipped)
    data["contracts"].append(extra_perpetual(shipped))
    market = Market.load(write(tmp_path, data))
    listing = market.listing(FROZEN_MS)
    assert "XRPUSD_PERP" in listing.symbols
    assert listing.symbols["XRPUSD_PERP"].contract_type == "PERPETUAL"
    assert listing.pairs["XRPUSD"] == (listing.symbols["XRPUSD_PERP"],)
    assert len(listing.symbols) == 7


def test_custom_file_with_only_one_perpetual_lists_only_it(
    tmp_path: Path, shipped: dict[str, Any]
) -> None:
    market = Market.load(write(tmp_path, {"contracts": [extra_perpetual(shipped)]}))
    assert list(market.listing(FROZEN_MS).symbols) == ["XRPUSD_PERP"]


def test_custom_exchange_info_numbers_keep_their_json_type(shipped: dict[str, Any]) -> None:
    entry = extra_perpetual(shipped)
    entry["exchangeInfo"]["triggerProtect"] = 0.05
    (contract,) = parse_contracts(json.dumps({"contracts": [entry]}), "test")
    row = Market.exchange_info_row(Market([contract]).listing(FROZEN_MS).symbols["XRPUSD_PERP"])
    assert row["triggerProtect"] == 0.05


def test_perpetual_with_onboard_date_zero_is_refused_at_load_or_listed(
    tmp_path: Path, shipped: dict[str, Any]
) -> None:
    entry = extra_perpetual(shipped)
    entry["onboardDate"] = 0
    try:
        market = Market.load(write(tmp_path, {"contracts": [entry]}))
    except MarketDataError:
        return
    assert "XRPUSD_PERP" in market.listing(FROZEN_MS).symbols


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("qtyCap", "1e5000", "'qtyCap' must be a number from 0 to 9223372036854775807"),
        ("maintMarginRatio", "1.5", "'maintMarginRatio' must be a number from 0 to 1"),
        ("cum", "-1", "'cum' must be a number from 0"),
        ("initialLeverage", 10**30, "initialLeverage"),
    ],
)
def test_bracket_numbers_are_range_checked(
    tmp_path: Path, shipped: dict[str, Any], field: str, value: Any, expected: str
) -> None:
    data = copy.deepcopy(shipped)
    data["contracts"][0]["brackets"][-1][field] = value
    assert expected in load_error(tmp_path, data)


def test_exchange_info_numbers_beyond_a_java_long_are_refused(
    tmp_path: Path, shipped: dict[str, Any]
) -> None:
    data = copy.deepcopy(shipped)
    data["contracts"][0]["exchangeInfo"]["maxMoveOrderLimit"] = 10**30
    assert "'exchangeInfo': the number 1e+30 is beyond a Java long" in load_error(tmp_path, data)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"contracts": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", "nested deeper than 16"),
        (b'{"contracts": ' + b"[" * 20 + b"]" * 20 + b"}", "nested deeper than 16"),
        (b'{"contracts": "caf\xe9"}', "not UTF-8"),
        (b'{"contracts": [1' + b"0" * 5000 + b"]}", "not usable JSON"),
        (b'{"contracts": [NaN]}', "NaN is not a JSON number"),
    ],
)
def test_a_broken_symbols_file_is_one_clear_error(
    tmp_path: Path, raw: bytes, expected: str
) -> None:
    path = tmp_path / "symbols.json"
    path.write_bytes(raw)
    with pytest.raises(MarketDataError, match=expected):
        Market.load(str(path))
