"""`make tail`: which requests make the p99 at concurrency 8, and what the CPU did meanwhile.

Serves the mock as `make bench` does (clock frozen, weight limit raised) and sends
the signed leverage change over 8 keep-alive connections from one thread, noting
when each request left and when its answer was complete, while cpu_speed's probe
samples the CPU. wrk reports only percentiles; this sees every request, so it can
tell the server's own tail from the stretches when the host slowed the machine.
"""

from __future__ import annotations

import argparse
import bisect
import selectors
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from cpu_speed import EVERY_S, Sample, SpeedProbe, slowed_flags
from load import percent, percentile
from served import FROZEN_AT_MS, Target, served_mock, signed_leverage, write_config

SLOW_MS = 10.0  # the p99 target at concurrency 8


@dataclass(frozen=True)
class Request:
    sent: float  # time.perf_counter()
    done: float
    status: int

    @property
    def ms(self) -> float:
        return (self.done - self.sent) * 1000


def wire_bytes(target: Target) -> bytes:
    head = f"{target.method} {target.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in target.headers.items())
    return f"{head}Content-Length: {len(target.body)}\r\n\r\n".encode() + target.body


def answers(buffer: bytearray) -> Sequence[int]:
    """Statuses of the complete responses at the front of `buffer`, which loses them."""
    found = []
    while (end := buffer.find(b"\r\n\r\n")) >= 0:
        head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        length = next(
            int(line.split(":", 1)[1])
            for line in head
            if line.lower().startswith("content-length:")
        )
        if len(buffer) < end + 4 + length:
            break
        found.append(int(head[0].split()[1]))
        del buffer[: end + 4 + length]
    return found


def drive(url: str, target: Target, connections: int, seconds: float) -> list[Request]:
    """Each connection sends its next request as soon as the last answer is complete."""
    parts = urlsplit(url)
    wire = wire_bytes(target)
    selector = selectors.DefaultSelector()
    sent: dict[socket.socket, float] = {}
    buffers: dict[socket.socket, bytearray] = {}
    for _ in range(connections):
        conn = socket.create_connection((parts.hostname, parts.port))
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        selector.register(conn, selectors.EVENT_READ, conn)
        buffers[conn] = bytearray()
    done: list[Request] = []
    for conn in buffers:
        sent[conn] = time.perf_counter()
        conn.sendall(wire)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for key, _ in selector.select(timeout=1.0):
            conn = key.data
            chunk = conn.recv(65536)
            if not chunk:
                raise RuntimeError("the server closed a keep-alive connection")
            buffers[conn] += chunk
            for status in answers(buffers[conn]):
                now = time.perf_counter()
                done.append(Request(sent[conn], now, status))
                sent[conn] = now
                conn.sendall(wire)
    for conn in buffers:
        conn.close()
    return done


def slowed_during(requests: list[Request], samples: list[Sample]) -> list[bool]:
    """Per request: whether the probe saw the CPU slowed while it was out, or one probe
    interval before it left (the slowing had begun, the next sample was not yet due)."""
    slowed_at = [s.at for s, slow in zip(samples, slowed_flags(samples), strict=True) if slow]
    found = []
    for request in requests:
        first = bisect.bisect_left(slowed_at, request.sent - EVERY_S)
        found.append(first < len(slowed_at) and slowed_at[first] <= request.done)
    return found


def report(requests: list[Request], slowed: list[bool], probe_share: float | None) -> str:
    every = sorted(r.ms for r in requests)
    steady = sorted(r.ms for r, s in zip(requests, slowed, strict=True) if not s)
    over = [s for r, s in zip(requests, slowed, strict=True) if r.ms > SLOW_MS]
    seconds = requests[-1].done - requests[0].sent
    pct = percentile
    lines = [
        f"{len(requests)} requests in {seconds:.1f} s ({len(requests) / seconds:.0f} req/s), "
        f"non-200: {sum(r.status != 200 for r in requests)}",
        f"CPU under half speed in {percent(probe_share)} of the probe's samples",
        f"all requests:                      p50 {pct(every, 50):6.2f} ms  "
        f"p99 {pct(every, 99):6.2f} ms  max {every[-1]:6.2f} ms",
        f"out while the CPU ran full speed:  p50 {pct(steady, 50):6.2f} ms  "
        f"p99 {pct(steady, 99):6.2f} ms  ({len(steady)} requests)",
        f"over {SLOW_MS:g} ms: {len(over)} requests, {sum(over)} of them out while the CPU "
        "was slowed",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the run (10)")
    parser.add_argument("--connections", type=int, default=8, help="concurrency (8)")
    args = parser.parse_args(argv)
    leverage = signed_leverage(FROZEN_AT_MS)
    with tempfile.TemporaryDirectory() as tmp, served_mock(write_config(tmp)) as served:
        drive(served.url, leverage, args.connections, 0.5)  # warm-up
        probe = SpeedProbe().start()
        mark = probe.mark()
        requests = drive(served.url, leverage, args.connections, args.seconds)
        probe.stop()
    print(
        f"signed leverage, concurrency {args.connections}, one client thread, "
        f"served by dapi-mock serve --quiet"
    )
    print(report(requests, slowed_during(requests, probe.samples), probe.slowed_since(mark)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
