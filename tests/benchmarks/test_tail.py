"""`benchmarks/tail.py` (`make tail`): its response reader, which requests it counts as out
while the CPU was slowed, and one short run against the served mock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from cpu_speed import EVERY_S, Sample  # noqa: E402
from tail import Request, answers, slowed_during  # noqa: E402

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
LIMITED = b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 5\r\n\r\n{...}"


def test_answers_takes_complete_responses_and_keeps_the_rest() -> None:
    buffer = bytearray(OK + LIMITED + OK[:-1])
    assert answers(buffer) == [200, 429]
    assert buffer == OK[:-1]  # the body is one byte short: not an answer yet
    buffer += b"}"
    assert answers(buffer) == [200]
    assert buffer == b""


def test_a_request_counts_as_slowed_when_a_slowed_sample_falls_while_it_is_out() -> None:
    full, slow = 100_000, 900_000  # CPU ns per sample: full speed, a ninth of it
    samples = [Sample(0.0, full), Sample(1.0, slow), Sample(2.0, full)]
    requests = [
        Request(0.90, 1.10, 200),  # the slowed sample at 1.0 falls inside
        Request(1.0 + EVERY_S / 2, 1.2, 200),  # left just after it: the slowing had begun
        Request(1.5, 1.9, 200),  # nothing slowed while out
        Request(0.1, 0.5, 200),
    ]
    assert slowed_during(requests, samples) == [True, True, False, False]


def test_tail_runs_against_the_served_mock() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "tail.py"), "--seconds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "non-200: 0" in done.stdout
    for line in ("all requests:", "out while the CPU ran full speed:", "over 10 ms:"):
        assert line in done.stdout
