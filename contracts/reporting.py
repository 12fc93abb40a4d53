"""Verdicts and how both kit commands report them: progress lines, a summary table, JUnit XML, JSON.

`verify-server` gives one verdict per property, `fuzz-client` one per
scenario; both print a line per verdict as it lands and end with the same
table, so CI logs and the two report files read alike.
"""

from __future__ import annotations

import json
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

Outcome = Literal["pass", "fail", "skip", "error"]
OUTCOMES: tuple[Outcome, ...] = ("pass", "fail", "skip", "error")


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
    """Prints one line per verdict as it lands: `[ 3/12] PASS  name  (0.42s)  summary`."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.stream = stream

    def __call__(self, verdict: Verdict) -> None:
        self.done += 1
        if self.stream is None:
            return
        width = len(str(self.total))
        line = (
            f"[{self.done:>{width}}/{self.total}] {verdict.outcome.upper():<5} {verdict.name}"
            f"  ({verdict.seconds:.2f}s)  {_one_line(verdict.summary, 140)}"
        )
        print(line, file=self.stream, flush=True)


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
