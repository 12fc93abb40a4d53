"""The mock clock: real time plus an offset, or frozen at a chosen instant
(docs/behaviour.md#control-plane)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

# docs/behaviour.md#reliability: the clock stays within 2000-01-01..2099-12-31 UTC, so
# quarterly names (<PAIR>_YYMMDD) stay unique.
EARLIEST_MS = 946_684_800_000  # 2000-01-01T00:00:00.000Z
LATEST_MS = 4_102_444_799_999  # 2099-12-31T23:59:59.999Z
RANGE_TEXT = "2000-01-01..2099-12-31 UTC"
# A running clock moves on: an offset is checked against today with a day to spare.
_DAY_MS = 86_400_000


class ClockRangeError(ValueError):
    """A clock setting that would put the mock's time outside RANGE_TEXT."""


def check_offset(offset_ms: int) -> None:
    """Raise ClockRangeError when real time plus `offset_ms` is outside the range."""
    now = time.time_ns() // 1_000_000 + offset_ms
    if not EARLIEST_MS + _DAY_MS <= now <= LATEST_MS - _DAY_MS:
        raise ClockRangeError(
            f"offset_ms {offset_ms} puts the mock clock outside {RANGE_TEXT} (at {now} ms)"
        )


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
        check_offset(offset_ms)
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
        if state.frozen_at_ms is None:
            check_offset(state.offset_ms)
        elif not EARLIEST_MS <= state.frozen_at_ms <= LATEST_MS:
            raise ClockRangeError(
                f"the mock clock must stay within {RANGE_TEXT} (got {state.frozen_at_ms} ms)"
            )
        return state

    def real(self) -> None:
        with self._lock:
            self._state = ClockState(0, None)

    def reset(self) -> None:
        with self._lock:
            self._state = ClockState(self._initial_offset_ms, None)
