"""What the exchange remembers: accounts, leverage per account and symbol, seeded positions.

One lock guards all mutable state, so a leverage change and the position
checks it depends on happen atomically under concurrent clients.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal

from mockserver import errors
from mockserver.market import Listing, Symbol, plain_decimal
from mockserver.security import Account

DEFAULT_LEVERAGE = 20
MARGIN_TYPES = ("cross", "isolated")
MAX_ACCOUNTS = 10_000  # docs/behaviour.md#reliability: memory is bounded


class TooManyAccounts(ValueError):
    """More accounts than MAX_ACCOUNTS, configured or added."""


@dataclass(frozen=True)
class Position:
    amount: Decimal  # contracts, signed
    margin_type: str
    mark_price: Decimal
    update_time: int

    def coin_size(self, contract_size: Decimal) -> Decimal:
        """abs(positionAmt) x contractSize / markPrice, in coin."""
        return abs(self.amount) * contract_size / self.mark_price


class Store:
    """Accounts, leverage and positions, reset to the configured start-up state on demand."""

    def __init__(self, accounts: list[Account]) -> None:
        if len(accounts) > MAX_ACCOUNTS:
            raise TooManyAccounts(f"at most {MAX_ACCOUNTS} accounts, {len(accounts)} configured")
        self._configured = {a.api_key: a for a in accounts}
        self.accounts: dict[str, Account] = dict(self._configured)
        self._leverage: dict[tuple[str, str], int] = {}
        self._positions: dict[tuple[str, str], Position] = {}
        self._listing_until = 0
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.accounts = dict(self._configured)
            self._leverage = {}
            self._positions = {}

    # Accounts are read without the lock: a dict lookup is atomic, and writers swap copies.
    def put_account(self, account: Account) -> None:
        with self._lock:
            if account.api_key not in self.accounts and len(self.accounts) >= MAX_ACCOUNTS:
                raise TooManyAccounts(f"at most {MAX_ACCOUNTS} accounts; delete some first")
            self.accounts = {**self.accounts, account.api_key: account}

    def remove_account(self, api_key: str) -> bool:
        with self._lock:
            if api_key not in self.accounts:
                return False
            self.accounts = {k: v for k, v in self.accounts.items() if k != api_key}
            return True

    def leverage_of(self, api_key: str, symbol: str) -> int:
        return self._leverage.get((api_key, symbol), DEFAULT_LEVERAGE)

    def position_of(self, api_key: str, symbol: str) -> Position | None:
        return self._positions.get((api_key, symbol))

    def forget_delisted(self, listing: Listing) -> None:
        """Drop leverage and positions of symbols that delivered (SPEC 2.2)."""
        if listing.until_ms == self._listing_until:
            return
        with self._lock:
            listed = listing.symbols
            self._leverage = {k: v for k, v in self._leverage.items() if k[1] in listed}
            self._positions = {k: v for k, v in self._positions.items() if k[1] in listed}
            self._listing_until = listing.until_ms

    def change_leverage(self, api_key: str, symbol: Symbol, leverage: int) -> Decimal:
        """Apply SPEC 2.1's rules and return the new maxQty; raises -4028, -2027 or -4150."""
        if not 1 <= leverage <= symbol.max_leverage:
            raise errors.invalid_leverage(
                leverage, f"{symbol.name} takes leverage 1 to {symbol.max_leverage}"
            )
        max_qty = symbol.max_qty_for(leverage)
        key = (api_key, symbol.name)
        with self._lock:
            current = self._leverage.get(key, DEFAULT_LEVERAGE)
            position = self._positions.get(key)
            if position is not None and position.amount != 0:
                size = position.coin_size(symbol.contract.contract_size)
                if leverage > current and size > max_qty:
                    raise errors.position_exceeds_max_qty(
                        f"open position of {plain_decimal(size)} coin is above maxQty "
                        f"{plain_decimal(max_qty)} at {leverage}x"
                    )
                if leverage < current and position.margin_type == "isolated":
                    raise errors.isolated_leverage_reduction(
                        f"isolated position open on {symbol.name}; leverage {current} -> {leverage}"
                    )
            self._leverage[key] = leverage
        return max_qty

    def seed_position(self, api_key: str, symbol: str, position: Position) -> None:
        with self._lock:
            self._positions[(api_key, symbol)] = position
