"""The mock clock: real time plus an offset, or frozen at a chosen instant (SPEC 4)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

# The calendar the market can list quarters in (datetime reaches year 9999; quarters look
# a year ahead).
LATEST_MS = 253_370_764_800_000  # 9999-01-01T00:00:00Z


class ClockRangeError(ValueError):
    """A clock setting that would put the mock's time outside 1970..9998."""


@dataclass(frozen=True)
class ClockState:
    offset_ms: int
    frozen_at_ms: int | None

    def as_dict(self, now_ms: int) -> dict[str, object]:
        return {
            "now_ms": now_ms,
            "offset_ms": self.offset_ms,
            "frozen": self.frozen_at_ms is not None,
            "frozen_at_ms": self.frozen_at_ms,
        }


class Clock:
    """Server time in ms. One immutable state object, swapped whole, so reads need no lock."""

    def __init__(self, offset_ms: int = 0) -> None:
        self._initial_offset_ms = offset_ms
        self._state = ClockState(offset_ms, None)
        self._lock = threading.Lock()

    @property
    def state(self) -> ClockState:
        return self._state

    def now_ms(self) -> int:
        state = self._state
        if state.frozen_at_ms is not None:
            return state.frozen_at_ms
        return time.time_ns() // 1_000_000 + state.offset_ms

    def set_offset(self, offset_ms: int) -> None:
        with self._lock:
            self._state = self._checked(ClockState(offset_ms, None))

    def freeze_at(self, at_ms: int) -> None:
        with self._lock:
            self._state = self._checked(ClockState(self._state.offset_ms, at_ms))

    def advance(self, by_ms: int) -> None:
        with self._lock:
            state = self._state
            if state.frozen_at_ms is not None:
                moved = ClockState(state.offset_ms, state.frozen_at_ms + by_ms)
            else:
                moved = ClockState(state.offset_ms + by_ms, None)
            self._state = self._checked(moved)

    @staticmethod
    def _checked(state: ClockState) -> ClockState:
        now = state.frozen_at_ms
        if now is None:
            # An offset is checked against today, with a day to spare either way.
            now = time.time_ns() // 1_000_000 + state.offset_ms
            low, high = 86_400_000, LATEST_MS - 86_400_000
        else:
            low, high = 0, LATEST_MS
        if not low <= now <= high:
            raise ClockRangeError(f"the mock clock must stay between 1970 and 9998 (got {now} ms)")
        return state

    def real(self) -> None:
        with self._lock:
            self._state = ClockState(0, None)

    def reset(self) -> None:
        with self._lock:
            self._state = ClockState(self._initial_offset_ms, None)
