"""`benchmarks/cpu_speed.py`: which samples count as slowed, and the probe thread itself."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from cpu_speed import EVERY_S, Sample, SpeedProbe, longest_slowed_ms, slowed_share


def samples(*cpu_us: int) -> list[Sample]:
    """One sample per EVERY_S, each taking the given CPU microseconds."""
    return [Sample(i * EVERY_S, us * 1000) for i, us in enumerate(cpu_us)]


def test_under_half_of_the_fastest_sample_counts_as_slowed() -> None:
    # 100 us is full speed: 199 us is just over half speed, 201 us just under.
    assert slowed_share(samples(100, 199, 201, 1000)) == pytest.approx(0.5)


def test_full_speed_comes_from_every_sample_so_far_not_only_the_window() -> None:
    # Measured from the mark, the window's own fastest (300 us) would look like full speed.
    assert slowed_share(samples(100, 300, 300, 300), mark=1) == 1.0
    assert slowed_share(samples(100, 300), mark=2) is None


def test_longest_stretch_spans_consecutive_slowed_samples() -> None:
    found = longest_slowed_ms(samples(100, 900, 900, 900, 100, 900))
    assert found == pytest.approx(3 * EVERY_S * 1000)
    assert longest_slowed_ms(samples(100, 100)) == 0.0
    assert longest_slowed_ms(samples(100, 900, 900), mark=2) == pytest.approx(EVERY_S * 1000)


def test_probe_samples_in_the_background_until_stopped() -> None:
    probe = SpeedProbe().start()
    time.sleep(0.2)
    mark = probe.mark()
    time.sleep(0.2)
    probe.stop()
    taken = len(probe.samples)
    assert mark >= 5 and taken > mark
    share = probe.slowed_since(mark)
    assert share is not None and 0.0 <= share <= 1.0
    time.sleep(0.05)
    assert len(probe.samples) == taken  # stopped means stopped
