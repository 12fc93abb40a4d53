"""`make soak`: a bounded run of mixed load against `dapi-mock serve`; does its memory stay flat?

Starts the server as its own process (default settings, `--quiet`, the weight
limit off so the load is served rather than refused), then runs client threads
for `--seconds` that send a seeded mix of what real and broken clients send:
signed leverage changes, signed reads, public reads, bad signatures, malformed
parameters, unknown paths and methods, bodies over the limit, unparsable HTTP,
connections dropped mid-request, and control-plane reads. Every few seconds it
samples the server's resident memory (VmRSS in /proc/PID/status).

Verdict: FLAT when RSS grew less than the threshold over the second half of
the run, measured as the Theil-Sen trend of the samples (one a second in a
60 s run), so a few samples caught on a transient do not decide it. The first
half is warm-up: the journal fills to its bound (journal_size, 10000 entries,
reached in about ten seconds at the rates seen), the allocator's arenas and
waitress's buffers settle. The threshold is 8 MiB by default
(`--threshold-mib`): a journal entry costs about 1 KiB, so a leak of one entry
per request, the kind this guards against, would grow by tens of MiB over a
half at these rates, while one transient (a multi-MB /__admin/requests answer
being built, a 70 KiB body) stays under it. The summary also prints the growth
per request, so a slower leak shows in the numbers.

Exit status: 0 flat, 1 growing, 2 the run itself failed (server died, 5xx
answers, or most requests failing).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

API_KEY = "dapimockdemokey"
SECRET = "dapimockdemosecret"
SYMBOLS = {"BTCUSD_PERP": 125, "ETHUSD_PERP": 100}
DEFAULT_THRESHOLD_MIB = 8.0
MIB = 1024 * 1024


@dataclass
class Tally:
    """What the clients saw, shared by all threads (guarded by `lock`)."""

    statuses: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    transport_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, status: int | None) -> None:
        with self.lock:
            self.kinds[kind] += 1
            if status is None:
                self.transport_errors += 1
            else:
                self.statuses[f"{status // 100}xx" if status else "dropped"] += 1

    @property
    def requests(self) -> int:
        with self.lock:
            return sum(self.kinds.values())


@dataclass(frozen=True)
class Sample:
    seconds: float
    rss_kib: int
    requests: int


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def signed(params: str) -> str:
    signature = hmac.new(SECRET.encode(), params.encode(), hashlib.sha256).hexdigest()
    return f"{params}&signature={signature}"


def now_ms() -> int:
    return int(time.time() * 1000)


class Client:
    """One load thread: a keep-alive connection for ordinary requests, raw sockets for abuse."""

    def __init__(self, host: str, port: int, seed: int, tally: Tally) -> None:
        self.host, self.port = host, port
        self.random = random.Random(seed)
        self.tally = tally
        self.connection: http.client.HTTPConnection | None = None
        self.mix: list[tuple[float, str, Callable[[], int | None]]] = [
            (30, "leverage change", self.change_leverage),
            (8, "signed read", self.signed_read),
            (20, "public read", self.public_read),
            (8, "bad signature", self.bad_signature),
            (10, "malformed params", self.malformed_params),
            (5, "unknown route", self.unknown_route),
            (3, "body over limit", self.body_over_limit),
            (3, "unparsable HTTP", self.unparsable_http),
            (3, "dropped mid-request", self.dropped_mid_request),
            # A full journal is a multi-MB answer: as rare as a test suite asks for it.
            (0.25, "admin journal", self.admin_journal),
            (1, "admin clock", self.admin_clock),
        ]

    def run(self, until: float) -> None:
        weights = [w for w, _, _ in self.mix]
        while time.monotonic() < until:
            _, kind, send = self.random.choices(self.mix, weights)[0]
            try:
                status = send()
            except (OSError, http.client.HTTPException):
                status = None
                self.close()
            self.tally.add(kind, status)
        self.close()

    # -- transport -----------------------------------------------------------------------

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> int:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        sent = {"X-MBX-APIKEY": API_KEY, **(headers or {})}
        self.connection.request(method, path, body=body, headers=sent)
        response = self.connection.getresponse()
        response.read()
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        return response.status

    def raw(self, data: bytes, read: bool = True) -> int | None:
        with socket.create_connection((self.host, self.port), timeout=10) as sock:
            sock.sendall(data)
            if not read:
                return 0  # dropped on purpose: no answer to wait for
            response = http.client.HTTPResponse(sock)
            response.begin()
            response.read()
            return response.status

    # -- the mix -------------------------------------------------------------------------

    def change_leverage(self) -> int:
        symbol = self.random.choice(list(SYMBOLS))
        leverage = self.random.randint(1, SYMBOLS[symbol])
        query = signed(f"symbol={symbol}&leverage={leverage}&timestamp={now_ms()}")
        if self.random.random() < 0.5:
            return self.request("POST", f"/dapi/v1/leverage?{query}")
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        return self.request("POST", "/dapi/v1/leverage", query.encode(), form)

    def signed_read(self) -> int:
        path = self.random.choice(
            ["/dapi/v1/positionRisk", "/dapi/v2/leverageBracket", "/dapi/v1/leverageBracket"]
        )
        return self.request("GET", f"{path}?{signed(f'timestamp={now_ms()}')}")

    def public_read(self) -> int:
        path = self.random.choice(["/dapi/v1/ping", "/dapi/v1/time", "/dapi/v1/exchangeInfo"])
        return self.request("GET", path)

    def bad_signature(self) -> int:
        query = f"symbol=BTCUSD_PERP&leverage=10&timestamp={now_ms()}&signature={'0' * 64}"
        return self.request("POST", f"/dapi/v1/leverage?{query}")

    def malformed_params(self) -> int:
        bad = self.random.choice(
            [
                "symbol=btcusd_perp&leverage=20",
                "symbol=BTCUSD_PERP&leverage=%zz",
                "symbol=BTCUSD_PERP&leverage=20&leverage=21",
                "symbol=BTCUSD_PERP&leverage=1e400&timestamp=99999999999999999999",
                "=20&leverage[]=20",
                "symbol=BTCUSD_PERP&leverage=%C3%28",
                "&".join(f"p{i}=1" for i in range(70)),
            ]
        )
        return self.request("POST", f"/dapi/v1/leverage?{bad}")

    def unknown_route(self) -> int:
        method, path = self.random.choice(
            [("GET", "/dapi/v1/nothing"), ("GET", "/dapi/v1/leverage"), ("DELETE", "/")]
        )
        return self.request(method, path)

    def body_over_limit(self) -> int:
        return self.request("POST", "/dapi/v1/leverage", b"a" * (70 * 1024))

    def unparsable_http(self) -> int | None:
        return self.raw(
            self.random.choice(
                [
                    b"GARBAGE\r\n\r\n",
                    b"POST /dapi/v1/leverage HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                    b"GET /dapi/v1/ping?a=\xff HTTP/1.1\r\nHost: x\r\n\r\n",
                ]
            )
        )

    def dropped_mid_request(self) -> int | None:
        query = signed(f"symbol=BTCUSD_PERP&leverage=5&timestamp={now_ms()}")
        request = (
            f"POST /dapi/v1/leverage HTTP/1.1\r\nHost: x\r\nX-MBX-APIKEY: {API_KEY}\r\n"
            f"Content-Length: {len(query)}\r\n\r\n{query}"
        ).encode()
        return self.raw(request[: self.random.randint(1, len(request) - 1)], read=False)

    def admin_journal(self) -> int:
        return self.request("GET", "/__admin/requests")

    def admin_clock(self) -> int:
        return self.request("GET", "/__admin/clock")


def start_server(stderr_path: Path) -> tuple[subprocess.Popen[str], str, int]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DAPI_MOCK_")},
        "DAPI_MOCK_EXCHANGE_WEIGHT_PER_MINUTE": "0",  # serve the load, don't refuse it
    }
    command = [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0", "--quiet"]
    with stderr_path.open("w") as errors:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, text=True, env=env
        )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("listening on http://"):
        process.kill()
        raise RuntimeError(f"server did not start: {line!r} {stderr_path.read_text()}")
    host, port = line.removeprefix("listening on http://").rsplit(":", 1)
    return process, host, int(port)


def journal_length(host: str, port: int) -> int:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    connection.request("GET", "/__admin/requests")
    length = len(json.loads(connection.getresponse().read())["requests"])
    connection.close()
    return length


def soak(seconds: float, threads: int, interval: float, threshold_mib: float) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        process, host, port = start_server(Path(scratch) / "stderr.txt")
        try:
            return measure(process, host, port, seconds, threads, interval, threshold_mib)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def measure(
    process: subprocess.Popen[str],
    host: str,
    port: int,
    seconds: float,
    threads: int,
    interval: float,
    threshold_mib: float,
) -> int:
    tally = Tally()
    started = time.monotonic()
    until = started + seconds
    clients = [Client(host, port, seed, tally) for seed in range(threads)]
    workers = [threading.Thread(target=c.run, args=(until,), daemon=True) for c in clients]
    samples = [Sample(0.0, rss_kib(process.pid), 0)]
    print(
        f"dapi-mock soak: {seconds:g} s, {threads} client threads, pid {process.pid}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        flush=True,
    )
    print(f"{'t (s)':>7} {'RSS (MiB)':>10} {'requests':>9} {'req/s':>7}", flush=True)
    print(f"{0:7.1f} {samples[0].rss_kib / 1024:10.1f} {0:9d} {'':>7}", flush=True)
    for worker in workers:
        worker.start()
    while (now := time.monotonic()) < until:
        time.sleep(min(interval, max(until - now, 0)))
        if process.poll() is not None:
            print("the server exited during the soak", flush=True)
            return 2
        sample = Sample(time.monotonic() - started, rss_kib(process.pid), tally.requests)
        rate = (sample.requests - samples[-1].requests) / (sample.seconds - samples[-1].seconds)
        samples.append(sample)
        print(
            f"{sample.seconds:7.1f} {sample.rss_kib / 1024:10.1f} {sample.requests:9d} {rate:7.0f}",
            flush=True,
        )
    for worker in workers:
        worker.join(timeout=30)
    return summarise(process, host, port, samples, tally, threshold_mib)


def robust_slope(samples: list[Sample]) -> float:
    """RSS trend in MiB/s: the median of the slopes between every pair of samples (Theil-Sen).

    Not last minus middle, nor least squares: a sample that lands on a transient (a
    multi-MB journal answer being built) must not decide the verdict, and up to about
    a quarter of the samples can be such spikes without moving this estimate much.
    """
    slopes = [
        (b.rss_kib - a.rss_kib) / 1024 / (b.seconds - a.seconds)
        for i, a in enumerate(samples)
        for b in samples[i + 1 :]
        if b.seconds > a.seconds
    ]
    return statistics.median(slopes) if slopes else 0.0


def summarise(
    process: subprocess.Popen[str],
    host: str,
    port: int,
    samples: list[Sample],
    tally: Tally,
    threshold_mib: float,
) -> int:
    half = samples[-1].seconds / 2
    second_half = [s for s in samples if s.seconds >= half]
    middle, last = second_half[0], samples[-1]
    growth_mib = robust_slope(second_half) * (last.seconds - middle.seconds)
    half_requests = max(last.requests - middle.requests, 1)
    alive = process.poll() is None
    journal = journal_length(host, port) if alive else -1
    total = tally.requests
    print()
    print(f"requests: {total} ({total / last.seconds:.0f}/s), by answer {dict(tally.statuses)}")
    print(f"by kind: {dict(tally.kinds)}")
    print(f"transport errors (dropped on purpose excluded): {tally.transport_errors}")
    print(f"journal entries at the end: {journal} (bound: journal_size)")
    print(
        f"RSS MiB: start {samples[0].rss_kib / 1024:.1f}, mid {middle.rss_kib / 1024:.1f}, "
        f"end {last.rss_kib / 1024:.1f}, max {max(s.rss_kib for s in samples) / 1024:.1f}, "
        f"median of second half {statistics.median(s.rss_kib for s in second_half) / 1024:.1f}"
    )
    print(
        f"second half: trend {growth_mib:+.2f} MiB (end minus mid "
        f"{(last.rss_kib - middle.rss_kib) / 1024:+.2f}) over {half_requests} requests, "
        f"{growth_mib * MIB / half_requests:+.1f} bytes/request; threshold {threshold_mib:g} MiB"
    )
    failed = not alive or tally.statuses["5xx"] > 0 or tally.transport_errors > total // 10
    if failed:
        print(
            f"verdict: FAILED (server alive: {alive}, 5xx: {tally.statuses['5xx']}, "
            f"transport errors: {tally.transport_errors})"
        )
        return 2
    if growth_mib < threshold_mib:
        print(f"verdict: FLAT (RSS grew {growth_mib:+.2f} MiB in the second half)")
        return 0
    print(f"verdict: GROWING (RSS grew {growth_mib:+.2f} MiB in the second half)")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=60, help="length of the load (60)")
    parser.add_argument("--threads", type=int, default=8, help="client threads (8)")
    parser.add_argument(
        "--interval", type=float, help="seconds between RSS samples (default: run / 60, >= 0.25)"
    )
    parser.add_argument(
        "--threshold-mib",
        type=float,
        default=DEFAULT_THRESHOLD_MIB,
        help=f"RSS growth over the second half still called flat ({DEFAULT_THRESHOLD_MIB:g})",
    )
    args = parser.parse_args(argv)
    if not Path("/proc/self/status").exists():
        print("soak: needs /proc (Linux) to read the server's RSS", file=sys.stderr)
        return 2
    interval = args.interval or max(args.seconds / 60, 0.25)
    return soak(args.seconds, args.threads, interval, args.threshold_mib)


if __name__ == "__main__":
    raise SystemExit(main())
