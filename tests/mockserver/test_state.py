"""state.Store: leverage rules of
docs/behaviour.md#change-leverage (-4028, -2027, -4150) and what it remembers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from mockserver.errors import ExchangeError
from mockserver.market import Market, Symbol, delivery_ms
from mockserver.security import hmac_account
from mockserver.state import DEFAULT_LEVERAGE, Position, Store

FROZEN_MS = 1591702613943
KEY, OTHER_KEY = "k1", "k2"
EXCEEDED = "Exceeded the maximum allowable position at current leverage."
ISOLATED = "Leverage reduction is not supported in Isolated Margin Mode with open positions."


@pytest.fixture(scope="module")
def market() -> Market:
    return Market.load()


@pytest.fixture
def store() -> Store:
    return Store([hmac_account(KEY, "s1"), hmac_account(OTHER_KEY, "s2")])


def symbol(market: Market, name: str, now_ms: int = FROZEN_MS) -> Symbol:
    return market.listing(now_ms).symbols[name]


def seed(
    store: Store, name: str, amount: str, margin_type: str = "cross", mark: str = "100000"
) -> None:
    position = Position(Decimal(amount), Decimal(mark), FROZEN_MS)
    store.seed_position(KEY, name, "BOTH", position, margin_type)


def rejected(store: Store, target: Symbol, leverage: int) -> ExchangeError:
    with pytest.raises(ExchangeError) as caught:
        store.change_leverage(KEY, target, leverage)
    return caught.value


# -- defaults and plain changes -------------------------------------------------------------


def test_fresh_account_starts_at_leverage_20(store: Store, market: Market) -> None:
    assert DEFAULT_LEVERAGE == 20
    for listed in market.listing(FROZEN_MS).symbols.values():
        assert store.leverage_of(KEY, listed) == 20


def test_change_leverage_returns_max_qty_and_remembers_it(store: Store, market: Market) -> None:
    assert store.change_leverage(KEY, symbol(market, "BTCUSD_PERP"), 125) == Decimal(5)
    assert store.leverage_of(KEY, symbol(market, "BTCUSD_PERP")) == 125


def test_setting_the_current_value_again_succeeds(store: Store, market: Market) -> None:
    assert store.change_leverage(KEY, symbol(market, "BTCUSD_PERP"), 20) == Decimal(150)
    assert store.change_leverage(KEY, symbol(market, "BTCUSD_PERP"), 20) == Decimal(150)


def test_leverage_is_kept_per_account_and_symbol(store: Store, market: Market) -> None:
    store.change_leverage(KEY, symbol(market, "BTCUSD_PERP"), 5)
    assert store.leverage_of(OTHER_KEY, symbol(market, "BTCUSD_PERP")) == 20
    assert store.leverage_of(KEY, symbol(market, "ETHUSD_PERP")) == 20


# -- -4028 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "leverage"),
    [
        ("BTCUSD_PERP", 0),
        ("BTCUSD_PERP", -1),
        ("BTCUSD_PERP", 126),
        ("ETHUSD_PERP", 101),
        ("BTCUSD_200626", 51),
        ("ETHUSD_200925", 51),
    ],
)
def test_leverage_outside_1_to_bracket_one_is_rejected_with_4028(
    store: Store, market: Market, name: str, leverage: int
) -> None:
    error = rejected(store, symbol(market, name), leverage)
    assert (error.status, error.code, error.msg) == (
        400,
        -4028,
        f"Leverage {leverage} is not valid",
    )
    assert store.leverage_of(KEY, symbol(market, name)) == 20


@pytest.mark.parametrize(
    ("name", "leverage"), [("BTCUSD_PERP", 125), ("ETHUSD_PERP", 100), ("BTCUSD_200626", 50)]
)
def test_bracket_one_leverage_and_1_are_accepted(
    store: Store, market: Market, name: str, leverage: int
) -> None:
    store.change_leverage(KEY, symbol(market, name), leverage)
    store.change_leverage(KEY, symbol(market, name), 1)
    assert store.leverage_of(KEY, symbol(market, name)) == 1


# -- -2027 ----------------------------------------------------------------------------------
# BTCUSD_PERP: contractSize 100; at markPrice 100000 a contract is 0.001 BTC, so 5000
# contracts are exactly 125x's maxQty of 5 BTC.


@pytest.mark.parametrize("amount", ["5000", "-5000", "4999"])
def test_raising_leverage_to_exactly_the_position_size_is_allowed(
    store: Store, market: Market, amount: str
) -> None:
    seed(store, "BTCUSD_PERP", amount)
    assert store.change_leverage(KEY, symbol(market, "BTCUSD_PERP"), 125) == Decimal(5)


@pytest.mark.parametrize("amount", ["5001", "-5001"])
def test_raising_leverage_below_an_open_position_is_rejected_with_2027(
    store: Store, market: Market, amount: str
) -> None:
    seed(store, "BTCUSD_PERP", amount)
    error = rejected(store, symbol(market, "BTCUSD_PERP"), 125)
    assert (error.status, error.code, error.msg) == (400, -2027, EXCEEDED)
    assert store.leverage_of(KEY, symbol(market, "BTCUSD_PERP")) == 20


def test_position_size_uses_the_seeded_mark_price(store: Store, market: Market) -> None:
    # 5000 contracts x 100 USD / 50000 = 10 BTC: above 125x's 5, within 100x's 10.
    seed(store, "BTCUSD_PERP", "5000", mark="50000")
    assert rejected(store, symbol(market, "BTCUSD_PERP"), 125).code == -2027
    assert store.change_leverage(KEY, symbol(market, "BTCUSD_PERP"), 100) == Decimal(10)


def test_eth_position_size_uses_contract_size_10(store: Store, market: Market) -> None:
    # 5250 contracts x 10 USD / 3500 = 15 ETH = ETHUSD_PERP's 100x maxQty.
    seed(store, "ETHUSD_PERP", "5250", mark="3500")
    assert store.change_leverage(KEY, symbol(market, "ETHUSD_PERP"), 100) == Decimal(15)
    store.change_leverage(KEY, symbol(market, "ETHUSD_PERP"), 20)
    seed(store, "ETHUSD_PERP", "5251", mark="3500")
    assert rejected(store, symbol(market, "ETHUSD_PERP"), 100).code == -2027


def test_lowering_leverage_is_not_checked_against_max_qty(store: Store, market: Market) -> None:
    seed(store, "BTCUSD_PERP", "10000000")
    assert store.change_leverage(KEY, symbol(market, "BTCUSD_PERP"), 1) == Decimal(3500)


def test_keeping_the_same_leverage_is_allowed_above_max_qty(store: Store, market: Market) -> None:
    seed(store, "BTCUSD_PERP", "10000000")
    assert store.change_leverage(KEY, symbol(market, "BTCUSD_PERP"), 20) == Decimal(150)


def test_another_accounts_position_does_not_limit_leverage(store: Store, market: Market) -> None:
    seed(store, "BTCUSD_PERP", "10000000")
    assert store.change_leverage(OTHER_KEY, symbol(market, "BTCUSD_PERP"), 125) == Decimal(5)


# -- -4150 ----------------------------------------------------------------------------------


def test_lowering_leverage_on_isolated_with_open_position_is_rejected_with_4150(
    store: Store, market: Market
) -> None:
    seed(store, "BTCUSD_PERP", "100", margin_type="isolated")
    error = rejected(store, symbol(market, "BTCUSD_PERP"), 10)
    assert (error.status, error.code, error.msg) == (400, -4150, ISOLATED)
    assert store.leverage_of(KEY, symbol(market, "BTCUSD_PERP")) == 20


def test_lowering_leverage_on_cross_with_open_position_is_allowed(
    store: Store, market: Market
) -> None:
    seed(store, "BTCUSD_PERP", "100", margin_type="cross")
    assert store.change_leverage(KEY, symbol(market, "BTCUSD_PERP"), 10) == Decimal(400)


def test_raising_leverage_on_isolated_with_open_position_is_allowed(
    store: Store, market: Market
) -> None:
    seed(store, "BTCUSD_PERP", "100", margin_type="isolated")
    assert store.change_leverage(KEY, symbol(market, "BTCUSD_PERP"), 50) == Decimal(25)


def test_lowering_leverage_on_isolated_without_a_position_is_allowed(
    store: Store, market: Market
) -> None:
    seed(store, "BTCUSD_PERP", "0", margin_type="isolated")
    assert store.change_leverage(KEY, symbol(market, "BTCUSD_PERP"), 10) == Decimal(400)


def test_same_leverage_on_isolated_with_open_position_is_allowed(
    store: Store, market: Market
) -> None:
    seed(store, "BTCUSD_PERP", "-100", margin_type="isolated")
    assert store.change_leverage(KEY, symbol(market, "BTCUSD_PERP"), 20) == Decimal(150)


# -- delivery -------------------------------------------------------------------------------


def test_forget_delisted_drops_leverage_and_positions_of_the_delivered_quarter(
    store: Store, market: Market
) -> None:
    delivery = delivery_ms(2026, 12)
    before = market.listing(delivery - 1)
    store.change_leverage(KEY, before.symbols["BTCUSD_261225"], 5)
    store.change_leverage(KEY, before.symbols["BTCUSD_270326"], 10)
    store.change_leverage(KEY, before.symbols["BTCUSD_PERP"], 50)
    seed(store, "BTCUSD_261225", "7")
    store.forget_delisted(before)
    assert store.leverage_of(KEY, before.symbols["BTCUSD_261225"]) == 5

    store.forget_delisted(market.listing(delivery))

    assert store.leverage_of(KEY, before.symbols["BTCUSD_261225"]) == 20
    assert store.position_of(KEY, "BTCUSD_261225") is None
    assert store.leverage_of(KEY, before.symbols["BTCUSD_270326"]) == 10
    assert store.leverage_of(KEY, before.symbols["BTCUSD_PERP"]) == 50


def test_forget_delisted_keeps_state_of_symbols_still_listed(store: Store, market: Market) -> None:
    now = int(datetime(2026, 11, 27, tzinfo=UTC).timestamp() * 1000)
    listing = market.listing(now)
    store.change_leverage(KEY, listing.symbols["ETHUSD_261225"], 3)
    seed(store, "ETHUSD_PERP", "1")
    store.forget_delisted(listing)
    store.forget_delisted(market.listing(now + 1))
    assert store.leverage_of(KEY, listing.symbols["ETHUSD_261225"]) == 3
    assert store.position_of(KEY, "ETHUSD_PERP") is not None


# -- positions, accounts, reset ---------------------------------------------------------------


def test_position_coin_size_is_abs_amount_times_contract_size_over_mark_price() -> None:
    position = Position(Decimal("-250"), Decimal("100000"), FROZEN_MS)
    assert position.coin_size(Decimal(100)) == Decimal("0.25")


def test_seeded_position_is_returned(store: Store) -> None:
    seed(store, "BTCUSD_PERP", "12", margin_type="isolated", mark="90000")
    assert store.position_of(KEY, "BTCUSD_PERP") == Position(Decimal(12), Decimal(90000), FROZEN_MS)
    assert store.margin_type_of(KEY, "BTCUSD_PERP") == "isolated"
    assert store.position_of(OTHER_KEY, "BTCUSD_PERP") is None


def test_accounts_can_be_added_replaced_and_removed(store: Store) -> None:
    replacement = hmac_account(KEY, "new")
    store.put_account(replacement, FROZEN_MS)
    store.put_account(hmac_account("k3", "s3"), FROZEN_MS)
    assert store.accounts[KEY] is replacement
    assert store.remove_account("k3") is True
    assert store.remove_account("k3") is False
    assert set(store.accounts) == {KEY, OTHER_KEY}


def test_reset_restores_configured_accounts_and_clears_leverage_and_positions(
    store: Store, market: Market
) -> None:
    configured = store.accounts[KEY]
    store.change_leverage(KEY, symbol(market, "BTCUSD_PERP"), 5)
    seed(store, "BTCUSD_PERP", "1")
    store.remove_account(KEY)
    store.put_account(hmac_account("k3", "s3"), FROZEN_MS)
    store.reset(FROZEN_MS)
    assert set(store.accounts) == {KEY, OTHER_KEY}
    assert store.accounts[KEY] is configured
    assert store.leverage_of(KEY, symbol(market, "BTCUSD_PERP")) == 20
    assert store.position_of(KEY, "BTCUSD_PERP") is None
