"""Verdicts and how both kit commands report them: progress lines, a summary table, JUnit XML, JSON.

`verify-server` gives one verdict per property, `fuzz-client` one per
scenario; both show what runs while it runs, print a line per verdict as it
lands and end with the same table, so CI logs and the two report files read
alike.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

Outcome = Literal["pass", "fail", "skip", "error"]
OUTCOMES: tuple[Outcome, ...] = ("pass", "fail", "skip", "error")
#: Off a terminal, the longest the progress output stays quiet while something runs.
HEARTBEAT_S = 5.0


@dataclass
class Verdict:
    """How one property (or one scenario) came out, with the evidence behind it."""

    name: str
    outcome: Outcome
    summary: str
    details: list[str] = field(default_factory=list)
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def held(self) -> bool:
        return self.outcome in ("pass", "skip")


@dataclass
class Report:
    """All verdicts of one run of a kit command."""

    command: str  # "verify-server" or "fuzz-client"
    target: str  # base URL or client description
    seed: int
    settings: dict[str, Any] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(v.held for v in self.verdicts)

    def counts(self) -> dict[str, int]:
        return {o: sum(v.outcome == o for v in self.verdicts) for o in OUTCOMES}

    def failed(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.held]

    def summary_table(self) -> str:
        """The closing table: one row per verdict, then the totals."""
        rows = [(v.name, v.outcome.upper(), f"{v.seconds:.2f}s", v.summary) for v in self.verdicts]
        headers = ("name", "verdict", "time", "summary")
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers[:3])]
        lines = [
            "  ".join(h.ljust(w) for h, w in zip(headers[:3], widths, strict=True)) + "  summary",
            "  ".join("-" * w for w in widths) + "  " + "-" * 7,
        ]
        for row in rows:
            cells = "  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True))
            lines.append(f"{cells}  {_one_line(row[3], 100)}")
        counts = self.counts()
        totals = (
            f"{counts['pass']} passed, {counts['fail']} failed, "
            f"{counts['skip']} skipped, {counts['error']} errors"
        )
        verdict = "ALL HOLD" if self.ok else "FAILED"
        lines.append(
            f"{self.command}: {verdict} ({totals}) in {self.seconds:.1f}s, seed {self.seed}"
        )
        return "\n".join(lines)

    def skip_reasons(self) -> str:
        """Why each skipped check did not run, whole (the table cuts long summaries)."""
        skipped = [v for v in self.verdicts if v.outcome == "skip"]
        return "\n".join(f"SKIP {v.name}: {v.summary}" for v in skipped)

    def failure_details(self) -> str:
        """The evidence of every failed verdict, for reading after the table."""
        blocks = []
        for v in self.failed():
            body = "\n".join(f"    {line}" for line in v.details) or "    (no details)"
            blocks.append(f"{v.outcome.upper()} {v.name}: {v.summary}\n{body}")
        return "\n\n".join(blocks)

    def as_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "target": self.target,
            "seed": self.seed,
            "settings": self.settings,
            "ok": self.ok,
            "counts": self.counts(),
            "seconds": round(self.seconds, 3),
            "verdicts": [asdict(v) | {"seconds": round(v.seconds, 3)} for v in self.verdicts],
        }

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.as_json(), indent=2, default=str) + "\n")

    def write_junit(self, path: str | Path) -> None:
        """JUnit XML: one testsuite for the run, one testcase per verdict."""
        counts = self.counts()
        suites = ET.Element("testsuites")
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"dapi-contract {self.command}",
            tests=str(len(self.verdicts)),
            failures=str(counts["fail"]),
            errors=str(counts["error"]),
            skipped=str(counts["skip"]),
            time=f"{self.seconds:.3f}",
        )
        props = ET.SubElement(suite, "properties")
        for key, value in [("target", self.target), ("seed", self.seed), *self.settings.items()]:
            ET.SubElement(props, "property", name=str(key), value=str(value))
        for v in self.verdicts:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"dapi-contract.{self.command}",
                name=v.name,
                time=f"{v.seconds:.3f}",
            )
            text = "\n".join([v.summary, *v.details])
            if v.outcome == "fail":
                ET.SubElement(case, "failure", message=_one_line(v.summary, 300)).text = text
            elif v.outcome == "error":
                ET.SubElement(case, "error", message=_one_line(v.summary, 300)).text = text
            elif v.outcome == "skip":
                ET.SubElement(case, "skipped", message=_one_line(v.summary, 300))
            else:
                ET.SubElement(case, "system-out").text = text
        ET.indent(suites)
        ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


class Progress:
    """What the user sees while a kit command runs: never more than a few seconds of silence.

    On a terminal, a live line (rich) says what runs now and for how long, and
    one line per verdict lands above it. Elsewhere (CI logs, pipes), a line when
    each property or scenario starts and one when it ends, a line when the run
    waits (pacing under a weight limit, a Retry-After), and a line every
    `heartbeat_s` seconds while one item runs on, so a log never goes quiet.
    Verdict lines read `[ 3/12] PASS  name  (0.42s)  summary`; the others are
    indented under them.
    """

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        *,
        live: bool | None = None,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.heartbeat_s = heartbeat_s
        self.width = len(str(total))
        self.indent = " " * (2 * self.width + 4)
        self._lock = threading.Lock()
        self._current = ""
        self._note = ""
        self._started = time.monotonic()
        self._last_line = time.monotonic()
        self._stop = threading.Event()
        self._live: Any = None
        self._task: Any = None
        self._ticker: threading.Thread | None = None
        if stream is None:
            return
        if live is None:
            live = bool(getattr(stream, "isatty", lambda: False)())
        if live:
            self._start_live(stream)
        else:
            self._ticker = threading.Thread(target=self._tick, name="kit-progress", daemon=True)
            self._ticker.start()

    def _start_live(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import Progress as LiveLine
        from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

        self._live = LiveLine(
            SpinnerColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}", markup=False),
            console=Console(file=stream, highlight=False),
            transient=True,
            refresh_per_second=4,
        )
        self._task = self._live.add_task("starting", total=None)
        self._live.start()

    # what the commands call

    def line(self, text: str) -> None:
        """A line of its own (the run's header, a notice)."""
        self._print(text)

    def start(self, name: str, what: str = "") -> None:
        """`name` starts now; `what` says in a few words what it checks or does."""
        with self._lock:
            self._current, self._note = name, ""
            self._started = time.monotonic()
        label = f"[{self.done + 1:>{self.width}}/{self.total}] {name}"
        if self._live is not None:
            self._live.reset(self._task, description=f"{label}  {what}".rstrip())
        else:
            self._print(f"{self.indent}start {name}" + (f": {what}" if what else ""))

    def note(self, text: str) -> None:
        """What the running item is doing now that takes time (a wait, a held answer)."""
        with self._lock:
            self._note = text
        if self._live is not None:
            label = f"[{self.done + 1:>{self.width}}/{self.total}] {self._current}"
            self._live.update(self._task, description=f"{label}  {text}")
        self._print(f"{self.indent}{text}")

    def __call__(self, verdict: Verdict) -> None:
        self.done += 1
        with self._lock:
            self._current, self._note = "", ""
        self._print(
            f"[{self.done:>{self.width}}/{self.total}] {verdict.outcome.upper():<5} {verdict.name}"
            f"  ({verdict.seconds:.2f}s)  {_one_line(verdict.summary, 140)}"
        )

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._live is not None:
            self._live.stop()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # output

    def _print(self, text: str) -> None:
        if self.stream is None:
            return
        with self._lock:
            self._last_line = time.monotonic()
            if self._live is not None:
                self._live.console.print(text, markup=False, highlight=False, soft_wrap=True)
            else:
                print(text, file=self.stream, flush=True)

    def _tick(self) -> None:
        """Not on a terminal: a line while one item runs long, so the log shows it is alive."""
        while not self._stop.wait(0.5):
            with self._lock:
                quiet = time.monotonic() - self._last_line >= self.heartbeat_s
                current, note = self._current, self._note
                running = time.monotonic() - self._started
            if current and quiet:
                doing = f", {note}" if note else ""
                self._print(f"{self.indent}... {current} still running ({running:.0f}s{doing})")


def finish(
    report: Report,
    stream: TextIO | None = sys.stdout,
    junit_xml: str | Path | None = None,
    json_path: str | Path | None = None,
) -> int:
    """Print the table (and failure evidence), write the requested files; the exit status."""
    if stream is not None:
        print("", file=stream)
        print(report.summary_table(), file=stream)
        skips = report.skip_reasons()
        if skips:
            print("", file=stream)
            print(skips, file=stream)
        details = report.failure_details()
        if details:
            print("", file=stream)
            print(details, file=stream)
        stream.flush()
    if junit_xml:
        report.write_junit(junit_xml)
    if json_path:
        report.write_json(json_path)
    return 0 if report.ok else 1


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
