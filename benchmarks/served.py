"""The server processes a run measures (`dapi-mock serve` as users run it, or any server
command), the requests sent to them and the HTTP helpers that send them."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

API_KEY = "dapimockdemokey"
SECRET = "dapimockdemosecret"
WEIGHT_PER_MINUTE = 100_000_000  # far above any run, so the limiter counts but never refuses
FROZEN_AT_MS = 1_700_000_000_000  # BTCUSD_PERP is listed then; any instant would do


@dataclass(frozen=True)
class Target:
    """One request, sent again and again."""

    name: str
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the process so far (Linux /proc), else None."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def signed_leverage(timestamp_ms: int) -> Target:
    """A fixed, valid signed leverage change (HMAC over the body, as python-binance sends it)."""
    payload = f"symbol=BTCUSD_PERP&leverage=20&recvWindow=5000&timestamp={timestamp_ms}"
    signature = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return Target(
        LEVERAGE_NAME,
        "POST",
        "/dapi/v1/leverage",
        f"{payload}&signature={signature}".encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "X-MBX-APIKEY": API_KEY},
    )


LEVERAGE_NAME = "leverage (signed)"
PING = Target("ping", "GET", "/dapi/v1/ping")
BASELINE = Target("flask baseline", "GET", "/")


# -- processes -----------------------------------------------------------------------------


def serve_command() -> list[str]:
    """The installed `dapi-mock` script next to this interpreter, as users run it."""
    script = Path(sys.executable).parent / "dapi-mock"
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "mockserver.cli", "serve"]


def wait_for_url(process: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """Read the `listening on http://HOST:PORT` line; kill the process if none comes."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.05)
        if ready:
            line = process.stdout.readline()
            if line.startswith("listening on "):
                return line.removeprefix("listening on ").strip()
            if not line and process.poll() is not None:
                break
    process.kill()
    raise RuntimeError(f"{process.args!r} did not start (exit {process.poll()})")


@contextmanager
def started(command: Sequence[str]) -> Iterator[Server]:
    """Run a server process for the block."""
    # stderr to a file, not a pipe: a full pipe would stall the server mid-run.
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            try:
                yield Server(wait_for_url(process), process.pid)
            except RuntimeError:
                errors.seek(0)
                raise RuntimeError(f"{command}: {errors.read()[-2000:]}") from None
        finally:
            stop(process)


@contextmanager
def served_mock(config: str | Path, flags: Sequence[str] = ()) -> Iterator[Server]:
    """`dapi-mock serve --quiet` as every measured run has it: `config` from write_config,
    port 0, and the clock frozen at FROZEN_AT_MS so one signed body stays valid."""
    serve = [*serve_command(), "--quiet", "--port", "0", "--config", str(config), *flags]
    with started(serve) as served:
        admin(served.url, "POST", "/clock", {"freeze_at_ms": FROZEN_AT_MS})
        yield served


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


# -- HTTP helpers --------------------------------------------------------------------------


def connect(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)


def send(
    conn: http.client.HTTPConnection, target: Target
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn.request(target.method, target.path, body=target.body, headers=target.headers)
    response = conn.getresponse()
    return response.status, response.headers, response.read()


def call(url: str, target: Target) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = connect(url)
    try:
        return send(conn, target)
    finally:
        conn.close()


def admin(url: str, method: str, path: str, body: Any = None) -> Any:
    data = b"" if body is None else json.dumps(body).encode()
    target = Target("admin", method, f"/__admin{path}", data, {"Content-Type": "application/json"})
    status, _, answer = call(url, target)
    if status != 200:
        raise RuntimeError(f"{method} /__admin{path}: {status} {answer[:200]!r}")
    return json.loads(answer)


def write_config(directory: str | Path) -> Path:
    """The mock's settings for a measured run: a weight limit no run reaches."""
    config = Path(directory, "bench.toml")
    config.write_text(f"[exchange]\nweight_per_minute = {WEIGHT_PER_MINUTE}\n")
    return config
