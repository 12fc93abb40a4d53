"""`benchmarks/bench.py` runs end to end: a few hundred requests per scenario, no timing asserted.

Uses the script's built-in Python load generator, so it needs no wrk (and no apt)
and never skips.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench.py"


def test_bench_quick_runs_and_reports_every_scenario(tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--load", "python", "--json", str(report)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(report.read_text())

    scenarios = {(r["scenario"], r["connections"]) for r in results["runs"]}
    assert scenarios == {
        (name, c) for name in ("flask baseline", "ping", "leverage (signed)") for c in (1, 8, 64)
    }
    for run in results["runs"]:
        assert run["requests"] >= 300, run
        assert run["non_2xx"] == 0, run
    # Every correctness check held: all 200s, journaled, counted by the limiter, workers>1 refused.
    assert results["checks"] and all(results["checks"].values()), results["checks"]
    assert set(results["ratios"]) == {"1", "8", "64"}
    assert len(results["targets"]) == 5
    assert results["exchange_path_us"] > 0
    # The CPU probe looked at the machine alone and during every slice.
    assert 0 <= results["cpu_alone"]["slowed_share"] <= 1
    for run in results["runs"]:
        assert 0 <= run["cpu_slowed"] <= 1, run
        assert [p99 for p99, _ in run["slices"]] == [run["p99_ms"]], run  # --quick: one slice

    # The printed report has the table, the ratios and the targets.
    headings = (
        "scenario",
        "CPU slowed",
        "each slice",
        "leverage/baseline",
        "cold start",
        "/__admin/reset",
        "in-process",
    )
    for heading in (*headings, "targets"):
        assert heading in done.stdout
