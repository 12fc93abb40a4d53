"""The request journal: what each exchange request sent and got, newest kept (SPEC 4)."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

BODY_LIMIT = 4096


class Journal:
    """A bounded, thread-safe log of requests; ids keep counting across drops and clears."""

    def __init__(self, size: int) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self._next_id = 1
        self._lock = threading.Lock()

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append({"id": self._next_id, **entry})
            self._next_id += 1

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
