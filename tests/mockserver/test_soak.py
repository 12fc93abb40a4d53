"""benchmarks/soak.py works: a 5 s run starts a server, loads it, samples RSS, gives a verdict.

Whether memory is flat is the 60 s `make soak`'s question (numbers in docs/performance.md);
this only proves the tool runs end to end, so it asserts no timing or verdict.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc for RSS")
def test_a_short_soak_runs_and_prints_a_verdict() -> None:
    done = subprocess.run(
        [sys.executable, str(SOAK), "--seconds", "5", "--threads", "4"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = done.stdout
    assert done.returncode in (0, 1), (done.returncode, out, done.stderr)  # 2 = the run failed
    assert "t (s)  RSS (MiB)" in out
    samples = re.findall(r"^\s+\d+\.\d\s+(\d+\.\d)\s+\d+", out, re.MULTILINE)
    assert len(samples) >= 5, out
    assert all(float(rss) > 0 for rss in samples)
    assert re.search(r"requests: [1-9]\d* ", out), out
    assert "transport errors (dropped on purpose excluded): 0" in out
    assert re.search(r"^verdict: (FLAT|GROWING) ", out, re.MULTILINE), out
