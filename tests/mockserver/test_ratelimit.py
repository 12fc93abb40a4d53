"""ratelimit: weight per IP and mock-clock minute; 429, then 418 (docs/behaviour.md#rate-limits)."""

from __future__ import annotations

import pytest

from mockserver.errors import ExchangeError
from mockserver.ratelimit import MINUTE_MS, RateLimiter

WINDOW = 28_000_000 * MINUTE_MS  # the start of some minute of the mock clock
IP, OTHER_IP = "10.0.0.1", "10.0.0.2"


def refused(limiter: RateLimiter, now_ms: int, weight: int = 1, ip: str = IP) -> ExchangeError:
    with pytest.raises(ExchangeError) as caught:
        limiter.admit(ip, weight, now_ms)
    return caught.value


def exhausted(limit: int = 3, ban_seconds: int = 120) -> RateLimiter:
    limiter = RateLimiter(limit, ban_seconds)
    limiter.admit(IP, limit, WINDOW)
    return limiter


def test_admit_counts_weight_and_returns_the_used_weight() -> None:
    limiter = RateLimiter(10, 120)
    assert limiter.admit(IP, 1, WINDOW) == 1
    assert limiter.admit(IP, 2, WINDOW + 1) == 3
    assert limiter.used(IP, WINDOW + 2) == 3


def test_weight_is_counted_per_ip() -> None:
    limiter = RateLimiter(10, 120)
    limiter.admit(IP, 4, WINDOW)
    assert limiter.admit(OTHER_IP, 1, WINDOW) == 1
    assert limiter.used(IP, WINDOW) == 4


def test_unknown_ip_has_used_nothing() -> None:
    assert RateLimiter(10, 120).used(IP, WINDOW) == 0


def test_charge_counts_without_refusing() -> None:
    limiter = exhausted(limit=3)
    assert limiter.charge(IP, 2, WINDOW) == 5
    assert limiter.used(IP, WINDOW) == 5


def test_window_rolls_over_at_the_minute_boundary() -> None:
    limiter = RateLimiter(10, 120)
    limiter.admit(IP, 5, WINDOW)
    assert limiter.used(IP, WINDOW + MINUTE_MS - 1) == 5
    assert limiter.used(IP, WINDOW + MINUTE_MS) == 0
    assert limiter.admit(IP, 1, WINDOW + MINUTE_MS) == 1


def test_window_is_the_floor_of_now_over_a_minute_not_a_sliding_window() -> None:
    limiter = RateLimiter(10, 120)
    limiter.admit(IP, 5, WINDOW + MINUTE_MS - 1)
    assert limiter.admit(IP, 1, WINDOW + MINUTE_MS) == 1


def test_weight_up_to_the_limit_is_admitted() -> None:
    limiter = RateLimiter(3, 120)
    assert [limiter.admit(IP, 1, WINDOW) for _ in range(3)] == [1, 2, 3]


def test_exceeding_the_limit_is_rejected_with_429_and_1003() -> None:
    error = refused(exhausted(limit=3), WINDOW + 500)
    assert (error.status, error.code) == (429, -1003)
    assert error.msg == (
        f"Too many requests; current limit of IP({IP}) is 3 requests per minute. Please use "
        "the websocket for live updates to avoid polling the API."
    )


@pytest.mark.parametrize(
    ("offset_ms", "retry_after"),
    [(0, "60"), (1, "60"), (500, "60"), (1000, "59"), (59_000, "1"), (59_999, "1")],
)
def test_retry_after_is_the_seconds_to_the_next_window(offset_ms: int, retry_after: str) -> None:
    limiter = RateLimiter(1, 120)
    limiter.admit(IP, 1, WINDOW)
    assert refused(limiter, WINDOW + offset_ms).headers == {"Retry-After": retry_after}


def test_a_heavy_request_that_would_pass_the_limit_is_rejected() -> None:
    limiter = RateLimiter(3, 120)
    limiter.admit(IP, 2, WINDOW)
    assert refused(limiter, WINDOW, weight=2).status == 429


def test_rejected_429_is_not_counted() -> None:
    limiter = exhausted(limit=3)
    refused(limiter, WINDOW)
    assert limiter.used(IP, WINDOW) == 3


def test_request_after_retry_after_is_admitted_in_the_next_window() -> None:
    limiter = exhausted(limit=3)
    refused(limiter, WINDOW + 10)
    assert limiter.admit(IP, 1, WINDOW + MINUTE_MS) == 1


def test_request_before_retry_after_bans_the_ip_with_418() -> None:
    limiter = exhausted(limit=3, ban_seconds=120)
    refused(limiter, WINDOW + 10)
    error = refused(limiter, WINDOW + 20)
    until = WINDOW + 20 + 120_000
    assert (error.status, error.code) == (418, -1003)
    assert error.msg == (
        f"Way too many requests; IP({IP}) banned until {until}. Please use the websocket for "
        "live updates to avoid bans."
    )
    assert error.headers == {"Retry-After": "120"}


def test_banned_ip_stays_banned_for_ban_seconds_even_in_a_new_window() -> None:
    limiter = exhausted(limit=3, ban_seconds=120)
    refused(limiter, WINDOW + 10)
    refused(limiter, WINDOW + 20)
    later = refused(limiter, WINDOW + MINUTE_MS + 20)
    assert later.status == 418
    assert str(WINDOW + 20 + 120_000) in later.msg
    assert later.headers == {"Retry-After": "60"}


def test_ban_ends_after_ban_seconds() -> None:
    limiter = exhausted(limit=3, ban_seconds=120)
    refused(limiter, WINDOW + 10)
    refused(limiter, WINDOW + 20)
    assert limiter.admit(IP, 1, WINDOW + 20 + 120_000) == 1


def test_418_is_not_counted() -> None:
    limiter = exhausted(limit=3)
    refused(limiter, WINDOW + 10)
    refused(limiter, WINDOW + 20)
    refused(limiter, WINDOW + 30)
    assert limiter.used(IP, WINDOW + 30) == 3


def test_a_ban_affects_only_its_ip() -> None:
    limiter = exhausted(limit=3)
    refused(limiter, WINDOW + 10)
    refused(limiter, WINDOW + 20)
    assert limiter.admit(OTHER_IP, 1, WINDOW + 30) == 1


def test_limit_zero_never_rejects_but_counts() -> None:
    limiter = RateLimiter(0, 120)
    for _ in range(5000):
        limiter.admit(IP, 2, WINDOW)
    assert limiter.used(IP, WINDOW) == 10_000


def test_reset_forgets_weight_and_bans() -> None:
    limiter = exhausted(limit=3)
    refused(limiter, WINDOW + 10)
    refused(limiter, WINDOW + 20)
    limiter.reset()
    assert limiter.used(IP, WINDOW + 30) == 0
    assert limiter.admit(IP, 1, WINDOW + 30) == 1
