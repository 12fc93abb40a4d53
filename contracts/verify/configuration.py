"""Properties of an account's position configuration: margin type, position mode, leverage cap,
and the account and balance reads (docs/behaviour.md#position-configuration).

The texts and codes below are the kit's own copy of the exchange's, so that the kit
describes the contract independently of the mock it may be run against.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from contracts import strategies as S
from contracts.verify.context import (
    Context,
    Draw,
    NotApplicable,
    Violation,
    draw_symbol,
)
from contracts.verify.wire import LEVERAGE_PATH, MARGIN_TYPE_PATH, POSITION_MODE_PATH, Roundtrip

SUCCESS = {"code": 200, "msg": "success"}
NO_CHANGE_MARGIN_TYPE = "No need to change margin type."
NO_CHANGE_POSITION_SIDE = "No need to change position side."
MARGIN_TYPE_WITH_POSITION = "Margin type cannot be changed if there exists position."
POSITION_SIDE_WITH_POSITION = "Position side cannot be changed if there exists position."
#: docs/behaviour.md#position-risk: the rows each position mode shows per symbol.
SIDES = {False: ("BOTH",), True: ("BOTH", "LONG", "SHORT")}
OTHER_MARGIN_TYPE = {"ISOLATED": "CROSSED", "CROSSED": "ISOLATED"}
#: docs/behaviour.md#leverage-cap: each rule's code and text (%s: the cap).
CAP_ERRORS = {
    "country": (-4201, "Users in your location/country can only access a maximum leverage of %s"),
    "new_account": (
        -4200,
        "More than 20x leverage is available 30 days after Futures account registration.",
    ),
    "kyc": (
        -4194,
        "Intermediate Personal Verification is required for adjusting leverage over 20x.",
    ),
    "position_limit": (
        -4202,
        "Current symbol leverage cannot exceed 20 when using position limit adjustment service.",
    ),
}


def _mode_name(dual: bool) -> str:
    return "hedge" if dual else "one-way"


def _sides_by_symbol(ctx: Context, rows: list[Any]) -> dict[str, list[str]]:
    sides: dict[str, list[str]] = {}
    for row in rows:
        if isinstance(row, dict) and row.get("symbol") in ctx.symbols:
            sides.setdefault(str(row["symbol"]), []).append(str(row.get("positionSide")))
    return sides


def _check_sides(
    ctx: Context, rows: list[Any], dual: bool, what: str, trips: list[Roundtrip]
) -> None:
    """docs/behaviour.md#position-risk: BOTH in one-way mode; BOTH, LONG, SHORT in hedge mode."""
    expected = sorted(SIDES[dual])
    for symbol, sides in sorted(_sides_by_symbol(ctx, rows).items()):
        if sorted(sides) != expected:
            raise Violation(
                f"{what} shows {symbol} with sides {sides}; in {_mode_name(dual)} mode it shows "
                f"{list(SIDES[dual])}",
                trips,
            )


def _no_position_anywhere(ctx: Context) -> None:
    held = sorted(n for n, v in ctx.symbols.items() if v.position_amt != 0)
    if held:
        raise NotApplicable(
            f"a position is open on {', '.join(held)}, and the position mode changes only "
            "without one (-4068, rule position-mode)"
        )


# --- portable: reads, and asking for what is already set -----------------------------------


def check_account_matches_position_risk(ctx: Context, draw: Draw) -> None:
    dual, mode_trip = ctx.read_mode()
    rows, risk_trip = ctx.position_list()
    trip = ctx.wire.call("GET", "/dapi/v1/account")
    trips = [mode_trip, risk_trip, trip]
    account = ctx.expect_ok(trip, "GET /dapi/v1/account")
    positions = account.get("positions") if isinstance(account, dict) else None
    if not isinstance(positions, list):
        raise Violation("the account answer has no positions list", trips)
    _check_sides(ctx, rows, dual, "positionRisk", trips)
    _check_sides(ctx, positions, dual, "the account answer", trips)
    shown = {(p.get("symbol"), p.get("positionSide")): p for p in positions}
    for row in rows:
        if row.get("symbol") not in ctx.symbols:
            continue
        key = (row.get("symbol"), row.get("positionSide"))
        position = shown.get(key)
        if position is None:
            raise Violation(f"the account answer has no row for {key[0]} {key[1]}", trips)
        isolated = row.get("marginType") == "isolated"
        if (
            position.get("leverage") != row.get("leverage")
            or position.get("isolated") is not isolated
            or Decimal(str(position.get("positionAmt"))) != Decimal(str(row.get("positionAmt")))
        ):
            raise Violation(
                f"{key[0]} {key[1]}: the account answer shows leverage "
                f"{position.get('leverage')}, isolated {position.get('isolated')}, amount "
                f"{position.get('positionAmt')}; positionRisk shows {row.get('leverage')}, "
                f"{row.get('marginType')}, {row.get('positionAmt')}",
                trips,
            )


def check_balance_matches_account(ctx: Context, draw: Draw) -> None:
    trip = ctx.wire.call("GET", "/dapi/v1/balance")
    rows = ctx.expect_ok(trip, "GET /dapi/v1/balance")
    account_trip = ctx.wire.call("GET", "/dapi/v1/account")
    account = ctx.expect_ok(account_trip, "GET /dapi/v1/account")
    trips = [trip, account_trip]
    if not isinstance(rows, list) or not isinstance(account, dict):
        raise Violation("balance is not a list, or account not an object", trips)
    aliases = {row.get("accountAlias") for row in rows}
    if len(aliases) > 1:
        raise Violation(f"one account answered several aliases: {sorted(map(str, aliases))}", trips)
    assets = {a.get("asset"): a for a in account.get("assets", []) if isinstance(a, dict)}
    for row in rows:
        asset = assets.get(row.get("asset"))
        if asset is None:
            continue  # which assets each read lists is the exchange's business
        for mine, theirs in (("balance", "walletBalance"), ("crossWalletBalance",) * 2):
            if Decimal(str(row.get(mine))) != Decimal(str(asset.get(theirs))):
                raise Violation(
                    f"{row.get('asset')}: balance shows {mine} {row.get(mine)}, the account "
                    f"answer {theirs} {asset.get(theirs)}",
                    trips,
                )


def check_margin_type_no_change_is_4046(ctx: Context, draw: Draw) -> None:
    view = draw_symbol(ctx, draw)
    placement = draw(S.placements(), "placement")
    types, read = ctx.read_margin_types(view.pair)
    current = types.get(view.name)
    if current is None:
        raise Violation(f"positionRisk shows no row for {view.name}", [read])
    trip = ctx.change_margin_type(view.name, current, placement)
    ctx.not_blocked_by_orders(trip, "margin-type", f"{view.name}'s margin type")
    ctx.expect_error(
        trip,
        400,
        -4046,
        f"{view.name} asked for {current}, the margin type it has",
        NO_CHANGE_MARGIN_TYPE,
    )
    after, again = ctx.read_margin_types(view.pair)
    if after.get(view.name) != current:
        raise Violation(
            f"after the -4046, {view.name} shows {after.get(view.name)} (it was {current})",
            [read, trip, again],
        )


def check_position_mode_no_change_is_4059(ctx: Context, draw: Draw) -> None:
    dual, read = ctx.read_mode()
    trip = ctx.change_mode(dual, draw(S.placements(), "placement"))
    ctx.expect_error(
        trip,
        400,
        -4059,
        f"dualSidePosition={str(dual).lower()} in {_mode_name(dual)} mode",
        NO_CHANGE_POSITION_SIDE,
    )
    after, again = ctx.read_mode()
    if after != dual:
        raise Violation(
            f"after the -4059 the account is in {_mode_name(after)} mode", [read, trip, again]
        )


# --- portable, run with --change-account-settings: a change, read back, put back ------------


def check_position_mode_reads_back(ctx: Context, draw: Draw) -> None:
    _no_position_anywhere(ctx)
    before, read = ctx.read_mode()
    target = not before
    trip = ctx.change_mode(target, draw(S.placements(), "placement"))
    ctx.not_blocked_by_orders(trip, "position-mode", "the position mode")
    if trip.code == -4068 and not ctx.mock_rules:
        raise NotApplicable(
            "the server answered -4068: a position is open (USDⓈ-M positions count too, the "
            "mode is shared), so the mode cannot change (rule position-mode)"
        )
    try:
        body = ctx.expect_ok(trip, f"a change to {_mode_name(target)} mode")
        if body != SUCCESS:
            raise Violation(f"the change answered {body}, not {SUCCESS}", [trip])
        shown, again = ctx.read_mode()
        if shown != target:
            raise Violation(
                f"after a change to {_mode_name(target)} mode, positionSide/dual reads "
                f"{_mode_name(shown)}",
                [read, trip, again],
            )
        rows, risk = ctx.position_list()
        _check_sides(ctx, rows, target, "positionRisk", [trip, risk])
    finally:
        back = ctx.change_mode(before) if ctx.mode != before else None
    if back is not None:
        ctx.expect_ok(back, f"the change back to {_mode_name(before)} mode")
    final, last = ctx.read_mode()
    if final != before:
        raise Violation(f"changing back left the account in {_mode_name(final)} mode", [last])


def check_margin_type_reads_back(ctx: Context, draw: Draw) -> None:
    view = draw_symbol(ctx, draw)
    placement = draw(S.placements(), "placement")
    types, read = ctx.read_margin_types(view.pair)
    before = types.get(view.name)
    if before is None:
        raise Violation(f"positionRisk shows no row for {view.name}", [read])
    target = OTHER_MARGIN_TYPE[before]
    trip = ctx.change_margin_type(view.name, target, placement)
    ctx.not_blocked_by_orders(trip, "margin-type", f"{view.name}'s margin type")
    try:
        body = ctx.expect_ok(trip, f"a change of {view.name} to {target}")
        if body != SUCCESS:
            raise Violation(f"the change answered {body}, not {SUCCESS}", [trip])
        shown, again = ctx.read_margin_types(view.pair)  # every side of a symbol alike
        if shown.get(view.name) != target:
            raise Violation(
                f"after a change to {target}, positionRisk shows {view.name} as "
                f"{shown.get(view.name)}",
                [trip, again],
            )
        account_trip = ctx.wire.call("GET", "/dapi/v1/account")
        account = ctx.expect_ok(account_trip, "GET /dapi/v1/account")
        for row in account.get("positions", []):
            if row.get("symbol") == view.name and row.get("isolated") is not (target == "ISOLATED"):
                raise Violation(
                    f"after a change to {target}, the account answer shows {view.name} "
                    f"{row.get('positionSide')} with isolated {row.get('isolated')}",
                    [trip, account_trip],
                )
    finally:
        back = (
            ctx.change_margin_type(view.name, before)
            if ctx.margin.get(view.name) != before
            else None
        )
    if back is not None:
        ctx.expect_ok(back, f"the change of {view.name} back to {before}")
    final, last = ctx.read_margin_types(view.pair)
    if final.get(view.name) != before:
        raise Violation(f"changing back left {view.name} {final.get(view.name)}", [last])


# --- the mock's choices, and rules checked on scratch accounts made through /__admin ---------


def check_bad_margin_type_is_1130(ctx: Context, draw: Draw) -> None:
    view = draw_symbol(ctx, draw)
    value = draw(S.bad_margin_types(), "marginType")
    placement = draw(S.placements(), "placement")
    types, read = ctx.read_margin_types(view.pair)
    trip = ctx.change_margin_type(view.name, value, placement)
    ctx.expect_error(
        trip,
        400,
        -1130,
        f"marginType {value!r}",
        "Data sent for parameter 'marginType' is not valid.",
    )
    after, again = ctx.read_margin_types(view.pair)
    if after.get(view.name) != types.get(view.name):
        raise Violation(
            f"the refused change left {view.name} {after.get(view.name)}", [read, trip, again]
        )


def check_bad_position_mode_is_1130(ctx: Context, draw: Draw) -> None:
    value = draw(S.bad_position_modes(), "dualSidePosition")
    placement = draw(S.placements(), "placement")
    dual, read = ctx.read_mode()
    trip = ctx.wire.call("POST", POSITION_MODE_PATH, [("dualSidePosition", value)], placement)
    ctx.expect_error(
        trip,
        400,
        -1130,
        f"dualSidePosition {value!r}",
        "Data sent for parameter 'dualSidePosition' is not valid.",
    )
    after, again = ctx.read_mode()
    if after != dual:
        raise Violation(
            f"the refused change left the account in {_mode_name(after)} mode", [read, trip, again]
        )


def check_open_position_blocks_changes(ctx: Context, draw: Draw) -> None:
    symbol = draw(st.sampled_from(sorted(ctx.symbols)), "symbol")
    hedge = draw(st.booleans(), "hedge mode")
    side, amount = draw(
        st.sampled_from((("LONG", 1), ("SHORT", -1)) if hedge else (("BOTH", 1), ("BOTH", -1))),
        "side",
    )
    with ctx.scratch_account(dual_side_position=hedge) as (admin, wire):
        admin.positions.seed(symbol, amount, api_key=wire.api_key, position_side=side)
        margin = wire.call(
            "POST", MARGIN_TYPE_PATH, [("symbol", symbol), ("marginType", "ISOLATED")], "body"
        )
        ctx.expect_error(
            margin,
            400,
            -4048,
            f"{symbol} to ISOLATED with a {side} position open",
            MARGIN_TYPE_WITH_POSITION,
        )
        target = "false" if hedge else "true"
        mode = wire.call("POST", POSITION_MODE_PATH, [("dualSidePosition", target)], "body")
        ctx.expect_error(
            mode,
            400,
            -4068,
            f"dualSidePosition={target} with a {side} position open",
            POSITION_SIDE_WITH_POSITION,
        )
        read = wire.call("GET", POSITION_MODE_PATH)
        rows = wire.call("GET", "/dapi/v1/positionRisk")
        body, risk = (
            ctx.expect_ok(read, "GET positionSide/dual"),
            ctx.expect_ok(rows, "positionRisk"),
        )
        types = {r.get("marginType") for r in risk if r.get("symbol") == symbol}
        if body.get("dualSidePosition") is not hedge or types != {"cross"}:
            raise Violation(
                f"after -4048 and -4068 the account reads dualSidePosition "
                f"{body.get('dualSidePosition')} and {symbol} {sorted(map(str, types))}",
                [margin, mode, read, rows],
            )


def check_leverage_cap_is_enforced(ctx: Context, draw: Draw) -> None:
    view = ctx.symbols[draw(st.sampled_from(sorted(ctx.symbols)), "symbol")]
    rule, cap = draw(S.leverage_caps(), "cap")
    code, text = CAP_ERRORS[rule]
    with ctx.scratch_account(max_leverage=cap, max_leverage_rule=rule) as (_, wire):
        rows = wire.call("GET", "/dapi/v1/positionRisk", [("pair", view.pair)])
        start = min(20, view.max_leverage, cap)
        shown = {
            r.get("leverage")
            for r in ctx.expect_ok(rows, "positionRisk")
            if r.get("symbol") == view.name
        }
        if shown != {str(start)}:
            raise Violation(
                f"an account capped at {cap}x ({rule}) starts {view.name} at {sorted(shown)}x, "
                f"not {start}x",
                [rows],
            )
        top = min(cap, view.max_leverage)
        at_cap = wire.call(
            "POST", LEVERAGE_PATH, [("symbol", view.name), ("leverage", str(top))], "body"
        )
        ctx.expect_ok(at_cap, f"{view.name} at {top}x, within the cap of {cap}x")
        if cap < view.max_leverage:
            over = wire.call(
                "POST", LEVERAGE_PATH, [("symbol", view.name), ("leverage", str(cap + 1))], "body"
            )
            ctx.expect_error(
                over,
                400,
                code,
                f"{view.name} at {cap + 1}x over a {rule} cap of {cap}x",
                text.replace("%s", str(cap)),
            )
        # docs/behaviour.md#order-of-checks: the range (-4028) is checked before the cap.
        beyond = view.max_leverage + 1
        out = wire.call(
            "POST", LEVERAGE_PATH, [("symbol", view.name), ("leverage", str(beyond))], "body"
        )
        ctx.expect_error(
            out, 400, -4028, f"{view.name} at {beyond}x, above its maximum and the cap"
        )
