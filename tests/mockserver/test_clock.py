"""clock: real time plus an offset, frozen, advanced, reset (docs/behaviour.md#control-plane)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from mockserver.clock import Clock, ClockRangeError

REAL_MS = 1_700_000_000_000
FROZEN = 1_591_702_613_943


@pytest.fixture(autouse=True)
def real_time(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Real time pinned at REAL_MS (plus sub-ms noise); call the result to move it."""

    def set_real_ms(ms: int) -> None:
        monkeypatch.setattr(time, "time_ns", lambda: ms * 1_000_000 + 999_999)

    set_real_ms(REAL_MS)
    return set_real_ms


def test_fresh_clock_is_real_time() -> None:
    clock = Clock()
    assert clock.now_ms() == REAL_MS
    assert clock.state.as_dict(clock.now_ms()) == {
        "now_ms": REAL_MS,
        "offset_ms": 0,
        "frozen": False,
        "frozen_at_ms": None,
    }


def test_configured_offset_is_added_to_real_time() -> None:
    assert Clock(-1500).now_ms() == REAL_MS - 1500


def test_unfrozen_clock_follows_real_time(real_time: Callable[[int], None]) -> None:
    clock = Clock(10)
    real_time(REAL_MS + 500)
    assert clock.now_ms() == REAL_MS + 510


def test_set_offset_replaces_the_offset() -> None:
    clock = Clock(10)
    clock.set_offset(-60_000)
    assert clock.now_ms() == REAL_MS - 60_000
    assert clock.state.offset_ms == -60_000


def test_frozen_clock_stays_at_the_chosen_instant(real_time: Callable[[int], None]) -> None:
    clock = Clock(10)
    clock.freeze_at(1591702613943)
    real_time(REAL_MS + 5000)
    assert clock.now_ms() == 1591702613943
    assert clock.state.as_dict(clock.now_ms()) == {
        "now_ms": 1591702613943,
        "offset_ms": 10,
        "frozen": True,
        "frozen_at_ms": 1591702613943,
    }


def test_set_offset_unfreezes() -> None:
    clock = Clock()
    clock.freeze_at(FROZEN)
    clock.set_offset(7)
    assert clock.state.frozen_at_ms is None
    assert clock.now_ms() == REAL_MS + 7


def test_advance_moves_a_frozen_clock_and_keeps_the_offset() -> None:
    clock = Clock(10)
    clock.freeze_at(FROZEN)
    clock.advance(60_000)
    assert clock.now_ms() == FROZEN + 60_000
    assert clock.state.offset_ms == 10
    assert clock.state.frozen_at_ms == FROZEN + 60_000


def test_advance_adds_to_the_offset_of_a_running_clock() -> None:
    clock = Clock(10)
    clock.advance(5000)
    assert clock.now_ms() == REAL_MS + 5010
    assert clock.state.offset_ms == 5010
    assert clock.state.frozen_at_ms is None


def test_advance_by_a_negative_amount_moves_back() -> None:
    clock = Clock()
    clock.freeze_at(FROZEN)
    clock.advance(-1)
    assert clock.now_ms() == FROZEN - 1


def test_real_unfreezes_and_drops_the_offset() -> None:
    clock = Clock(10)
    clock.freeze_at(FROZEN)
    clock.real()
    assert clock.now_ms() == REAL_MS
    assert clock.state.offset_ms == 0
    assert clock.state.frozen_at_ms is None


def test_reset_returns_to_the_configured_offset_unfrozen() -> None:
    clock = Clock(-250)
    clock.set_offset(99)
    clock.freeze_at(FROZEN)
    clock.reset()
    assert clock.now_ms() == REAL_MS - 250
    assert clock.state.frozen_at_ms is None


# -- the range: 2000-01-01..2099-12-31 UTC (docs/behaviour.md#reliability) ------------------

EARLIEST = 946_684_800_000
LATEST = 4_102_444_799_999


@pytest.mark.parametrize("at_ms", [EARLIEST, LATEST, FROZEN])
def test_the_clock_freezes_anywhere_within_the_range(at_ms: int) -> None:
    clock = Clock()
    clock.freeze_at(at_ms)
    assert clock.now_ms() == at_ms


@pytest.mark.parametrize("at_ms", [EARLIEST - 1, LATEST + 1, 0, 253_370_764_800_000])
def test_freezing_outside_the_range_is_refused_and_changes_nothing(at_ms: int) -> None:
    clock = Clock()
    clock.freeze_at(FROZEN)
    with pytest.raises(ClockRangeError, match=r"2000-01-01\.\.2099-12-31"):
        clock.freeze_at(at_ms)
    assert clock.now_ms() == FROZEN


def test_advancing_past_the_end_is_refused() -> None:
    clock = Clock()
    clock.freeze_at(LATEST)
    with pytest.raises(ClockRangeError):
        clock.advance(1)


@pytest.mark.parametrize("offset_ms", [10**17, -(10**13), 4_102_444_800_000])
def test_an_offset_out_of_range_is_refused_at_construction_and_later(offset_ms: int) -> None:
    with pytest.raises(ClockRangeError, match="offset_ms"):
        Clock(offset_ms)
    with pytest.raises(ClockRangeError, match="offset_ms"):
        Clock().set_offset(offset_ms)
