"""Properties of the timing window: timestamp against server time and recvWindow."""

from __future__ import annotations

from hypothesis import strategies as st

from contracts import strategies as S
from contracts.verify.context import Context, Draw, draw_signed_target, draw_symbol

STALE_MSG = "Timestamp for this request is outside of the recvWindow."
AHEAD_MSG = "Timestamp for this request was 1000ms ahead of the server's time."


def check_bad_timestamp_is_1021(ctx: Context, draw: Draw) -> None:
    method, path, params, placement = draw_signed_target(ctx, draw)
    recv_window = draw(S.recv_windows(), "recvWindow")
    window = S.DEFAULT_RECV_WINDOW_MS if recv_window is None else recv_window
    if draw(st.sampled_from(("stale", "ahead")), "timestamp") == "stale":
        timestamp = ctx.wire.now_ms() - draw(S.stale_ages(window), "age ms")
        msg = STALE_MSG
    else:
        timestamp = ctx.wire.now_ms() + draw(S.ahead_leads(), "lead ms")
        msg = AHEAD_MSG
    trip = ctx.wire.call(
        method, path, params, placement, timestamp=timestamp, recv_window=recv_window
    )
    ctx.note_answer(trip)
    ctx.expect_error(trip, 400, -1021, f"{method} {path} with timestamp {timestamp}", msg)


def check_recv_window_has_no_cap(ctx: Context, draw: Draw) -> None:
    view = draw_symbol(ctx, draw)
    leverage = draw(S.leverages_within(view.max_leverage), "leverage")
    recv_window = draw(st.integers(S.CLIENT_RECV_WINDOW_MAX_MS + 1, 2**62), "recvWindow")
    age = draw(st.integers(0, recv_window - S.TIMING_MARGIN_MS), "age ms")
    trip = ctx.change_leverage(
        view.name,
        leverage,
        draw(S.placements(), "placement"),
        recv_window=recv_window,
        timestamp=ctx.wire.now_ms() - age,
    )
    ctx.expect_ok(trip, f"recvWindow {recv_window} with a timestamp {age} ms old")


def check_timing_window_is_exact(ctx: Context, draw: Draw) -> None:
    view = draw_symbol(ctx, draw)
    admin = ctx.admin()
    clock = admin.clock.state()
    now = ctx.wire.now_ms()
    admin.clock.freeze(now)
    try:
        recv_window = draw(st.integers(0, S.CLIENT_RECV_WINDOW_MAX_MS), "recvWindow")
        cases = [
            (now + S.AHEAD_TOLERANCE_MS - 1, True),
            (now + S.AHEAD_TOLERANCE_MS, False),
            (now - recv_window, True),
            (now - recv_window - 1, False),
        ]
        for timestamp, accepted in cases:
            trip = ctx.wire.call(
                "GET",
                "/dapi/v2/leverageBracket",
                [("symbol", view.name)],
                timestamp=timestamp,
                recv_window=recv_window,
            )
            what = f"timestamp {timestamp - now:+d} ms from server time, recvWindow {recv_window}"
            if accepted:
                ctx.expect_ok(trip, what)
            else:
                ctx.expect_error(trip, 400, -1021, what)
    finally:
        if clock["frozen"]:
            admin.clock.freeze(clock["frozen_at_ms"])
        else:
            admin.clock.offset(clock["offset_ms"])
        admin.close()
