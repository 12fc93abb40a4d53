"""How fast the machine's CPU runs while a benchmark runs, sampled in the background.

A virtual machine's host can slow every vCPU at once, to a tenth of its speed for
tens of milliseconds, and the guest sees no steal time. Latency percentiles then
measure the host, not the server. A probe thread times a fixed bit of Python work
every 10 ms in its own thread CPU time: if the guest scheduler preempts the probe,
its CPU clock stops too, so only a CPU that does less work per second of CPU time
counts as slowed. Full speed is the fastest sample seen so far. It costs about 1%
of one core.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

SLOWED_BELOW = 0.5  # a sample at under half of full speed counts as slowed
EVERY_S = 0.010


def _work() -> int:
    total = 0
    for i in range(2000):  # about 0.1 ms of CPU at full speed
        total += i * i
    return total


@dataclass(frozen=True)
class Sample:
    at: float  # time.perf_counter() when the work began
    cpu_ns: int  # the probe thread's CPU time for one _work()


class SpeedProbe:
    """`probe = SpeedProbe().start()` samples in a daemon thread until `probe.stop()`.

    `probe.mark()` before a stretch of work and `probe.slowed_since(mark)` after it give
    the share of that stretch's samples taken while the CPU ran at under half speed.
    """

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-speed-probe", daemon=True)

    def start(self) -> SpeedProbe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            at = time.perf_counter()
            began = time.thread_time_ns()
            _work()
            # list.append is atomic under the GIL: readers see whole samples only.
            self.samples.append(Sample(at, time.thread_time_ns() - began))
            self._stop.wait(EVERY_S)

    def mark(self) -> int:
        return len(self.samples)

    def slowed_since(self, mark: int) -> float | None:
        """Share of the samples since `mark` taken at under half speed (None: no samples)."""
        return slowed_share(list(self.samples), mark)

    def longest_slowed_ms(self, mark: int = 0) -> float:
        """The longest run of consecutive slowed samples since `mark`, in ms: from its first
        sample to one interval after its last."""
        return longest_slowed_ms(list(self.samples), mark)


def slowed_flags(samples: list[Sample]) -> list[bool]:
    """Per sample: whether it ran at under half of the fastest sample's speed."""
    fastest = min(s.cpu_ns for s in samples)
    return [fastest / max(s.cpu_ns, 1) < SLOWED_BELOW for s in samples]


def slowed_share(samples: list[Sample], mark: int = 0) -> float | None:
    if len(samples) <= mark:
        return None
    flags = slowed_flags(samples)[mark:]  # full speed from every sample so far, not the window's
    return sum(flags) / len(flags)


def longest_slowed_ms(samples: list[Sample], mark: int = 0) -> float:
    if len(samples) <= mark:
        return 0.0
    longest = 0.0
    first: Sample | None = None
    for sample, slowed in zip(samples[mark:], slowed_flags(samples)[mark:], strict=True):
        if not slowed:
            first = None
            continue
        if first is None:
            first = sample
        longest = max(longest, (sample.at - first.at + EVERY_S) * 1000)
    return longest
