"""Unknown response fields for the `extra-response-fields` scenario, added around the mock's app.

A WSGI wrapper, not a fault action: it is a test-kit concern, needs no change
to the server's fault format, and only ever runs inside the kit's own
in-process mock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, ClassVar


class ExtraFields:
    """WSGI wrapper: while `active`, every JSON object a Binance route answers gets unknown keys."""

    FIELDS: ClassVar[dict[str, Any]] = {
        "dapiMockUnknownField": "added by the fuzz kit",
        "updateTimeNs": 0,
        "unknownList": [1, 2],
        "unknownObject": {"nested": True},
    }

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.active = False

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not self.active or str(environ.get("PATH_INFO", "")).startswith("/__admin"):
            return self.app(environ, start_response)
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        def hold(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            held["status"], held["headers"] = status, headers
            return chunks.append

        result = self.app(environ, hold)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        body = b"".join(chunks)
        if "status" not in held:
            return [body]
        headers = [(k, v) for k, v in held["headers"] if k.lower() != "content-length"]
        if held["status"].startswith("200") and body:
            body = self._widened(body)
        headers.append(("Content-Length", str(len(body))))
        start_response(held["status"], headers)
        return [body]

    def _widened(self, body: bytes) -> bytes:
        try:
            payload = json.loads(body)
        except ValueError:
            return body  # a malformed-body fault: leave it cut
        if isinstance(payload, dict):
            payload = {**payload, **self.FIELDS}
        elif isinstance(payload, list):
            payload = [{**r, **self.FIELDS} if isinstance(r, dict) else r for r in payload]
        return json.dumps(payload, separators=(",", ":")).encode()
