"""holds: what ends a delay's hold early (docs/behaviour.md#faults)."""

from __future__ import annotations

import threading
import time

from mockserver.holds import HoldEnd, Holds


def never_gone() -> bool:
    return False


def test_a_short_hold_ends_when_its_time_is_up():
    assert Holds().hold(0.01, never_gone, 0) is HoldEnd.ELAPSED


def test_a_reset_after_the_request_arrived_drops_it_even_before_its_hold_began():
    holds = Holds()
    arrived_at = holds.resets
    holds.drop_all()
    started = time.monotonic()
    assert holds.hold(30, never_gone, arrived_at) is HoldEnd.RESET
    assert time.monotonic() - started < 5


def test_a_reset_during_a_hold_drops_it_and_a_later_request_is_held_normally():
    holds = Holds()
    ends: list[HoldEnd] = []
    waiter = threading.Thread(target=lambda: ends.append(holds.hold(30, never_gone, 0)))
    waiter.start()
    time.sleep(0.1)
    holds.drop_all()
    waiter.join(timeout=5)
    assert ends == [HoldEnd.RESET]
    assert holds.hold(0.01, never_gone, holds.resets) is HoldEnd.ELAPSED


def test_a_hold_whose_client_left_ends_at_once():
    assert Holds().hold(30, lambda: True, 0) is HoldEnd.CLIENT_GONE


def test_shutdown_releases_holds_now_and_later():
    holds = Holds()
    ends: list[HoldEnd] = []
    waiter = threading.Thread(target=lambda: ends.append(holds.hold(30, never_gone, 0)))
    waiter.start()
    time.sleep(0.1)
    holds.release_all()
    waiter.join(timeout=5)
    assert ends == [HoldEnd.SHUTDOWN]
    assert holds.hold(30, never_gone, 0) is HoldEnd.SHUTDOWN
    assert holds.held == 0
