"""The load generators (wrk, or a built-in Python one) and the runs they measure."""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import math
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from served import Target, connect, send


@dataclass
class Run:
    scenario: str
    connections: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    server_cpu_s: float | None = None  # CPU time the server process spent, when known
    # Share of the run the machine's CPU ran at under half speed (cpu_speed.py), when probed.
    cpu_slowed: float | None = None
    # A combined run's slices: each one's p99 and CPU-slowed share.
    slices: list[tuple[float, float | None]] = field(default_factory=list)

    @property
    def cpu_us_per_request(self) -> float | None:
        if self.server_cpu_s is None or not self.requests:
            return None
        return self.server_cpu_s / self.requests * 1e6


LUA = """
wrk.method = {method}
wrk.body = {body}
{headers}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT %d %d %.0f %.0f %d %d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def run_wrk(url: str, target: Target, connections: int, duration: float, wrk_threads: int) -> Run:
    threads = min(connections, wrk_threads)
    headers = "\n".join(
        f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in target.headers.items()
    )
    script = LUA.format(
        method=json.dumps(target.method),
        body=json.dumps(target.body.decode("ascii")),
        headers=headers,
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s"]
        out = subprocess.run(
            [*command, "-s", lua.name, url + target.path],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH_RESULT "))
    requests, micros, p50, p99, non_2xx, socket_errors = (int(float(v)) for v in line.split()[1:])
    seconds = micros / 1e6
    return Run(
        target.name,
        connections,
        requests,
        seconds,
        requests / seconds,
        p50 / 1000,
        p99 / 1000,
        non_2xx,
        socket_errors,
    )


def run_python(url: str, target: Target, connections: int, duration: float, limit: int = 0) -> Run:
    """A keep-alive client per connection in a thread; slower than wrk, needs nothing extra.

    Runs for `duration` seconds, or for `limit` requests when given.
    """
    latencies: list[float] = []
    counts = {"non_2xx": 0, "errors": 0}
    lock = threading.Lock()
    barrier = threading.Barrier(connections + 1)
    share = math.ceil(limit / connections) if limit else 0

    def client() -> None:
        mine: list[float] = []
        non_2xx = errors = 0
        conn = connect(url)
        barrier.wait()
        deadline = time.perf_counter() + duration
        while (len(mine) < share) if share else (time.perf_counter() < deadline):
            began = time.perf_counter()
            try:
                status, _, _ = send(conn, target)
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = connect(url)
                continue
            mine.append(time.perf_counter() - began)
            non_2xx += not 200 <= status < 400
        conn.close()
        with lock:
            latencies.extend(mine)
            counts["non_2xx"] += non_2xx
            counts["errors"] += errors

    workers = [threading.Thread(target=client) for _ in range(connections)]
    for worker in workers:
        worker.start()
    barrier.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - began
    latencies.sort()
    return Run(
        target.name,
        connections,
        len(latencies),
        seconds,
        len(latencies) / seconds,
        percentile(latencies, 50) * 1000,
        percentile(latencies, 99) * 1000,
        counts["non_2xx"],
        counts["errors"],
    )


def add_load_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--load",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator; auto = wrk when installed",
    )


def chosen_load(load: str) -> str:
    """`--load` resolved: "auto" is wrk when installed, else the Python generator."""
    if load == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    return load


def load_runner(
    load: str, seconds: int, wrk_threads: int = 1, limit: int = 0
) -> Callable[[str, Target, int], Run]:
    """`runner(url, target, connections)` for a resolved load generator."""
    if load == "wrk":  # wrk runs by time only
        return functools.partial(run_wrk, duration=seconds, wrk_threads=wrk_threads)
    return functools.partial(run_python, duration=seconds, limit=limit)


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest rank on sorted data."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def combine(parts: list[Run]) -> Run:
    """One scenario's slices as one run: totals for req/s, the median slice's percentiles."""
    requests = sum(p.requests for p in parts)
    seconds = sum(p.seconds for p in parts)
    cpu = [p.server_cpu_s for p in parts]
    slowed = [p.cpu_slowed for p in parts if p.cpu_slowed is not None]
    return Run(
        parts[0].scenario,
        parts[0].connections,
        requests,
        seconds,
        requests / seconds,
        statistics.median(p.p50_ms for p in parts),
        statistics.median(p.p99_ms for p in parts),
        sum(p.non_2xx for p in parts),
        sum(p.socket_errors for p in parts),
        None if None in cpu else sum(c for c in cpu if c is not None),
        statistics.mean(slowed) if slowed else None,
        [(p.p99_ms, p.cpu_slowed) for p in parts],
    )


def percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.0f}%"
