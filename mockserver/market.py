"""Symbols, leverage brackets and the maxQty rule
(docs/behaviour.md#symbol-data, #brackets, #quarterly-delivery, #exchange-info).

Contracts come from a JSON file (the shipped `data/coinm_symbols.json` or a
user's `symbols_file`). PERPETUAL entries are listed as they are; QUARTERLY
entries expand to the current and next quarter of the mock clock, named
`<PAIR>_<YYMMDD>` after their delivery (last Friday of Mar/Jun/Sep/Dec, 08:00 UTC).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from mockserver import json_input

MAX_TABLE_LEVERAGE = 125
FLOOR_FIELDS = ("qtyFloor", "qtylFloor", "both")
_SYMBOL_FORM = re.compile(r"[A-Z0-9\-_.]{1,20}")
_QUARTER_MONTHS = (3, 6, 9, 12)
# docs/behaviour.md#symbol-data: every number of a symbols file is range-checked at load.
MAX_FILE_DEPTH = 16  # the shipped file nests 6 levels
LONG_MAX = Decimal(2**63 - 1)  # Binance's qtyCap ceiling (a Java long)
PRICE_RANGE = (Decimal("1e-8"), Decimal(10**9))  # as a seeded markPrice
# contractSize at most 100 (USD per contract, the largest COIN-M size) keeps a position's
# notional within 28 significant digits, the precision it is computed in.
CONTRACT_SIZE_RANGE = (Decimal("1e-8"), Decimal(100))
LATEST_DATE_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


class MarketDataError(ValueError):
    """A symbols file that does not describe a usable market."""


@dataclass(frozen=True)
class Bracket:
    number: int
    initial_leverage: int
    qty_floor: Decimal
    qty_cap: Decimal
    maint_margin_ratio: Decimal
    cum: Decimal


@dataclass(frozen=True)
class Contract:
    """One entry of the symbols file: a perpetual, or a pair's quarterly template."""

    pair: str
    contract_type: str  # "PERPETUAL" or "QUARTERLY"
    symbol: str | None
    contract_size: Decimal
    mark_price: Decimal
    brackets: tuple[Bracket, ...]
    delivery_date: int | None
    onboard_date: int | None
    exchange_info: dict[str, Any]

    @property
    def margin_asset(self) -> str:
        return str(self.exchange_info.get("marginAsset", self.pair.removesuffix("USD")))


@dataclass(frozen=True)
class Symbol:
    name: str
    contract_type: str  # PERPETUAL, CURRENT_QUARTER, NEXT_QUARTER
    delivery_date: int
    onboard_date: int
    contract: Contract

    @property
    def pair(self) -> str:
        return self.contract.pair

    @property
    def max_leverage(self) -> int:
        return self.contract.brackets[0].initial_leverage

    def max_qty_for(self, leverage: int) -> Decimal:
        """qtyCap of the highest-numbered bracket whose initialLeverage >= leverage."""
        for bracket in reversed(self.contract.brackets):
            if bracket.initial_leverage >= leverage:
                return bracket.qty_cap
        raise ValueError(f"leverage {leverage} is above {self.name}'s {self.max_leverage}x")


def plain_decimal(value: Decimal) -> str:
    """A decimal string with no exponent and no trailing zeros: "5", "0.5"."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def delivery_ms(year: int, month: int) -> int:
    """The last Friday of the month, 08:00 UTC, in ms."""
    last_day = calendar.monthrange(year, month)[1]
    day = datetime(year, month, last_day, 8, tzinfo=UTC)
    day -= timedelta(days=(day.weekday() - calendar.FRIDAY) % 7)
    return _ms(day)


def deliveries_around(now_ms: int) -> tuple[int, int, int, int]:
    """(previous-but-one, previous, current, next) deliveries: current is the first after now."""
    year = datetime.fromtimestamp(now_ms / 1000, UTC).year
    times = [delivery_ms(y, m) for y in (year - 1, year, year + 1) for m in _QUARTER_MONTHS]
    index = next(i for i, t in enumerate(times) if t > now_ms)
    return times[index - 2], times[index - 1], times[index], times[index + 1]


@dataclass(frozen=True)
class Listing:
    """The symbols listed between two deliveries; valid while from_ms <= now < until_ms."""

    from_ms: int
    until_ms: int
    symbols: dict[str, Symbol]
    pairs: dict[str, tuple[Symbol, ...]]


class Market:
    """The listed symbols at any mock-clock time, and their bracket tables."""

    def __init__(self, contracts: list[Contract], floor_field: str = "qtyFloor") -> None:
        if floor_field not in FLOOR_FIELDS:
            raise MarketDataError(f"bracket_floor_field must be one of {', '.join(FLOOR_FIELDS)}")
        self.contracts = contracts
        self.floor_field = floor_field
        self._listing: Listing | None = None
        self._rendered_brackets: dict[int, list[dict[str, Any]]] = {}

    @property
    def margin_assets(self) -> tuple[str, ...]:
        """Every contract's margin asset, once each, in file order."""
        return tuple(dict.fromkeys(c.margin_asset for c in self.contracts))

    @classmethod
    def load(cls, symbols_file: str = "", floor_field: str = "qtyFloor") -> Market:
        if symbols_file:
            path = Path(symbols_file)
            try:
                text: bytes | str = path.read_bytes()  # decoded strictly by json_input
            except OSError as exc:
                raise MarketDataError(f"symbols_file {path}: {exc.strerror}") from None
            origin = str(path)
        else:
            text = resources.files("mockserver").joinpath("data/coinm_symbols.json").read_text()
            origin = "shipped coinm_symbols.json"
        return cls(parse_contracts(text, origin), floor_field)

    def listing(self, now_ms: int) -> Listing:
        listing = self._listing
        if listing is None or not listing.from_ms <= now_ms < listing.until_ms:
            listing = self._build_listing(now_ms)
            self._listing = listing
        return listing

    def _build_listing(self, now_ms: int) -> Listing:
        before_previous, previous, current, following = deliveries_around(now_ms)
        symbols: dict[str, Symbol] = {}
        for contract in self.contracts:
            if contract.contract_type == "PERPETUAL":
                # parse_contracts guarantees these for perpetuals
                assert contract.symbol is not None and contract.delivery_date is not None
                assert contract.onboard_date is not None
                found = [
                    Symbol(
                        contract.symbol,
                        "PERPETUAL",
                        contract.delivery_date,
                        contract.onboard_date,
                        contract,
                    )
                ]
            else:
                found = [
                    Symbol(
                        _quarter_name(contract.pair, current),
                        "CURRENT_QUARTER",
                        current,
                        before_previous,
                        contract,
                    ),
                    Symbol(
                        _quarter_name(contract.pair, following),
                        "NEXT_QUARTER",
                        following,
                        previous,
                        contract,
                    ),
                ]
            symbols.update((s.name, s) for s in found)
        pairs: dict[str, list[Symbol]] = {}
        for symbol in symbols.values():
            pairs.setdefault(symbol.pair, []).append(symbol)
        return Listing(previous, current, symbols, {p: tuple(s) for p, s in pairs.items()})

    def brackets_json(self, symbol: Symbol) -> list[dict[str, Any]]:
        """The bracket table as Binance renders it (JSON numbers), cached per contract."""
        key = id(symbol.contract)
        rendered = self._rendered_brackets.get(key)
        if rendered is None:
            rendered = [self._bracket_json(b) for b in symbol.contract.brackets]
            self._rendered_brackets[key] = rendered
        return rendered

    def _bracket_json(self, bracket: Bracket) -> dict[str, Any]:
        row: dict[str, Any] = {
            "bracket": bracket.number,
            "initialLeverage": bracket.initial_leverage,
            "qtyCap": json_number(bracket.qty_cap),
        }
        floor = json_number(bracket.qty_floor)
        if self.floor_field in ("qtyFloor", "both"):
            row["qtyFloor"] = floor
        if self.floor_field in ("qtylFloor", "both"):
            row["qtylFloor"] = floor
        # docs/behaviour.md#brackets: Java doubles on the real exchange, so always a decimal
        # point ("0.0", "14.0").
        row["maintMarginRatio"] = float(bracket.maint_margin_ratio)
        row["cum"] = float(bracket.cum)
        return row

    @staticmethod
    def exchange_info_row(symbol: Symbol) -> dict[str, Any]:
        contract = symbol.contract
        return {
            "symbol": symbol.name,
            "pair": contract.pair,
            "contractType": symbol.contract_type,
            "deliveryDate": symbol.delivery_date,
            "onboardDate": symbol.onboard_date,
            "contractStatus": "TRADING",
            "contractSize": json_number(contract.contract_size),
            **contract.exchange_info,
        }


def _quarter_name(pair: str, delivery: int) -> str:
    return f"{pair}_{datetime.fromtimestamp(delivery / 1000, UTC):%y%m%d}"


def parse_contracts(text: bytes | str, origin: str) -> list[Contract]:
    """Validate a symbols file and build its contracts; errors name the file and the entry."""
    try:
        data = json_input.parse(text, MAX_FILE_DEPTH, parse_float=Decimal)
    except json_input.JSONInputError as exc:
        raise MarketDataError(f"{origin}: {exc}") from None
    entries = data.get("contracts") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise MarketDataError(f"{origin}: expected an object with a non-empty 'contracts' list")
    contracts = [
        _parse_contract(entry, f"{origin}: contracts[{i}]") for i, entry in enumerate(entries)
    ]
    names = [c.symbol or f"{c.pair} quarterly" for c in contracts]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise MarketDataError(f"{origin}: listed twice: {', '.join(duplicates)}")
    return contracts


def _require(entry: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = entry.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise MarketDataError(f"{where}: '{key}' is missing or not a {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _decimal(
    entry: dict[str, Any], key: str, where: str, low: Decimal = Decimal(0), high: Decimal = LONG_MAX
) -> Decimal:
    value = _require(entry, key, (int, Decimal, str), where)
    try:
        number = Decimal(value)
    except ArithmeticError:
        raise MarketDataError(f"{where}: '{key}' is not a number") from None
    if not (number.is_finite() and low <= number <= high):
        raise MarketDataError(f"{where}: '{key}' must be a number from {low:f} to {high:f}")
    return number


def _date_ms(entry: dict[str, Any], key: str, where: str) -> int:
    value: int = _require(entry, key, int, where)
    if not 0 <= value <= LATEST_DATE_MS:
        raise MarketDataError(f"{where}: '{key}' must be ms from 0 to {LATEST_DATE_MS}")
    return value


def _parse_contract(entry: Any, where: str) -> Contract:
    if not isinstance(entry, dict):
        raise MarketDataError(f"{where}: expected an object")
    pair = _require(entry, "pair", str, where)
    contract_type = _require(entry, "contractType", str, where)
    if contract_type not in ("PERPETUAL", "QUARTERLY"):
        raise MarketDataError(f"{where}: contractType must be PERPETUAL or QUARTERLY")
    symbol = delivery = onboard = None
    if contract_type == "PERPETUAL":
        symbol = _require(entry, "symbol", str, where)
        delivery = _date_ms(entry, "deliveryDate", where)
        onboard = _date_ms(entry, "onboardDate", where)
    name_to_check = symbol or f"{pair}_991231"
    if not _SYMBOL_FORM.fullmatch(name_to_check):
        raise MarketDataError(
            f"{where}: symbol {name_to_check!r} does not match ^[A-Z0-9-_.]{{1,20}}$"
        )
    info = entry.get("exchangeInfo", {})
    if not isinstance(info, dict):
        raise MarketDataError(f"{where}: 'exchangeInfo' must be an object")
    return Contract(
        pair=pair,
        contract_type=contract_type,
        symbol=symbol,
        contract_size=_decimal(entry, "contractSize", where, *CONTRACT_SIZE_RANGE),
        mark_price=_decimal(entry, "markPrice", where, *PRICE_RANGE),
        brackets=_parse_brackets(entry.get("brackets"), f"{where} ({symbol or pair})"),
        delivery_date=delivery,
        onboard_date=onboard,
        exchange_info=_with_json_numbers(info, f"{where}: 'exchangeInfo'"),
    )


def _with_json_numbers(value: Any, where: str) -> Any:
    """The file was read with Decimal floats; give exchangeInfo back its JSON numbers."""
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        if not -LONG_MAX <= value <= LONG_MAX:
            raise MarketDataError(f"{where}: the number {value:.6g} is beyond a Java long")
        return json_number(Decimal(value)) if isinstance(value, Decimal) else value
    if isinstance(value, dict):
        return {k: _with_json_numbers(v, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_json_numbers(v, where) for v in value]
    return value


def _parse_brackets(rows: Any, where: str) -> tuple[Bracket, ...]:
    if not isinstance(rows, list) or not rows:
        raise MarketDataError(f"{where}: 'brackets' must be a non-empty list")
    brackets: list[Bracket] = []
    for number, row in enumerate(rows, start=1):
        at = f"{where} bracket {number}"
        if not isinstance(row, dict):
            raise MarketDataError(f"{at}: expected an object")
        bracket = Bracket(
            number=number,
            initial_leverage=_require(row, "initialLeverage", int, at),
            qty_floor=_decimal(row, "qtyFloor", at),
            qty_cap=_decimal(row, "qtyCap", at),
            maint_margin_ratio=_decimal(row, "maintMarginRatio", at, high=Decimal(1)),
            cum=_decimal(row, "cum", at),
        )
        if not 1 <= bracket.initial_leverage <= MAX_TABLE_LEVERAGE:
            raise MarketDataError(
                f"{at}: initialLeverage {bracket.initial_leverage} "
                f"is outside 1..{MAX_TABLE_LEVERAGE}"
            )
        if bracket.qty_cap <= bracket.qty_floor:
            raise MarketDataError(f"{at}: qtyCap must be above qtyFloor")
        if brackets:
            previous = brackets[-1]
            if bracket.initial_leverage >= previous.initial_leverage:
                raise MarketDataError(f"{at}: initialLeverage must fall from bracket to bracket")
            if bracket.qty_floor != previous.qty_cap:
                raise MarketDataError(f"{at}: qtyFloor must equal the previous bracket's qtyCap")
        elif bracket.qty_floor != 0:
            raise MarketDataError(f"{at}: the first bracket's qtyFloor must be 0")
        brackets.append(bracket)
    return tuple(brackets)
