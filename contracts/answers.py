"""Typed answers of the reference client, read strictly: a wrong shape is a ShapeError."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class LeverageChange:
    """Answer of POST /dapi/v1/leverage."""

    leverage: int
    max_qty: Decimal
    symbol: str


@dataclass(frozen=True)
class LeverageBracket:
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
    brackets: tuple[LeverageBracket, ...]
    notional_coef: Decimal | None = None


@dataclass(frozen=True)
class PairBrackets:
    """A row of GET /dapi/v1/leverageBracket."""

    pair: str
    brackets: tuple[LeverageBracket, ...]


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


@dataclass(frozen=True)
class AccountAsset:
    """An `assets` row of GET /dapi/v1/account (amounts in the margin asset, as Decimal)."""

    asset: str
    wallet_balance: Decimal
    unrealized_profit: Decimal
    margin_balance: Decimal
    maint_margin: Decimal
    initial_margin: Decimal
    position_initial_margin: Decimal
    open_order_initial_margin: Decimal
    max_withdraw_amount: Decimal
    cross_wallet_balance: Decimal
    cross_un_pnl: Decimal
    available_balance: Decimal
    update_time: int


@dataclass(frozen=True)
class AccountPosition:
    """A `positions` row of GET /dapi/v1/account (``isolated`` is the margin type)."""

    symbol: str
    position_amt: Decimal
    initial_margin: Decimal
    maint_margin: Decimal
    unrealized_profit: Decimal
    position_initial_margin: Decimal
    open_order_initial_margin: Decimal
    leverage: int
    isolated: bool
    position_side: str
    entry_price: Decimal
    break_even_price: Decimal | None
    max_qty: Decimal
    update_time: int


@dataclass(frozen=True)
class AccountInfo:
    """Answer of GET /dapi/v1/account."""

    assets: tuple[AccountAsset, ...]
    positions: tuple[AccountPosition, ...]
    can_deposit: bool
    can_trade: bool
    can_withdraw: bool
    fee_tier: int
    update_time: int

    def asset(self, name: str) -> AccountAsset | None:
        """The row of margin asset `name`, if the answer has one."""
        return next((a for a in self.assets if a.asset == name), None)


@dataclass(frozen=True)
class BalanceRow:
    """A row of GET /dapi/v1/balance."""

    account_alias: str
    asset: str
    balance: Decimal
    withdraw_available: Decimal
    cross_wallet_balance: Decimal
    cross_un_pnl: Decimal
    available_balance: Decimal
    update_time: int


class ShapeError(ValueError):
    """Raised by the parsers below; turned into MalformedResponse with context."""


_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_PLAIN_INT = re.compile(r"-?[0-9]+")


def _field(row: Mapping[str, Any], key: str) -> Any:
    if key not in row:
        raise ShapeError(f"missing key {key!r}")
    return row[key]


def as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ShapeError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def as_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ShapeError(f"{what}: expected an array, got {type(value).__name__}")
    return value


def _as_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ShapeError(f"{what}: expected a string, got {value!r}")
    return value


def _as_int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ShapeError(f"{what}: expected an integer, got {value!r}")
    return value


def _int_from_str(value: Any, what: str) -> int:
    if not isinstance(value, str) or not _PLAIN_INT.fullmatch(value):
        raise ShapeError(f"{what}: expected an integer string, got {value!r}")
    return int(value)


def _decimal_from_str(value: Any, what: str) -> Decimal:
    # Decimal() alone would also take "NaN", "1e3", " 1" and "1_0"; the API never sends those.
    if not isinstance(value, str) or not _PLAIN_DECIMAL.fullmatch(value):
        raise ShapeError(f"{what}: expected a plain decimal string, got {value!r}")
    return Decimal(value)


def _decimal_from_number(value: Any, what: str) -> Decimal:
    # JSON is parsed with parse_float=Decimal for typed answers, so no binary rounding.
    if isinstance(value, Decimal) and value.is_finite():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    raise ShapeError(f"{what}: expected a JSON number, got {value!r}")


def _as_bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ShapeError(f"{what}: expected a JSON boolean, got {value!r}")
    return value


def _bool_from_str(value: Any, what: str) -> bool:
    if value not in ("true", "false"):
        raise ShapeError(f"{what}: expected 'true' or 'false', got {value!r}")
    return bool(value == "true")


def _parse_bracket(value: Any) -> LeverageBracket:
    row = as_dict(value, "bracket")
    # The docs spell the floor 'qtylFloor', live clients read 'qtyFloor'; take either.
    if "qtyFloor" in row:
        floor = row["qtyFloor"]
    elif "qtylFloor" in row:
        floor = row["qtylFloor"]
    else:
        raise ShapeError("bracket: missing 'qtyFloor' (or 'qtylFloor')")
    return LeverageBracket(
        bracket=_as_int(_field(row, "bracket"), "bracket"),
        initial_leverage=_as_int(_field(row, "initialLeverage"), "initialLeverage"),
        qty_cap=_decimal_from_number(_field(row, "qtyCap"), "qtyCap"),
        qty_floor=_decimal_from_number(floor, "qtyFloor"),
        maint_margin_ratio=_decimal_from_number(
            _field(row, "maintMarginRatio"), "maintMarginRatio"
        ),
        cum=_decimal_from_number(_field(row, "cum"), "cum"),
    )


def _parse_brackets(row: Mapping[str, Any]) -> tuple[LeverageBracket, ...]:
    return tuple(_parse_bracket(b) for b in as_list(_field(row, "brackets"), "brackets"))


def parse_symbol_brackets(value: Any) -> SymbolBrackets:
    row = as_dict(value, "leverageBracket row")
    coef = row.get("notionalCoef")
    return SymbolBrackets(
        symbol=_as_str(_field(row, "symbol"), "symbol"),
        brackets=_parse_brackets(row),
        notional_coef=None if coef is None else _decimal_from_number(coef, "notionalCoef"),
    )


def parse_pair_brackets(value: Any) -> PairBrackets:
    row = as_dict(value, "leverageBracket row")
    return PairBrackets(pair=_as_str(_field(row, "pair"), "pair"), brackets=_parse_brackets(row))


def _optional_decimal(row: Mapping[str, Any], key: str) -> Decimal | None:
    # Present in live rows and in docs/behaviour.md#position-risk, missing from Binance's own
    # doc example.
    return _decimal_from_str(row[key], key) if key in row else None


def parse_position(value: Any) -> PositionRisk:
    row = as_dict(value, "positionRisk row")

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


def parse_leverage_change(value: Any) -> LeverageChange:
    row = as_dict(value, "leverage answer")
    return LeverageChange(
        leverage=_as_int(_field(row, "leverage"), "leverage"),
        max_qty=_decimal_from_str(_field(row, "maxQty"), "maxQty"),
        symbol=_as_str(_field(row, "symbol"), "symbol"),
    )


def parse_server_time(value: Any) -> int:
    return _as_int(_field(as_dict(value, "time answer"), "serverTime"), "serverTime")


def parse_exchange_info(value: Any) -> dict[str, Any]:
    info = as_dict(value, "exchangeInfo")
    for row in as_list(_field(info, "symbols"), "symbols"):
        _as_str(_field(as_dict(row, "symbol row"), "symbol"), "symbol")
    as_list(_field(info, "rateLimits"), "rateLimits")
    return info


def parse_acknowledgement(value: Any) -> None:
    """docs/behaviour.md#margin-type and #position-mode: a change answers code 200."""
    row = as_dict(value, "change answer")
    if _field(row, "code") != 200:
        raise ShapeError(f"change answer: expected code 200, got {row.get('code')!r}")


def parse_position_mode(value: Any) -> bool:
    """docs/behaviour.md#position-mode: true is hedge mode, false one-way."""
    row = as_dict(value, "positionSide/dual answer")
    return _as_bool(_field(row, "dualSidePosition"), "dualSidePosition")


def _parse_account_asset(value: Any) -> AccountAsset:
    row = as_dict(value, "account asset")

    def dec(key: str) -> Decimal:
        return _decimal_from_str(_field(row, key), key)

    return AccountAsset(
        asset=_as_str(_field(row, "asset"), "asset"),
        wallet_balance=dec("walletBalance"),
        unrealized_profit=dec("unrealizedProfit"),
        margin_balance=dec("marginBalance"),
        maint_margin=dec("maintMargin"),
        initial_margin=dec("initialMargin"),
        position_initial_margin=dec("positionInitialMargin"),
        open_order_initial_margin=dec("openOrderInitialMargin"),
        max_withdraw_amount=dec("maxWithdrawAmount"),
        cross_wallet_balance=dec("crossWalletBalance"),
        cross_un_pnl=dec("crossUnPnl"),
        available_balance=dec("availableBalance"),
        update_time=_as_int(_field(row, "updateTime"), "updateTime"),
    )


def _parse_account_position(value: Any) -> AccountPosition:
    row = as_dict(value, "account position")

    def dec(key: str) -> Decimal:
        return _decimal_from_str(_field(row, key), key)

    return AccountPosition(
        symbol=_as_str(_field(row, "symbol"), "symbol"),
        position_amt=dec("positionAmt"),
        initial_margin=dec("initialMargin"),
        maint_margin=dec("maintMargin"),
        unrealized_profit=dec("unrealizedProfit"),
        position_initial_margin=dec("positionInitialMargin"),
        open_order_initial_margin=dec("openOrderInitialMargin"),
        leverage=_int_from_str(_field(row, "leverage"), "leverage"),
        isolated=_as_bool(_field(row, "isolated"), "isolated"),
        position_side=_as_str(_field(row, "positionSide"), "positionSide"),
        entry_price=dec("entryPrice"),
        break_even_price=_optional_decimal(row, "breakEvenPrice"),
        max_qty=dec("maxQty"),
        update_time=_as_int(_field(row, "updateTime"), "updateTime"),
    )


def parse_account(value: Any) -> AccountInfo:
    """docs/behaviour.md#account."""
    row = as_dict(value, "account answer")
    return AccountInfo(
        assets=tuple(_parse_account_asset(a) for a in as_list(_field(row, "assets"), "assets")),
        positions=tuple(
            _parse_account_position(p) for p in as_list(_field(row, "positions"), "positions")
        ),
        can_deposit=_as_bool(_field(row, "canDeposit"), "canDeposit"),
        can_trade=_as_bool(_field(row, "canTrade"), "canTrade"),
        can_withdraw=_as_bool(_field(row, "canWithdraw"), "canWithdraw"),
        fee_tier=_as_int(_field(row, "feeTier"), "feeTier"),
        update_time=_as_int(_field(row, "updateTime"), "updateTime"),
    )


def parse_balance_row(value: Any) -> BalanceRow:
    """docs/behaviour.md#balance."""
    row = as_dict(value, "balance row")

    def dec(key: str) -> Decimal:
        return _decimal_from_str(_field(row, key), key)

    return BalanceRow(
        account_alias=_as_str(_field(row, "accountAlias"), "accountAlias"),
        asset=_as_str(_field(row, "asset"), "asset"),
        balance=dec("balance"),
        withdraw_available=dec("withdrawAvailable"),
        cross_wallet_balance=dec("crossWalletBalance"),
        cross_un_pnl=dec("crossUnPnl"),
        available_balance=dec("availableBalance"),
        update_time=_as_int(_field(row, "updateTime"), "updateTime"),
    )
