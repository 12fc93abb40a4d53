"""Requests a `delay` fault is holding, and what ends a hold early (docs/behaviour.md#faults).

A hold ends when its time is up, when its client closes the connection (nobody is
left to answer), at a reset (the request is dropped: one test's leftovers never
reach the next), or when the server shuts down (answered at once, so a stop never
waits out a delay).
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable

# How often a hold looks at its client's connection.
CLIENT_POLL_S = 0.05


class HoldEnd(enum.Enum):
    ELAPSED = "elapsed"  # the delay ran out: answer normally
    SHUTDOWN = "shutdown"  # the server is stopping: answer normally, now
    RESET = "reset"  # a reset came: drop the request, change nothing
    CLIENT_GONE = "client gone"  # the client closed its connection: drop the request


class Holds:
    """Where delayed requests wait; thread-safe."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.resets = 0  # how many resets so far: a request notes it when it arrives
        self._shutting_down = False
        self.held = 0

    def hold(self, seconds: float, client_gone: Callable[[], bool], resets_seen: int) -> HoldEnd:
        """Wait out a delay for a request that arrived when `resets_seen` resets had
        happened; a reset since then (even before the hold began) drops it."""
        deadline = time.monotonic() + seconds
        with self._changed:
            self.held += 1
            try:
                while True:
                    if self._shutting_down:
                        return HoldEnd.SHUTDOWN
                    if self.resets != resets_seen:
                        return HoldEnd.RESET
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return HoldEnd.ELAPSED
                    if client_gone():
                        return HoldEnd.CLIENT_GONE
                    self._changed.wait(min(remaining, CLIENT_POLL_S))
            finally:
                self.held -= 1

    def drop_all(self) -> None:
        """A reset: every request held now is dropped."""
        with self._changed:
            self.resets += 1
            self._changed.notify_all()

    def release_all(self) -> None:
        """Shutdown: every request held now, and any held later, is answered at once."""
        with self._changed:
            self._shutting_down = True
            self._changed.notify_all()
