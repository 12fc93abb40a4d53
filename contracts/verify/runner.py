"""`verify-server`: read the server's market, then check each property on drawn examples.

Each property runs under hypothesis with the run's seed, so a run is repeated
by its seed; what the run changed is put back at the end.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, TextIO

import requests
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from contracts.reporting import Progress, Report, Verdict
from contracts.signing import HmacAuth, SigningAuth, auth_from_private_key
from contracts.verify.context import (
    Context,
    NotApplicable,
    Property,
    PublishedBracket,
    SymbolView,
    Violation,
)
from contracts.verify.properties import (
    DISCOVERY,
    DISCOVERY_RULE,
    DISCOVERY_STATEMENT,
    PROPERTIES,
    PROPERTY_NAMES,
)
from contracts.verify.wire import (
    LEVERAGE_PATH,
    LIVE_WEIGHT_PER_MINUTE,
    Roundtrip,
    Wire,
    WireAbort,
)

#: Requests one example of a property makes at most (the pacing reserves room for them).
EXAMPLE_REQUESTS = 6


def discover(ctx: Context) -> list[Roundtrip]:
    """Read what the server publishes: weight limit, symbols, brackets, positions, leverage."""
    wire = ctx.wire
    trips = [wire.sync_time()]
    ctx.expect_ok(trips[-1], "GET /dapi/v1/time")
    trips.append(wire.send("GET", "/dapi/v1/exchangeInfo"))
    info = ctx.expect_ok(trips[-1], "GET /dapi/v1/exchangeInfo")
    for limit in info.get("rateLimits", []):
        if limit.get("rateLimitType") == "REQUEST_WEIGHT" and limit.get("interval") == "MINUTE":
            wire.weight_limit = int(limit.get("limit") or LIVE_WEIGHT_PER_MINUTE)
    trading = {
        row["symbol"]: row.get("pair", "")
        for row in info.get("symbols", [])
        if row.get("contractStatus") == "TRADING"
    }
    trips.append(wire.call("GET", "/dapi/v2/leverageBracket"))
    tables = ctx.expect_ok(trips[-1], "GET /dapi/v2/leverageBracket")
    for row in tables:
        name = row.get("symbol")
        if name not in trading:
            continue
        brackets = tuple(
            PublishedBracket(
                int(b["bracket"]), int(b["initialLeverage"]), Decimal(str(b["qtyCap"]))
            )
            for b in row.get("brackets", [])
        )
        if brackets:
            ctx.symbols[name] = SymbolView(name, trading[name], brackets)
    rows, trip = ctx.position_list()
    trips.append(trip)
    for row in rows:
        view = ctx.symbols.get(str(row.get("symbol")))
        if view is None:
            continue
        # Hedge mode shows a row per side: a symbol is held when any side is open.
        amount = Decimal(str(row.get("positionAmt", "0")))
        if amount != 0:
            view.position_amt = amount
        if str(row.get("leverage", "")).isdigit():
            ctx.leverage[view.name] = ctx.original[view.name] = int(row["leverage"])
    if not ctx.symbols:
        raise Violation("the server lists no TRADING symbol with brackets", trips)
    return trips


def _run_examples(prop: Property, ctx: Context, examples: int, seed: int) -> None:
    failures: list[Violation] = []

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
        print_blob=False,
    )
    @given(st.data())
    def one_example(data: st.DataObject) -> None:
        ctx.draws = []
        ctx.wire.pace(reserve=EXAMPLE_REQUESTS)  # never wait between building and sending

        def draw(strategy: st.SearchStrategy[Any], label: str) -> Any:
            value = data.draw(strategy, label=label)
            ctx.draws.append(f"{label}={value!r}")
            return value

        try:
            prop.check(ctx, draw)
        except Violation as exc:
            exc.message += f"  [example: {', '.join(ctx.draws)}]"
            failures.append(exc)
            raise

    try:
        hypothesis_seed(seed)(one_example)()
    except BaseException:
        if failures:
            raise failures[-1] from None
        raise


def run_property(prop: Property, ctx: Context, examples: int, seed: int) -> Verdict:
    started = time.perf_counter()
    first_trip = len(ctx.wire.trips)
    ctx.touched = set()

    def verdict(outcome: Any, summary: str, details: Sequence[str] = ()) -> Verdict:
        used = ctx.wire.trips[first_trip:]
        return Verdict(
            prop.name,
            outcome,
            summary,
            list(details),
            time.perf_counter() - started,
            {"statement": prop.statement, "requests": len(used), "mock_rules": prop.mock_rules},
        )

    if prop.mock_rules and not ctx.mock_rules:
        return verdict(
            "skip",
            f"{prop.reason}. Binance does not document this; it is the mock's choice, "
            "checked only with --mock-rules",
        )
    if prop.changes_settings and not ctx.change_settings:
        return verdict(
            "skip",
            f"{prop.reason}. Not checked: it changes the account's position mode or margin "
            "type (and puts it back); run with --change-account-settings to check it",
        )
    if prop.needs_symbols and not ctx.free:
        return verdict(
            "skip",
            f"{prop.reason}. Not checked: every listed symbol has an open position, and "
            "changing its leverage would change that position",
        )
    try:
        if prop.before is not None:
            prop.before(ctx)
        if prop.once:
            prop.check(ctx, lambda strategy, label: _example_of(strategy, seed))
        else:
            _run_examples(prop, ctx, examples, seed)
        if prop.after is not None:
            prop.after(ctx)
    except Violation as exc:
        lines = [line for trip in exc.trips for line in trip.line().splitlines()]
        return verdict("fail", f"{exc.message} ({prop.reason})", lines)
    except NotApplicable as exc:
        return verdict("skip", f"{prop.reason}. Not checked: {exc}")
    except WireAbort as exc:
        return verdict("error", str(exc))
    except Exception as exc:
        return verdict("error", f"{type(exc).__name__}: {exc}")
    used = len(ctx.wire.trips) - first_trip
    return verdict("pass", f"{prop.statement} [{used} requests]")


def _example_of(strategy: st.SearchStrategy[Any], seed: int) -> Any:
    """One value of `strategy` for a property checked once (deterministic per seed)."""
    found: list[Any] = []

    @settings(max_examples=1, database=None, phases=(Phase.generate,), verbosity=Verbosity.quiet)
    @given(strategy)
    def take(value: Any) -> None:
        found.append(value)

    hypothesis_seed(seed)(take)()
    return found[0]


class ServerUnreachable(ConnectionError):
    """Nothing answers at the base URL: one clear error instead of a list of failed properties."""


def choose_properties(properties: Sequence[str] | None) -> list[Property]:
    """The properties to run, in catalogue order; the discovery name is accepted and implied."""
    if properties is None:
        return list(PROPERTIES)
    names = set(properties) - {DISCOVERY}
    if not properties:
        raise ValueError("--only needs at least one property name")
    unknown = names - set(PROPERTY_NAMES)
    if unknown:
        raise ValueError(
            f"unknown properties: {', '.join(sorted(unknown))} "
            f"(known: {', '.join((DISCOVERY, *PROPERTY_NAMES))})"
        )
    return [p for p in PROPERTIES if p.name in names]


def verify_server(
    base_url: str,
    api_key: str,
    *,
    secret: str | None = None,
    private_key: str | bytes | None = None,
    examples: int = 5,
    seed: int | None = None,
    mock_rules: bool = False,
    change_account_settings: bool = False,
    admin_token: str = "",
    timeout: float = 10.0,
    properties: Sequence[str] | None = None,
    pacing: bool = True,
    progress: TextIO | None = sys.stdout,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Check every property against the server at `base_url`; the report says which held.

    Raises ValueError on bad arguments and ServerUnreachable when nothing
    answers at `base_url`. `change_account_settings` lets the properties that change the
    account's position mode or a margin type run (each puts back what it changed, and the
    run puts back anything left over). `pacing=False` never waits for the next weight
    window: only for a server without a weight limit (a mock run with
    weight_per_minute = 0), since the limit the server publishes is Binance's.
    """
    if (secret is None) == (private_key is None):
        raise ValueError("give exactly one of secret and private_key")
    if examples < 1:
        raise ValueError(f"examples must be 1 or more, not {examples}")
    if not timeout > 0:
        raise ValueError(f"the timeout must be above 0 s, not {timeout}")
    signer: SigningAuth = (
        HmacAuth(api_key, secret)
        if secret is not None
        else auth_from_private_key(api_key, private_key or b"")
    )
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    chosen = choose_properties(properties)
    report = Report(
        "verify-server",
        base_url,
        seed,
        {
            "examples": examples,
            "mock_rules": mock_rules,
            "change_account_settings": change_account_settings,
            "key_type": type(signer).__name__,
        },
    )
    show = Progress(len(chosen) + 1, progress)
    wire = Wire(
        base_url, api_key, signer, timeout=timeout, pacing=pacing, sleep=sleep, on_wait=show.note
    )
    ctx = Context(wire, mock_rules, admin_token, change_settings=change_account_settings)
    started = time.perf_counter()
    try:
        why = wire.unreachable()
        if why is not None:
            raise ServerUnreachable(f"cannot reach {base_url} ({why}): is the server running?")
        show.line(
            f"verify-server {base_url}: {len(chosen) + 1} properties ({DISCOVERY} first), "
            f"{examples} examples each, seed {seed}{', mock rules' if mock_rules else ''}"
            f"{', changing account settings' if change_account_settings else ''}"
        )
        show.start(DISCOVERY, DISCOVERY_STATEMENT)
        discovery = _discovery_verdict(ctx)
        report.verdicts.append(discovery)
        show(discovery)
        for prop in chosen:
            show.start(prop.name, prop.statement)
            if discovery.outcome == "pass":
                verdict = run_property(prop, ctx, examples, seed)
            else:
                verdict = Verdict(
                    prop.name,
                    "skip",
                    f"{prop.reason}. Not checked: the server's market could not be read "
                    f"(see {DISCOVERY})",
                )
            report.verdicts.append(verdict)
            show(verdict)
        report.settings["restored"] = _restore(ctx)
        report.settings["requests"] = len(wire.trips)
    finally:
        show.close()
        wire.close()
        report.seconds = time.perf_counter() - started
    return report


def _discovery_verdict(ctx: Context) -> Verdict:
    started = time.perf_counter()
    try:
        trips = discover(ctx)
    except Violation as exc:
        lines = [line for trip in exc.trips for line in trip.line().splitlines()]
        summary = f"{exc.message} (rule {DISCOVERY_RULE}: {DISCOVERY_STATEMENT})"
        return Verdict(DISCOVERY, "fail", summary, lines, time.perf_counter() - started)
    except (WireAbort, requests.RequestException, KeyError, TypeError, ValueError) as exc:
        return Verdict(DISCOVERY, "error", f"{type(exc).__name__}: {exc}", [], 0.0)
    return Verdict(
        DISCOVERY,
        "pass",
        f"{DISCOVERY_STATEMENT}; {len(ctx.symbols)} symbols, {len(ctx.free)} without a position",
        seconds=time.perf_counter() - started,
        data={"requests": len(trips), "symbols": sorted(ctx.symbols)},
    )


def _restore(ctx: Context) -> list[str]:
    """Put back each leverage, margin type and the position mode as the run found them
    (best effort: a property that changes one puts it back itself, this catches the rest)."""
    restored: list[str] = []
    for symbol, margin_type in sorted(ctx.original_margin.items()):
        if ctx.margin.get(symbol) == margin_type:
            continue
        try:
            trip = ctx.change_margin_type(symbol, margin_type)
        except WireAbort:
            return restored
        if trip.status == 200:
            restored.append(f"{symbol} marginType={margin_type}")
    if ctx.original_mode is not None and ctx.mode != ctx.original_mode:
        try:
            trip = ctx.change_mode(ctx.original_mode)
        except WireAbort:
            return restored
        if trip.status == 200:
            restored.append(f"dualSidePosition={'true' if ctx.original_mode else 'false'}")
    for symbol, original in sorted(ctx.original.items()):
        if ctx.leverage.get(symbol) == original:
            continue
        try:
            trip = ctx.wire.call(
                "POST", LEVERAGE_PATH, [("symbol", symbol), ("leverage", str(original))], "body"
            )
        except WireAbort:
            break
        if trip.status == 200:
            ctx.leverage[symbol] = original
            restored.append(f"{symbol}={original}")
    return restored
