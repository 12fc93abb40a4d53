"""What a kit command shows while it runs: never a long silence, on a terminal or in a log."""

from __future__ import annotations

import io
import time

from contracts.reporting import Progress, Verdict


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_each_item_has_a_start_and_an_end_line() -> None:
    out = io.StringIO()
    with Progress(2, out) as show:
        show.line("header")
        show.start("first", "what it checks")
        show(Verdict("first", "pass", "held"))
        show.start("second")
        show.note("pacing: waiting 3 s")
        show(Verdict("second", "fail", "broke"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "header"
    assert lines[1].split() == ["start", "first:", "what", "it", "checks"]
    assert lines[2].startswith("[1/2] PASS  first  (")
    assert lines[3].split() == ["start", "second"]
    assert lines[4].strip() == "pacing: waiting 3 s"
    assert lines[5].startswith("[2/2] FAIL  second  (")


def test_off_a_terminal_a_long_item_shows_it_is_alive() -> None:
    out = io.StringIO()
    with Progress(1, out, heartbeat_s=0.2) as show:
        show.start("slow-one")
        show.note("the mock holds the answer")
        time.sleep(1.5)
        show(Verdict("slow-one", "pass", "held"))
    alive = [line for line in out.getvalue().splitlines() if "still running" in line]
    assert alive, out.getvalue()
    assert "slow-one still running (" in alive[0] and "the mock holds the answer" in alive[0]
    # Nothing more once the item has ended.
    assert "still running" not in out.getvalue().splitlines()[-1]


def test_on_a_terminal_verdict_lines_land_above_a_live_line() -> None:
    out = Terminal()
    with Progress(1, out) as show:
        assert show._live is not None  # rich's live display, not the plain lines
        show.start("first", "what it checks")
        time.sleep(0.6)  # the live line refreshes on its own (4 times a second)
        show(Verdict("first", "pass", "held"))
    text = out.getvalue()
    assert "[1/1] PASS  first  (" in text
    assert "first" in text and "what it checks" in text  # the live line was drawn


def test_no_stream_prints_nothing() -> None:
    with Progress(1, None) as show:
        show.start("quiet")
        show(Verdict("quiet", "pass", "held"))
    assert show.done == 1


def test_the_closing_report_gives_each_skip_its_whole_reason() -> None:
    from contracts.reporting import Report, finish

    reason = "rule margin-type: " + "a change is read back and put back; " * 5 + "needs a flag"
    report = Report("verify-server", "http://127.0.0.1:1", 7)
    report.verdicts = [Verdict("held", "pass", "fine"), Verdict("gated", "skip", reason)]
    out = io.StringIO()
    assert finish(report, out) == 0
    assert f"SKIP gated: {reason}" in out.getvalue().splitlines()
