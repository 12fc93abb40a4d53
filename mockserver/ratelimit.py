"""Request weight per client IP and minute of the mock clock; 429, then 418
(docs/behaviour.md#rate-limits)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from mockserver import errors

MINUTE_MS = 60_000


@dataclass
class _Usage:
    window: int = -1
    used: int = 0
    retry_until_ms: int = 0  # a 429 is pending until then
    banned_until_ms: int = 0


def _seconds_until(later_ms: int, now_ms: int) -> int:
    return max(1, -(-(later_ms - now_ms) // 1000))


class RateLimiter:
    """Counts weight; `limit` 0 turns rejection off but the count (and its header) stays."""

    def __init__(self, limit: int, ban_seconds: int) -> None:
        self.limit = limit
        self.ban_ms = ban_seconds * 1000
        self._usage: dict[str, _Usage] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._usage = {}

    def _current(self, ip: str, now_ms: int) -> _Usage:
        usage = self._usage.get(ip)
        if usage is None:
            usage = self._usage[ip] = _Usage()
        window = now_ms // MINUTE_MS
        if usage.window != window:
            usage.window, usage.used = window, 0
        return usage

    def used(self, ip: str, now_ms: int) -> int:
        with self._lock:
            return self._current(ip, now_ms).used

    def charge(self, ip: str, weight: int, now_ms: int) -> int:
        """Count a request that was rejected before the limit check; never refuses."""
        with self._lock:
            usage = self._current(ip, now_ms)
            usage.used += weight
            return usage.used

    def admit(self, ip: str, weight: int, now_ms: int) -> int:
        """Count the request and return the used weight, or raise 429/418 (not counted)."""
        with self._lock:
            usage = self._current(ip, now_ms)
            if usage.banned_until_ms > now_ms:
                raise errors.ip_banned(
                    ip,
                    usage.banned_until_ms,
                    _seconds_until(usage.banned_until_ms, now_ms),
                    f"IP {ip} is banned until {usage.banned_until_ms}",
                )
            if usage.retry_until_ms > now_ms:
                usage.banned_until_ms = now_ms + self.ban_ms
                usage.retry_until_ms = 0
                raise errors.ip_banned(
                    ip,
                    usage.banned_until_ms,
                    _seconds_until(usage.banned_until_ms, now_ms),
                    f"IP {ip} sent a request before its Retry-After ran out: banned",
                )
            if self.limit and usage.used + weight > self.limit:
                next_window_ms = (usage.window + 1) * MINUTE_MS
                usage.retry_until_ms = next_window_ms
                raise errors.too_many_requests(
                    ip,
                    self.limit,
                    _seconds_until(next_window_ms, now_ms),
                    f"weight {usage.used}+{weight} would pass the limit of {self.limit}/minute",
                )
            usage.used += weight
            return usage.used
