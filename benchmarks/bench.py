"""`make bench`: the served mock against a trivial Flask route on the same server, one run.

Measures `dapi-mock serve` (its own process, default settings, `--quiet`):
signed POST /dapi/v1/leverage, GET /dapi/v1/ping, and the baseline app
(benchmarks/baseline_app.py, the same serving.create_server), at concurrency 1, 8 and
64 with wrk (or `--load python`, a slower built-in generator for machines
without wrk); then cold start, /__admin/reset latency and the pytest fixture's
costs. Prints a table, the ratios to the baseline and the targets.

A probe thread (cpu_speed.py) watches the machine's CPU speed, first alone for a few
seconds, then during every slice: on a VM the host can slow both vCPUs for tens of
milliseconds, and the report shows how much of each run that covered.

The clock is frozen so one signed body stays valid for the whole run, and
weight_per_minute is set far above what a run sends, so the limiter counts
every request but never refuses one; the script checks both.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from cpu_speed import SpeedProbe
from load import (
    Run,
    add_load_argument,
    chosen_load,
    combine,
    load_runner,
    percent,
    percentile,
    run_python,
)
from measurements import (
    cold_start,
    exchange_path_us,
    fixture_per_test,
    fixture_start,
    machine,
    reset_latency,
    workers_refused,
)
from served import (
    BASELINE,
    FROZEN_AT_MS,
    LEVERAGE_NAME,
    PING,
    Target,
    admin,
    call,
    served_mock,
    signed_leverage,
    started,
    write_config,
)

HERE = Path(__file__).resolve().parent
CONCURRENCY = (1, 8, 64)
QUICK_REQUESTS = 300
# Every request goes through Flask: its request context costs more than the exchange's own
# checks, and a client of a rate-limited exchange cannot notice either (docs/performance.md).
TARGET_RATIO = 0.55
# The p99 target is judged in slices where the CPU probe saw the machine slowed for under
# this share of the time: this VM's host slows both vCPUs in bursts of tens of ms.
STEADY_SLOWED_SHARE = 0.02
TARGET_P99_MS = 10.0
TARGET_COLD_START_S = 0.5
TARGET_RESET_MS = 1.0
IDLE_PROBE_S = {False: 5, True: 1}  # by --quick: the CPU probe's look at the machine alone


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from mockserver import config as config_module

    quick = args.quick
    load = chosen_load(args.load)
    rounds = 1 if quick else max(1, args.rounds)
    # Whole seconds: wrk takes no fractions.
    seconds = 1 if quick else max(1, round(args.duration / rounds))
    # --quick makes wrk's runs short and the Python generator's few.
    runner = load_runner(load, seconds, args.wrk_threads, QUICK_REQUESTS if quick else 0)
    results: dict[str, Any] = {
        "machine": machine(),
        "load": load,
        "quick": quick,
        "rounds": rounds,
        "slice_seconds": None if load == "python" and quick else seconds,
    }
    if load == "wrk":
        version = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
        name = (version.stdout or version.stderr).split(" [")[0] or "wrk"
        results["load"] = f"{name}, {args.wrk_threads} thread(s)"
    log(f"load generator: {results['load']}")

    # The CPU probe runs from here to the end of the served runs (not during the one-off
    # timings, which run in this process). First the machine alone, nothing of ours running.
    probe = SpeedProbe().start()
    time.sleep(IDLE_PROBE_S[quick])
    results["cpu_alone"] = {
        "seconds": IDLE_PROBE_S[quick],
        "slowed_share": probe.slowed_since(0),
        "longest_slowed_ms": probe.longest_slowed_ms(),
    }
    log(f"CPU alone: {cpu_alone_text(results['cpu_alone'])}")

    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(tmp)
        threads = ["--threads", str(args.threads)] if args.threads else []
        flags = ["--port", "0", "--config", str(config), *threads]
        settings = config_module.load(str(config), threads=args.threads)
        results["server"] = {"threads": settings.threads, "workers": settings.workers}

        leverage = signed_leverage(FROZEN_AT_MS)
        baseline_cmd = [sys.executable, str(HERE / "baseline_app.py"), *flags]
        with served_mock(config, threads) as served, started(baseline_cmd) as base:
            mock = served.url
            checks = results["checks"] = {}
            status, headers, body = call(mock, leverage)
            answer = json.loads(body)
            checks["sample leverage answers 200"] = (
                status == 200 and answer["leverage"] == 20 and answer["symbol"] == "BTCUSD_PERP"
            )
            weight_before = int(headers["X-MBX-USED-WEIGHT-1M"])
            scenarios = [(base, BASELINE), (served, PING), (served, leverage)]
            for server, target in scenarios:
                run_python(server.url, target, 4, 0, 200)  # warm-up: connections, caches

            runs: list[Run] = []
            counted = 0  # weighted requests the mock answered during the measured runs
            problems: list[dict[str, Any]] = []
            for connections in CONCURRENCY:
                slices: dict[str, list[Run]] = {t.name: [] for _, t in scenarios}
                # Interleaved slices, each round in a rotated order: load from elsewhere on
                # the machine then hits every scenario alike instead of skewing one.
                for round_ in range(rounds):
                    turn = round_ % len(scenarios)
                    for server, target in scenarios[turn:] + scenarios[:turn]:
                        if target is leverage:
                            admin(mock, "DELETE", "/requests")
                        cpu_before = server.cpu_seconds()
                        mark = probe.mark()
                        part = runner(server.url, target, connections)
                        part.cpu_slowed = probe.slowed_since(mark)
                        cpu_after = server.cpu_seconds()
                        if cpu_before is not None and cpu_after is not None:
                            part.server_cpu_s = cpu_after - cpu_before
                        slices[target.name].append(part)
                        if server is served:
                            counted += part.requests
                        if target is leverage:
                            problems += journal_problems(mock, leverage)
                for _, target in scenarios:
                    run = combine(slices[target.name])
                    runs.append(run)
                    log(
                        f"{run.scenario:<18} c={connections:<3} {run.rps:9.0f} req/s  "
                        f"p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms  "
                        f"CPU slowed {percent(run.cpu_slowed)}"
                    )
            probe.stop()
            status, headers, _ = call(mock, leverage)
            weight_after = int(headers["X-MBX-USED-WEIGHT-1M"])
            checks["every leverage answer 200 (load generator: no non-2xx)"] = (
                status == 200 and all(r.non_2xx == 0 for r in runs)
            )
            checks["no socket errors or timeouts"] = all(r.socket_errors == 0 for r in runs)
            checks["journal: every leverage entry status 200, code null"] = not problems
            results["journal_problems"] = problems[:5]
            # Frozen clock: every request fell in one minute, so the weight counted them all.
            checks["rate limiter counted every request"] = weight_after - weight_before >= counted
            results["weight_counted"] = weight_after - weight_before
            results["runs"] = [
                {**asdict(r), "cpu_us_per_request": r.cpu_us_per_request} for r in runs
            ]

            resets = reset_latency(mock, 50 if quick else 200)
        checks["serve --workers 2 refused (state is in one process)"] = workers_refused()
        cold = cold_start(str(config), 2 if quick else 5)

    starts = fixture_start(2 if quick else 5)
    per_test, bare = fixture_per_test(50 if quick else 200)
    results["cold_start_s"] = cold
    results["reset_ms"] = {"median": ms(statistics.median(resets)), "p99": ms_p99(resets)}
    results["fixture_start_s"] = starts
    results["fixture_per_test_ms"] = {
        "median": ms(statistics.median(per_test)),
        "p99": ms_p99(per_test),
    }
    results["handle_reset_ms"] = {"median": ms(statistics.median(bare)), "p99": ms_p99(bare)}
    results["exchange_path_us"] = exchange_path_us()
    results["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 2)
    results["ratios"] = ratios(runs)
    results["targets"] = targets(results, runs)
    return results


def journal_problems(url: str, leverage: Target) -> list[dict[str, Any]]:
    """Journaled leverage requests since the last clear that were not answered 200.

    Other paths are skipped: requests of the previous slice that were still queued in
    the server when its load generator stopped may be journaled after the clear.
    """
    entries = [e for e in admin(url, "GET", "/requests")["requests"] if e["path"] == leverage.path]
    if not entries:
        return [{"problem": "no leverage request journaled"}]
    return [e for e in entries if e["status"] != 200 or e["code"] is not None]


def cpu_alone_text(alone: dict[str, Any]) -> str:
    return (
        f"{alone['seconds']} s with no server running: under half speed in "
        f"{percent(alone['slowed_share'])} of the samples, longest stretch "
        f"{alone['longest_slowed_ms']:.0f} ms"
    )


def ms(seconds: float) -> float:
    return seconds * 1000


def ms_p99(ordered: Sequence[float]) -> float:
    return ms(percentile(ordered, 99))


def ratios(runs: list[Run]) -> dict[str, dict[str, float]]:
    """Per concurrency: req/s over the baseline's, and the same from the server's CPU time
    per request (baseline's / scenario's), which other load on the machine skews less."""
    by = {(r.scenario, r.connections): r for r in runs}
    found: dict[str, dict[str, float]] = {}
    for connections in CONCURRENCY:
        base = by[(BASELINE.name, connections)]
        row = found[str(connections)] = {}
        for name, label in ((LEVERAGE_NAME, "leverage"), (PING.name, "ping")):
            run = by[(name, connections)]
            row[f"{label}/baseline"] = run.rps / base.rps
            if run.cpu_us_per_request and base.cpu_us_per_request:
                row[f"{label}/baseline, CPU"] = base.cpu_us_per_request / run.cpu_us_per_request
    return found


def targets(results: dict[str, Any], runs: list[Run]) -> dict[str, dict[str, Any]]:
    worst_ratio = min(r["leverage/baseline"] for r in results["ratios"].values())
    mock_at_8 = [r for r in runs if r.connections == 8 and r.scenario != BASELINE.name]
    p99_at_8 = max(r.p99_ms for r in mock_at_8)
    # The baseline's own p99 shows how much of a miss is the machine, not the mock.
    base_p99_at_8 = next(
        r.p99_ms for r in runs if r.connections == 8 and r.scenario == BASELINE.name
    )
    # Slices in which the CPU probe saw the machine (almost) never slowed: the server's tail.
    steady = [
        p99
        for r in mock_at_8
        for p99, slowed in r.slices
        if slowed is not None and slowed < STEADY_SLOWED_SHARE
    ]
    total = sum(len(r.slices) for r in mock_at_8)
    steady_text = (
        f"{len(steady)} of {total} slices slowed under {STEADY_SLOWED_SHARE:.0%}; "
        f"the rows (median slices): max {p99_at_8:.2f} ms (flask baseline {base_p99_at_8:.2f} ms)"
    )
    cold = statistics.median(results["cold_start_s"])
    reset = results["reset_ms"]["median"]
    return {
        f"leverage >= {TARGET_RATIO}x baseline req/s, every concurrency": {
            "value": f"min {worst_ratio:.2f}x",
            "pass": worst_ratio >= TARGET_RATIO,
        },
        f"p99 at concurrency 8 < {TARGET_P99_MS:g} ms where the CPU was slowed under "
        f"{STEADY_SLOWED_SHARE:.0%} (leverage, ping)": {
            "value": (f"max {max(steady):.2f} ms; " if steady else "no such slice; ") + steady_text,
            "pass": bool(steady) and max(steady) < TARGET_P99_MS,
        },
        f"cold start < {TARGET_COLD_START_S} s": {
            "value": f"median {cold:.3f} s",
            "pass": cold < TARGET_COLD_START_S,
        },
        f"/__admin/reset < {TARGET_RESET_MS:g} ms": {
            "value": f"median {reset:.3f} ms",
            "pass": reset < TARGET_RESET_MS,
        },
        "state correct with every worker setting serve offers": {
            "value": "workers=1 only; all checks above",
            "pass": all(results["checks"].values()),
        },
    }


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def report(results: dict[str, Any], out: TextIO) -> None:
    m = results["machine"]
    server = results["server"]
    per_slice = (
        f"{QUICK_REQUESTS} requests"
        if results["slice_seconds"] is None
        else f"{results['slice_seconds']} s"
    )
    slicing = f"{results['rounds']} interleaved slice(s) of {per_slice}"
    print(
        f"dapi-mock benchmark, {m['date']}\n"
        f"machine: {m['cpus']} CPUs, {m['cpu_model']}, Linux {m['kernel']}, "
        f"Python {m['python']}, Flask {m['flask']}, waitress {m['waitress']}; "
        f"load average {m['load_average_at_start']} at start, {m['load_average_at_end']} at end\n"
        f"server: dapi-mock serve, 1 process, {server['threads']} threads, --quiet; "
        f"load: {results['load']}{' (--quick)' if results['quick'] else ''}, "
        "on the same machine\n"
        f"each row: {slicing}; req/s over all, p50/p99 the median slice's\n"
        f"CPU speed (benchmarks/cpu_speed.py): {cpu_alone_text(results['cpu_alone'])}; "
        "'CPU slowed' below is the share of a row's run at under half speed\n",
        file=out,
    )
    print(
        f"{'scenario':<20}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'requests':>10}{'non-2xx':>9}{'server CPU us/req':>19}{'CPU slowed':>12}",
        file=out,
    )
    for r in results["runs"]:
        cpu = r["cpu_us_per_request"]
        print(
            f"{r['scenario']:<20}{r['connections']:>5}{r['rps']:>10.0f}{r['p50_ms']:>9.2f}"
            f"{r['p99_ms']:>9.2f}{r['requests']:>10}{r['non_2xx']:>9}"
            f"{'-' if cpu is None else f'{cpu:.0f}':>19}{percent(r['cpu_slowed']):>12}",
            file=out,
        )
    print("\nconcurrency 8, each slice: p99 ms (CPU slowed)", file=out)
    for r in results["runs"]:
        if r["connections"] == 8:
            cells = ", ".join(f"{p99:.2f} ({percent(slowed)})" for p99, slowed in r["slices"])
            print(f"  {r['scenario']:<18}{cells}", file=out)
    print(
        f"\n{'ratio to the baseline':<36}" + "".join(f"{'c=' + c:>8}" for c in results["ratios"]),
        file=out,
    )
    names = dict.fromkeys(name for row in results["ratios"].values() for name in row)
    for name in names:
        cells = "".join(f"{row.get(name, math.nan):>8.2f}" for row in results["ratios"].values())
        label = f"{name} per request" if name.endswith("CPU") else f"{name}, req/s"
        print(f"{label:<36}{cells}", file=out)

    cold, starts = results["cold_start_s"], results["fixture_start_s"]
    reset, per_test, bare = (
        results[k] for k in ("reset_ms", "fixture_per_test_ms", "handle_reset_ms")
    )
    rows = (
        (
            f"cold start: spawn to first 200 on ping, median of {len(cold)}",
            f"{statistics.median(cold) * 1000:.1f} ms",
        ),
        (
            "/__admin/reset over keep-alive, median / p99",
            f"{reset['median']:.3f} / {reset['p99']:.3f} ms",
        ),
        (
            f"pytest fixture start-up (fresh process), median of {len(starts)}",
            f"{statistics.median(starts) * 1000:.1f} ms",
        ),
        (
            "pytest per-test: dapi_mock set-up + teardown, median / p99",
            f"{per_test['median']:.3f} / {per_test['p99']:.3f} ms",
        ),
        (
            "handle.reset() on a kept handle, median / p99",
            f"{bare['median']:.3f} / {bare['p99']:.3f} ms",
        ),
        (
            "signed leverage in-process (Exchange.handle + JSON, no HTTP)",
            f"{results['exchange_path_us']:.1f} us",
        ),
    )
    print(file=out)
    for label, value in rows:
        print(f"{label:<58}{value:>18}", file=out)
    print("\nchecks", file=out)
    for name, ok in results["checks"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}", file=out)
    print(f"        (weight counted {results['weight_counted']})", file=out)
    for entry in results["journal_problems"]:
        print(f"        journal: {json.dumps(entry)[:300]}", file=out)
    print("targets", file=out)
    for name, target in results["targets"].items():
        print(f"  {'PASS' if target['pass'] else 'FAIL'}  {name}: {target['value']}", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds per scenario and concurrency (10)"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved slices the duration is split in (5)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"short runs ({QUICK_REQUESTS} requests each with --load python), fewer repeats",
    )
    add_load_argument(parser)
    parser.add_argument("--threads", type=int, help="server threads (default: serve's)")
    parser.add_argument(
        "--wrk-threads",
        type=int,
        default=1,
        # The server does its work on one thread (the GIL); on a 2-core machine one wrk
        # thread leaves it the other core, where two would take turns with it on both.
        help="wrk threads (default 1: one core for the load, one for the server)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    results = benchmark(args)
    report(results, sys.stdout)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if not all(results["checks"].values()):
        return 1  # the numbers are not of the intended requests
    if args.strict and not all(t["pass"] for t in results["targets"].values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
