"""The request journal: what each exchange request sent and got (docs/behaviour.md#journal).

Bounded twice: at most `size` entries, and at most `text_limit` bytes of entry
text, each entry's text fields cut to the sizes below; the oldest drop first.
"""

from __future__ import annotations

import bisect
import sys
import threading
import time
from collections import deque
from typing import Any

BODY_LIMIT = 4096
QUERY_LIMIT = 16384
# docs/behaviour.md#journal: each entry's text fields are cut to these many characters.
FIELD_LIMITS = {
    "path": 1024,
    "api_key": 64,
    "query": QUERY_LIMIT,
    "body": BODY_LIMIT,
    "reason": 2048,
}
TEXT_LIMIT = 64 * 1024 * 1024
PAGE_LIMIT = 10_000
# A reserved id is recorded microseconds later; one never recorded (a bug) stops holding
# readers back after this long.
PENDING_SECONDS = 10.0


def cut(entry: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The entry with its text fields cut to FIELD_LIMITS, and the bytes its text holds.

    Bytes are what the kept strings take in memory (sys.getsizeof), so a field of
    wide characters counts for what it costs, not for its length.
    """
    kept = dict(entry)
    size = 0
    for name, limit in FIELD_LIMITS.items():
        value = kept.get(name)
        if isinstance(value, str):
            if len(value) > limit:
                value = kept[name] = value[:limit]
            size += sys.getsizeof(value)
    return kept, size


class Journal:
    """A bounded, thread-safe log in id order; ids keep counting across drops and clears.

    An id reserved by `reserve` is pending until its entry is recorded; readers
    see only the entries below the oldest pending id, so a reader resuming from
    `last_id` never skips an entry that arrives late in its place. A clear voids
    the reservations taken before it (see `record`).
    """

    def __init__(self, size: int, text_limit: int = TEXT_LIMIT) -> None:
        self._entries: deque[tuple[dict[str, Any], int]] = deque(maxlen=size)
        self._text_bytes = 0
        self._text_limit = text_limit
        self._next_id = 1
        self._pending: dict[int, float] = {}  # reserved id -> when it stops holding back
        self._clears = 0  # a ticket taken before a clear is void after it
        self._lock = threading.Lock()

    def reserve(self) -> tuple[int, int]:
        """A ticket for an entry recorded later (see `Exchange._run_handler`): the next id,
        taken now, and which clear it belongs after."""
        with self._lock:
            entry_id = self._take_id()
            self._pending[entry_id] = time.monotonic() + PENDING_SECONDS
            return entry_id, self._clears

    def _take_id(self) -> int:
        entry_id = self._next_id
        self._next_id += 1
        return entry_id

    def record(self, entry: dict[str, Any], ticket: tuple[int, int] | None = None) -> None:
        """Keep `entry` under its ticket's id, or the next id; a void ticket keeps nothing:
        the state that request changed was cleared with the journal (reset)."""
        body, size = cut(entry)
        with self._lock:
            if ticket is None:
                entry_id = self._take_id()
            else:
                entry_id, clears = ticket
                self._pending.pop(entry_id, None)
                if clears != self._clears:
                    return
            item = ({"id": entry_id, **body}, size)
            entries = self._entries
            # An entry with a reserved id may arrive after later ones: keep id order.
            at = len(entries)
            while at and entries[at - 1][0]["id"] > entry_id:
                at -= 1
            if len(entries) == entries.maxlen:
                if at == 0:
                    return  # older than everything kept: it has already dropped out
                self._drop_oldest()
                at -= 1
            entries.insert(at, item)
            self._text_bytes += size
            while self._text_bytes > self._text_limit and len(entries) > 1:
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, size = self._entries.popleft()
        self._text_bytes -= size

    @property
    def text_bytes(self) -> int:
        return self._text_bytes

    def entries(self) -> list[dict[str, Any]]:
        return self.page()[0]

    def page(
        self, since_id: int | None = None, limit: int | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """Entries with id > since_id, the newest `limit` of them, oldest first; and last_id.

        last_id is the newest id a reader can resume from: every entry up to it has
        been recorded (or has dropped out). Only references are copied under the
        lock; the caller serialises outside it.
        """
        with self._lock:
            if self._pending:
                now = time.monotonic()
                self._pending = {i: t for i, t in self._pending.items() if t > now}
            last_id = (min(self._pending) if self._pending else self._next_id) - 1
            visible = [entry for entry, _ in self._entries]
        ids = [entry["id"] for entry in visible]
        end = bisect.bisect_right(ids, last_id)
        start = bisect.bisect_right(ids, since_id) if since_id is not None else 0
        if limit is not None:
            start = max(start, end - limit)
        return visible[start:end], last_id

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._text_bytes = 0
            self._pending.clear()  # voided: never recorded, so they hold no reader back
            self._clears += 1
