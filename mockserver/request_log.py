"""The request log: one line per request on stderr, that never blocks serving
(docs/behaviour.md#request-log).

Lines go through a bounded queue to a writer thread: when stderr is a pipe nobody
reads, the queue fills and further lines are dropped and counted, instead of
holding up the request that logs them. Text lines escape control characters, so a
path like `/x%0A...` cannot forge a line or colour a terminal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import re
import threading
import time
from datetime import UTC, datetime
from typing import TextIO

request_log = logging.getLogger("mockserver.requests")

# How many lines may wait for the writer; past this, lines are dropped and counted.
QUEUE_LINES = 10_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def log_request(
    client: str | None,
    method: str | None,
    path: str | None,
    status: str,
    code: int | None,
    started: float,
    reason: str | None,
) -> None:
    """One line of the request log; `started` is a `time.perf_counter()` value."""
    if not request_log.isEnabledFor(logging.INFO):
        return
    request_log.info(
        "request",
        extra={
            "request_fields": {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "client": client,
                "method": method,
                "path": path,
                "status": status,
                "code": code,
                "ms": round((time.perf_counter() - started) * 1000, 2),
                "reason": reason,
            }
        },
    )


def escape_controls(text: str) -> str:
    """Control characters as `\\xNN`, so one request is one line and no escape sequence."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class RequestLogFormatter(logging.Formatter):
    """Formats the request log as one text line or one JSON object per request."""

    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "request_fields", None)
        if fields is None:
            return escape_controls(super().format(record))
        if self.as_json:
            return json.dumps(fields, separators=(",", ":"))
        line = (
            f"{fields['time']} {fields['client']} {fields['method']} {fields['path']} "
            f"{fields['status']} {fields['code'] if fields['code'] is not None else '-'} "
            f"{fields['ms']}ms"
        )
        if fields["reason"] and fields["code"]:
            line = f"{line} {fields['reason']}"
        return escape_controls(line)


class NonBlockingHandler(logging.Handler):
    """Formats on the caller's thread, writes on a daemon thread; drops lines when behind."""

    def __init__(self, stream: TextIO, lines: int = QUEUE_LINES) -> None:
        super().__init__()
        self.stream = stream
        self.dropped = 0
        self._reported = 0
        self._lines: queue.Queue[str | None] = queue.Queue(maxsize=lines)
        self._writer = threading.Thread(target=self._write, name="request-log", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.put_nowait(self.format(record))
        except queue.Full:
            self.dropped += 1

    def _write(self) -> None:
        while (line := self._lines.get()) is not None:
            dropped = self.dropped
            if dropped != self._reported:
                lost = dropped - self._reported
                line = f"dapi-mock: {lost} log lines dropped (stderr was not read)\n{line}"
                self._reported = dropped
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # stderr closed: nothing more can be said there
                pass

    def close(self, wait_s: float = 1.0) -> None:
        """Stop the writer, giving it `wait_s` to finish what is queued; never hangs on it."""
        deadline = time.monotonic() + wait_s
        while not self._lines.empty() and time.monotonic() < deadline:
            time.sleep(0.01)
        with contextlib.suppress(queue.Full):
            self._lines.put_nowait(None)
        self._writer.join(timeout=max(0.0, deadline - time.monotonic()))
        super().close()
