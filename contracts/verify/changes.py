"""Properties of what a leverage change does: it applies, maxQty follows the brackets."""

from __future__ import annotations

import itertools
from decimal import Decimal

from hypothesis import strategies as st

from contracts import strategies as S
from contracts.verify.context import Context, Draw, Violation, draw_symbol


def check_valid_requests_succeed(ctx: Context, draw: Draw) -> None:
    view = draw_symbol(ctx, draw)
    leverage = draw(S.leverages_within(view.max_leverage), "leverage")
    placement = draw(S.placements(), "placement")
    recv_window = draw(S.recv_windows(), "recvWindow")
    order = draw(st.permutations(["symbol", "leverage"]), "order")
    trip = ctx.change_leverage(view.name, leverage, placement, order=order, recv_window=recv_window)
    body = ctx.expect_ok(trip, "a valid, signed leverage change")
    if body.get("symbol") != view.name or body.get("leverage") != leverage:
        raise Violation(f"answered another change than {view.name} at {leverage}x", [trip])
    read = draw(st.sampled_from(("positionRisk", "v2 brackets", "v1 brackets", "time")), "read")
    if read == "positionRisk":
        rows, row_trip = ctx.position_rows(view.pair)
        if rows.get(view.name, {}).get("leverage") != str(leverage):
            raise Violation(f"positionRisk does not show {view.name} at {leverage}x", [row_trip])
    elif read == "v2 brackets":
        trip = ctx.wire.call("GET", "/dapi/v2/leverageBracket", [("symbol", view.name)])
        ctx.expect_ok(trip, "GET /dapi/v2/leverageBracket?symbol")
    elif read == "v1 brackets":
        trip = ctx.wire.call("GET", "/dapi/v1/leverageBracket", [("pair", view.pair)])
        ctx.expect_ok(trip, "GET /dapi/v1/leverageBracket?pair")
    else:
        ctx.expect_ok(ctx.wire.send("GET", "/dapi/v1/time"), "GET /dapi/v1/time")


def check_bracket_tables_are_monotone(ctx: Context) -> None:
    """The published tables themselves: initialLeverage falls and qtyCap rises with the bracket."""
    for view in ctx.symbols.values():
        ordered = sorted(view.brackets, key=lambda b: b.number)
        for lower, upper in itertools.pairwise(ordered):
            if not (
                upper.initial_leverage < lower.initial_leverage and upper.qty_cap > lower.qty_cap
            ):
                raise Violation(
                    f"{view.name}'s published brackets {lower.number} and {upper.number} do not "
                    f"trade leverage for size (initialLeverage {lower.initial_leverage} -> "
                    f"{upper.initial_leverage}, qtyCap {lower.qty_cap} -> {upper.qty_cap})"
                )


def check_max_qty_follows_brackets(ctx: Context, draw: Draw) -> None:
    view = draw_symbol(ctx, draw)
    if view.max_leverage < 2:
        return
    low, high = draw(S.leverage_pairs(view.max_leverage), "leverages")
    trips = []
    answered: dict[int, Decimal] = {}
    for leverage in (low, high):
        trip = ctx.change_leverage(view.name, leverage, draw(S.placements(), "placement"))
        trips.append(trip)
        body = ctx.expect_ok(trip, f"change {view.name} to {leverage}x")
        expected = view.max_qty_for(leverage)
        got = Decimal(str(body.get("maxQty")))
        if got != expected:
            raise Violation(
                f"maxQty at {leverage}x is {got}; the server's own brackets for {view.name} "
                f"say {expected} (qtyCap of the highest-numbered bracket with "
                f"initialLeverage >= {leverage})",
                [trip],
            )
        answered[leverage] = got
    if answered[high] > answered[low]:
        raise Violation(
            f"maxQty grew with leverage: {answered[low]} at {low}x, {answered[high]} at {high}x",
            trips,
        )


def check_repeating_a_change_is_harmless(ctx: Context, draw: Draw) -> None:
    view = draw_symbol(ctx, draw)
    leverage = draw(S.leverages_within(view.max_leverage), "leverage")
    first = ctx.change_leverage(view.name, leverage, draw(S.placements(), "placement"))
    body = ctx.expect_ok(first, f"change {view.name} to {leverage}x")
    again = ctx.change_leverage(view.name, leverage, draw(S.placements(), "placement again"))
    if again.status == 200:
        if again.payload != body:
            raise Violation("the repeated change answered another body", [first, again])
    elif again.status is None or not 400 <= again.status < 500 or again.code is None:
        raise Violation(
            "the repeated change got neither 200 nor a Binance 4xx error", [first, again]
        )
    ctx.expect_conformance(again)
    rows, row_trip = ctx.position_rows(view.pair)
    row = rows.get(view.name, {})
    if row.get("leverage") != str(leverage) or row.get("maxQty") != body.get("maxQty"):
        raise Violation(
            f"after repeating {leverage}x, positionRisk shows {view.name} at "
            f"{row.get('leverage')}x with maxQty {row.get('maxQty')}",
            [first, again, row_trip],
        )


def check_fresh_account_starts_at_20(ctx: Context, draw: Draw) -> None:
    with ctx.scratch_account() as (_, fresh):
        trip = fresh.call("GET", "/dapi/v1/positionRisk")
        rows = ctx.expect_ok(trip, "positionRisk of a fresh account")
        for row in rows:
            view = ctx.symbols.get(row.get("symbol"))
            expected = view.max_qty_for(20) if view else None
            if row.get("leverage") != "20" or (
                expected is not None and Decimal(row.get("maxQty")) != expected
            ):
                raise Violation(
                    f"a fresh account shows {row.get('symbol')} at {row.get('leverage')}x with "
                    f"maxQty {row.get('maxQty')} (expected 20x, {expected})",
                    [trip],
                )


def check_same_leverage_again_succeeds(ctx: Context, draw: Draw) -> None:
    view = draw_symbol(ctx, draw)
    leverage = draw(S.leverages_within(view.max_leverage), "leverage")
    first = ctx.change_leverage(view.name, leverage, draw(S.placements(), "placement"))
    ctx.expect_ok(first, f"change {view.name} to {leverage}x")
    again = ctx.change_leverage(view.name, leverage, draw(S.placements(), "placement again"))
    ctx.expect_ok(again, f"change {view.name} to {leverage}x again")
    if again.payload != first.payload:
        raise Violation("setting the same leverage again answered another body", [first, again])
