"""The request journal: what each exchange request sent and got, newest kept (SPEC 4)."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

BODY_LIMIT = 4096
# The query is bounded only by the HTTP server's header limit; keep the journal's size bounded.
QUERY_LIMIT = 16384


class Journal:
    """A bounded, thread-safe log in id order; ids keep counting across drops and clears."""

    def __init__(self, size: int) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self._next_id = 1
        self._clears = 0  # a ticket taken before a clear is void after it
        self._lock = threading.Lock()

    def reserve(self) -> tuple[int, int]:
        """A ticket for an entry recorded later (see `Exchange._run_handler`): the next id,
        taken now, and which clear it belongs after."""
        with self._lock:
            return self._take_id(), self._clears

    def _take_id(self) -> int:
        entry_id = self._next_id
        self._next_id += 1
        return entry_id

    def record(self, entry: dict[str, Any], ticket: tuple[int, int] | None = None) -> None:
        """Keep `entry` under its ticket's id, or the next id; a void ticket keeps nothing:
        the state that request changed was cleared with the journal (reset)."""
        with self._lock:
            if ticket is not None and ticket[1] != self._clears:
                return
            item = {"id": self._take_id() if ticket is None else ticket[0], **entry}
            entries = self._entries
            # An entry with a reserved id may arrive after later ones: keep id order.
            at = len(entries)
            while at and entries[at - 1]["id"] > item["id"]:
                at -= 1
            if len(entries) == entries.maxlen:
                if at == 0:
                    return  # older than everything kept: it has already dropped out
                entries.popleft()
                at -= 1
            entries.insert(at, item)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._clears += 1
