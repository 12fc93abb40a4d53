"""What the exchange remembers per account: position mode, margin type and leverage per
symbol, positions per side, wallet balances, the leverage cap.

See docs/behaviour.md#position-configuration.

One lock guards all mutable state, so a change and the position checks it depends on
happen atomically under concurrent clients.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from mockserver import errors
from mockserver.market import Listing, Symbol, plain_decimal
from mockserver.security import Account

DEFAULT_LEVERAGE = 20
MARGIN_TYPES = ("cross", "isolated")
# How the trading API spells each margin type (marginType parameter, account views).
MARGIN_TYPE_NAMES = {"cross": "CROSSED", "isolated": "ISOLATED"}
POSITION_SIDES = ("BOTH", "LONG", "SHORT")
# docs/behaviour.md#leverage-cap: the rule decides the error; all but `country` name 20x.
LEVERAGE_CAP_RULES = ("country", "new_account", "kyc", "position_limit")
FIXED_CAP = 20
MAX_TABLE_LEVERAGE = 125
# An account's settings beside its credentials, in config and on POST /__admin/accounts.
SETUP_KEYS = ("balances", "dual_side_position", "max_leverage", "max_leverage_rule")
MAX_BALANCE = Decimal(10) ** 9
BALANCE_STEP = Decimal("1e-8")


class _Keep(Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP  # a setting not given: the account keeps its own


class SetupError(ValueError):
    """An account setting or arranged state that cannot be used; the message says why."""


@dataclass(frozen=True)
class LeverageCap:
    max_leverage: int
    rule: str


@dataclass(frozen=True)
class AccountSetup:
    """An account's trading state at start-up (and after each reset)."""

    dual_side_position: bool = False
    cap: LeverageCap | None = None
    balances: tuple[tuple[str, Decimal], ...] = ()


def leverage_cap(max_leverage: Any, rule: Any) -> LeverageCap | None:
    """The cap of `max_leverage` and `max_leverage_rule` (either may be None = not given)."""
    if rule is None and max_leverage is None:
        return None
    if rule is None:
        rule = "country"
    if rule not in LEVERAGE_CAP_RULES:
        raise SetupError(f"max_leverage_rule must be one of {', '.join(LEVERAGE_CAP_RULES)}")
    if max_leverage is not None and (
        not isinstance(max_leverage, int) or isinstance(max_leverage, bool)
    ):
        raise SetupError("max_leverage must be a whole number")
    if rule != "country":
        if max_leverage not in (None, FIXED_CAP):
            raise SetupError(f"max_leverage_rule {rule} caps leverage at {FIXED_CAP}")
        return LeverageCap(FIXED_CAP, rule)
    if max_leverage is None:
        raise SetupError("max_leverage_rule country needs max_leverage")
    if not 1 <= max_leverage <= MAX_TABLE_LEVERAGE:
        raise SetupError(f"max_leverage must be 1 to {MAX_TABLE_LEVERAGE}")
    return LeverageCap(max_leverage, rule)


def wallet_balance(value: Any, where: str = "balance") -> Decimal:
    """A wallet balance: a decimal string from 0 to 10^9 with at most 8 decimals."""
    number = None
    if isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = None
    if number is None or not number.is_finite():
        raise SetupError(f"{where} must be a decimal string")
    if not 0 <= number <= MAX_BALANCE:
        raise SetupError(f"{where} must be from 0 to 1000000000")
    if number != number.quantize(BALANCE_STEP):
        raise SetupError(f"{where} has more than 8 decimals")
    return number


def start_leverage(symbol: Symbol, cap: LeverageCap | None) -> int:
    """docs/behaviour.md#position-configuration: 20, or less where the table or the cap says."""
    limit = symbol.max_leverage if cap is None else min(symbol.max_leverage, cap.max_leverage)
    return min(DEFAULT_LEVERAGE, limit)


MAX_ACCOUNTS = 10_000  # docs/behaviour.md#reliability: memory is bounded


class TooManyAccounts(ValueError):
    """More accounts than MAX_ACCOUNTS, configured or added."""


@dataclass(frozen=True)
class Position:
    amount: Decimal  # contracts, signed: LONG positive, SHORT negative, BOTH either
    mark_price: Decimal
    update_time: int

    def coin_size(self, contract_size: Decimal) -> Decimal:
        """abs(positionAmt) x contractSize / markPrice, in coin."""
        return abs(self.amount) * contract_size / self.mark_price


@dataclass(frozen=True)
class Balance:
    wallet: Decimal
    update_time: int


@dataclass
class _Trading:
    """One account's mode, cap and balances (mutable, under the store's lock)."""

    dual_side_position: bool
    cap: LeverageCap | None
    balances: dict[str, Balance]


class Store:
    """Accounts and their trading state, reset to the configured start-up state on demand."""

    def __init__(
        self,
        accounts: Iterable[Account],
        setups: Mapping[str, AccountSetup] | None = None,
        margin_assets: Iterable[str] = (),
        now_ms: int = 0,
    ) -> None:
        accounts = list(accounts)
        if len(accounts) > MAX_ACCOUNTS:
            raise TooManyAccounts(f"at most {MAX_ACCOUNTS} accounts, {len(accounts)} configured")
        self.margin_assets = tuple(margin_assets)
        self._configured = {a.api_key: a for a in accounts}
        self._setups = dict(setups or {})
        for api_key, setup in self._setups.items():
            for asset, _ in setup.balances:
                self._check_asset(asset, f"account {api_key}: balances")
        self._lock = threading.Lock()
        self._listing_until = 0
        self.accounts: dict[str, Account] = {}
        self._trading: dict[str, _Trading] = {}
        self._leverage: dict[tuple[str, str], int] = {}
        self._margin: dict[tuple[str, str], str] = {}
        self._positions: dict[tuple[str, str, str], Position] = {}
        self.reset(now_ms)

    def reset(self, now_ms: int) -> None:
        with self._lock:
            self.accounts = dict(self._configured)
            self._trading = {
                key: self._start(self._setups.get(key, AccountSetup()), now_ms)
                for key in self.accounts
            }
            self._leverage = {}
            self._margin = {}
            self._positions = {}

    @staticmethod
    def _start(setup: AccountSetup, now_ms: int) -> _Trading:
        balances = {asset: Balance(wallet, now_ms) for asset, wallet in setup.balances}
        return _Trading(setup.dual_side_position, setup.cap, balances)

    def _check_asset(self, asset: str, where: str) -> None:
        if asset not in self.margin_assets:
            raise SetupError(
                f"{where}: {asset!r} is not a margin asset (use {', '.join(self.margin_assets)})"
            )

    # -- accounts ------------------------------------------------------------------------
    # Accounts are read without the lock: a dict lookup is atomic, and writers swap copies.

    def put_account(
        self,
        account: Account,
        now_ms: int,
        *,
        dual_side_position: bool | None = None,
        cap: LeverageCap | _Keep | None = KEEP,
        balances: Mapping[str, Decimal] | None = None,
    ) -> None:
        """Add an account, or replace one's credentials and the settings given.

        A replaced account keeps its leverage, margin types, positions and what is not given.
        """
        for asset in balances or {}:
            self._check_asset(asset, "balances")
        with self._lock:
            if account.api_key not in self.accounts and len(self.accounts) >= MAX_ACCOUNTS:
                raise TooManyAccounts(f"at most {MAX_ACCOUNTS} accounts; delete some first")
            trading = self._trading.get(account.api_key) or self._start(AccountSetup(), now_ms)
            if dual_side_position is not None:
                self._check_mode_change(account.api_key, trading, dual_side_position)
                trading.dual_side_position = dual_side_position
            if cap is not KEEP:
                trading.cap = cap
            if balances is not None:
                trading.balances = {a: Balance(w, now_ms) for a, w in balances.items()}
            self._trading = {**self._trading, account.api_key: trading}
            self.accounts = {**self.accounts, account.api_key: account}

    def remove_account(self, api_key: str) -> bool:
        """Forget the account and everything kept for it; a key added again starts fresh."""
        with self._lock:
            if api_key not in self.accounts:
                return False
            self.accounts = {k: v for k, v in self.accounts.items() if k != api_key}
            self._trading = {k: v for k, v in self._trading.items() if k != api_key}
            self._leverage = {k: v for k, v in self._leverage.items() if k[0] != api_key}
            self._margin = {k: v for k, v in self._margin.items() if k[0] != api_key}
            self._positions = {k: v for k, v in self._positions.items() if k[0] != api_key}
            return True

    # -- reading -------------------------------------------------------------------------

    def _trading_of(self, api_key: str) -> _Trading:
        """The account's mode, cap and balances; a fresh set for a key removed meanwhile."""
        trading = self._trading.get(api_key)
        return self._start(AccountSetup(), 0) if trading is None else trading

    def dual_side_position(self, api_key: str) -> bool:
        return self._trading_of(api_key).dual_side_position

    def cap_of(self, api_key: str) -> LeverageCap | None:
        return self._trading_of(api_key).cap

    def balances_of(self, api_key: str) -> dict[str, Balance]:
        with self._lock:
            return dict(self._trading_of(api_key).balances)

    def leverage_of(self, api_key: str, symbol: Symbol) -> int:
        leverage = self._leverage.get((api_key, symbol.name))
        return start_leverage(symbol, self.cap_of(api_key)) if leverage is None else leverage

    def margin_type_of(self, api_key: str, symbol: str) -> str:
        return self._margin.get((api_key, symbol), "cross")

    def position_of(self, api_key: str, symbol: str, side: str = "BOTH") -> Position | None:
        return self._positions.get((api_key, symbol, side))

    def sides_of(self, api_key: str) -> tuple[str, ...]:
        """The rows an account's position views show per symbol."""
        return POSITION_SIDES if self.dual_side_position(api_key) else ("BOTH",)

    def changed_symbols(self, api_key: str) -> set[str]:
        """Symbols whose leverage or margin type was ever set for the account."""
        with self._lock:
            return {s for k, s in (*self._leverage, *self._margin) if k == api_key}

    def open_positions(self, api_key: str) -> list[tuple[str, str, Position]]:
        """(symbol, side, position) of every open position of the account."""
        with self._lock:
            return [(s, side, p) for (k, s, side), p in self._positions.items() if k == api_key]

    def _open_sides(self, api_key: str, symbol: str) -> list[Position]:
        found = (self._positions.get((api_key, symbol, side)) for side in POSITION_SIDES)
        return [p for p in found if p is not None]

    def forget_delisted(self, listing: Listing) -> None:
        """docs/behaviour.md#quarterly-delivery: a delivered symbol's leverage, margin type
        and positions of every side go."""
        if listing.until_ms == self._listing_until:
            return
        with self._lock:
            listed = listing.symbols
            self._leverage = {k: v for k, v in self._leverage.items() if k[1] in listed}
            self._margin = {k: v for k, v in self._margin.items() if k[1] in listed}
            self._positions = {k: v for k, v in self._positions.items() if k[1] in listed}
            self._listing_until = listing.until_ms

    # -- the trading API's changes ---------------------------------------------------------

    def change_leverage(self, api_key: str, symbol: Symbol, leverage: int) -> Decimal:
        """docs/behaviour.md#change-leverage: the new maxQty, or -4028, the cap's error,
        -2027 or -4150 in that order."""
        if not 1 <= leverage <= symbol.max_leverage:
            raise errors.invalid_leverage(
                leverage, f"{symbol.name} takes leverage 1 to {symbol.max_leverage}"
            )
        max_qty = symbol.max_qty_for(leverage)
        with self._lock:
            cap = self._trading_of(api_key).cap
            if cap is not None and leverage > cap.max_leverage:
                raise errors.leverage_over_cap(
                    cap.rule,
                    cap.max_leverage,
                    f"account {api_key} is capped at {cap.max_leverage}x ({cap.rule})",
                )
            key = (api_key, symbol.name)
            current = self._leverage.get(key)
            if current is None:
                current = start_leverage(symbol, cap)
            # Hedge mode: LONG and SHORT share one leverage and a total notional value.
            open_sides = self._open_sides(api_key, symbol.name)
            if open_sides:
                size = sum(
                    (p.coin_size(symbol.contract.contract_size) for p in open_sides), Decimal(0)
                )
                if leverage > current and size > max_qty:
                    raise errors.position_exceeds_max_qty(
                        f"open position of {plain_decimal(size)} coin is above maxQty "
                        f"{plain_decimal(max_qty)} at {leverage}x"
                    )
                if leverage < current and self._margin.get(key) == "isolated":
                    raise errors.isolated_leverage_reduction(
                        f"isolated position open on {symbol.name}; leverage {current} -> {leverage}"
                    )
            self._leverage[key] = leverage
        return max_qty

    def change_margin_type(self, api_key: str, symbol: str, margin_type: str) -> None:
        """docs/behaviour.md#margin-type: -4046 when unchanged, -4048 with a position open."""
        key = (api_key, symbol)
        with self._lock:
            if self._margin.get(key, "cross") == margin_type:
                raise errors.no_need_to_change_margin_type(
                    f"{symbol} is already {MARGIN_TYPE_NAMES[margin_type]}"
                )
            if self._open_sides(api_key, symbol):
                raise errors.margin_type_change_with_position(
                    f"{symbol} has an open position for account {api_key}"
                )
            self._margin[key] = margin_type

    def change_position_mode(self, api_key: str, dual_side_position: bool) -> None:
        """docs/behaviour.md#position-mode: -4059 when unchanged, -4068 with a position open."""
        with self._lock:
            trading = self._trading_of(api_key)
            mode = "hedge" if dual_side_position else "one-way"
            if trading.dual_side_position == dual_side_position:
                raise errors.no_need_to_change_position_side(f"the account is already {mode}")
            opened = sorted({s for k, s, _ in self._positions if k == api_key})
            if opened:
                raise errors.position_side_change_with_position(
                    f"open position(s) on {', '.join(opened)}"
                )
            trading.dual_side_position = dual_side_position

    # -- the control plane's arrangements --------------------------------------------------

    def _check_mode_change(self, api_key: str, trading: _Trading, dual: bool) -> None:
        if trading.dual_side_position != dual and any(k == api_key for k, _, _ in self._positions):
            raise SetupError("the account has open positions: changing its mode would strand them")

    def set_position_mode(self, api_key: str, dual_side_position: bool) -> None:
        with self._lock:
            trading = self._trading_of(api_key)
            self._check_mode_change(api_key, trading, dual_side_position)
            trading.dual_side_position = dual_side_position

    def set_margin_type(self, api_key: str, symbol: str, margin_type: str) -> None:
        with self._lock:
            self._margin[(api_key, symbol)] = margin_type

    def set_balance(self, api_key: str, asset: str, wallet: Decimal, now_ms: int) -> None:
        self._check_asset(asset, "asset")
        with self._lock:
            self._trading_of(api_key).balances[asset] = Balance(wallet, now_ms)

    def seed_position(
        self,
        api_key: str,
        symbol: str,
        side: str,
        position: Position,
        margin_type: str | None = None,
    ) -> None:
        """Open (or, with amount 0, close) a position; the side must suit the account's mode."""
        amount = position.amount
        with self._lock:
            hedge = self._trading_of(api_key).dual_side_position
            if side not in POSITION_SIDES:
                raise SetupError(f"positionSide must be one of {', '.join(POSITION_SIDES)}")
            if hedge and side == "BOTH":
                raise SetupError("the account is in hedge mode: seed LONG or SHORT")
            if not hedge and side != "BOTH":
                raise SetupError(f"{side} needs hedge mode (dualSidePosition true)")
            if (side == "LONG" and amount < 0) or (side == "SHORT" and amount > 0):
                raise SetupError(
                    f"a {side} positionAmt must be {'>=' if side == 'LONG' else '<='} 0"
                )
            if margin_type is not None:
                self._margin[(api_key, symbol)] = margin_type
            if amount == 0:
                self._positions.pop((api_key, symbol, side), None)
            else:
                self._positions[(api_key, symbol, side)] = position
