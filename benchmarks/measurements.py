"""The one-off measurements beside the load runs: cold start, /__admin/reset, the pytest
fixture's costs, the exchange's in-process path, `--workers` refused, the machine."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from served import (
    API_KEY,
    FROZEN_AT_MS,
    PING,
    WEIGHT_PER_MINUTE,
    Target,
    call,
    connect,
    send,
    serve_command,
    signed_leverage,
    stop,
    wait_for_url,
)


def cold_start(config: str, times: int) -> list[float]:
    """Seconds from spawning `dapi-mock serve` to its first 200 on /dapi/v1/ping."""
    found = []
    for _ in range(times):
        began = time.perf_counter()
        process = subprocess.Popen(
            [*serve_command(), "--port", "0", "--quiet", "--config", config],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            url = wait_for_url(process)
            status, _, _ = call(url, PING)
            found.append(time.perf_counter() - began)
            if status != 200:
                raise RuntimeError(f"cold start: ping answered {status}")
        finally:
            stop(process)
    return found


def reset_latency(url: str, times: int) -> list[float]:
    """Seconds per POST /__admin/reset over one keep-alive connection."""
    reset = Target("reset", "POST", "/__admin/reset")
    conn = connect(url)
    found = []
    for _ in range(times):
        began = time.perf_counter()
        status, _, _ = send(conn, reset)
        found.append(time.perf_counter() - began)
        if status != 200:
            raise RuntimeError(f"/__admin/reset answered {status}")
    conn.close()
    return sorted(found)


FIXTURE_START = """
import http.client, time
began = time.perf_counter()
from mockserver.config import Config
from mockserver.harness import MockServer
server = MockServer(Config(port=0))
conn = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
conn.request("GET", "/dapi/v1/ping")
assert conn.getresponse().status == 200
print(time.perf_counter() - began)
server.close()
"""


def fixture_start(times: int) -> list[float]:
    """The session fixture's start-up in a fresh process: imports, MockServer, first ping."""
    return [
        float(
            subprocess.run(
                [sys.executable, "-c", FIXTURE_START], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(times)
    ]


def fixture_per_test(times: int) -> tuple[list[float], list[float]]:
    """The `dapi_mock` fixture's own code around each test (set-up and teardown, run
    through its function), and a bare `handle.reset()` on a kept handle; seconds, sorted."""
    from mockserver import pytest_plugin
    from mockserver.config import Config
    from mockserver.harness import MockServer

    # The plain generator function under pytest's fixture wrapper: timing the plugin itself
    # keeps this honest when the plugin changes.
    fixture = getattr(pytest_plugin.dapi_mock, "__wrapped__", pytest_plugin.dapi_mock)
    per_test, bare = [], []
    with MockServer(Config(port=0)) as server:
        kept = server.handle()
        kept.reset()
        for _ in range(times):
            began = time.perf_counter()
            steps = fixture(server)
            next(steps)  # set-up: new handle, reset
            next(steps, None)  # teardown: close, check for server errors
            per_test.append(time.perf_counter() - began)
            began = time.perf_counter()
            kept.reset()
            bare.append(time.perf_counter() - began)
        kept.close()
    return sorted(per_test), sorted(bare)


def exchange_path_us(batches: int = 7, calls: int = 2000) -> float:
    """The fake exchange's own work for one signed leverage change, in this process:
    `Exchange.handle` (parsing, HMAC, the rules, limiter, journal) and the JSON body, no
    HTTP. What the served CPU per request adds to it is waitress's and the kernel's.
    Median over `batches` of the mean of `calls` calls, in microseconds."""
    from mockserver.config import Config
    from mockserver.exchange import ENDPOINTS, Call, Exchange

    exchange = Exchange(Config(weight_per_minute=WEIGHT_PER_MINUTE))
    exchange.clock.freeze_at(FROZEN_AT_MS)
    target = signed_leverage(FROZEN_AT_MS)
    endpoint = next(e for e in ENDPOINTS if (e.method, e.path) == (target.method, target.path))
    header_bytes = sum(len(name) + len(value) for name, value in target.headers.items())
    call = Call(target.method, target.path, b"", target.body, API_KEY, "127.0.0.1", header_bytes)
    assert exchange.handle(call, endpoint).status == 200
    means = []
    for _ in range(batches):
        began = time.perf_counter()
        for _ in range(calls):
            exchange.handle(call, endpoint).body()
        means.append((time.perf_counter() - began) / calls * 1e6)
    return statistics.median(means)


def workers_refused() -> bool:
    """`serve --workers 2` must refuse: state lives in one process
    (docs/behaviour.md#running-it)."""
    done = subprocess.run(
        [*serve_command(), "--port", "0", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.returncode == 2 and "--workers must be 1" in done.stderr


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "flask": metadata.version("flask"),
        "waitress": metadata.version("waitress"),
        # Other work on the machine skews every number; the 1-minute load shows how much.
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }
