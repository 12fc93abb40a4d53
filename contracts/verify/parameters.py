"""Properties of parameters: values out of range, malformed, repeated or unknown."""

from __future__ import annotations

from hypothesis import strategies as st

from contracts import strategies as S
from contracts.verify.context import Context, Draw, Violation, draw_new_leverage, draw_symbol
from contracts.verify.wire import LEVERAGE_PATH

DUPLICATE_MSG = "Duplicate values for a parameter detected."


def check_out_of_range_leverage_is_4028(ctx: Context, draw: Draw) -> None:
    view = draw_symbol(ctx, draw)
    # Against an unknown server stay near the range: huge numbers are a parsing question.
    limit = S.INT64_MAX if ctx.mock_rules else view.max_leverage + 1000
    leverage = draw(S.leverages_above(view.max_leverage, limit), "leverage")
    trip = ctx.change_leverage(view.name, leverage, draw(S.placements(), "placement"))
    msg = f"Leverage {leverage} is not valid" if ctx.mock_rules else None
    ctx.expect_error(trip, 400, -4028, f"{view.name} at {leverage}x (max {view.max_leverage})", msg)


def check_leverage_below_one_is_4028(ctx: Context, draw: Draw) -> None:
    view = draw_symbol(ctx, draw)
    leverage = draw(S.leverages_below_one(), "leverage")
    trip = ctx.change_leverage(view.name, leverage, draw(S.placements(), "placement"))
    ctx.expect_error(
        trip, 400, -4028, f"{view.name} at {leverage}x", f"Leverage {leverage} is not valid"
    )


def check_duplicates_are_1101(ctx: Context, draw: Draw) -> None:
    view = draw_symbol(ctx, draw)
    leverage = draw_new_leverage(ctx, view, draw)
    placement = draw(st.sampled_from(("query", "body")), "placement")
    name = draw(st.sampled_from(("symbol", "leverage", "timestamp", "recvWindow")), "twice")
    pairs = ctx.wire.stamped([("symbol", view.name), ("leverage", str(leverage))], recv_window=5000)
    value = dict(pairs)[name]
    pairs.insert(draw(st.integers(0, len(pairs)), "at"), (name, value))
    ctx.touched.add(view.name)
    in_query, in_body = S.split_params(pairs, placement)
    query, body = ctx.wire.sign(S.form(in_query), S.form(in_body))
    trip = ctx.wire.send("POST", LEVERAGE_PATH, query, body)
    ctx.note_answer(trip)
    ctx.expect_error(trip, 400, -1101, f"{name} sent twice in the {placement}", DUPLICATE_MSG)


def check_unknown_parameters_are_ignored(ctx: Context, draw: Draw) -> None:
    view = draw_symbol(ctx, draw)
    leverage = draw(S.leverages_within(view.max_leverage), "leverage")
    known = ("symbol", "leverage", "recvWindow", "timestamp")
    extra = (
        draw(S.unknown_parameter_names(known), "unknown name"),
        draw(S.parameter_values(), "unknown value"),
    )
    trip = ctx.change_leverage(
        view.name, leverage, draw(S.placements(), "placement"), extra=[extra]
    )
    body = ctx.expect_ok(trip, f"a change with the unknown parameter {extra[0]}")
    if body.get("leverage") != leverage:
        raise Violation("the change did not apply", [trip])


def check_malformed_integers_are_1102(ctx: Context, draw: Draw) -> None:
    view = draw_symbol(ctx, draw)
    leverage = draw_new_leverage(ctx, view, draw)
    form = draw(st.sampled_from(("malformed", "leading zeros")), "form")
    if form == "leading zeros":
        text = draw(S.leading_zero_texts(leverage), "leverage text")
        trip = ctx.change_leverage(view.name, text, draw(S.placements(), "placement"))
        body = ctx.expect_ok(trip, f"leverage {text!r} (leading zeros are allowed)")
        if body.get("leverage") != leverage:
            raise Violation(f"leverage {text!r} was read as {body.get('leverage')}", [trip])
        return
    text = draw(S.malformed_integer_texts(leverage), "leverage text")
    trip = ctx.change_leverage(view.name, text, draw(S.placements(), "placement"))
    ctx.expect_error(
        trip,
        400,
        -1102,
        f"leverage {text!r}",
        "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed.",
    )
