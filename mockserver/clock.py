"""The mock clock: real time plus an offset, or frozen at a chosen instant (SPEC 4)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


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
            self._state = ClockState(offset_ms, None)

    def freeze_at(self, at_ms: int) -> None:
        with self._lock:
            self._state = ClockState(self._state.offset_ms, at_ms)

    def advance(self, by_ms: int) -> None:
        with self._lock:
            state = self._state
            if state.frozen_at_ms is not None:
                self._state = ClockState(state.offset_ms, state.frozen_at_ms + by_ms)
            else:
                self._state = ClockState(state.offset_ms + by_ms, None)

    def real(self) -> None:
        with self._lock:
            self._state = ClockState(0, None)

    def reset(self) -> None:
        with self._lock:
            self._state = ClockState(self._initial_offset_ms, None)
