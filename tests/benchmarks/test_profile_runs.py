"""`benchmarks/profile_served.py` (`make profile`): its reading of py-spy's stacks, and one
short run against the served mock (with the script's Python load generator: no wrk needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import profile_served  # noqa: E402

LOOP = "<module> (dapi-mock:6);loop (waitress/wasyncore.py:240);poll (waitress/wasyncore.py:178)"
SERVICE = (
    f"{LOOP};ExchangeChannel.handle_read (mockserver/serving.py:189);"
    "ExchangeChannel.service (mockserver/serving.py:200);"
    "HTTPChannel.service (waitress/channel.py:430)"
)
FLASK = (
    f"{SERVICE};WSGITask.execute (waitress/task.py:520);Flask.__call__ (flask/app.py:1536);"
    "Flask.wsgi_app (flask/app.py:1511)"
)


@pytest.mark.parametrize(
    ("line", "layer"),
    [
        (
            f"{FLASK};answer (mockserver/routes/dapi.py:66);"
            "Exchange.handle (mockserver/exchange.py:146);parse (mockserver/params.py:99) 7",
            "exchange",
        ),
        (f"{FLASK};call_of (mockserver/routes/dapi.py:33) 3", "flask"),
        (
            f"{LOOP};HTTPChannel.received (waitress/channel.py:200);"
            "HTTPRequestParser.parse_header (waitress/parser.py:240) 5",
            "waitress: read",
        ),
        (f"{SERVICE};build_http_date (waitress/utilities.py:193) 2", "waitress: environ"),
        (f"{LOOP} 1", "waitress: event loop"),
        ("Thread._bootstrap (threading.py:1002);Condition.wait (threading.py:327) 9", "other"),
    ],
)
def test_a_sample_counts_for_the_innermost_layer_on_its_stack(line: str, layer: str) -> None:
    stack, count = profile_served.parse_line(line)
    assert count == int(line.rsplit(" ", 1)[1])
    assert profile_served.layer_of(stack).startswith(layer)


def test_frames_are_named_by_package_path() -> None:
    frame = "HTTPRequestParser.parse_header (/x/site-packages/waitress/parser.py:240)"
    assert profile_served.where(frame) == "HTTPRequestParser.parse_header (waitress/parser.py)"
    assert profile_served.where("iterencode (/usr/lib/python3.11/json/encoder.py:205)") == (
        "iterencode (encoder.py)"
    )


def test_profile_runs_against_the_served_mock() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "profile_served.py"),
            *("--seconds", "2", "--top", "5", "--load", "python"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    refusals = ("permission denied", "not permitted", "requires root")  # ptrace, macOS
    if "py-spy failed" in done.stderr and any(r in done.stderr.lower() for r in refusals):
        pytest.skip(f"py-spy may not attach to processes here: {done.stderr.strip()[-200:]}")
    assert done.returncode == 0, done.stdout + done.stderr
    by_layer = done.stdout.split("by layer", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    shares: dict[str, float] = {}
    for line in by_layer:
        share, name = line.split("%", 1)
        kind = name.strip().split(":")[0]
        shares[kind] = shares.get(kind, 0.0) + float(share)
    # Every layer a signed leverage change passes through was seen at work.
    assert shares["exchange"] > 0 and shares["flask"] > 0 and shares["waitress"] > 0, done.stdout
    assert sum(shares.values()) == pytest.approx(100, abs=0.5)
