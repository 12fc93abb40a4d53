"""`make profile`: where the served mock spends its time on a signed leverage change.

Starts `dapi-mock serve --quiet` as `make bench` does (clock frozen, weight limit
raised), drives it with wrk (or `--load python`) at concurrency 8 and samples it
meanwhile with py-spy. Prints how the server thread's busy samples split between
the layers of a request, and the functions with the most samples of their own.
Idle samples (waiting in select) are left out. py-spy pauses the server for each
sample (unpaused samples come out torn); at the default 100 a second that costs
the server little, and the req/s it prints shows how much.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from load import Run, add_load_argument, chosen_load, load_runner
from served import FROZEN_AT_MS, served_mock, signed_leverage, write_config

# A stack whose frames include one of these is in that layer; the first match in this
# order wins, so the exchange's work inside waitress's request handling counts as the
# exchange's. (name, frame pattern)
LAYERS = (
    ("exchange: Exchange.handle (rules, HMAC, limiter, journal)", r"^Exchange\.handle "),
    ("flask: routing, request context, view, response, request log", r"^Flask\.wsgi_app "),
    ("waitress: read and parse the request", r"^HTTPChannel\.received "),
    ("waitress: environ, status and headers, send", r"^(ExchangeChannel|HTTPChannel)\.service "),
    ("waitress: event loop, accept, flush", r"^poll "),
)
FRAME = re.compile(r"^(?P<function>\S+) \((?P<file>[^:]+):\d+\)$")


def profile(seconds: int, rate: int, load: str) -> tuple[list[tuple[list[str], int]], Run]:
    """Load on the mock while py-spy samples it for `seconds`: the server thread's stacks
    with their counts, and the load generator's run."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp, "stacks.txt")
        with served_mock(write_config(tmp)) as served:
            leverage = signed_leverage(FROZEN_AT_MS)
            runner = load_runner(load, seconds)
            runs: list[Run] = []
            driver = threading.Thread(target=lambda: runs.append(runner(served.url, leverage, 8)))
            driver.start()
            sampled = subprocess.run(
                [
                    *py_spy(),
                    "record",
                    "--pid",
                    str(served.pid),
                    "--rate",
                    str(rate),
                    "--duration",
                    str(seconds),
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                ],
                capture_output=True,
                text=True,
            )
            driver.join()
            if sampled.returncode != 0:
                raise SystemExit(f"py-spy failed:\n{sampled.stderr.strip()}")
            stacks = [parse_line(line) for line in raw.read_text().splitlines() if line]
            # Requests run on the main thread; the others are waitress's pool, idle without
            # a delay fault, but py-spy counts their waiting as samples too.
            main = [(s, n) for s, n in stacks if "_bootstrap (threading.py" not in s[0]]
            return main, runs[0]


def py_spy() -> list[str]:
    here = Path(sys.executable).parent / "py-spy"
    found = str(here) if here.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy not found: pip install py-spy")
    return [found]


def parse_line(line: str) -> tuple[list[str], int]:
    """py-spy's raw format: `frame;frame;...;leaf count`, outermost frame first."""
    stack, _, count = line.rpartition(" ")
    return stack.split(";"), int(count)


def layer_of(stack: list[str]) -> str:
    for name, pattern in LAYERS:
        if any(re.match(pattern, frame) for frame in stack):
            return name
    return "other"


def where(frame: str) -> str:
    match = FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for package in ("waitress", "mockserver", "flask", "werkzeug"):
        if f"{package}/" in path:
            path = path[path.rindex(f"{package}/") :]
            break
    else:
        path = Path(path).name
    return f"{match['function']} ({path})"


def report(stacks: list[tuple[list[str], int]], run: Run, top: int) -> None:
    total = sum(count for _, count in stacks)
    if not total:
        raise SystemExit("py-spy took no busy samples")
    by_layer: collections.Counter[str] = collections.Counter()
    by_leaf: collections.Counter[str] = collections.Counter()
    for stack, count in stacks:
        by_layer[layer_of(stack)] += count
        by_leaf[where(stack[-1])] += count
    print(
        f"signed leverage at concurrency 8: {run.rps:.0f} req/s while sampled\n"
        f"busy samples of the server thread: {total}\n"
    )
    print("by layer (a sample counts for the innermost layer on its stack)")
    for name, _ in (*LAYERS, ("other", "")):
        print(f"  {by_layer[name] / total:6.1%}  {name}")
    print(f"\nfunctions with the most samples of their own (top {top})")
    for name, count in by_leaf.most_common(top):
        print(f"  {count / total:6.1%}  {name}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="seconds sampled (10)")
    parser.add_argument("--rate", type=int, default=100, help="samples a second (100)")
    parser.add_argument("--top", type=int, default=15, help="functions listed (15)")
    add_load_argument(parser)
    args = parser.parse_args(argv)
    stacks, run = profile(args.seconds, args.rate, chosen_load(args.load))
    report(stacks, run, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
