"""What the test packages share: the frozen instant and Binance's documented signing
vectors, HMAC signing as the docs show it, a barrier to start client threads together,
and a broken server that accepts any signature (so a check must catch it)."""

from __future__ import annotations

import hashlib
import hmac
import io
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from mockserver.config import DEMO_SECRET

# 2020-06-09, the timestamp of Binance's own signing examples.
FROZEN_MS = 1591702613943
#: The secret of Binance's COIN-M futures signing example (its documented vectors).
COINM_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
#: The key and secret of Binance's spot signing example.
SPOT_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SPOT_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def run_at_once(work: Callable[[int], None], count: int) -> None:
    """`work(0)` to `work(count - 1)`, each on its own thread, released together by a
    barrier; fails with the first few of their failures."""
    start = threading.Barrier(count)
    failures: list[BaseException] = []

    def run(number: int) -> None:
        try:
            start.wait(timeout=10)
            work(number)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures[:3]


def hmac_hex(payload: str | bytes, secret: str = DEMO_SECRET) -> str:
    """HMAC-SHA256 of `payload` as lowercase hex: a signature written apart from the kit's
    and the server's."""
    data = payload.encode() if isinstance(payload, str) else payload
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def signed(params: dict[str, Any] | list[tuple[str, Any]], secret: str = DEMO_SECRET) -> str:
    """`params` urlencoded in the given order, with the HMAC signature appended last."""
    text = urlencode(params)
    return f"{text}&signature={hmac_hex(text, secret)}"


class SkipsSignatureCheck:
    """Every signed request reaches the mock re-signed: in effect, no signature is checked."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        query = environ.get("QUERY_STRING", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length).decode("latin-1") if length else ""
        parts = {"query": query, "body": body}
        for name, part in parts.items():
            head, _, last = part.rpartition("&")
            if last.startswith("signature="):
                parts[name] = head
                good = hmac_hex((parts["query"] + parts["body"]).encode("latin-1"))
                parts[name] = f"{head}&signature={good}" if head else f"signature={good}"
        environ["QUERY_STRING"] = parts["query"]
        raw = parts["body"].encode("latin-1")
        environ["wsgi.input"] = io.BytesIO(raw)
        environ["CONTENT_LENGTH"] = str(len(raw))
        return self.app(environ, start_response)
