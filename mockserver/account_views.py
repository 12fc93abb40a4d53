"""How an account's state reads: positionRisk rows, account, balance, and the control
plane's state view (docs/behaviour.md#position-risk, #account, #balance, #state-view).

Plain functions over the store and a listing; no rules live here.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from mockserver.market import Listing, Symbol, plain_decimal
from mockserver.security import Account
from mockserver.state import MARGIN_TYPE_NAMES, Store, start_leverage

ZERO_8 = "0.00000000"
_ALIAS_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def eight_decimals(value: Decimal) -> str:
    return format(value, ".8f")


def margin_assets(listing: Listing) -> list[str]:
    """The margin assets of the listed symbols, in listing order."""
    return list(dict.fromkeys(s.contract.margin_asset for s in listing.symbols.values()))


def _side_view(store: Store, api_key: str, symbol: Symbol, side: str) -> dict[str, Any]:
    """The values positionRisk and account rows share, in the captured flat-row formats."""
    leverage = store.leverage_of(api_key, symbol)
    position = store.position_of(api_key, symbol.name, side)
    view: dict[str, Any] = {
        "positionAmt": "0",
        "price": ZERO_8,
        "notional": "0",
        "leverage": leverage,
        "maxQty": plain_decimal(symbol.max_qty_for(leverage)),
        "marginType": store.margin_type_of(api_key, symbol.name),
        "updateTime": 0,
    }
    if position is not None:
        notional = position.amount * symbol.contract.contract_size / position.mark_price
        view.update(
            positionAmt=plain_decimal(position.amount),
            price=eight_decimals(position.mark_price),
            notional=eight_decimals(notional),
            updateTime=position.update_time,
        )
    return view


def position_risk_rows(store: Store, api_key: str, symbols: list[Symbol]) -> list[dict[str, Any]]:
    """docs/behaviour.md#position-risk: a real 2024 capture's key order, breakEvenPrice last."""
    rows = []
    for symbol in symbols:
        for side in store.sides_of(api_key):
            view = _side_view(store, api_key, symbol, side)
            rows.append(
                {
                    "symbol": symbol.name,
                    "positionAmt": view["positionAmt"],
                    "entryPrice": view["price"],
                    "markPrice": view["price"],
                    "unRealizedProfit": ZERO_8,
                    "liquidationPrice": "0",
                    "leverage": str(view["leverage"]),
                    "maxQty": view["maxQty"],
                    "marginType": view["marginType"],
                    "isolatedMargin": ZERO_8,
                    "isAutoAddMargin": "false",
                    "positionSide": side,
                    "notionalValue": view["notional"],
                    "isolatedWallet": "0",
                    "updateTime": view["updateTime"],
                    "breakEvenPrice": view["price"],
                }
            )
    return rows


def account_information(store: Store, api_key: str, listing: Listing) -> dict[str, Any]:
    """docs/behaviour.md#account: balances as set, no margin arithmetic."""
    balances = store.balances_of(api_key)
    assets = []
    for asset in margin_assets(listing):
        balance = balances.get(asset)
        wallet = ZERO_8 if balance is None else eight_decimals(balance.wallet)
        assets.append(
            {
                "asset": asset,
                "walletBalance": wallet,
                "unrealizedProfit": ZERO_8,
                "marginBalance": wallet,
                "maintMargin": ZERO_8,
                "initialMargin": ZERO_8,
                "positionInitialMargin": ZERO_8,
                "openOrderInitialMargin": ZERO_8,
                "maxWithdrawAmount": wallet,
                "crossWalletBalance": wallet,
                "crossUnPnl": ZERO_8,
                "availableBalance": wallet,
                # ccxt skips rows whose updateTime is 0 as never initialised.
                "updateTime": 0 if balance is None else balance.update_time,
            }
        )
    positions = []
    for symbol in listing.symbols.values():
        for side in store.sides_of(api_key):
            view = _side_view(store, api_key, symbol, side)
            positions.append(
                {
                    "symbol": symbol.name,
                    "positionAmt": view["positionAmt"],
                    "initialMargin": "0",
                    "maintMargin": "0",
                    "unrealizedProfit": ZERO_8,
                    "positionInitialMargin": "0",
                    "openOrderInitialMargin": "0",
                    "leverage": str(view["leverage"]),
                    "isolated": view["marginType"] == "isolated",
                    "positionSide": side,
                    "entryPrice": view["price"],
                    "breakEvenPrice": view["price"],
                    "maxQty": view["maxQty"],
                    "updateTime": view["updateTime"],
                }
            )
    return {
        "assets": assets,
        "positions": positions,
        "canDeposit": True,
        "canTrade": True,
        "canWithdraw": True,
        "feeTier": 0,
        "updateTime": 0,
    }


def account_alias(api_key: str) -> str:
    """Four letters, stable per API key (our choice: Binance's look like "SgsR")."""
    digest = hashlib.sha256(api_key.encode()).digest()
    return "".join(_ALIAS_LETTERS[b % len(_ALIAS_LETTERS)] for b in digest[:4])


def balance_rows(store: Store, api_key: str, listing: Listing) -> list[dict[str, Any]]:
    """docs/behaviour.md#balance: one row per margin asset of the listed symbols."""
    balances = store.balances_of(api_key)
    alias = account_alias(api_key)
    rows = []
    for asset in margin_assets(listing):
        balance = balances.get(asset)
        wallet = ZERO_8 if balance is None else eight_decimals(balance.wallet)
        rows.append(
            {
                "accountAlias": alias,
                "asset": asset,
                "balance": wallet,
                "withdrawAvailable": wallet,
                "crossWalletBalance": wallet,
                "crossUnPnl": ZERO_8,
                "availableBalance": wallet,
                "updateTime": 0 if balance is None else balance.update_time,
            }
        )
    return rows


def account_state(store: Store, account: Account, listing: Listing) -> dict[str, Any]:
    """docs/behaviour.md#state-view: one account as the journal page shows it; no secret."""
    api_key = account.api_key
    cap = store.cap_of(api_key)
    symbols = {}
    changed = store.changed_symbols(api_key)
    for name, symbol in listing.symbols.items():
        if name not in changed:
            continue
        leverage = store.leverage_of(api_key, symbol)
        margin_type = store.margin_type_of(api_key, name)
        if leverage != start_leverage(symbol, cap) or margin_type != "cross":
            symbols[name] = {"leverage": leverage, "marginType": MARGIN_TYPE_NAMES[margin_type]}
    return {
        "api_key": api_key,
        "type": account.type,
        "dual_side_position": store.dual_side_position(api_key),
        "max_leverage": None if cap is None else cap.max_leverage,
        "max_leverage_rule": None if cap is None else cap.rule,
        "balances": {
            asset: {"walletBalance": eight_decimals(b.wallet), "updateTime": b.update_time}
            for asset, b in store.balances_of(api_key).items()
        },
        "symbols": symbols,
        "positions": [
            {
                "symbol": name,
                "positionSide": side,
                "positionAmt": plain_decimal(position.amount),
                "markPrice": plain_decimal(position.mark_price),
            }
            for name, side, position in store.open_positions(api_key)
        ],
    }
